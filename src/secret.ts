import type { PepperKey } from './config'

/** Algorithm name recorded in every stored hash. */
export const HASH_ALGORITHM = 'hmac-sha256'

const SECRET_BYTES = 32
const encoder = new TextEncoder()
const importedKeys = new WeakMap<Uint8Array, Promise<CryptoKey>>()

export function encodeBase64url(bytes: Uint8Array): string {
  let binary = ''
  for (const byte of bytes) binary += String.fromCharCode(byte)
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

function decodeBase64url(value: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(value)) return undefined

  const base64 = value.replace(/-/g, '+').replace(/_/g, '/')
  const binary = atob(base64 + '='.repeat((4 - (base64.length % 4)) % 4))
  return Uint8Array.from(binary, (char) => char.charCodeAt(0))
}

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
function macInput(clientId: string, secret: string): Uint8Array {
  return encoder.encode(`${clientId.toLowerCase()}\n${secret}`)
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
export function parseStoredHash(stored: string): { keyId: string; mac: Uint8Array } | undefined {
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
