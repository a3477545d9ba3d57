// JOSE header tricks: algorithm confusion, ambiguous or malformed key ids, keys without `alg`
// or `use`, `crit` extensions, key URLs in the header, and the `typ` policy. The verifier uses
// only the configured key set and the asymmetric algorithm allowlist, whatever the header names.

import type { JWK } from 'jose'
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import type { Env } from '../../src/config'
import {
  callWorker,
  createEnv,
  createSigningKey,
  expectErrorResponse,
  type Fixture,
  interceptFetch,
  keySetJson,
  listRotations,
  readClient,
  refreshRequest,
  type Settings,
  type SigningKey,
  seedClient,
  signCompact,
  signToken,
  toBase64url,
  validClaims,
} from './helpers'

let es256: SigningKey
let rs256: SigningKey
let attacker: SigningKey

beforeAll(async () => {
  es256 = await createSigningKey('ES256')
  rs256 = await createSigningKey('RS256')
  attacker = await createSigningKey('ES256')
})

afterEach(() => {
  vi.restoreAllMocks()
})

/** Builds an env that trusts the given public JWKs, with the rate limit off. */
function envWith(keys: readonly JWK[], settings: Settings = {}): Env {
  return createEnv([], {
    JWKS: JSON.stringify({ keys }),
    ROTATION_RATE_LIMIT: '0',
    ...settings,
  })
}

async function send(token: string, fixture: Fixture, workerEnv: Env): Promise<Response> {
  return callWorker(refreshRequest(fixture.clientId, { token }), workerEnv)
}

/** Checks the outcome of a table row: a rotation for 200, else 401 with nothing written. */
async function expectOutcome(response: Response, fixture: Fixture, status: 200 | 401) {
  if (status === 200) {
    await response.body?.cancel()
    expect(response.status).toBe(200)
    expect(await listRotations(fixture.clientId)).toHaveLength(1)
    return
  }
  await expectErrorResponse(response, 401, 'access_denied')
  expect(response.headers.get('WWW-Authenticate')).toBe('Bearer error="invalid_token"')
  expect(await readClient(fixture.clientId)).toEqual(fixture.row)
  expect(await listRotations(fixture.clientId)).toEqual([])
}

const HMAC_HASHES = { HS256: 'SHA-256', HS384: 'SHA-384', HS512: 'SHA-512' } as const

/** Signs a JWS with HMAC under `secret`, as an attacker holding the public key would. */
async function signHmac(
  alg: keyof typeof HMAC_HASHES,
  secret: Uint8Array,
  header: Record<string, unknown>,
  claims: Record<string, unknown>,
): Promise<string> {
  const encode = (value: unknown) => toBase64url(new TextEncoder().encode(JSON.stringify(value)))
  const input = `${encode({ ...header, alg })}.${encode(claims)}`
  const hmacKey = await crypto.subtle.importKey(
    'raw',
    secret,
    { name: 'HMAC', hash: HMAC_HASHES[alg] },
    false,
    ['sign'],
  )
  const mac = await crypto.subtle.sign('HMAC', hmacKey, new TextEncoder().encode(input))
  return `${input}.${toBase64url(new Uint8Array(mac))}`
}

function pem(der: Uint8Array): string {
  let binary = ''
  for (const byte of der) binary += String.fromCharCode(byte)
  const lines = btoa(binary).match(/.{1,64}/g) ?? []
  return `-----BEGIN PUBLIC KEY-----\n${lines.join('\n')}\n-----END PUBLIC KEY-----\n`
}

function fromBase64url(value: string): Uint8Array {
  const base64 = value.replace(/-/g, '+').replace(/_/g, '/')
  return Uint8Array.from(atob(base64), (char) => char.charCodeAt(0))
}

/** Lists every encoding of a public key that an HMAC confusion attack might use as the secret. */
async function publicKeyEncodings(key: SigningKey): Promise<[string, Uint8Array][]> {
  const text = (value: string) => new TextEncoder().encode(value)
  const algorithm =
    key.alg === 'ES256'
      ? { name: 'ECDSA', namedCurve: 'P-256' }
      : { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }
  const publicKey = await crypto.subtle.importKey(
    'jwk',
    key.publicJwk as JsonWebKey,
    algorithm,
    true,
    ['verify'],
  )
  const der = new Uint8Array((await crypto.subtle.exportKey('spki', publicKey)) as ArrayBuffer)
  const { kid: _kid, alg: _alg, use: _use, ...bareJwk } = key.publicJwk

  const encodings: [string, Uint8Array][] = [
    ['JWK JSON with kid and alg', text(JSON.stringify(key.publicJwk))],
    ['bare JWK JSON', text(JSON.stringify(bareJwk))],
    ['PEM SPKI', text(pem(der))],
    ['PEM SPKI without the final newline', text(pem(der).trimEnd())],
    ['DER SPKI', der],
  ]
  if (key.alg === 'ES256') {
    const raw = new Uint8Array((await crypto.subtle.exportKey('raw', publicKey)) as ArrayBuffer)
    const x = key.publicJwk.x as string
    const y = key.publicJwk.y as string
    encodings.push(
      ['the raw point', raw],
      ['raw x and y', raw.slice(1)],
      ['x and y as Base64url text', text(`${x}${y}`)],
      ['x alone', fromBase64url(x)],
    )
  } else {
    encodings.push(
      ['the modulus', fromBase64url(key.publicJwk.n as string)],
      ['the modulus as Base64url text', text(key.publicJwk.n as string)],
    )
  }
  return encodings
}

describe('algorithm confusion', () => {
  it('rejects HMAC signed with every encoding of each public key', async () => {
    const workerEnv = envWith([es256.publicJwk, rs256.publicJwk])
    const fixture = await seedClient()
    const claims = validClaims(fixture.ownerId, fixture.clientId)
    const accepted: string[] = []

    for (const key of [es256, rs256]) {
      for (const [encoding, secret] of await publicKeyEncodings(key)) {
        for (const alg of Object.keys(HMAC_HASHES) as (keyof typeof HMAC_HASHES)[]) {
          const header = { kid: key.kid, typ: 'at+jwt' }
          const response = await send(
            await signHmac(alg, secret, header, claims),
            fixture,
            workerEnv,
          )
          await response.body?.cancel()
          if (response.status !== 401) accepted.push(`${alg} with ${key.alg} ${encoding}`)
        }
      }
    }

    expect(accepted).toEqual([])
    expect(await readClient(fixture.clientId)).toEqual(fixture.row)
  })

  const noneHeaders = ['none', 'None', 'NONE', 'nOnE'].flatMap((alg) => [
    [`alg ${alg} with no signature`, alg, ''],
    [`alg ${alg} with a signature`, alg, 'c2lnbmF0dXJl'],
  ])

  it.each(noneHeaders)('rejects %s', async (_name, alg, signature) => {
    const workerEnv = envWith([es256.publicJwk])
    const fixture = await seedClient()
    const encode = (value: unknown) => toBase64url(new TextEncoder().encode(JSON.stringify(value)))
    const claims = validClaims(fixture.ownerId, fixture.clientId)
    const token = `${encode({ alg, kid: es256.kid })}.${encode(claims)}.${signature}`

    await expectOutcome(await send(token, fixture, workerEnv), fixture, 401)
  })

  // Each header is signed with the ES256 key, so only the header decides the outcome.
  const algHeaders: [name: string, alg: unknown][] = [
    ['no alg', undefined],
    ['alg null', null],
    ['alg as a number', 256],
    ['alg as an array', ['ES256']],
    ['an empty alg', ''],
    ['alg in lower case', 'es256'],
    ['alg with a trailing space', 'ES256 '],
    ['alg RS256 over an ES256 signature', 'RS256'],
    ['alg ES384 over an ES256 signature', 'ES384'],
  ]

  it.each(algHeaders)('rejects %s', async (_name, alg) => {
    const workerEnv = envWith([es256.publicJwk, rs256.publicJwk])
    const fixture = await seedClient()
    const header = { kid: es256.kid, ...(alg === undefined ? {} : { alg }) }
    const token = await signCompact(es256, header, validClaims(fixture.ownerId, fixture.clientId))

    await expectOutcome(await send(token, fixture, workerEnv), fixture, 401)
  })
})

describe('kid and the key set', () => {
  let second: SigningKey

  beforeAll(async () => {
    second = await createSigningKey('ES256')
  })

  interface KidCase {
    keys: () => JWK[]
    /** The key that signs, and the header fields set over alg and typ. */
    signer: () => SigningKey
    header: () => Record<string, unknown>
    status: 200 | 401
  }

  const bare = (key: SigningKey, drop: string[]) =>
    Object.fromEntries(Object.entries(key.publicJwk).filter(([name]) => !drop.includes(name)))

  const cases: [string, KidCase][] = [
    [
      'no kid and one key',
      { keys: () => [es256.publicJwk], signer: () => es256, header: () => ({}), status: 200 },
    ],
    [
      'no kid and two keys of the same type',
      {
        keys: () => [es256.publicJwk, second.publicJwk],
        signer: () => es256,
        header: () => ({}),
        status: 401,
      },
    ],
    [
      'an unknown kid',
      {
        keys: () => [es256.publicJwk],
        signer: () => es256,
        header: () => ({ kid: 'unknown' }),
        status: 401,
      },
    ],
    [
      'the kid in another case',
      {
        keys: () => [es256.publicJwk],
        signer: () => es256,
        header: () => ({ kid: es256.kid.toUpperCase() }),
        status: 401,
      },
    ],
    ...(
      [
        ['a numeric kid', 1],
        ['a null kid', null],
        ['a kid object', { kid: 'x' }],
        ['a kid array', ['x']],
        ['a boolean kid', true],
      ] as [string, unknown][]
    ).map(([name, kid]): [string, KidCase] => [
      name,
      {
        keys: () => [es256.publicJwk],
        signer: () => es256,
        header: () => ({ kid }),
        status: 401,
      },
    ]),
    [
      'a kid that two keys share, signed by the first',
      {
        keys: () => [es256.publicJwk, { ...second.publicJwk, kid: es256.kid }],
        signer: () => es256,
        header: () => ({ kid: es256.kid }),
        status: 401,
      },
    ],
    [
      'a kid that two keys share, signed by the second',
      {
        keys: () => [es256.publicJwk, { ...second.publicJwk, kid: es256.kid }],
        signer: () => second,
        header: () => ({ kid: es256.kid }),
        status: 401,
      },
    ],
    [
      'a kid of 4000 characters',
      {
        keys: () => [es256.publicJwk],
        signer: () => es256,
        header: () => ({ kid: 'k'.repeat(4000) }),
        status: 401,
      },
    ],
    [
      'a key without alg and use',
      {
        keys: () => [bare(es256, ['alg', 'use'])],
        signer: () => es256,
        header: () => ({ kid: es256.kid }),
        status: 200,
      },
    ],
    [
      'a key without alg, use and kid',
      {
        keys: () => [bare(es256, ['alg', 'use', 'kid'])],
        signer: () => es256,
        header: () => ({ kid: es256.kid }),
        status: 401,
      },
    ],
    [
      'a key for encryption',
      {
        keys: () => [{ ...es256.publicJwk, use: 'enc' }],
        signer: () => es256,
        header: () => ({ kid: es256.kid }),
        status: 401,
      },
    ],
    [
      'a key whose key_ops lack verify',
      {
        keys: () => [{ ...es256.publicJwk, key_ops: ['encrypt'] }],
        signer: () => es256,
        header: () => ({ kid: es256.kid }),
        status: 401,
      },
    ],
    [
      'a key whose key_ops include verify',
      {
        keys: () => [{ ...bare(es256, ['use']), key_ops: ['verify'] }],
        signer: () => es256,
        header: () => ({ kid: es256.kid }),
        status: 200,
      },
    ],
    [
      'a key whose alg differs from the token',
      {
        keys: () => [{ ...es256.publicJwk, alg: 'ES384' }],
        signer: () => es256,
        header: () => ({ kid: es256.kid }),
        status: 401,
      },
    ],
  ]

  it.each(cases)('%s', async (_name, kidCase) => {
    const workerEnv = envWith(kidCase.keys())
    const fixture = await seedClient()
    const header = { alg: 'ES256', typ: 'at+jwt', ...kidCase.header() }
    const claims = validClaims(fixture.ownerId, fixture.clientId)
    const token = await signCompact(kidCase.signer(), header, claims)

    await expectOutcome(await send(token, fixture, workerEnv), fixture, kidCase.status)
  })

  it.each([
    { name: 'an RSA key that names RS256', keyAlg: 'RS256', status: 401 },
    { name: 'an RSA key that names no alg', keyAlg: undefined, status: 200 },
  ] as const)('PS256 with $name returns $status', async ({ keyAlg, status }) => {
    const ps256 = await createSigningKey('PS256')
    const workerEnv = envWith([{ ...ps256.publicJwk, alg: keyAlg }])
    const fixture = await seedClient()
    const token = await signToken(ps256, { sub: fixture.ownerId, client_id: fixture.clientId })

    await expectOutcome(await send(token, fixture, workerEnv), fixture, status)
  })
})

describe('crit', () => {
  const cases: [name: string, header: Record<string, unknown>, status: 200 | 401][] = [
    ['an unknown extension', { crit: ['x-policy'], 'x-policy': true }, 401],
    ['a claim name as an extension', { crit: ['exp'], exp: 1 }, 401],
    ['a registered header parameter', { crit: ['alg'] }, 401],
    ['an extension missing from the header', { crit: ['x-policy'] }, 401],
    ['an empty list', { crit: [] }, 401],
    ['a string in place of a list', { crit: 'x-policy', 'x-policy': true }, 401],
    ['an unencoded payload', { crit: ['b64'], b64: false }, 401],
    ['b64 true, the default meaning', { crit: ['b64'], b64: true }, 200],
  ]

  // An unencoded payload (RFC 7797) is signed here as Base64url text, so it passes the token
  // shape check and reaches jose, which rejects b64 false in a JWT.
  it.each(cases.map(([name, fields, status]) => ({ name, fields, status })))(
    'with $name returns $status',
    async ({ fields, status }) => {
      const workerEnv = envWith([es256.publicJwk])
      const fixture = await seedClient()
      const header = { alg: 'ES256', kid: es256.kid, typ: 'at+jwt', ...fields }
      const token = await signCompact(es256, header, validClaims(fixture.ownerId, fixture.clientId))

      await expectOutcome(await send(token, fixture, workerEnv), fixture, status)
    },
  )
})

describe('key URLs in the header', () => {
  const issuerUrl = 'https://jwks.test/header-urls/keys'
  const jkuUrl = 'https://attacker.test/jwks.json'
  const x5uUrl = 'https://attacker.test/cert.pem'

  function serveAll(): string[] {
    return interceptFetch({
      [issuerUrl]: () => new Response(keySetJson([es256])),
      [jkuUrl]: () => new Response(keySetJson([attacker])),
      [x5uUrl]: () => new Response('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----'),
    })
  }

  const headers: [
    name: string,
    signer: () => SigningKey,
    header: () => object,
    status: 200 | 401,
  ][] = [
    ['jku to the attacker key set', () => attacker, () => ({ jku: jkuUrl }), 401],
    ['x5u to the attacker certificate', () => attacker, () => ({ x5u: x5uUrl }), 401],
    ['the attacker key embedded as jwk', () => attacker, () => ({ jwk: attacker.publicJwk }), 401],
    ['an x5c chain', () => attacker, () => ({ x5c: ['MIIB'] }), 401],
    ['jku on an issuer token', () => es256, () => ({ jku: jkuUrl }), 200],
    ['x5u on an issuer token', () => es256, () => ({ x5u: x5uUrl }), 200],
    ['jwk on an issuer token', () => es256, () => ({ jwk: attacker.publicJwk }), 200],
  ]

  const rows = headers.map(([name, signer, header, status]) => ({ name, signer, header, status }))

  it.each(rows)(
    '$name returns $status and is never followed',
    async ({ signer, header, status }) => {
      const fetched = serveAll()
      const workerEnv = createEnv([], {
        JWKS: undefined,
        JWKS_URL: issuerUrl,
        ROTATION_RATE_LIMIT: '0',
      })
      const fixture = await seedClient()
      const key = signer()
      const token = await signCompact(
        key,
        { alg: 'ES256', kid: key === attacker ? es256.kid : key.kid, typ: 'at+jwt', ...header() },
        validClaims(fixture.ownerId, fixture.clientId),
      )

      await expectOutcome(await send(token, fixture, workerEnv), fixture, status)
      expect(fetched).not.toContain(jkuUrl)
      expect(fetched).not.toContain(x5uUrl)
    },
  )
})

describe('typ', () => {
  // Status without JWT_TYP, then with JWT_TYP=at+jwt. Media types compare case-insensitively,
  // and RFC 9068 allows the `application/` prefix.
  const cases: [name: string, typ: unknown, open: 200 | 401, strict: 200 | 401][] = [
    ['at+jwt', 'at+jwt', 200, 200],
    ['application/at+jwt', 'application/at+jwt', 200, 200],
    ['AT+JWT', 'AT+JWT', 200, 200],
    ['no typ', undefined, 200, 401],
    ['JWT', 'JWT', 200, 401],
    ['jwt', 'jwt', 200, 401],
    ['at+jwt with a trailing space', 'at+jwt ', 200, 401],
    ['at+jwt with a parameter', 'at+jwt; charset=utf-8', 200, 401],
    ['dpop+jwt', 'dpop+jwt', 200, 401],
    ['a numeric typ', 1, 200, 401],
  ]

  const rows = cases.map(([name, typ, open, strict]) => ({ name, typ, open, strict }))

  it.each(rows)('$name returns $open without JWT_TYP, $strict with it', async (row) => {
    const { typ, open, strict } = row
    const header = { alg: 'ES256', kid: es256.kid, ...(typ === undefined ? {} : { typ }) }
    const outcomes: number[] = []

    for (const settings of [{}, { JWT_TYP: 'at+jwt' }]) {
      const fixture = await seedClient()
      const token = await signCompact(es256, header, validClaims(fixture.ownerId, fixture.clientId))
      const response = await send(token, fixture, envWith([es256.publicJwk], settings))
      await response.body?.cancel()
      outcomes.push(response.status)
    }

    expect(outcomes).toEqual([open, strict])
  })
})
