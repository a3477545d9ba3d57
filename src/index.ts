import type { Hono } from 'hono'
import { createApp } from './app'
import { type Config, ConfigError, type Env, parseConfig } from './config'
import type { AppEnv } from './context'
import { buildMeta, NO_STORE_HEADERS, resolveRequestId } from './envelope'
import { log } from './log'

export { createApp } from './app'
export { ConfigError, parseConfig } from './config'
export { generateSecret, hashSecret, verifySecret } from './secret'
export type { Config, Env }

type Built = { app: Hono<AppEnv> } | { error: ConfigError }

// Configuration is parsed once per isolate; workerd passes the same env object to every request.
const built = new WeakMap<Env, Built>()

function build(env: Env): Built {
  let result = built.get(env)
  if (result === undefined) {
    try {
      result = { app: createApp(parseConfig(env)) }
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error
      result = { error }
    }
    built.set(env, result)
  }
  return result
}

/** Answers every request with 500 while the configuration is invalid, and logs the setting. */
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

export default {
  fetch(request, env, ctx) {
    const result = build(env)
    if ('error' in result) return configFailure(request, result.error)
    return result.app.fetch(request, env, ctx)
  },
} satisfies ExportedHandler<Env>
