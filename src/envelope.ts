import type { Context } from 'hono'
import type { AppEnv } from './context.ts'
import type { ApiError } from './errors.ts'

/** The eHealth response `meta` object. */
export interface Meta {
  url: string
  type: 'object'
  code: number
  request_id: string
}

const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/

/**
 * Returns the incoming `x-request-id` when it is a short token of safe characters, else a new
 * UUID, so a caller cannot inject text into logs or headers through it.
 */
export function resolveRequestId(incoming: string | null | undefined): string {
  if (incoming && SAFE_REQUEST_ID.test(incoming)) return incoming
  return crypto.randomUUID()
}

/** Builds `meta.url`: scheme, host, optional port and path, without the query string. */
export function metaUrl(requestUrl: string): string {
  const url = new URL(requestUrl)
  return `${url.origin}${url.pathname}`
}

export function buildMeta(requestUrl: string, code: number, requestId: string): Meta {
  return { url: metaUrl(requestUrl), type: 'object', code, request_id: requestId }
}

/** Headers that every response of this service carries. */
export const NO_STORE_HEADERS: Record<string, string> = {
  'Cache-Control': 'no-store',
  Pragma: 'no-cache',
  'Content-Type': 'application/json; charset=utf-8',
}

/** Writes a JSON body with the service's common headers, plus `extra`. */
export function sendJson(
  c: Context<AppEnv>,
  status: number,
  body: unknown,
  extra: Record<string, string> = {},
): Response {
  const headers = new Headers({ ...NO_STORE_HEADERS, ...extra })
  headers.set('x-request-id', c.get('requestId'))
  for (const [name, value] of Object.entries(c.get('routeHeaders') ?? {})) headers.set(name, value)

  return new Response(JSON.stringify(body), { status, headers })
}

/** Writes an error in the eHealth envelope: `meta` and `error`, never `data`. */
export function sendError(c: Context<AppEnv>, error: ApiError): Response {
  const body = {
    meta: buildMeta(c.req.url, error.status, c.get('requestId')),
    error: {
      type: error.type,
      message: error.message,
      ...(error.invalid === undefined ? {} : { invalid: error.invalid }),
    },
  }
  return sendJson(c, error.status, body, error.headers)
}

export function sendData(
  c: Context<AppEnv>,
  data: unknown,
  extra: Record<string, string> = {},
): Response {
  return sendJson(c, 200, { meta: buildMeta(c.req.url, 200, c.get('requestId')), data }, extra)
}
