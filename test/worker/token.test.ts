import { SignJWT } from 'jose'
import { beforeAll, describe, expect, it } from 'vitest'
import { type Config, parseConfig } from '../../src/config'
import { ApiError } from '../../src/errors'
import { hasScope } from '../../src/scope'
import { MAX_TOKEN_LENGTH, readBearerToken, verifyAccessToken } from '../../src/token'
import {
  catchError,
  createEnv,
  createSigningKey,
  nowSeconds,
  type Settings,
  type SigningKey,
  signToken,
  toBase64url,
} from './helpers'

const userId = '6c0a9a52-7f1e-4b7e-9d35-3f2a1c8e5b10'
const clientId = 'f4d5e6a7-1b2c-4d3e-8f90-a1b2c3d4e5f6'

let es256: SigningKey
let rs256: SigningKey
let ps256: SigningKey
let eddsa: SigningKey
let es384: SigningKey
/** A key that no configured key set contains. */
let stranger: SigningKey
let config: Config

function configWith(overrides: Settings, keys = [es256, rs256, ps256, eddsa]): Config {
  return parseConfig(createEnv(keys, overrides))
}

beforeAll(async () => {
  es256 = await createSigningKey('ES256')
  rs256 = await createSigningKey('RS256')
  ps256 = await createSigningKey('PS256')
  eddsa = await createSigningKey('EdDSA')
  es384 = await createSigningKey('ES384')
  stranger = await createSigningKey('ES256')
  config = configWith({})
})

function tokenFor(key: SigningKey, claims: Record<string, unknown> = {}): Promise<string> {
  return signToken(key, { sub: userId, client_id: clientId, ...claims })
}

function encodeJson(value: unknown): string {
  return toBase64url(new TextEncoder().encode(JSON.stringify(value)))
}

async function expectInvalidToken(action: () => unknown): Promise<void> {
  const error = await catchError(action)

  expect(error).toBeInstanceOf(ApiError)
  expect((error as ApiError).status).toBe(401)
  expect((error as ApiError).type).toBe('access_denied')
  expect((error as ApiError).headers['WWW-Authenticate']).toBe('Bearer error="invalid_token"')
}

function expectRejected(token: string, withConfig: Config = config): Promise<void> {
  return expectInvalidToken(() => verifyAccessToken(token, withConfig))
}

describe('readBearerToken', () => {
  it.each(['Bearer', 'bearer', 'BEARER', 'bEaReR'])('reads the scheme %s', (scheme) => {
    expect(readBearerToken(`${scheme} abc.def.ghi`)).toBe('abc.def.ghi')
  })

  it('keeps the b64token characters and trailing padding', () => {
    expect(readBearerToken('Bearer aZ09-._~+/x==')).toBe('aZ09-._~+/x==')
  })

  it('accepts several spaces after the scheme, as RFC 6750 1*SP allows', () => {
    expect(readBearerToken('Bearer   abc.def.ghi')).toBe('abc.def.ghi')
  })

  it.each([
    ['missing', null],
    ['empty', ''],
    ['the scheme alone', 'Bearer'],
    ['the scheme and a space', 'Bearer '],
    ['another scheme', 'Basic dXNlcjpwYXNz'],
    ['the token alone', 'abc.def.ghi'],
    ['a tab after the scheme', 'Bearer\tabc.def.ghi'],
    ['two tokens', 'Bearer abc.def.ghi other'],
    ['a comma', 'Bearer abc.def.ghi, Bearer x'],
    ['a character outside b64token', 'Bearer abc.def.gh!'],
    ['padding inside the token', 'Bearer ab=c'],
    ['no space after the scheme', 'Bearerabc.def.ghi'],
    ['a token longer than the limit', `Bearer ${'a'.repeat(MAX_TOKEN_LENGTH + 17)}`],
  ])('rejects %s', async (_name, header) => {
    await expectInvalidToken(() => readBearerToken(header))
  })
})

describe('verifyAccessToken', () => {
  it('returns the caller', async () => {
    const caller = await verifyAccessToken(await tokenFor(es256), config)

    expect(caller).toEqual({ userId, clientId, scopes: ['secret:refresh'] })
  })

  it.each(['es256', 'rs256', 'ps256', 'eddsa'] as const)(
    'verifies %s from a key set of several keys',
    async (name) => {
      const keys = { es256, rs256, ps256, eddsa }
      const caller = await verifyAccessToken(await tokenFor(keys[name]), config)

      expect(caller.userId).toBe(userId)
    },
  )

  describe('signature and algorithm', () => {
    it('rejects a token signed by a key outside the set', async () => {
      await expectRejected(await tokenFor(stranger))
    })

    it('rejects a known kid signed by another key', async () => {
      const forged = await signToken(
        stranger,
        { sub: userId, client_id: clientId },
        { kid: es256.kid },
      )

      await expectRejected(forged)
    })

    it('rejects an unknown kid', async () => {
      await expectRejected(
        await signToken(es256, { sub: userId, client_id: clientId }, { kid: 'nope' }),
      )
    })

    it('rejects alg none', async () => {
      const now = nowSeconds()
      const header = encodeJson({ alg: 'none', typ: 'JWT', kid: es256.kid })
      const payload = encodeJson({
        iss: config.issuer,
        aud: config.audience,
        sub: userId,
        client_id: clientId,
        scope: 'secret:refresh',
        iat: now,
        exp: now + 300,
      })

      await expectRejected(`${header}.${payload}.`)
    })

    it('rejects HS256 signed with the public key bytes', async () => {
      const publicKey = await crypto.subtle.importKey(
        'jwk',
        es256.publicJwk as JsonWebKey,
        { name: 'ECDSA', namedCurve: 'P-256' },
        true,
        ['verify'],
      )
      const spki = new Uint8Array((await crypto.subtle.exportKey('spki', publicKey)) as ArrayBuffer)
      const jwkBytes = new TextEncoder().encode(JSON.stringify(es256.publicJwk))

      for (const secret of [spki, jwkBytes]) {
        const token = await new SignJWT({
          sub: userId,
          client_id: clientId,
          scope: 'secret:refresh',
        })
          .setProtectedHeader({ alg: 'HS256', kid: es256.kid })
          .setIssuer(config.issuer)
          .setAudience(config.audience)
          .setIssuedAt()
          .setExpirationTime('5m')
          .sign(secret)

        await expectRejected(token)
      }
    })

    it('rejects an algorithm outside JWT_ALGORITHMS', async () => {
      const withEs384 = configWith({}, [es256, es384])

      await expectRejected(await tokenFor(es384), withEs384)
    })

    it('accepts an algorithm once JWT_ALGORITHMS lists it', async () => {
      const withEs384 = configWith({ JWT_ALGORITHMS: 'ES256,ES384' }, [es256, es384])
      const caller = await verifyAccessToken(await tokenFor(es384), withEs384)

      expect(caller.userId).toBe(userId)
    })

    it('rejects RS256 when JWT_ALGORITHMS lists ES256 only', async () => {
      await expectRejected(await tokenFor(rs256), configWith({ JWT_ALGORITHMS: 'ES256' }))
    })

    it.each([
      ['text', 'not-a-token'],
      ['three empty parts', '..'],
      ['garbage parts', 'abc.def.ghi'],
      ['a JSON header without payload', `${encodeJson({ alg: 'ES256' })}..`],
    ])('rejects %s', async (_name, token) => {
      await expectRejected(token)
    })

    it('rejects a token longer than the limit', async () => {
      await expectRejected(await tokenFor(es256, { padding: 'x'.repeat(MAX_TOKEN_LENGTH) }))
    })
  })

  describe('time claims', () => {
    it('rejects an expired token', async () => {
      await expectRejected(
        await tokenFor(es256, { iat: nowSeconds() - 600, exp: nowSeconds() - 60 }),
      )
    })

    it('rejects a token that is not yet valid', async () => {
      await expectRejected(await tokenFor(es256, { nbf: nowSeconds() + 60 }))
    })

    it('rejects an iat in the future beyond the tolerance', async () => {
      await expectRejected(await tokenFor(es256, { iat: nowSeconds() + 60 }))
    })

    it('rejects a token without exp', async () => {
      await expectRejected(await tokenFor(es256, { exp: undefined }))
    })

    it('rejects an exp that is not a number', async () => {
      await expectRejected(await tokenFor(es256, { exp: String(nowSeconds() + 300) }))
    })

    it.each([
      ['exp', { iat: nowSeconds() - 600, exp: nowSeconds() - 10 }],
      ['nbf', { nbf: nowSeconds() + 10 }],
      ['iat', { iat: nowSeconds() + 10 }],
    ])('allows %s within the default tolerance of 30 seconds', async (_claim, claims) => {
      const caller = await verifyAccessToken(await tokenFor(es256, claims), config)

      expect(caller.userId).toBe(userId)
    })

    it.each([
      ['exp', { iat: nowSeconds() - 600, exp: nowSeconds() - 5 }],
      ['nbf', { nbf: nowSeconds() + 5 }],
      ['iat', { iat: nowSeconds() + 5 }],
    ])('rejects %s off by 5 seconds with a tolerance of 0', async (_claim, claims) => {
      await expectRejected(await tokenFor(es256, claims), configWith({ JWT_CLOCK_TOLERANCE: '0' }))
    })

    it.each([
      ['exp', { iat: nowSeconds() - 600, exp: nowSeconds() - 100 }],
      ['nbf', { nbf: nowSeconds() + 100 }],
      ['iat', { iat: nowSeconds() + 100 }],
    ])('allows %s off by 100 seconds with a tolerance of 120', async (_claim, claims) => {
      const lenient = configWith({ JWT_CLOCK_TOLERANCE: '120' })
      const caller = await verifyAccessToken(await tokenFor(es256, claims), lenient)

      expect(caller.userId).toBe(userId)
    })
  })

  describe('issuer and audience', () => {
    it.each([
      ['another issuer', { iss: 'https://other-issuer.test' }],
      ['the issuer with a trailing slash', { iss: 'https://issuer.test/' }],
      ['no issuer', { iss: undefined }],
      ['another audience', { aud: 'other-api' }],
      ['an audience list without ours', { aud: ['other-api', 'third-api'] }],
      ['no audience', { aud: undefined }],
    ])('rejects %s', async (_name, claims) => {
      await expectRejected(await tokenFor(es256, claims))
    })

    it('accepts an audience list that contains ours', async () => {
      const token = await tokenFor(es256, { aud: ['other-api', config.audience] })

      expect((await verifyAccessToken(token, config)).userId).toBe(userId)
    })
  })

  describe('subject and client id', () => {
    it.each([
      ['no sub', { sub: undefined }],
      ['an empty sub', { sub: '' }],
      ['a numeric sub', { sub: 42 }],
      ['no client_id', { client_id: undefined }],
      ['an empty client_id', { client_id: '' }],
      ['a numeric client_id', { client_id: 42 }],
      ['a client_id array', { client_id: [clientId] }],
    ])('rejects %s', async (_name, claims) => {
      await expectRejected(await tokenFor(es256, claims))
    })

    it.each(['azp', 'cid'])('reads the client id from %s when configured', async (claim) => {
      const token = await signToken(es256, { sub: userId, [claim]: clientId })
      const caller = await verifyAccessToken(token, configWith({ CLIENT_ID_CLAIM: claim }))

      expect(caller.clientId).toBe(clientId)
    })

    it.each(['azp', 'cid'])('ignores client_id when %s is configured', async (claim) => {
      const token = await signToken(es256, { sub: userId, client_id: clientId })

      await expectRejected(token, configWith({ CLIENT_ID_CLAIM: claim }))
    })

    it('ignores azp when client_id is configured', async () => {
      await expectRejected(await signToken(es256, { sub: userId, azp: clientId }))
    })
  })

  describe('scopes', () => {
    it('reads a scope string', async () => {
      const caller = await verifyAccessToken(
        await tokenFor(es256, { scope: 'openid secret:refresh' }),
        config,
      )

      expect(caller.scopes).toEqual(['openid', 'secret:refresh'])
    })

    it('reads an scp array', async () => {
      const token = await tokenFor(es256, { scope: undefined, scp: ['openid', 'secret:refresh'] })
      const caller = await verifyAccessToken(token, config)

      expect(caller.scopes).toEqual(['openid', 'secret:refresh'])
    })

    it('returns no scopes when the token has none', async () => {
      const caller = await verifyAccessToken(await tokenFor(es256, { scope: undefined }), config)

      expect(caller.scopes).toEqual([])
    })

    it.each([
      'secret:refresh_all',
      'secret:refreshx',
      'secret:refresh:all',
      'xsecret:refresh',
      'SECRET:REFRESH',
      'openid,secret:refresh',
    ])('grants nothing for the near miss %j', async (scope) => {
      const caller = await verifyAccessToken(await tokenFor(es256, { scope }), config)

      expect(hasScope(caller.scopes, 'secret:refresh')).toBe(false)
    })

    it('grants nothing for a near miss in scp', async () => {
      const token = await tokenFor(es256, { scope: undefined, scp: ['secret:refresh_all'] })
      const caller = await verifyAccessToken(token, config)

      expect(hasScope(caller.scopes, 'secret:refresh')).toBe(false)
    })

    it.each([
      ['scope as an array', { scope: ['secret:refresh'] }],
      ['scope as a number', { scope: 7 }],
      ['scope as an object', { scope: { 'secret:refresh': true } }],
      ['scp as a string', { scope: undefined, scp: 'secret:refresh' }],
      ['scp with a non-string', { scope: undefined, scp: ['secret:refresh', 7] }],
    ])('rejects %s', async (_name, claims) => {
      await expectRejected(await tokenFor(es256, claims))
    })
  })
})
