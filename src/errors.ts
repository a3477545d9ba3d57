/** A rule that a value broke, in the eHealth `invalid` entry format. */
export interface InvalidRule {
  rule: string
  params: unknown[] | Record<string, unknown>
  description: string
}

/** One entry of a 422 response's `invalid` list. */
export interface InvalidEntry {
  entry_type: 'json_data_property' | 'query_parameter' | 'path_parameter' | 'header'
  entry: string
  rules: InvalidRule[]
}

export type ErrorType =
  | 'request_malformed'
  | 'access_denied'
  | 'forbidden'
  | 'not_found'
  | 'method_not_allowed'
  | 'request_conflict'
  | 'request_too_large'
  | 'content_type_invalid'
  | 'validation_failed'
  | 'too_many_requests'
  | 'internal_error'
  | 'service_unavailable'

export interface ApiErrorOptions {
  invalid?: InvalidEntry[]
  headers?: Record<string, string>
  /** A short machine-readable reason for the log line; never shown to the client. */
  reason?: string
  cause?: unknown
}

/**
 * An error with a public status, eHealth type and message. The message is sent to the client,
 * so it must never contain a token, a secret, a hash or driver text. `cause` goes to the log only.
 */
export class ApiError extends Error {
  readonly status: number
  readonly type: ErrorType
  readonly invalid?: InvalidEntry[]
  readonly headers: Record<string, string>
  readonly reason: string

  constructor(status: number, type: ErrorType, message: string, options: ApiErrorOptions = {}) {
    super(message, { cause: options.cause })
    this.name = 'ApiError'
    this.status = status
    this.type = type
    this.invalid = options.invalid
    this.headers = options.headers ?? {}
    this.reason = options.reason ?? type
  }
}

/** Creates the 401 for a bearer token that failed verification (RFC 6750 section 3.1, `invalid_token`). */
export function invalidToken(reason: string, cause?: unknown): ApiError {
  return new ApiError(401, 'access_denied', 'The access token is missing, invalid or expired.', {
    headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' },
    reason,
    cause,
  })
}

/** Creates the 503 for a failed dependency, which the client may retry after `retryAfter` seconds. */
export function serviceUnavailable(reason: string, cause?: unknown, retryAfter = 5): ApiError {
  return new ApiError(503, 'service_unavailable', 'A dependency is unavailable. Retry later.', {
    headers: { 'Retry-After': String(retryAfter) },
    reason,
    cause,
  })
}

export function validationFailed(message: string, invalid: InvalidEntry[]): ApiError {
  return new ApiError(422, 'validation_failed', message, { invalid, reason: 'validation_failed' })
}
