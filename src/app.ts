import { cors } from 'hono/cors'
// hono/tiny routes with PatternRouter, the smallest of Hono's routers, which suffices for two paths.
import { Hono } from 'hono/tiny'
import type { Config } from './config.ts'
import type { AppEnv } from './context.ts'
import { resolveRequestId, sendError } from './envelope.ts'
import { ApiError } from './errors.ts'
import { describeError, log } from './log.ts'
import { refreshClientSecret, refreshConnectionSecret } from './rotate.ts'

export const ROUTE = '/admin/clients/:id/refresh_secret'
export const CONNECTION_ROUTE = '/api/clients/:id/connections/:connection_id/actions/refresh_secret'

/**
 * The successor method's description in this service's OpenAPI document, as a JSON pointer:
 * the `Link: rel="successor-version"` target unless SUCCESSOR_LINK is set.
 */
export const DEFAULT_SUCCESSOR_LINK =
  '/openapi.json#/paths/~1api~1clients~1%7Bid%7D~1connections~1%7Bconnection_id%7D~1actions~1refresh_secret/patch'

/** Headers that mark the method deprecated: RFC 9745 `Deprecation`, RFC 8594 `Sunset`, `Link`. */
export function deprecationHeaders(deprecation: Config['deprecation']): Record<string, string> {
  const headers: Record<string, string> = {
    Deprecation: `@${Math.floor(deprecation.date.getTime() / 1000)}`,
  }
  if (deprecation.sunset !== undefined) headers.Sunset = deprecation.sunset.toUTCString()

  const links: string[] = []
  if (deprecation.link !== undefined) {
    links.push(`<${deprecation.link}>; rel="deprecation"; type="text/html"`)
  }
  links.push(`<${deprecation.successor ?? DEFAULT_SUCCESSOR_LINK}>; rel="successor-version"`)
  headers.Link = links.join(', ')
  return headers
}

function methodNotAllowed(): ApiError {
  return new ApiError(405, 'method_not_allowed', 'This route accepts PATCH only.', {
    headers: { Allow: 'PATCH' },
  })
}

function notFound(): ApiError {
  return new ApiError(404, 'not_found', 'No route matches this path.')
}

/** Builds the Hono app for one validated configuration. */
export function createApp(config: Config): Hono<AppEnv> {
  const app = new Hono<AppEnv>()
  const routeHeaders = deprecationHeaders(config.deprecation)

  app.use(async (c, next) => {
    const started = Date.now()
    c.set('config', config)
    c.set('requestId', resolveRequestId(c.req.header('x-request-id')))
    c.set('logFields', {})

    await next()

    // Responses built outside the envelope, such as CORS preflights, get the common headers too.
    if (!c.res.headers.has('x-request-id')) c.res.headers.set('x-request-id', c.get('requestId'))
    if (!c.res.headers.has('cache-control')) c.res.headers.set('Cache-Control', 'no-store')

    const fields = c.get('logFields')
    log(c.res.status >= 500 ? 'error' : 'info', 'request', {
      request_id: c.get('requestId'),
      method: c.req.method,
      route: c.req.routePath === '/*' ? null : c.req.routePath,
      status: c.res.status,
      duration_ms: Date.now() - started,
      outcome: fields.outcome ?? (c.res.status < 400 ? 'ok' : 'error'),
      client_id: fields.client_id ?? null,
      connection_id: fields.connection_id ?? undefined,
      user_id: fields.user_id ?? null,
    })
  })

  // PatternRouter matches a route with a trailing slash too; this service's paths have none.
  for (const route of [ROUTE, CONNECTION_ROUTE]) {
    app.use(route, async (c, next) => {
      if (c.req.path.endsWith('/')) throw notFound()
      await next()
    })
  }

  if (config.corsOrigins.length > 0) {
    const allowed = new Set(config.corsOrigins)
    const corsHeaders = cors({
      origin: config.corsOrigins,
      allowMethods: ['PATCH'],
      allowHeaders: ['Authorization', 'Content-Type', 'Idempotency-Key', 'x-request-id'],
      exposeHeaders: [
        'x-request-id',
        'Deprecation',
        'Sunset',
        'Link',
        'Retry-After',
        'Idempotent-Replayed',
        'WWW-Authenticate',
      ],
      maxAge: 600,
    })

    // Requests from other origins get no CORS headers at all, preflights included.
    for (const route of [ROUTE, CONNECTION_ROUTE]) {
      app.use(route, (c, next) => {
        const origin = c.req.header('origin')
        return origin !== undefined && allowed.has(origin) ? corsHeaders(c, next) : next()
      })
    }
  }

  // Only the client-secret method is deprecated; its successor is the connection method.
  app.use(ROUTE, async (c, next) => {
    c.set('routeHeaders', routeHeaders)
    await next()
  })

  app.patch(ROUTE, refreshClientSecret)
  app.patch(CONNECTION_ROUTE, refreshConnectionSecret)
  for (const route of [ROUTE, CONNECTION_ROUTE]) {
    app.all(route, () => {
      throw methodNotAllowed()
    })
  }

  app.notFound((c) => sendError(c, notFound()))

  app.onError((error, c) => {
    const fields = c.get('logFields')
    if (error instanceof ApiError) {
      fields.outcome = error.reason
      if (error.status >= 500 || error.cause !== undefined) {
        log(error.status >= 500 ? 'error' : 'warn', 'request failed', {
          request_id: c.get('requestId'),
          reason: error.reason,
          ...describeError(error.cause),
        })
      }
      return sendError(c, error)
    }

    fields.outcome = 'internal_error'
    log('error', 'unexpected error', { request_id: c.get('requestId'), ...describeError(error) })
    return sendError(c, new ApiError(500, 'internal_error', 'An unexpected error occurred.'))
  })

  return app
}
