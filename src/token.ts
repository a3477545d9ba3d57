import { type JWTPayload, jwtVerify } from 'jose'
import { JOSEError } from 'jose/errors'
import type { Config } from './config.ts'
import { ApiError, invalidToken } from './errors.ts'
import { getKeySet } from './jwks.ts'
import { readScopes } from './scope.ts'

/** Tokens longer than this are rejected before any decoding or key lookup. */
export const MAX_TOKEN_LENGTH = 8_192

/**
 * A JWS in compact serialization: three Base64url segments without padding (RFC 7515 sections
 * 2 and 7.1). Every allowed algorithm signs, so the signature is never empty. jose also decodes
 * padded segments, which would let `token==` verify as a second spelling of `token`.
 */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/

/** The caller as established by a verified access token. */
export interface Caller {
  userId: string
  clientId: string
  scopes: string[]
}

/**
 * Extracts the bearer token from an Authorization header (RFC 6750 section 2.1). The scheme is
 * case-insensitive and one or more spaces (1*SP) separate it from the token; anything else,
 * tabs and a second token included, is rejected.
 */
export function readBearerToken(header: string | null): string {
  if (header === null || header === '') throw invalidToken('token_missing')
  if (header.length > MAX_TOKEN_LENGTH + 16) throw invalidToken('token_too_large')

  const match = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i.exec(header)
  if (match === null) throw invalidToken('authorization_header_malformed')
  return match[1] as string
}

function stringClaim(payload: JWTPayload, name: string): string | undefined {
  const value = payload[name]
  return typeof value === 'string' && value !== '' ? value : undefined
}

/** Verifies an access token and returns the caller it names. */
export async function verifyAccessToken(token: string, config: Config): Promise<Caller> {
  if (token.length > MAX_TOKEN_LENGTH) throw invalidToken('token_too_large')
  if (!COMPACT_JWS.test(token)) throw invalidToken('token_malformed')

  let payload: JWTPayload
  try {
    const result = await jwtVerify(token, getKeySet(config.jwks), {
      issuer: config.issuer,
      audience: config.audience,
      // The allowlist contains asymmetric algorithms only, so `none` and HS* never verify.
      algorithms: config.algorithms,
      clockTolerance: config.clockTolerance,
      requiredClaims: ['exp', 'sub'],
      // RFC 9068 section 4: issuers that type their access tokens as at+jwt can require it.
      typ: config.tokenType,
    })
    payload = result.payload
  } catch (error) {
    if (error instanceof ApiError) throw error
    throw invalidToken(error instanceof JOSEError ? error.code : 'token_invalid', error)
  }

  // JSON numbers beyond double range, such as 1e400, parse as Infinity, which passes jose's
  // type check: an `exp` of 1e400 would never expire. NumericDate values must be finite.
  for (const claim of ['exp', 'nbf', 'iat'] as const) {
    const value = payload[claim]
    if (value !== undefined && !Number.isFinite(value)) throw invalidToken(`${claim}_invalid`)
  }

  // jose checks `iat` only against a maximum age, so an `iat` in the future is rejected here.
  const now = Math.floor(Date.now() / 1000)
  if (typeof payload.iat === 'number' && payload.iat > now + config.clockTolerance) {
    throw invalidToken('iat_in_future')
  }

  const userId = stringClaim(payload, 'sub')
  if (userId === undefined) throw invalidToken('sub_invalid')

  const clientId = stringClaim(payload, config.clientIdClaim)
  if (clientId === undefined) throw invalidToken(`${config.clientIdClaim}_invalid`)

  const scopes = readScopes(payload)
  if (scopes === undefined) throw invalidToken('scope_invalid')

  return { userId, clientId, scopes }
}
