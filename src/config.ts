import type { JSONWebKeySet } from 'jose'
import { decodeBase64url } from './base64url.ts'

/** Bindings and variables of the Worker, as declared in wrangler.toml and .dev.vars. */
export interface Env {
  DB: D1Database
  JWKS_URL?: string
  JWKS?: string
  JWT_ISSUER?: string
  JWT_AUDIENCE?: string
  JWT_ALGORITHMS?: string
  JWT_CLOCK_TOLERANCE?: string
  CLIENT_ID_CLAIM?: string
  SECRET_PEPPER?: string
  SECRET_PEPPER_ID?: string
  SECRET_PEPPERS_RETIRED?: string
  DEPRECATION_DATE?: string
  SUNSET_DATE?: string
  DEPRECATION_LINK?: string
  SUCCESSOR_LINK?: string
  CORS_ORIGINS?: string
  JWT_TYP?: string
  GRACE_PERIOD_MAX?: string
  GRACE_PERIOD_DEFAULT?: string
  IDEMPOTENCY_TTL?: string
  ROTATION_RATE_LIMIT?: string
  ROTATION_RATE_WINDOW?: string
}

/** A key of the secret hash: its id, recorded in every hash, and its raw bytes. */
export interface PepperKey {
  id: string
  key: Uint8Array<ArrayBuffer>
}

export interface Config {
  jwks: { kind: 'remote'; url: URL } | { kind: 'local'; keySet: JSONWebKeySet }
  issuer: string
  audience: string
  algorithms: string[]
  clockTolerance: number
  clientIdClaim: 'client_id' | 'azp' | 'cid'
  /** The required `typ` header (such as `at+jwt`, RFC 9068), or undefined to accept any. */
  tokenType: string | undefined
  pepper: PepperKey
  retiredPeppers: PepperKey[]
  deprecation: {
    date: Date
    sunset?: Date
    link?: string
    successor?: string
  }
  corsOrigins: string[]
  /** Seconds. */
  gracePeriod: { max: number; default: number }
  /** Seconds that a response is kept for Idempotency-Key retries. */
  idempotencyTtl: number
  /** Rotations per client per window; a limit of 0 turns the limit off. Window in seconds. */
  rateLimit: { limit: number; window: number }
}

/** Invalid or missing configuration; `setting` names the variable to fix. */
export class ConfigError extends Error {
  readonly setting: string

  constructor(setting: string, message: string) {
    super(`${setting}: ${message}`)
    this.name = 'ConfigError'
    this.setting = setting
  }
}

/** Asymmetric JWS algorithms that jose verifies with Web Crypto. HS* and `none` are never allowed. */
export const SUPPORTED_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const

const DEFAULT_ALGORITHMS = 'RS256,PS256,ES256,EdDSA'
const DEFAULT_CLOCK_TOLERANCE = 30
const MAX_CLOCK_TOLERANCE = 300
const MIN_PEPPER_BYTES = 32
const KEY_ID_PATTERN = /^[A-Za-z0-9_-]{1,32}$/

const DEFAULT_GRACE_PERIOD_MAX = 7 * 24 * 3600
const DEFAULT_IDEMPOTENCY_TTL = 600
const MAX_IDEMPOTENCY_TTL = 24 * 3600
const DEFAULT_RATE_LIMIT = 5
const DEFAULT_RATE_WINDOW = 3600
const MAX_SECONDS = 365 * 24 * 3600

/** The date the method is reported deprecated when DEPRECATION_DATE is not set. */
export const DEFAULT_DEPRECATION_DATE = '2026-01-01T00:00:00Z'

/** Returns the trimmed value, or undefined when it is missing or empty. */
function optional(env: Env, name: keyof Env): string | undefined {
  const value = env[name]
  if (typeof value !== 'string') return undefined

  const trimmed = value.trim()
  return trimmed === '' ? undefined : trimmed
}

function required(env: Env, name: keyof Env): string {
  const value = optional(env, name)
  if (value === undefined) throw new ConfigError(name, 'is required but not set')
  return value
}

function isLoopbackHost(hostname: string): boolean {
  return (
    hostname === 'localhost' ||
    hostname === '[::1]' ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname)
  )
}

function parseJwksUrl(value: string): URL {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new ConfigError('JWKS_URL', 'is not a valid URL')
  }

  // Key sets decide who may rotate secrets, so they are fetched over TLS except on loopback.
  if (url.protocol === 'https:') return url
  if (url.protocol === 'http:' && isLoopbackHost(url.hostname)) return url
  throw new ConfigError('JWKS_URL', 'must use https (plain http is accepted for loopback hosts)')
}

function parseInlineJwks(value: string): JSONWebKeySet {
  let parsed: unknown
  try {
    parsed = JSON.parse(value)
  } catch {
    throw new ConfigError('JWKS', 'is not valid JSON; expected {"keys": [...]}')
  }

  const keys = (parsed as { keys?: unknown } | null)?.keys
  if (!Array.isArray(keys) || keys.length === 0) {
    throw new ConfigError('JWKS', 'must be a JSON object with a non-empty "keys" array')
  }
  for (const key of keys) {
    if (typeof key !== 'object' || key === null || typeof key.kty !== 'string') {
      throw new ConfigError('JWKS', 'every key must be an object with a "kty" member')
    }
    if ('d' in key || key.kty === 'oct') {
      throw new ConfigError('JWKS', 'must contain public keys only')
    }
  }
  return parsed as JSONWebKeySet
}

function parseAlgorithms(value: string): string[] {
  const algorithms = value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '')

  if (algorithms.length === 0) throw new ConfigError('JWT_ALGORITHMS', 'lists no algorithm')
  for (const algorithm of algorithms) {
    if (!(SUPPORTED_ALGORITHMS as readonly string[]).includes(algorithm)) {
      throw new ConfigError(
        'JWT_ALGORITHMS',
        `"${algorithm}" is not an allowed asymmetric algorithm; use some of ${SUPPORTED_ALGORITHMS.join(', ')}`,
      )
    }
  }
  return algorithms
}

function parseClientIdClaim(value: string | undefined): Config['clientIdClaim'] {
  if (value === undefined) return 'client_id'
  if (value === 'client_id' || value === 'azp' || value === 'cid') return value
  throw new ConfigError('CLIENT_ID_CLAIM', 'must be one of client_id, azp, cid')
}

function parseWholeNumber(
  env: Env,
  setting: keyof Env,
  fallback: number,
  min: number,
  max: number,
): number {
  const value = optional(env, setting)
  if (value === undefined) return fallback

  const number = Number(value)
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(number) || number < min || number > max) {
    throw new ConfigError(setting, `must be a whole number from ${min} to ${max}`)
  }
  return number
}

function parseTokenType(value: string | undefined): string | undefined {
  if (value === undefined) return undefined
  if (!/^[A-Za-z0-9.+/-]{1,64}$/.test(value)) {
    throw new ConfigError('JWT_TYP', 'must be a media type such as at+jwt')
  }
  return value
}

function parseGracePeriod(env: Env): Config['gracePeriod'] {
  const max = parseWholeNumber(env, 'GRACE_PERIOD_MAX', DEFAULT_GRACE_PERIOD_MAX, 0, MAX_SECONDS)
  const fallback = parseWholeNumber(env, 'GRACE_PERIOD_DEFAULT', 0, 0, MAX_SECONDS)
  if (fallback > max) {
    throw new ConfigError('GRACE_PERIOD_DEFAULT', `must not exceed GRACE_PERIOD_MAX (${max})`)
  }
  return { max, default: fallback }
}

function parsePepperKey(
  setting: string,
  id: string,
  encoded: string,
  idSetting: string = setting,
): PepperKey {
  if (!KEY_ID_PATTERN.test(id)) {
    throw new ConfigError(idSetting, 'key ids must be 1 to 32 characters of A-Z, a-z, 0-9, _ or -')
  }
  const key = decodeBase64url(encoded)
  if (key === undefined) {
    throw new ConfigError(setting, 'keys must be Base64url without padding')
  }
  if (key.length < MIN_PEPPER_BYTES) {
    throw new ConfigError(setting, `keys must decode to at least ${MIN_PEPPER_BYTES} bytes`)
  }
  return { id, key }
}

function parseRetiredPeppers(value: string | undefined, currentId: string): PepperKey[] {
  if (value === undefined) return []

  const keys: PepperKey[] = []
  for (const pair of value.split(',')) {
    const separator = pair.indexOf(':')
    if (separator < 1) {
      throw new ConfigError('SECRET_PEPPERS_RETIRED', 'must be id:key pairs separated by commas')
    }

    const key = parsePepperKey(
      'SECRET_PEPPERS_RETIRED',
      pair.slice(0, separator).trim(),
      pair.slice(separator + 1).trim(),
    )
    if (key.id === currentId || keys.some((other) => other.id === key.id)) {
      throw new ConfigError('SECRET_PEPPERS_RETIRED', `key id "${key.id}" is used twice`)
    }
    keys.push(key)
  }
  return keys
}

function parseDate(setting: keyof Env, value: string): Date {
  const date = new Date(value)
  if (Number.isNaN(date.getTime())) {
    throw new ConfigError(setting, 'must be an ISO 8601 date, such as 2027-01-01T00:00:00Z')
  }
  return date
}

function parseLink(setting: keyof Env, value: string | undefined): string | undefined {
  if (value === undefined) return undefined

  try {
    const url = new URL(value)
    if (url.protocol === 'https:' || url.protocol === 'http:') return url.href
  } catch {
    // Reported below.
  }
  throw new ConfigError(setting, 'must be an absolute http or https URL')
}

function parseOrigins(value: string | undefined): string[] {
  if (value === undefined) return []

  return value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '')
    .map((origin) => {
      let url: URL
      try {
        url = new URL(origin)
      } catch {
        throw new ConfigError(
          'CORS_ORIGINS',
          `"${origin}" is not an origin such as https://app.example`,
        )
      }
      if (url.origin === 'null' || url.origin !== origin.replace(/\/$/, '')) {
        throw new ConfigError(
          'CORS_ORIGINS',
          `"${origin}" is not an origin such as https://app.example`,
        )
      }
      return url.origin
    })
}

/**
 * Parses and validates the Worker's configuration. Throws a ConfigError that names the first
 * invalid setting; the message never includes the value of a secret.
 */
export function parseConfig(env: Env): Config {
  const jwksUrl = optional(env, 'JWKS_URL')
  const inlineJwks = optional(env, 'JWKS')
  if (jwksUrl !== undefined && inlineJwks !== undefined) {
    throw new ConfigError('JWKS_URL', 'and JWKS are both set; set exactly one of them')
  }
  if (jwksUrl === undefined && inlineJwks === undefined) {
    throw new ConfigError('JWKS_URL', 'is required unless JWKS is set; set exactly one of them')
  }

  const jwks: Config['jwks'] =
    jwksUrl !== undefined
      ? { kind: 'remote', url: parseJwksUrl(jwksUrl) }
      : { kind: 'local', keySet: parseInlineJwks(inlineJwks as string) }

  const pepperId = optional(env, 'SECRET_PEPPER_ID') ?? 'k1'
  const pepper = parsePepperKey(
    'SECRET_PEPPER',
    pepperId,
    required(env, 'SECRET_PEPPER'),
    'SECRET_PEPPER_ID',
  )
  const deprecationDate = optional(env, 'DEPRECATION_DATE')
  const sunsetDate = optional(env, 'SUNSET_DATE')

  return {
    jwks,
    issuer: required(env, 'JWT_ISSUER'),
    audience: required(env, 'JWT_AUDIENCE'),
    algorithms: parseAlgorithms(optional(env, 'JWT_ALGORITHMS') ?? DEFAULT_ALGORITHMS),
    clockTolerance: parseWholeNumber(
      env,
      'JWT_CLOCK_TOLERANCE',
      DEFAULT_CLOCK_TOLERANCE,
      0,
      MAX_CLOCK_TOLERANCE,
    ),
    clientIdClaim: parseClientIdClaim(optional(env, 'CLIENT_ID_CLAIM')),
    pepper,
    retiredPeppers: parseRetiredPeppers(optional(env, 'SECRET_PEPPERS_RETIRED'), pepper.id),
    deprecation: {
      date: parseDate('DEPRECATION_DATE', deprecationDate ?? DEFAULT_DEPRECATION_DATE),
      sunset: sunsetDate === undefined ? undefined : parseDate('SUNSET_DATE', sunsetDate),
      link: parseLink('DEPRECATION_LINK', optional(env, 'DEPRECATION_LINK')),
      successor: parseLink('SUCCESSOR_LINK', optional(env, 'SUCCESSOR_LINK')),
    },
    corsOrigins: parseOrigins(optional(env, 'CORS_ORIGINS')),
    tokenType: parseTokenType(optional(env, 'JWT_TYP')),
    gracePeriod: parseGracePeriod(env),
    idempotencyTtl: parseWholeNumber(
      env,
      'IDEMPOTENCY_TTL',
      DEFAULT_IDEMPOTENCY_TTL,
      1,
      MAX_IDEMPOTENCY_TTL,
    ),
    rateLimit: {
      limit: parseWholeNumber(env, 'ROTATION_RATE_LIMIT', DEFAULT_RATE_LIMIT, 0, 1_000_000),
      window: parseWholeNumber(env, 'ROTATION_RATE_WINDOW', DEFAULT_RATE_WINDOW, 1, MAX_SECONDS),
    },
  }
}
