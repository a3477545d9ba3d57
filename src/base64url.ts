import { base64url } from 'jose'

const BASE64URL_PATTERN = /^[A-Za-z0-9_-]*$/

/** Encodes bytes as Base64url without padding (RFC 4648 section 5). */
export function encodeBase64url(bytes: Uint8Array): string {
  return base64url.encode(bytes)
}

/** Decodes Base64url without padding, or returns undefined when the text is not Base64url. */
export function decodeBase64url(value: string): Uint8Array<ArrayBuffer> | undefined {
  if (!BASE64URL_PATTERN.test(value) || value.length % 4 === 1) return undefined
  try {
    // A copy, so the bytes are backed by a plain ArrayBuffer as Web Crypto's BufferSource requires.
    return new Uint8Array(base64url.decode(value))
  } catch {
    return undefined
  }
}
