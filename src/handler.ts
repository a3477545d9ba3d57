import type { Hono } from 'hono'
import { createApp } from './app.ts'
import { ConfigError, type Env, parseConfig } from './config.ts'
import type { AppEnv } from './context.ts'
import { buildMeta, NO_STORE_HEADERS, resolveRequestId } from './envelope.ts'
import { log } from './log.ts'

type Built = { app: Hono<AppEnv>; config: ReturnType<typeof parseConfig> } | { error: ConfigError }

// Configuration is parsed once per isolate: workerd passes the same env object to every request.
const built = new WeakMap<Env, Built>()

/** Returns the app and configuration for an env, or the configuration error. */
export function build(env: Env): Built {
  let result = built.get(env)
  if (result === undefined) {
    try {
      const config = parseConfig(env)
      result = { app: createApp(config), config }
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error
      result = { error }
    }
    built.set(env, result)
  }
  return result
}

/** Returns 500 for every request while the configuration is invalid, and logs the setting. */
function configFailure(request: Request, error: ConfigError): Response {
  const requestId = resolveRequestId(request.headers.get('x-request-id'))
  log('error', 'invalid configuration', {
    request_id: requestId,
    setting: error.setting,
    error_message: error.message,
  })

  const body = {
    meta: buildMeta(request.url, 500, requestId),
    error: { type: 'internal_error', message: 'The service is not configured correctly.' },
  }
  return new Response(JSON.stringify(body), {
    status: 500,
    headers: { ...NO_STORE_HEADERS, 'x-request-id': requestId },
  })
}

/** The fetch handler. It uses web-standard APIs only, so Deno can serve it as well as workerd. */
export const handler = {
  fetch(request: Request, env: Env, ctx?: ExecutionContext): Response | Promise<Response> {
    const result = build(env)
    if ('error' in result) return configFailure(request, result.error)
    return result.app.fetch(request, env, ctx)
  },
}
