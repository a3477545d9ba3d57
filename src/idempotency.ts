import { decodeBase64url, encodeBase64url } from './base64url.ts'
import type { PepperKey } from './config.ts'
import { validationFailed } from './errors.ts'

/** RFC 9110 visible ASCII, 1 to 255 characters, as accepted in the Idempotency-Key header. */
const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,255}$/
const HKDF_SALT = new TextEncoder().encode('refresh-secret idempotency v1')
const encoder = new TextEncoder()

/** The parts of a retry that the secret is encrypted to: the key, the caller and the client. */
export interface ReplayScope {
  idempotencyKey: string
  userId: string
  clientId: string
  /** The connection whose secret rotates, or undefined for the client's own secret. */
  connectionId?: string
}

/** The text that binds a key to one caller and one secret, so keys never collide across them. */
function scopeText(scope: ReplayScope): string {
  return `${scope.clientId}\n${scope.connectionId ?? ''}\n${scope.userId}\n${scope.idempotencyKey}`
}

/** Returns the Idempotency-Key header, undefined when absent, or a 422 when malformed. */
export function readIdempotencyKey(header: string | undefined): string | undefined {
  if (header === undefined) return undefined
  if (IDEMPOTENCY_KEY_PATTERN.test(header)) return header

  throw validationFailed('The Idempotency-Key header must be 1 to 255 visible ASCII characters.', [
    {
      entry_type: 'header',
      entry: 'Idempotency-Key',
      rules: [
        {
          rule: 'format',
          params: ['^[\\x21-\\x7e]{1,255}$'],
          description: 'expected 1 to 255 visible ASCII characters',
        },
      ],
    },
  ])
}

/**
 * Hashes the key and its scope with a pepper (HMAC-SHA-256), so the stored hash neither reveals
 * the key nor can be checked against guesses without the server key.
 */
export async function hashIdempotencyKey(scope: ReplayScope, pepper: PepperKey): Promise<string> {
  const hmacKey = await crypto.subtle.importKey(
    'raw',
    pepper.key,
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign'],
  )
  const input = encoder.encode(`idempotency-key\n${scopeText(scope)}`)
  return encodeBase64url(new Uint8Array(await crypto.subtle.sign('HMAC', hmacKey, input)))
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (typeof value === 'object' && value !== null) {
    const entries = Object.keys(value)
      .sort()
      .map(
        (key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`,
      )
    return `{${entries.join(',')}}`
  }
  return JSON.stringify(value)
}

/** SHA-256 of the body in canonical JSON, so key order and whitespace do not count as a change. */
export async function fingerprintBody(body: Record<string, unknown>): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', encoder.encode(canonicalJson(body)))
  return encodeBase64url(new Uint8Array(digest))
}

async function deriveKey(scope: ReplayScope, pepper: PepperKey): Promise<CryptoKey> {
  const material = await crypto.subtle.importKey('raw', pepper.key, 'HKDF', false, ['deriveKey'])
  const info = encoder.encode(scopeText(scope))
  return crypto.subtle.deriveKey(
    { name: 'HKDF', hash: 'SHA-256', salt: HKDF_SALT, info },
    material,
    { name: 'AES-GCM', length: 256 },
    false,
    ['encrypt', 'decrypt'],
  )
}

/** Encrypts a secret for replay with AES-256-GCM, as `<Base64url IV>.<Base64url ciphertext>`. */
export async function encryptForReplay(
  secret: string,
  scope: ReplayScope,
  pepper: PepperKey,
): Promise<string> {
  const key = await deriveKey(scope, pepper)
  const iv = crypto.getRandomValues(new Uint8Array(12))
  const ciphertext = await crypto.subtle.encrypt(
    { name: 'AES-GCM', iv },
    key,
    encoder.encode(secret),
  )
  return `${encodeBase64url(iv)}.${encodeBase64url(new Uint8Array(ciphertext))}`
}

/** Decrypts a stored replay. Returns undefined when the record does not decrypt under this scope. */
export async function decryptReplay(
  stored: string,
  scope: ReplayScope,
  pepper: PepperKey,
): Promise<string | undefined> {
  const [ivText, ciphertextText] = stored.split('.')
  const iv = decodeBase64url(ivText ?? '')
  const ciphertext = decodeBase64url(ciphertextText ?? '')
  if (iv === undefined || ciphertext === undefined || iv.length !== 12) return undefined

  try {
    const key = await deriveKey(scope, pepper)
    const plain = await crypto.subtle.decrypt({ name: 'AES-GCM', iv }, key, ciphertext)
    return new TextDecoder().decode(plain)
  } catch {
    return undefined
  }
}
