// Hostile paths, methods, CORS preflights and bodies, each sent with a valid token of the
// client's owner so that only the hostile part decides the response.

import { env } from 'cloudflare:workers'
import { beforeAll, describe, expect, it } from 'vitest'
import { MAX_BODY_BYTES } from '../../src/body'
import type { Env } from '../../src/config'
import {
  BASE_URL,
  callWorker,
  createEnv,
  createSigningKey,
  expectErrorResponse,
  type Fixture,
  listEvents,
  listRotations,
  readClient,
  type SigningKey,
  seedClient,
  signToken,
} from './helpers'

let key: SigningKey
let workerEnv: Env

beforeAll(async () => {
  key = await createSigningKey('ES256')
  workerEnv = createEnv([key], { ROTATION_RATE_LIMIT: '0' })
})

function ownerToken(fixture: Fixture, claims: Record<string, unknown> = {}): Promise<string> {
  return signToken(key, { sub: fixture.ownerId, client_id: fixture.clientId, ...claims })
}

async function expectNothingWritten(fixture: Fixture): Promise<void> {
  expect(await readClient(fixture.clientId)).toEqual(fixture.row)
  expect(await listEvents(fixture.clientId)).toEqual([])
}

/** The eHealth error type of each status in the tables below. */
const ERROR_TYPES: Record<number, string> = {
  400: 'request_malformed',
  401: 'access_denied',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  413: 'request_too_large',
  415: 'content_type_invalid',
  422: 'validation_failed',
}

/** Checks a table row: one rotation for 200, else the error envelope and nothing written. */
async function expectRow(response: Response, fixture: Fixture, status: number): Promise<void> {
  if (status === 200) {
    await response.body?.cancel()
    expect(response.status).toBe(200)
    expect(await listRotations(fixture.clientId)).toHaveLength(1)
    return
  }
  await expectErrorResponse(response, status, ERROR_TYPES[status] as string)
  expect(await readClient(fixture.clientId)).toEqual(fixture.row)
  expect(await listRotations(fixture.clientId)).toEqual([])
}

describe('paths', () => {
  const sql = [
    "' OR '1'='1",
    '1; DROP TABLE clients; --',
    '" OR ""="',
    "') UNION SELECT secret_hash FROM clients --",
  ]

  // URL parsing removes dot segments and decodes unreserved characters before routing
  // (RFC 3986 section 6.2.2), so those spellings reach the route.
  const rows: [name: string, path: (id: string) => string, status: number][] = [
    ['the route', (id) => `/admin/clients/${id}/refresh_secret`, 200],
    ['a trailing slash', (id) => `/admin/clients/${id}/refresh_secret/`, 404],
    ['a doubled leading slash', (id) => `//admin/clients/${id}/refresh_secret`, 404],
    ['a doubled inner slash', (id) => `/admin//clients/${id}/refresh_secret`, 404],
    ['a doubled slash before the action', (id) => `/admin/clients/${id}//refresh_secret`, 404],
    ['an encoded slash before the action', (id) => `/admin/clients/${id}%2Frefresh_secret`, 404],
    [
      'an encoded slash in the id',
      (id) => `/admin/clients/${id.replace('-', '%2F')}/refresh_secret`,
      422,
    ],
    ['a backslash before the action', (id) => `/admin/clients/${id}%5Crefresh_secret`, 404],
    ['the path in upper case', (id) => `/ADMIN/CLIENTS/${id}/REFRESH_SECRET`, 404],
    ['a matrix parameter', (id) => `/admin/clients/${id}/refresh_secret;v=1`, 404],
    ['a dot segment', (id) => `/admin/clients/${id}/./refresh_secret`, 200],
    ['an encoded dot segment', (id) => `/admin/clients/${id}/%2e/refresh_secret`, 200],
    ['a parent segment', (id) => `/admin/clients/other/../${id}/refresh_secret`, 200],
    ['an encoded underscore', (id) => `/admin/clients/${id}/refresh%5Fsecret`, 200],
    [
      'an encoded id character',
      (id) => `/admin/clients/%${id.charCodeAt(0).toString(16)}${id.slice(1)}/refresh_secret`,
      200,
    ],
    ['invalid percent-encoding in the id', () => '/admin/clients/%ZZ/refresh_secret', 422],
    ['a lone percent sign as the id', () => '/admin/clients/%/refresh_secret', 422],
    ['a truncated escape in the id', () => '/admin/clients/%E0%A4%A/refresh_secret', 422],
    ['an overlong UTF-8 slash in the id', () => '/admin/clients/%C0%AF/refresh_secret', 422],
    ['an encoded NUL after the id', (id) => `/admin/clients/${id}%00/refresh_secret`, 422],
    ['a lone percent sign after the action', (id) => `/admin/clients/${id}/refresh_secret%`, 404],
    [
      'an id of 10,000 characters',
      () => `/admin/clients/${'a'.repeat(10_000)}/refresh_secret`,
      422,
    ],
    [
      'an id of 100,000 characters',
      () => `/admin/clients/${'9'.repeat(100_000)}/refresh_secret`,
      422,
    ],
    ['the id twice', (id) => `/admin/clients/${id}${id}/refresh_secret`, 422],
    ...sql.map((text): [string, (id: string) => string, number] => [
      `the SQL-like id ${text}`,
      () => `/admin/clients/${encodeURIComponent(text)}/refresh_secret`,
      422,
    ]),
    ...sql.map((text): [string, (id: string) => string, number] => [
      `the id followed by ${text}`,
      (id) => `/admin/clients/${id}${encodeURIComponent(text)}/refresh_secret`,
      422,
    ]),
  ]

  it.each(rows.map(([name, path, status]) => ({ name, path, status })))(
    'with $name return $status',
    async ({ path, status }) => {
      const fixture = await seedClient()
      const request = new Request(`${BASE_URL}${path(fixture.clientId)}`, {
        method: 'PATCH',
        headers: { authorization: `Bearer ${await ownerToken(fixture)}` },
      })

      const response = await callWorker(request, workerEnv)
      if (status === 422) {
        const body = await response.clone().json<{ error: { invalid?: { entry: string }[] } }>()
        expect(body.error.invalid?.map((entry) => entry.entry)).toEqual(['$.id'])
      }

      await expectRow(response, fixture, status)
      const tables = await env.DB.prepare(
        "SELECT count(*) AS count FROM sqlite_master WHERE type = 'table' AND name = 'clients'",
      ).first<{ count: number }>()
      expect(tables?.count).toBe(1)
    },
  )
})

describe('methods', () => {
  // GET, POST, PUT, DELETE and HEAD are covered with the other request errors. workerd
  // upper-cases method names in the Request it builds, so `patch` reaches the route, and it
  // refuses to build a Request with a method it does not know, such as LINK.
  const rows: [method: string, status: number][] = [
    ['OPTIONS', 405],
    ['PROPFIND', 405],
    ['QUERY', 405],
    ['PURGE', 405],
    ['MKCOL', 405],
    ['COPY', 405],
    ['SEARCH', 405],
    ['patch', 200],
    ['Patch', 200],
  ]

  it.each(rows)('%s returns %i', async (method, status) => {
    const fixture = await seedClient()
    const request = new Request(`${BASE_URL}/admin/clients/${fixture.clientId}/refresh_secret`, {
      method,
      headers: { authorization: `Bearer ${await ownerToken(fixture)}` },
    })

    const response = await callWorker(request, workerEnv)
    if (status === 405) expect(response.headers.get('Allow')).toBe('PATCH')

    await expectRow(response, fixture, status)
  })
})

describe('CORS', () => {
  const ALLOWED = 'https://cabinet.test'
  let corsEnv: Env

  beforeAll(() => {
    corsEnv = createEnv([key], {
      CORS_ORIGINS: `${ALLOWED},https://admin.test`,
      ROTATION_RATE_LIMIT: '0',
    })
  })

  function preflight(fixture: Fixture, origin: string | undefined, on: Env): Promise<Response> {
    const headers: Record<string, string> = {
      'access-control-request-method': 'PATCH',
      'access-control-request-headers': 'authorization, content-type, idempotency-key',
    }
    if (origin !== undefined) headers.origin = origin
    const url = `${BASE_URL}/admin/clients/${fixture.clientId}/refresh_secret`
    return callWorker(new Request(url, { method: 'OPTIONS', headers }), on)
  }

  function corsHeaders(response: Response): string[] {
    return [...response.headers.keys()].filter((name) => name.startsWith('access-control-'))
  }

  it('answers a preflight from an allowed origin', async () => {
    const fixture = await seedClient()

    const response = await preflight(fixture, ALLOWED, corsEnv)
    const allowedHeaders = (
      response.headers.get('Access-Control-Allow-Headers') ?? ''
    ).toLowerCase()

    expect(response.status).toBe(204)
    expect(response.headers.get('Access-Control-Allow-Origin')).toBe(ALLOWED)
    expect(response.headers.get('Access-Control-Allow-Methods')).toBe('PATCH')
    expect(allowedHeaders.split(',').map((name) => name.trim())).toEqual(
      expect.arrayContaining(['authorization', 'content-type', 'idempotency-key']),
    )
    expect(response.headers.get('Access-Control-Max-Age')).toBe('600')
    expect(response.headers.get('Access-Control-Allow-Credentials')).toBeNull()
    expect(response.headers.get('Vary')).toMatch(/origin/i)
    await expectNothingWritten(fixture)
  })

  it.each([
    ['another origin', 'https://attacker.test'],
    ['the null origin', 'null'],
    ['an allowed origin as a prefix', 'https://cabinet.test.attacker.test'],
    ['an allowed origin over http', 'http://cabinet.test'],
    ['an allowed origin in upper case', 'https://CABINET.test'],
    ['an allowed origin with a port', 'https://cabinet.test:8443'],
    ['an allowed origin with a path', 'https://cabinet.test/'],
    ['no origin', undefined],
  ])('gives %s no CORS headers and 405', async (_name, origin) => {
    const fixture = await seedClient()

    const response = await preflight(fixture, origin, corsEnv)
    await expectErrorResponse(response, 405, 'method_not_allowed')

    expect(corsHeaders(response)).toEqual([])
    await expectNothingWritten(fixture)
  })

  it('gives no CORS headers when CORS_ORIGINS is unset', async () => {
    const fixture = await seedClient()

    const response = await preflight(fixture, ALLOWED, workerEnv)
    await expectErrorResponse(response, 405, 'method_not_allowed')

    expect(corsHeaders(response)).toEqual([])
  })

  it('exposes headers to an allowed origin on success and on error', async () => {
    const fixture = await seedClient()
    const url = `${BASE_URL}/admin/clients/${fixture.clientId}/refresh_secret`
    const token = await ownerToken(fixture)

    const ok = await callWorker(
      new Request(url, {
        method: 'PATCH',
        headers: { origin: ALLOWED, authorization: `Bearer ${token}` },
      }),
      corsEnv,
    )
    const denied = await callWorker(
      new Request(url, { method: 'PATCH', headers: { origin: ALLOWED } }),
      corsEnv,
    )
    await ok.body?.cancel()
    await denied.body?.cancel()

    for (const response of [ok, denied]) {
      expect(response.headers.get('Access-Control-Allow-Origin')).toBe(ALLOWED)
      expect(response.headers.get('Access-Control-Expose-Headers')).toMatch(/x-request-id/i)
    }
    expect(ok.status).toBe(200)
    expect(denied.status).toBe(401)
  })

  it('answers another origin without CORS headers, as for any non-browser caller', async () => {
    const fixture = await seedClient()
    const url = `${BASE_URL}/admin/clients/${fixture.clientId}/refresh_secret`
    const headers = {
      origin: 'https://attacker.test',
      authorization: `Bearer ${await ownerToken(fixture)}`,
    }

    const response = await callWorker(new Request(url, { method: 'PATCH', headers }), corsEnv)
    await response.body?.cancel()

    expect(response.status).toBe(200)
    expect(corsHeaders(response)).toEqual([])
  })
})

describe('bodies', () => {
  const over = MAX_BODY_BYTES + 4_096

  function stream(text: string, chunkBytes = 1_024): ReadableStream<Uint8Array> {
    const bytes = new TextEncoder().encode(text)
    let offset = 0
    return new ReadableStream({
      pull(controller) {
        if (offset >= bytes.length) {
          controller.close()
          return
        }
        controller.enqueue(bytes.slice(offset, offset + chunkBytes))
        offset += chunkBytes
      },
    })
  }

  const json = { 'content-type': 'application/json' }

  interface BodyRow {
    headers: Record<string, string>
    body: () => BodyInit | undefined
    status: number
  }

  const rows: [string, BodyRow][] = [
    ['an empty body with a JSON type', { headers: json, body: () => '', status: 200 }],
    [
      'an empty body with Content-Length 0',
      { headers: { ...json, 'content-length': '0' }, body: () => '', status: 200 },
    ],
    ['white space with a JSON type', { headers: json, body: () => ' \r\n\t ', status: 200 }],
    ['a byte order mark before an object', { headers: json, body: () => '\uFEFF{}', status: 200 }],
    [
      'an object in 1-byte chunks',
      { headers: json, body: () => stream('{"revoke_previous":true}', 1), status: 200 },
    ],
    [
      'an object with a non-numeric Content-Length',
      { headers: { ...json, 'content-length': 'abc' }, body: () => '{}', status: 200 },
    ],
    ['truncated JSON', { headers: json, body: () => '{"revoke_previous":', status: 400 }],
    [
      'JSON with a trailing comma',
      { headers: json, body: () => '{"revoke_previous":true,}', status: 400 },
    ],
    ['two JSON objects', { headers: json, body: () => '{}{}', status: 400 }],
    [
      'NaN as a value',
      { headers: json, body: () => '{"previous_secret_expires_in":NaN}', status: 400 },
    ],
    ['single quotes', { headers: json, body: () => "{'revoke_previous':true}", status: 400 }],
    [
      'an object as text/plain',
      { headers: { 'content-type': 'text/plain' }, body: () => '{}', status: 415 },
    ],
    [
      'an object as a form',
      {
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: () => 'revoke_previous=true',
        status: 415,
      },
    ],
    [
      'an object as multipart',
      {
        headers: { 'content-type': 'multipart/form-data; boundary=x' },
        body: () => '--x--',
        status: 415,
      },
    ],
    [
      'an object as application/jsonx',
      { headers: { 'content-type': 'application/jsonx' }, body: () => '{}', status: 415 },
    ],
    [
      'an object as text/json',
      { headers: { 'content-type': 'text/json' }, body: () => '{}', status: 415 },
    ],
    [
      'an object as application/json-seq',
      { headers: { 'content-type': 'application/json-seq' }, body: () => '{}', status: 415 },
    ],
    [
      'a __proto__ member',
      { headers: json, body: () => '{"__proto__":{"revoke_previous":true}}', status: 422 },
    ],
    [
      'a duplicated member whose last value is invalid',
      {
        headers: json,
        body: () => '{"revoke_previous":true,"revoke_previous":"yes"}',
        status: 422,
      },
    ],
    [
      'an object nested 2,500 levels deep',
      { headers: json, body: () => `${'{"a":'.repeat(2_500)}{}${'}'.repeat(2_500)}`, status: 422 },
    ],
    [
      'a multibyte character across the limit',
      { headers: json, body: () => `{}${' '.repeat(MAX_BODY_BYTES - 3)}é`, status: 413 },
    ],
    [
      'a body over the limit under a short Content-Length',
      {
        headers: { ...json, 'content-length': '2' },
        body: () => `{}${' '.repeat(over)}`,
        status: 413,
      },
    ],
    [
      'a stream over the limit under a short Content-Length',
      {
        headers: { ...json, 'content-length': '2' },
        body: () => stream(`{}${' '.repeat(over)}`),
        status: 413,
      },
    ],
    [
      'a chunked stream over the limit',
      {
        headers: { ...json, 'transfer-encoding': 'chunked' },
        body: () => stream(`{}${' '.repeat(over)}`),
        status: 413,
      },
    ],
    [
      'a Content-Length over the limit and a small body',
      {
        headers: { ...json, 'content-length': String(MAX_BODY_BYTES + 1) },
        body: () => '{}',
        status: 413,
      },
    ],
    [
      'a Content-Length of a gigabyte and no body',
      { headers: { ...json, 'content-length': '1000000000' }, body: () => undefined, status: 413 },
    ],
  ]

  it.each(rows.map(([name, row]) => ({ name, ...row })))(
    'with $name return $status',
    async ({ headers, body, status }) => {
      const fixture = await seedClient()
      const request = new Request(`${BASE_URL}/admin/clients/${fixture.clientId}/refresh_secret`, {
        method: 'PATCH',
        headers: { ...headers, authorization: `Bearer ${await ownerToken(fixture)}` },
        body: body(),
      })

      await expectRow(await callWorker(request, workerEnv), fixture, status)
    },
  )

  it.each([
    ['without a token', 401, {}],
    ['with a token that lacks the scope', 403, { scope: 'openid' }],
  ] as [string, number, Record<string, unknown>][])(
    'reject a 1 MiB body %s before reading it',
    async (name, status, claims) => {
      const fixture = await seedClient()
      const headers: Record<string, string> = { 'content-type': 'application/json' }
      if (name !== 'without a token')
        headers.authorization = `Bearer ${await ownerToken(fixture, claims)}`
      let pulled = 0
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          pulled += 1
          if (pulled > 64) controller.close()
          else controller.enqueue(new Uint8Array(16 * 1024).fill(0x20))
        },
      })
      const request = new Request(`${BASE_URL}/admin/clients/${fixture.clientId}/refresh_secret`, {
        method: 'PATCH',
        headers,
        body,
      })

      await expectRow(await callWorker(request, workerEnv), fixture, status)
      // A stream pulls ahead of its reader once; reading the body would pull all 65 chunks.
      expect(pulled).toBeLessThanOrEqual(2)
    },
  )
})
