import { createLocalJWKSet, createRemoteJWKSet, errors, type JWTVerifyGetKey } from 'jose'
import type { Config } from './config'
import { serviceUnavailable } from './errors'

/** How long one key set fetch may take before the request fails with 503. */
export const JWKS_TIMEOUT_MS = 5_000
/** The minimum time between refetches that an unknown `kid` can trigger. */
export const JWKS_COOLDOWN_MS = 30_000
/** How long a fetched key set is used before it is fetched again. */
export const JWKS_MAX_AGE_MS = 10 * 60_000

// Kept at module scope so that every request in an isolate shares one cached key set per URL.
const remoteKeySets = new Map<string, JWTVerifyGetKey>()
const localKeySets = new WeakMap<object, JWTVerifyGetKey>()

/** Errors that mean the token names no usable key, as opposed to the key set being unavailable. */
function isTokenError(error: unknown): boolean {
  return (
    error instanceof errors.JWKSNoMatchingKey ||
    error instanceof errors.JWKSMultipleMatchingKeys ||
    error instanceof errors.JOSENotSupported ||
    error instanceof errors.JWSInvalid
  )
}

function remoteKeySet(url: URL): JWTVerifyGetKey {
  let keySet = remoteKeySets.get(url.href)
  if (keySet === undefined) {
    const remote = createRemoteJWKSet(url, {
      timeoutDuration: JWKS_TIMEOUT_MS,
      cooldownDuration: JWKS_COOLDOWN_MS,
      cacheMaxAge: JWKS_MAX_AGE_MS,
    })

    // A failed fetch must answer 503 rather than 401, so tell the two kinds of error apart here.
    keySet = async (header, token) => {
      try {
        return await remote(header, token)
      } catch (error) {
        if (isTokenError(error)) throw error
        throw serviceUnavailable('jwks_unavailable', error)
      }
    }
    remoteKeySets.set(url.href, keySet)
  }
  return keySet
}

/** Returns the key resolver for the configured key set, created once per isolate. */
export function getKeySet(jwks: Config['jwks']): JWTVerifyGetKey {
  if (jwks.kind === 'remote') return remoteKeySet(jwks.url)

  let keySet = localKeySets.get(jwks.keySet)
  if (keySet === undefined) {
    keySet = createLocalJWKSet(jwks.keySet)
    localKeySets.set(jwks.keySet, keySet)
  }
  return keySet
}
