import { describe, expect, it } from 'vitest'
import { generateSecret, hashSecret, verifySecret } from '../../src/secret'
import { createPepper } from './helpers'

const clientId = 'a3f1c2d4-5b6e-4f70-8a91-b2c3d4e5f607'
const otherClientId = 'b3f1c2d4-5b6e-4f70-8a91-b2c3d4e5f607'
const current = createPepper('k1').key
const retired = createPepper('k0').key

function decodeBase64url(text: string): Uint8Array {
  const base64 = text.replace(/-/g, '+').replace(/_/g, '/')
  return Uint8Array.from(atob(base64), (char) => char.charCodeAt(0))
}

describe('generateSecret', () => {
  it('returns 43 Base64url characters', () => {
    expect(generateSecret()).toMatch(/^[A-Za-z0-9_-]{43}$/)
  })

  it('encodes 32 bytes', () => {
    expect(decodeBase64url(generateSecret())).toHaveLength(32)
  })

  it('differs each time', () => {
    const secrets = new Set(Array.from({ length: 200 }, () => generateSecret()))

    expect(secrets.size).toBe(200)
  })
})

describe('hashSecret', () => {
  it('names the algorithm and the key id', async () => {
    const hash = await hashSecret(clientId, generateSecret(), current)

    expect(hash).toMatch(/^hmac-sha256\$k1\$[A-Za-z0-9_-]{43}$/)
  })

  it('records the id of the key it used', async () => {
    const hash = await hashSecret(clientId, generateSecret(), retired)

    expect(hash.split('$')[1]).toBe('k0')
  })

  it('is an HMAC-SHA-256 over the client id and the secret', async () => {
    const secret = generateSecret()
    const key = await crypto.subtle.importKey(
      'raw',
      current.key,
      { name: 'HMAC', hash: 'SHA-256' },
      false,
      ['sign'],
    )
    const mac = await crypto.subtle.sign(
      'HMAC',
      key,
      new TextEncoder().encode(`${clientId}\n${secret}`),
    )
    const hash = await hashSecret(clientId, secret, current)

    expect(decodeBase64url(hash.split('$')[2] ?? '')).toEqual(new Uint8Array(mac))
  })

  it('never contains the secret', async () => {
    const secret = generateSecret()

    expect(await hashSecret(clientId, secret, current)).not.toContain(secret)
  })

  it('depends on the client id', async () => {
    const secret = generateSecret()

    expect(await hashSecret(clientId, secret, current)).not.toBe(
      await hashSecret(otherClientId, secret, current),
    )
  })

  it('depends on the key', async () => {
    const secret = generateSecret()
    const other = createPepper('k1').key

    expect(await hashSecret(clientId, secret, current)).not.toBe(
      await hashSecret(clientId, secret, other),
    )
  })
})

describe('verifySecret', () => {
  it('accepts the right secret', async () => {
    const secret = generateSecret()
    const hash = await hashSecret(clientId, secret, current)

    expect(await verifySecret(clientId, secret, hash, [current])).toBe(true)
  })

  it('accepts the client id in upper case', async () => {
    const secret = generateSecret()
    const hash = await hashSecret(clientId, secret, current)

    expect(await verifySecret(clientId.toUpperCase(), secret, hash, [current])).toBe(true)
  })

  it('rejects a wrong secret', async () => {
    const hash = await hashSecret(clientId, generateSecret(), current)

    expect(await verifySecret(clientId, generateSecret(), hash, [current])).toBe(false)
  })

  it('rejects the secret of another client', async () => {
    const secret = generateSecret()
    const hash = await hashSecret(clientId, secret, current)

    expect(await verifySecret(otherClientId, secret, hash, [current])).toBe(false)
  })

  it('rejects a hash under an unknown key id', async () => {
    const secret = generateSecret()
    const hash = await hashSecret(clientId, secret, createPepper('k9').key)

    expect(await verifySecret(clientId, secret, hash, [current, retired])).toBe(false)
  })

  it('rejects a hash whose key id names another key', async () => {
    const secret = generateSecret()
    const hash = await hashSecret(clientId, secret, createPepper('k1').key)

    expect(await verifySecret(clientId, secret, hash, [current])).toBe(false)
  })

  it('still accepts a hash under a retired key', async () => {
    const secret = generateSecret()
    const hash = await hashSecret(clientId, secret, retired)

    expect(await verifySecret(clientId, secret, hash, [current, retired])).toBe(true)
  })

  it('rejects a hash under a key that is no longer listed', async () => {
    const secret = generateSecret()
    const hash = await hashSecret(clientId, secret, retired)

    expect(await verifySecret(clientId, secret, hash, [current])).toBe(false)
  })

  it('rejects an empty secret', async () => {
    const hash = await hashSecret(clientId, generateSecret(), current)

    expect(await verifySecret(clientId, '', hash, [current])).toBe(false)
  })

  it('rejects the stored hash presented as the secret', async () => {
    const hash = await hashSecret(clientId, generateSecret(), current)

    expect(await verifySecret(clientId, hash, hash, [current])).toBe(false)
  })

  describe('malformed hashes', () => {
    const secret = 'Txxtv7LW47hllErsSWviDICN_MImvZKYN8T9ReY_vpY'

    it.each([
      ['empty', () => ''],
      ['the plain secret', () => secret],
      ['without a MAC', () => 'hmac-sha256$k1'],
      ['with an empty MAC', () => 'hmac-sha256$k1$'],
      ['of another algorithm', (mac: string) => `sha256$k1$${mac}`],
      ['in upper case', (mac: string) => `HMAC-SHA256$k1$${mac}`],
      ['with an extra part', (mac: string) => `hmac-sha256$k1$${mac}$x`],
      ['with a MAC one character short', (mac: string) => `hmac-sha256$k1$${mac.slice(1)}`],
      ['with a padded MAC', (mac: string) => `hmac-sha256$k1$${mac}=`],
      ['with a MAC in standard Base64', (mac: string) => `hmac-sha256$k1$${mac.slice(1)}+`],
      ['with a MAC of 45 characters', (mac: string) => `hmac-sha256$k1$${mac}AA`],
      ['with an empty key id', (mac: string) => `hmac-sha256$$${mac}`],
    ])('rejects a hash %s', async (_name, build: (mac: string) => string) => {
      const valid = await hashSecret(clientId, secret, current)
      const mac = valid.split('$')[2] ?? ''

      expect(await verifySecret(clientId, secret, build(mac), [current])).toBe(false)
    })
  })
})
