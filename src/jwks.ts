import {
  createLocalJWKSet,
  createRemoteJWKSet,
  type ExportedJWKSCache,
  type JWKSCacheInput,
  type JWTVerifyGetKey,
  jwksCache,
} from 'jose'
import {
  JOSENotSupported,
  JWKSMultipleMatchingKeys,
  JWKSNoMatchingKey,
  JWSInvalid,
} from 'jose/errors'
import type { Config } from './config.ts'
import { ApiError, serviceUnavailable } from './errors.ts'
import { describeError, log } from './log.ts'

/** How long one key set fetch may take before the request fails with 503. */
export const JWKS_TIMEOUT_MS = 5_000
/** The minimum time between refetches that an unknown `kid` can trigger. */
export const JWKS_COOLDOWN_MS = 30_000
/** How long a fetched key set is used before it is fetched again. */
export const JWKS_MAX_AGE_MS = 10 * 60_000
/** The Cache API cache through which isolates share fetched key sets. */
export const JWKS_CACHE_NAME = 'refresh-secret-jwks'

// Kept at module scope so that every request in an isolate shares one cached key set per URL.
const remoteKeySets = new Map<string, JWTVerifyGetKey>()
const localKeySets = new WeakMap<object, JWTVerifyGetKey>()

/** Errors that mean the token names no usable key, as opposed to the key set being unavailable. */
function isTokenError(error: unknown): boolean {
  return (
    error instanceof JWKSNoMatchingKey ||
    error instanceof JWKSMultipleMatchingKeys ||
    error instanceof JOSENotSupported ||
    error instanceof JWSInvalid
  )
}

function openSharedCache(): Promise<Cache> | undefined {
  return typeof caches === 'undefined' ? undefined : caches.open(JWKS_CACHE_NAME)
}

/** Reads a key set that another isolate fetched, or an empty cache entry for jose to fill. */
async function readSharedCache(url: URL): Promise<JWKSCacheInput> {
  try {
    const cache = await openSharedCache()
    const response = await cache?.match(url.href)
    if (response === undefined) return {}

    const entry = (await response.json()) as Partial<ExportedJWKSCache>
    if (typeof entry.uat !== 'number' || typeof entry.jwks !== 'object' || entry.jwks === null) {
      return {}
    }
    return { uat: entry.uat, jwks: entry.jwks }
  } catch (error) {
    log('warn', 'jwks shared cache read failed', describeError(error))
    return {}
  }
}

/** Shares a freshly fetched key set with other isolates until it would be refetched anyway. */
async function writeSharedCache(url: URL, entry: ExportedJWKSCache): Promise<void> {
  const remainingSeconds = Math.floor((entry.uat + JWKS_MAX_AGE_MS - Date.now()) / 1000)
  if (remainingSeconds <= 0) return

  try {
    const cache = await openSharedCache()
    const response = new Response(JSON.stringify(entry), {
      headers: {
        'Content-Type': 'application/json',
        'Cache-Control': `max-age=${remainingSeconds}`,
      },
    })
    await cache?.put(url.href, response)
  } catch (error) {
    log('warn', 'jwks shared cache write failed', describeError(error))
  }
}

type CacheEntry = JWKSCacheInput & Partial<ExportedJWKSCache>
type VerificationKey = Awaited<ReturnType<JWTVerifyGetKey>>

/** Returns the key from the key set in hand, or undefined when jose should fetch the key set. */
type InHandLookup = (...args: Parameters<JWTVerifyGetKey>) => Promise<VerificationKey | undefined>

/**
 * Lets one request per cooldown refetch the key set for a key that it does not hold. jose
 * refetches on an unknown `kid` once the cooldown since the last fetch has passed. On Workers
 * it does not share a fetch in flight between requests, so a burst of tokens with random key
 * ids would start one fetch each. Requests that may not refetch are checked against the key
 * set in hand and get jose's own "no matching key" error.
 */
function createRefetchGate(entry: CacheEntry): InHandLookup {
  const keySetsInHand = new WeakMap<object, JWTVerifyGetKey>()
  let nextRefetchAt = 0
  let nextRefreshAt = 0

  return async (header, token) => {
    const { uat, jwks } = entry
    // With no key set in hand, jose fetches whatever the kid.
    if (uat === undefined || jwks === undefined) return undefined

    // One request per fetch timeout refreshes an expired key set. The others keep using the keys
    // in hand until the refresh lands, for at most one more maximum age.
    const now = Date.now()
    if (now >= uat + JWKS_MAX_AGE_MS) {
      if (now >= nextRefreshAt || now >= uat + 2 * JWKS_MAX_AGE_MS) {
        nextRefreshAt = now + JWKS_TIMEOUT_MS
        return undefined
      }
    }

    let local = keySetsInHand.get(jwks)
    if (local === undefined) {
      try {
        local = createLocalJWKSet(jwks)
      } catch {
        // jose ignores a malformed cached key set and fetches a new one.
        return undefined
      }
      keySetsInHand.set(jwks, local)
    }
    try {
      return await local(header, token)
    } catch (error) {
      if (!(error instanceof JWKSNoMatchingKey)) throw error

      if (now < uat + JWKS_COOLDOWN_MS || now < nextRefetchAt) throw error
      nextRefetchAt = now + JWKS_COOLDOWN_MS
      return undefined
    }
  }
}

async function createSharedRemoteKeySet(url: URL): Promise<JWTVerifyGetKey> {
  // jose reads this object when the key set is created and updates it after every fetch.
  const entry: CacheEntry = await readSharedCache(url)
  const remote = createRemoteJWKSet(url, {
    timeoutDuration: JWKS_TIMEOUT_MS,
    cooldownDuration: JWKS_COOLDOWN_MS,
    cacheMaxAge: JWKS_MAX_AGE_MS,
    [jwksCache]: entry,
  })
  const inHand = createRefetchGate(entry)

  // A failed fetch must return 503 rather than 401, so this resolver separates the two kinds of error.
  return async (header, token) => {
    const fetchedAt = entry.uat
    try {
      return (await inHand(header, token)) ?? (await remote(header, token))
    } catch (error) {
      // An issuer that publishes no keys at all is broken, not the token.
      if (entry.jwks !== undefined && entry.jwks.keys.length === 0) {
        throw serviceUnavailable('jwks_empty', error)
      }
      if (isTokenError(error)) throw error
      throw serviceUnavailable('jwks_unavailable', error)
    } finally {
      if (entry.uat !== fetchedAt && entry.uat !== undefined && entry.jwks !== undefined) {
        await writeSharedCache(url, { uat: entry.uat, jwks: entry.jwks })
      }
    }
  }
}

// The first lookup of a key set in flight per URL. Requests that arrive while it runs wait for it
// instead of each fetching the key set.
const firstLookups = new Map<string, Promise<JWTVerifyGetKey>>()

/**
 * Waits for another request's first lookup, for at most the fetch timeout. Returns its key set,
 * throws its 503 when the key set could not be fetched, or returns undefined when there is no
 * lookup to wait for. workerd resumes the waiting request in its own context. A lookup that
 * never settles, because the request that started it was canceled, is dropped after the
 * timeout, and the caller fetches for itself.
 */
async function joinFirstLookup(href: string): Promise<JWTVerifyGetKey | undefined> {
  const inFlight = firstLookups.get(href)
  if (inFlight === undefined) return undefined

  let stopTimer = () => {}
  const timedOut = new Promise<undefined>((resolve) => {
    const timer = setTimeout(() => resolve(undefined), JWKS_TIMEOUT_MS)
    stopTimer = () => clearTimeout(timer)
  })
  try {
    const keySet = await Promise.race([inFlight, timedOut])
    if (keySet === undefined && firstLookups.get(href) === inFlight) firstLookups.delete(href)
    return keySet
  } finally {
    stopTimer()
  }
}

/**
 * Creates the key set inside this request and looks up the key. Requests that arrive meanwhile
 * get the key set once this lookup has filled it: a lookup that ends in a token error has filled
 * it too, while one that ends in 503 passes the 503 on.
 */
function firstLookup(url: URL, ...args: Parameters<JWTVerifyGetKey>): Promise<VerificationKey> {
  const creating = createSharedRemoteKeySet(url)
  const lookup = creating.then((created) => created(...args))
  const filled = lookup.then(
    () => creating,
    (error: unknown) => {
      if (error instanceof ApiError) throw error
      return creating
    },
  )
  // Registered before the first await, so that every request arriving later finds it.
  firstLookups.set(url.href, filled)
  const settle = () => {
    if (firstLookups.get(url.href) === filled) firstLookups.delete(url.href)
  }
  filled.then((created) => {
    if (!remoteKeySets.has(url.href)) remoteKeySets.set(url.href, created)
    settle()
  }, settle)
  return lookup
}

/**
 * Returns a resolver that creates the remote key set on its first key lookup, inside the request
 * that needs it, and keeps it for the isolate once that lookup has filled it.
 */
function remoteKeySet(url: URL): JWTVerifyGetKey {
  return async (header, token) => {
    const keySet = remoteKeySets.get(url.href) ?? (await joinFirstLookup(url.href))
    if (keySet !== undefined) return keySet(header, token)
    return firstLookup(url, header, token)
  }
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
