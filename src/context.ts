import type { Config, Env } from './config.ts'
import type { LogFields } from './log.ts'

/** Hono generics for this app, so `c.env` and `c.get` are typed. */
export interface AppEnv {
  Bindings: Env
  Variables: {
    config: Config
    requestId: string
    /** Headers added to every response of the matched route, errors included. */
    routeHeaders?: Record<string, string>
    /** Fields added to the request's log line by the handler. */
    logFields: LogFields
  }
}
