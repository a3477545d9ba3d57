import { decodeBase64url, encodeBase64url } from './base64url.ts'
import type { PepperKey } from './config.ts'

/** Algorithm name recorded in every stored hash. */
export const HASH_ALGORITHM = 'hmac-sha256'

const SECRET_BYTES = 32
const encoder = new TextEncoder()
const importedKeys = new WeakMap<Uint8Array<ArrayBuffer>, Promise<CryptoKey>>()

/** Generates a client secret: 32 random bytes, Base64url without padding (43 characters). */
export function generateSecret(): string {
  return encodeBase64url(crypto.getRandomValues(new Uint8Array(SECRET_BYTES)))
}

function importPepper(pepper: PepperKey): Promise<CryptoKey> {
  let key = importedKeys.get(pepper.key)
  if (key === undefined) {
    key = crypto.subtle.importKey('raw', pepper.key, { name: 'HMAC', hash: 'SHA-256' }, false, [
      'sign',
      'verify',
    ])
    importedKeys.set(pepper.key, key)
  }
  return key
}

/**
 * The MAC input binds the secret to its client, so a hash copied to another client row
 * never verifies. Client ids are UUIDs and never contain a newline.
 */
function macInput(clientId: string, secret: string): Uint8Array<ArrayBuffer> {
  // TextEncoder always returns bytes backed by a plain ArrayBuffer.
  return encoder.encode(`${clientId.toLowerCase()}\n${secret}`) as Uint8Array<ArrayBuffer>
}

/**
 * Hashes a secret for storage as `hmac-sha256$<key id>$<Base64url MAC>`. The algorithm and key
 * id in the string let the pepper and the algorithm change without invalidating stored hashes.
 */
export async function hashSecret(
  clientId: string,
  secret: string,
  pepper: PepperKey,
): Promise<string> {
  const key = await importPepper(pepper)
  const mac = await crypto.subtle.sign('HMAC', key, macInput(clientId, secret))
  return `${HASH_ALGORITHM}$${pepper.id}$${encodeBase64url(new Uint8Array(mac))}`
}

/** The parts of a stored hash, or undefined when it is not in a format this version reads. */
export function parseStoredHash(
  stored: string,
): { keyId: string; mac: Uint8Array<ArrayBuffer> } | undefined {
  const parts = stored.split('$')
  if (parts.length !== 3 || parts[0] !== HASH_ALGORITHM) return undefined

  const mac = decodeBase64url(parts[2] as string)
  if (mac === undefined || mac.length !== 32) return undefined
  return { keyId: parts[1] as string, mac }
}

/**
 * Verifies a presented secret against a stored hash in constant time. `peppers` are the current
 * key and the retired ones that are still accepted. Returns false for an unknown format or key id.
 */
export async function verifySecret(
  clientId: string,
  secret: string,
  stored: string,
  peppers: readonly PepperKey[],
): Promise<boolean> {
  const parsed = parseStoredHash(stored)
  if (parsed === undefined) return false

  const pepper = peppers.find((candidate) => candidate.id === parsed.keyId)
  if (pepper === undefined) return false

  // HMAC verify in Web Crypto compares the MACs in constant time.
  const key = await importPepper(pepper)
  return crypto.subtle.verify('HMAC', key, parsed.mac, macInput(clientId, secret))
}

/** The stored secret slot that a presented secret matched, if any. */
export interface SecretMatch {
  valid: boolean
  /** `previous` when the secret is the one replaced by the last rotation, within its grace period. */
  slot: 'current' | 'previous' | null
  /** When the previous secret stops verifying; set only when `slot` is `previous`. */
  previousExpiresAt: string | null
}

/** The stored secret slots of a client. */
export interface StoredSecrets {
  /** NULL for a connection whose secret was never set. */
  secret_hash: string | null
  previous_secret_hash: string | null
  previous_secret_expires_at: string | null
}

// Verified in place of an absent or expired previous slot, so both branches cost the same.
const PLACEHOLDER_MAC = encodeBase64url(new Uint8Array(32))

/**
 * Verifies a presented secret against both slots of a client. Both MACs are always computed,
 * so the time taken does not reveal whether a previous secret exists or has expired. The
 * previous secret verifies while `now` is before its expiry time.
 */
export async function verifyClientSecret(
  clientId: string,
  secret: string,
  stored: StoredSecrets,
  peppers: readonly PepperKey[],
  now: number = Date.now(),
): Promise<SecretMatch> {
  const expiresAt = stored.previous_secret_expires_at
  const previousLive =
    stored.previous_secret_hash !== null && expiresAt !== null && Date.parse(expiresAt) > now
  const fallback = `${HASH_ALGORITHM}$${peppers[0]?.id ?? ''}$${PLACEHOLDER_MAC}`

  const [current, previous] = await Promise.all([
    verifySecret(clientId, secret, stored.secret_hash ?? fallback, peppers),
    verifySecret(
      clientId,
      secret,
      previousLive ? (stored.previous_secret_hash as string) : fallback,
      peppers,
    ),
  ])

  if (current && stored.secret_hash !== null)
    return { valid: true, slot: 'current', previousExpiresAt: null }
  if (previous && previousLive)
    return { valid: true, slot: 'previous', previousExpiresAt: expiresAt }
  return { valid: false, slot: null, previousExpiresAt: null }
}
