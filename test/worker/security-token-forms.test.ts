// Hostile forms of the Authorization header and of the token in it. Every form that is not one
// Bearer credential of three Base64url segments gets 401 invalid_token and writes nothing.

import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import type { Env } from '../../src/config'
import { MAX_TOKEN_LENGTH } from '../../src/token'
import {
  BASE_URL,
  callWorker,
  createEnv,
  createSigningKey,
  expectErrorResponse,
  type Fixture,
  interceptFetch,
  keySetJson,
  listRotations,
  readClient,
  type SigningKey,
  seedClient,
  signCompact,
  signToken,
  toBase64url,
  validClaims,
} from './helpers'

const INVALID_TOKEN = 'Bearer error="invalid_token"'

let key: SigningKey
let workerEnv: Env

beforeAll(async () => {
  key = await createSigningKey('ES256')
  // Without the rate limit every accepted form can rotate the same client again.
  workerEnv = createEnv([key], { ROTATION_RATE_LIMIT: '0' })
})

afterEach(() => {
  vi.restoreAllMocks()
})

function ownerToken(fixture: Fixture, claims: Record<string, unknown> = {}): Promise<string> {
  return signToken(key, { sub: fixture.ownerId, client_id: fixture.clientId, ...claims })
}

function patch(fixture: Fixture, headers: HeadersInit, on: Env = workerEnv, path = '') {
  const url = `${BASE_URL}/admin/clients/${fixture.clientId}/refresh_secret${path}`
  return callWorker(new Request(url, { method: 'PATCH', headers }), on)
}

/** Checks a 401 invalid_token response that left the client and its audit trail as seeded. */
async function expectRejected(response: Response, fixture: Fixture): Promise<void> {
  await expectErrorResponse(response, 401, 'access_denied')

  expect(response.headers.get('WWW-Authenticate')).toBe(INVALID_TOKEN)
  expect(await readClient(fixture.clientId)).toEqual(fixture.row)
  expect(await listRotations(fixture.clientId)).toEqual([])
}

async function expectRotated(response: Response, fixture: Fixture): Promise<void> {
  await response.body?.cancel()

  expect(response.status).toBe(200)
  expect(await listRotations(fixture.clientId)).toHaveLength(1)
}

describe('Authorization header', () => {
  // Fetch header parsing strips leading and trailing spaces and tabs before the Worker reads them.
  const rows: [name: string, header: (token: string) => string, status: 200 | 401][] = [
    ['the scheme Bearer', (t) => `Bearer ${t}`, 200],
    ['the scheme in lower case', (t) => `bearer ${t}`, 200],
    ['the scheme in upper case', (t) => `BEARER ${t}`, 200],
    ['the scheme in mixed case', (t) => `bEaReR ${t}`, 200],
    ['several spaces after the scheme', (t) => `Bearer   ${t}`, 200],
    ['spaces around the value', (t) => `  Bearer ${t}  `, 200],
    ['a trailing tab', (t) => `Bearer ${t}\t`, 200],
    ['a tab after the scheme', (t) => `Bearer\t${t}`, 401],
    ['a space and a tab after the scheme', (t) => `Bearer \t${t}`, 401],
    ['no separator', (t) => `Bearer${t}`, 401],
    ['a colon separator', (t) => `Bearer:${t}`, 401],
    ['the token without a scheme', (t) => t, 401],
    ['the scheme alone', () => 'Bearer', 401],
    ['the scheme and spaces', () => 'Bearer    ', 401],
    ['an empty value', () => '', 401],
    ['the scheme Basic', () => `Basic ${btoa('client:secret')}`, 401],
    ['the token under Basic', (t) => `Basic ${t}`, 401],
    ['the scheme DPoP', (t) => `DPoP ${t}`, 401],
    ['the scheme Token', (t) => `Token ${t}`, 401],
    ['the scheme JWT', (t) => `JWT ${t}`, 401],
    ['a scheme with a prefix', (t) => `XBearer ${t}`, 401],
    ['two tokens', (t) => `Bearer ${t} ${t}`, 401],
    ['two credentials', (t) => `Bearer ${t}, Bearer ${t}`, 401],
    ['an auth-param after the token', (t) => `Bearer ${t}, realm="api"`, 401],
    ['an extra part', (t) => `Bearer ${t} extra`, 401],
    ['a quoted token', (t) => `Bearer "${t}"`, 401],
    ['a token split by a space', (t) => `Bearer ${t.slice(0, 40)} ${t.slice(40)}`, 401],
  ]

  const headers = rows.map(([name, header, status]) => ({ name, header, status }))

  it.each(headers)('with $name returns $status', async ({ header, status }) => {
    const fixture = await seedClient()

    const response = await patch(fixture, { authorization: header(await ownerToken(fixture)) })

    if (status === 200) await expectRotated(response, fixture)
    else await expectRejected(response, fixture)
  })

  it('is rejected when sent twice', async () => {
    const fixture = await seedClient()
    const token = await ownerToken(fixture)
    const headers = new Headers()
    headers.append('authorization', `Bearer ${token}`)
    headers.append('authorization', `Bearer ${token}`)

    await expectRejected(await patch(fixture, headers), fixture)
  })

  it('is the only place a token is read from', async () => {
    const fixture = await seedClient()
    const token = await ownerToken(fixture)

    const inQuery = await patch(fixture, {}, workerEnv, `?access_token=${token}`)
    await expectRejected(inQuery, fixture)

    const url = `${BASE_URL}/admin/clients/${fixture.clientId}/refresh_secret`
    const inBody = await callWorker(
      new Request(url, {
        method: 'PATCH',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `access_token=${token}`,
      }),
      workerEnv,
    )
    await expectRejected(inBody, fixture)
  })
})

describe('token segments', () => {
  const bytes = (...values: number[]) => new Uint8Array(values)
  const header = (k: SigningKey) => ({ alg: 'ES256', kid: k.kid, typ: 'at+jwt' })

  /** Each row builds a token from the owner's valid claims; every one must get 401. */
  const forms: [name: string, build: (claims: Record<string, unknown>) => Promise<string>][] = [
    ['two segments', async (c) => (await signCompact(key, header(key), c)).replace(/\.[^.]*$/, '')],
    ['four segments', async (c) => `${await signCompact(key, header(key), c)}.AAAA`],
    ['five segments, as a JWE has', async () => 'eyJhbGciOiJkaXIifQ.AA.AA.AA.AA'],
    ['three empty segments', async () => '..'],
    ['one segment', async () => toBase64url(new Uint8Array(16))],
    ['b64token characters outside Base64url', async () => 'ab~c.de+f.gh/i'],
    [
      'an empty header',
      async (c) => (await signCompact(key, header(key), c)).replace(/^[^.]*/, ''),
    ],
    [
      'an empty signature',
      async (c) => (await signCompact(key, header(key), c)).replace(/[^.]*$/, ''),
    ],
    ['padding after the signature', async (c) => `${await signCompact(key, header(key), c)}==`],
    ['one padding character', async (c) => `${await signCompact(key, header(key), c)}=`],
    ['a header in standard Base64', (c) => withStandardBase64Header(c)],
    ['a header of bytes that are not UTF-8', (c) => signCompact(key, bytes(0xff, 0xfe, 0x7b), c)],
    ['a header that is not JSON', (c) => signCompact(key, '{"alg":"ES256"', c)],
    ['a header that is a JSON array', (c) => signCompact(key, '["ES256"]', c)],
    ['a header that is a JSON string', (c) => signCompact(key, '"ES256"', c)],
    ['a header that is JSON null', (c) => signCompact(key, 'null', c)],
    [
      'a payload of bytes that are not UTF-8',
      () => signCompact(key, header(key), bytes(0xc3, 0x28)),
    ],
    ['a payload that is not JSON', () => signCompact(key, header(key), 'sub=owner')],
    ['a payload that is a JSON array', (c) => signCompact(key, header(key), [c])],
    ['a payload that is a JSON string', () => signCompact(key, header(key), '"owner"')],
    ['a payload that is a JSON number', () => signCompact(key, header(key), '42')],
    ['a payload that is JSON null', () => signCompact(key, header(key), 'null')],
    ['a payload that is JSON true', () => signCompact(key, header(key), 'true')],
    [
      'a payload of JSON text with trailing garbage',
      (c) => signCompact(key, header(key), `${JSON.stringify(c)}x`),
    ],
    ['a signature of another token', async (c) => swapSignature(c)],
    [
      'a signature that is not Base64url',
      async (c) => `${(await signCompact(key, header(key), c)).replace(/[^.]*$/, '')}!!!!`,
    ],
  ]

  /**
   * Signs a token whose header contains `?` and `>` characters, then re-encodes the header in
   * standard Base64, whose `+` and `/` Base64url does not use. The filler moves the characters
   * across the three byte alignments until one of them shows.
   */
  async function withStandardBase64Header(claims: Record<string, unknown>): Promise<string> {
    for (let filler = 0; filler < 3; filler++) {
      const fields = { ...header(key), x: `${'-'.repeat(filler)}???>>>` }
      const standard = btoa(JSON.stringify(fields)).replace(/=+$/, '')
      if (!/[+/]/.test(standard)) continue

      const [, payload, signature] = (await signCompact(key, fields, claims)).split('.')
      return `${standard}.${payload}.${signature}`
    }
    throw new Error('no header alignment produced + or / in standard Base64')
  }

  async function swapSignature(claims: Record<string, unknown>): Promise<string> {
    const token = await signCompact(key, header(key), claims)
    const other = await signCompact(key, header(key), { ...claims, scope: 'openid' })
    return `${token.replace(/[^.]*$/, '')}${other.split('.')[2]}`
  }

  it('accept the unaltered valid form', async () => {
    const fixture = await seedClient()
    const token = await signCompact(
      key,
      header(key),
      validClaims(fixture.ownerId, fixture.clientId),
    )

    await expectRotated(await patch(fixture, { authorization: `Bearer ${token}` }), fixture)
  })

  it.each(forms)('with %s get 401', async (_name, build) => {
    const fixture = await seedClient()
    const token = await build(validClaims(fixture.ownerId, fixture.clientId))

    await expectRejected(await patch(fixture, { authorization: `Bearer ${token}` }), fixture)
  })
})

describe('token size', () => {
  /**
   * Signs a valid token of exactly `length` characters. A claim pads the payload; because
   * Base64url lengths skip one residue mod 4, a header parameter shifts the total when needed.
   */
  async function tokenOfLength(fixture: Fixture, length: number): Promise<string> {
    const claims = validClaims(fixture.ownerId, fixture.clientId)
    for (let shift = 0; shift < 4; shift++) {
      const header = { alg: 'ES256', kid: key.kid, typ: 'at+jwt', x: 'x'.repeat(shift) }
      const base = (await signCompact(key, header, { ...claims, pad: '' })).length
      const estimate = Math.max(0, Math.floor(((length - base) * 3) / 4))
      for (let padding = Math.max(0, estimate - 3); padding <= estimate + 3; padding++) {
        const token = await signCompact(key, header, { ...claims, pad: 'p'.repeat(padding) })
        if (token.length === length) return token
      }
    }
    throw new Error(`no token of exactly ${length} characters could be built`)
  }

  function remoteEnv(url: string): Env {
    return createEnv([key], { JWKS: undefined, JWKS_URL: url, ROTATION_RATE_LIMIT: '0' })
  }

  function serveKeySet(url: string): string[] {
    return interceptFetch({ [url]: () => new Response(keySetJson([key])) })
  }

  it('accepts a token of exactly MAX_TOKEN_LENGTH characters', async () => {
    const fixture = await seedClient()
    const token = await tokenOfLength(fixture, MAX_TOKEN_LENGTH)

    expect(token).toHaveLength(MAX_TOKEN_LENGTH)
    await expectRotated(await patch(fixture, { authorization: `Bearer ${token}` }), fixture)
  })

  it.each([
    ['one character over the limit', MAX_TOKEN_LENGTH + 1],
    ['16 characters over the limit', MAX_TOKEN_LENGTH + 16],
    ['17 characters over the limit', MAX_TOKEN_LENGTH + 17],
    ['64 KiB', 64 * 1024],
    ['1 MiB', 1024 * 1024],
  ])('rejects a signed token %s without fetching the key set', async (name, length) => {
    const url = `https://jwks.test/size-${name.replace(/\W+/g, '-')}/keys`
    const fetched = serveKeySet(url)
    const fixture = await seedClient()
    const token = await tokenOfLength(fixture, length)

    const response = await patch(fixture, { authorization: `Bearer ${token}` }, remoteEnv(url))

    await expectRejected(response, fixture)
    expect(fetched).toEqual([])
  })

  it('fetches the key set for the next token within the limit', async () => {
    const url = 'https://jwks.test/size-control/keys'
    const fetched = serveKeySet(url)
    const fixture = await seedClient()
    const oversized = await tokenOfLength(fixture, MAX_TOKEN_LENGTH + 1)
    const workerEnv = remoteEnv(url)

    const rejected = await patch(fixture, { authorization: `Bearer ${oversized}` }, workerEnv)
    const accepted = await patch(
      fixture,
      { authorization: `Bearer ${await ownerToken(fixture)}` },
      workerEnv,
    )
    await rejected.body?.cancel()

    expect(rejected.status).toBe(401)
    expect(fetched).toEqual([url])
    await expectRotated(accepted, fixture)
  })

  it('rejects a long header value that is no token without reading it', async () => {
    const fixture = await seedClient()
    const value = `Bearer ${'a.'.repeat(512 * 1024)}a`

    await expectRejected(await patch(fixture, { authorization: value }), fixture)
  })
})
