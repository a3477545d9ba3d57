import { env } from 'cloudflare:workers'
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import type { Env } from '../../src/config'
import { verifySecret } from '../../src/secret'
import {
  BASE_URL,
  callWorker,
  captureConsole,
  createEnv,
  createSigningKey,
  dumpDatabase,
  expectErrorResponse,
  type Fixture,
  listEvents,
  listRotations,
  PEPPER,
  PEPPER_KEY,
  type RefreshOptions,
  readClient,
  readData,
  readError,
  refreshRequest,
  type SeedOptions,
  type Settings,
  type SigningKey,
  seedClient,
  signToken,
} from './helpers'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const INVALID_TOKEN = 'Bearer error="invalid_token"'
const INSUFFICIENT_SCOPE = 'Bearer error="insufficient_scope", scope="secret:refresh"'

let key: SigningKey
let stranger: SigningKey
let workerEnv: Env
let output: ReturnType<typeof captureConsole>

beforeAll(async () => {
  key = await createSigningKey('ES256')
  stranger = await createSigningKey('ES256')
  workerEnv = createEnv([key])
})

beforeEach(() => {
  output = captureConsole()
})

afterEach(() => {
  vi.restoreAllMocks()
})

/** Signs a token for `sub` and `client_id`, with the scope `secret:refresh` unless overridden. */
function tokenFor(sub: string, clientId: string, claims: Record<string, unknown> = {}) {
  return signToken(key, { sub, client_id: clientId, ...claims })
}

function ownerToken(fixture: Fixture): Promise<string> {
  return tokenFor(fixture.ownerId, fixture.clientId)
}

function refresh(clientId: string, options: RefreshOptions = {}, on: Env = workerEnv) {
  return callWorker(refreshRequest(clientId, options), on)
}

/** Returns the `outcome` field of the Worker's request log line. */
function loggedOutcome(): unknown {
  return output.records().find((record) => record.message === 'request')?.outcome
}

/** Checks that the client row is as seeded and that no audit row of any kind exists. */
async function expectNothingWritten(fixture: Fixture): Promise<void> {
  expect(await readClient(fixture.clientId)).toEqual(fixture.row)
  expect(await listEvents(fixture.clientId)).toEqual([])
}

/** Checks that the client row is as seeded and that no rotation was audited. */
async function expectNotRotated(fixture: Fixture): Promise<void> {
  expect(await readClient(fixture.clientId)).toEqual(fixture.row)
  expect(await listRotations(fixture.clientId)).toEqual([])
}

describe('authorization order', () => {
  it('checks the token first', async () => {
    const fixture = await seedClient({ clientBlocked: true })
    const token = await signToken(stranger, {
      sub: fixture.blockedUserId,
      client_id: crypto.randomUUID(),
      scope: 'openid',
    })

    const response = await refresh(fixture.clientId, { token })
    await expectErrorResponse(response, 401, 'access_denied')

    expect(response.headers.get('WWW-Authenticate')).toBe(INVALID_TOKEN)
    await expectNothingWritten(fixture)
  })

  it('checks the token before the path', async () => {
    const response = await refresh('not-a-uuid')
    await expectErrorResponse(response, 401, 'access_denied')

    expect(response.headers.get('WWW-Authenticate')).toBe(INVALID_TOKEN)
  })

  it('checks the scope second', async () => {
    const fixture = await seedClient({ clientBlocked: true })
    const token = await tokenFor(fixture.blockedUserId, crypto.randomUUID(), {
      scope: 'openid secret:refresh_all',
    })

    const response = await refresh(fixture.clientId, { token })
    const body = await expectErrorResponse(response, 403, 'forbidden')

    expect(response.headers.get('WWW-Authenticate')).toBe(INSUFFICIENT_SCOPE)
    expect(body.error.message).toContain('secret:refresh')
    await expectNotRotated(fixture)
  })

  it('checks the scope before the path', async () => {
    const token = await tokenFor(crypto.randomUUID(), 'not-a-uuid', { scope: 'openid' })

    const response = await refresh('not-a-uuid', { token })
    await expectErrorResponse(response, 403, 'forbidden')

    expect(response.headers.get('WWW-Authenticate')).toBe(INSUFFICIENT_SCOPE)
  })

  it.each([
    'not-a-uuid',
    '12345',
    'a3f1c2d45b6e4f708a91b2c3d4e5f607',
    'a3f1c2d4-5b6e-4f70-8a91-b2c3d4e5f607x',
    'g3f1c2d4-5b6e-4f70-8a91-b2c3d4e5f607',
  ])('checks that the id %s is a UUID third', async (id) => {
    const token = await tokenFor(crypto.randomUUID(), id)

    const response = await refresh(id, { token })
    const body = await expectErrorResponse(response, 422, 'validation_failed')

    expect(body.error.invalid?.[0]?.entry_type).toBe('path_parameter')
    expect(body.error.invalid?.[0]?.entry).toBe('$.id')
  })

  it('checks the token client fourth', async () => {
    const fixture = await seedClient()
    const token = await ownerToken(fixture)

    const response = await refresh(crypto.randomUUID(), { token })
    await expectErrorResponse(response, 403, 'forbidden')

    expect(loggedOutcome()).toBe('client_mismatch')
  })

  it('rejects a token of another client', async () => {
    const own = await seedClient()
    const other = await seedClient()
    const token = await ownerToken(own)

    const response = await refresh(other.clientId, { token })
    await expectErrorResponse(response, 403, 'forbidden')

    await expectNotRotated(other)
    await expectNotRotated(own)
  })

  it('checks the client exists fifth', async () => {
    const clientId = crypto.randomUUID()
    const token = await tokenFor(crypto.randomUUID(), clientId)

    const response = await refresh(clientId, { token })

    await expectErrorResponse(response, 404, 'not_found')
  })

  it('checks the user sixth', async () => {
    const fixture = await seedClient({ clientBlocked: true })
    const token = await tokenFor(fixture.blockedUserId, fixture.clientId)

    const response = await refresh(fixture.clientId, { token })
    await expectErrorResponse(response, 401, 'access_denied')

    expect(response.headers.get('WWW-Authenticate')).toBe(INVALID_TOKEN)
    await expectNotRotated(fixture)
  })

  it('checks the role seventh', async () => {
    const fixture = await seedClient({ clientBlocked: true })
    const token = await tokenFor(fixture.nonOwnerId, fixture.clientId)

    const response = await refresh(fixture.clientId, { token })
    await expectErrorResponse(response, 403, 'forbidden')

    expect(loggedOutcome()).toBe('role_missing')
    await expectNotRotated(fixture)
  })

  it('checks the client block last', async () => {
    const fixture = await seedClient({ clientBlocked: true })

    const response = await refresh(fixture.clientId, { token: await ownerToken(fixture) })
    const body = await expectErrorResponse(response, 403, 'forbidden')

    expect(body.error.message).toMatch(/blocked/i)
    expect(loggedOutcome()).toBe('client_blocked')
    await expectNotRotated(fixture)
  })
})

describe('denials', () => {
  it.each([
    ['no Authorization header', {}],
    ['another scheme', { headers: { authorization: 'Basic dXNlcjpwYXNz' } }],
    ['a token that is no JWT', { token: 'not-a-jwt' }],
  ])('rejects %s', async (_name, options: RefreshOptions) => {
    const fixture = await seedClient()

    const response = await refresh(fixture.clientId, options)
    await expectErrorResponse(response, 401, 'access_denied')

    expect(response.headers.get('WWW-Authenticate')).toBe(INVALID_TOKEN)
    await expectNothingWritten(fixture)
  })

  it('rejects an expired token', async () => {
    const fixture = await seedClient()
    const past = Math.floor(Date.now() / 1000) - 3600
    const token = await tokenFor(fixture.ownerId, fixture.clientId, { iat: past, exp: past + 60 })

    const response = await refresh(fixture.clientId, { token })
    await expectErrorResponse(response, 401, 'access_denied')

    expect(response.headers.get('WWW-Authenticate')).toBe(INVALID_TOKEN)
    await expectNothingWritten(fixture)
  })

  interface Denial {
    seed?: SeedOptions
    /** Returns the user and the client of the token; the path names the same client. */
    caller: (fixture: Fixture) => { userId: string; clientId: string }
    claims?: Record<string, unknown>
    status: number
    type: string
    challenge: string | null
    outcome: string
  }

  const denials: [string, Denial][] = [
    [
      'a token without scopes',
      {
        caller: (f) => ({ userId: f.ownerId, clientId: f.clientId }),
        claims: { scope: undefined },
        status: 403,
        type: 'forbidden',
        challenge: INSUFFICIENT_SCOPE,
        outcome: 'scope_missing',
      },
    ],
    [
      'a blocked user',
      {
        caller: (f) => ({ userId: f.blockedUserId, clientId: f.clientId }),
        status: 401,
        type: 'access_denied',
        challenge: INVALID_TOKEN,
        outcome: 'user_missing_or_blocked',
      },
    ],
    [
      'a missing user',
      {
        caller: (f) => ({ userId: crypto.randomUUID(), clientId: f.clientId }),
        status: 401,
        type: 'access_denied',
        challenge: INVALID_TOKEN,
        outcome: 'user_missing_or_blocked',
      },
    ],
    [
      'a role without the scope',
      {
        caller: (f) => ({ userId: f.nonOwnerId, clientId: f.clientId }),
        status: 403,
        type: 'forbidden',
        challenge: null,
        outcome: 'role_missing',
      },
    ],
    [
      'an owner role without a scope',
      {
        seed: { ownerScope: null },
        caller: (f) => ({ userId: f.ownerId, clientId: f.clientId }),
        status: 403,
        type: 'forbidden',
        challenge: null,
        outcome: 'role_missing',
      },
    ],
    [
      'a blocked client',
      {
        seed: { clientBlocked: true },
        caller: (f) => ({ userId: f.ownerId, clientId: f.clientId }),
        status: 403,
        type: 'forbidden',
        challenge: null,
        outcome: 'client_blocked',
      },
    ],
  ]

  it.each(denials)('rejects %s', async (_name, denial) => {
    const fixture = await seedClient(denial.seed)
    const { userId, clientId } = denial.caller(fixture)
    const token = await tokenFor(userId, clientId, denial.claims)

    const response = await refresh(clientId, { token })
    await expectErrorResponse(response, denial.status, denial.type)

    expect(response.headers.get('WWW-Authenticate')).toBe(denial.challenge)
    expect(loggedOutcome()).toBe(denial.outcome)
    await expectNotRotated(fixture)
  })

  it('rejects an owner of another client', async () => {
    const own = await seedClient()
    const other = await seedClient()
    const token = await tokenFor(own.ownerId, other.clientId)

    const response = await refresh(other.clientId, { token })
    await expectErrorResponse(response, 403, 'forbidden')

    expect(loggedOutcome()).toBe('role_missing')
    await expectNotRotated(other)
    await expectNotRotated(own)
  })

  it('rejects an unknown client', async () => {
    const fixture = await seedClient()
    const clientId = crypto.randomUUID()
    const token = await tokenFor(fixture.ownerId, clientId)

    const response = await refresh(clientId, { token })
    await expectErrorResponse(response, 404, 'not_found')

    expect(await readClient(clientId)).toBeNull()
    expect(await listEvents(clientId)).toEqual([])
  })
})

describe('rotation', () => {
  const requestId = 'req-2025.03:01_A'
  const ip = '203.0.113.7'
  const userAgent = 'ClinicApp/2.1 (MIS)'

  async function rotateOnce(fixture: Fixture, on: Env = workerEnv) {
    const token = await ownerToken(fixture)
    const response = await refresh(
      fixture.clientId,
      {
        token,
        headers: { 'x-request-id': requestId, 'cf-connecting-ip': ip, 'user-agent': userAgent },
      },
      on,
    )
    return { token, response }
  }

  it('returns the client and the new secret', async () => {
    const fixture = await seedClient()

    const { response } = await rotateOnce(fixture)
    const { meta, data } = await readData(response)
    const stored = await readClient(fixture.clientId)

    expect(response.status).toBe(200)
    expect(meta).toEqual({
      url: `${BASE_URL}/admin/clients/${fixture.clientId}/refresh_secret`,
      type: 'object',
      code: 200,
      request_id: requestId,
    })
    expect(data.id).toBe(fixture.clientId)
    expect(data.name).toBe('Clinic No. 1')
    expect(data.secret).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(data.redirect_uri).toBe('https://clinic.test/callback')
    expect(data.settings).toEqual({ allowed_grant_types: ['password', 'authorization_code'] })
    expect(data.is_blocked).toBe(false)
    expect(data.block_reason).toBeNull()
    expect(data.user_id).toBe(fixture.ownerId)
    expect(data.client_type_id).toBe(fixture.clientTypeId)
    expect(data.inserted_at).toBe(fixture.row.inserted_at)
    expect(data.updated_at).toBe(stored?.updated_at)
    expect(Date.parse(String(data.updated_at))).toBeGreaterThan(Date.parse(fixture.row.updated_at))
  })

  it('returns no internal columns', async () => {
    const fixture = await seedClient()

    const { data } = await readData((await rotateOnce(fixture)).response)

    expect(data).not.toHaveProperty('priv_settings')
    expect(data).not.toHaveProperty('secret_hash')
    expect(data).not.toHaveProperty('previous_secret_hash')
  })

  it('sets the response headers', async () => {
    const fixture = await seedClient()

    const { response } = await rotateOnce(fixture)

    expect(response.headers.get('Cache-Control')).toBe('no-store')
    expect(response.headers.get('Pragma')).toBe('no-cache')
    expect(response.headers.get('Content-Type')).toBe('application/json; charset=utf-8')
    expect(response.headers.get('x-request-id')).toBe(requestId)
    expect(response.headers.get('Deprecation')).toBe('@1767225600')
    expect(response.headers.has('Sunset')).toBe(false)
    expect(response.headers.get('Link') ?? '').not.toContain('rel="deprecation"')
  })

  it('sets Sunset and Link when configured', async () => {
    const fixture = await seedClient()
    const configured = createEnv([key], {
      DEPRECATION_DATE: '2026-06-01T00:00:00Z',
      SUNSET_DATE: '2027-07-01T00:00:00Z',
      DEPRECATION_LINK: 'https://docs.test/deprecations/refresh-secret',
      SUCCESSOR_LINK: 'https://docs.test/connections/refresh-secret',
    })

    const { response } = await rotateOnce(fixture, configured)
    const link = response.headers.get('Link') ?? ''

    expect(response.status).toBe(200)
    expect(response.headers.get('Deprecation')).toBe('@1780272000')
    expect(response.headers.get('Sunset')).toBe('Thu, 01 Jul 2027 00:00:00 GMT')
    expect(link).toContain('<https://docs.test/deprecations/refresh-secret>; rel="deprecation"')
    expect(link).toContain(
      '<https://docs.test/connections/refresh-secret>; rel="successor-version"',
    )
  })

  it('marks error responses of the route deprecated too', async () => {
    const fixture = await seedClient()

    const response = await refresh(fixture.clientId)

    expect(response.status).toBe(401)
    expect(response.headers.get('Deprecation')).toBe('@1767225600')
  })

  it('stores a hash that verifies the new secret and not the old one', async () => {
    const fixture = await seedClient()

    const { data } = await readData((await rotateOnce(fixture)).response)
    const stored = (await readClient(fixture.clientId))?.secret_hash ?? ''

    expect(stored).toMatch(/^hmac-sha256\$k1\$[A-Za-z0-9_-]{43}$/)
    expect(await verifySecret(fixture.clientId, data.secret, stored, [PEPPER_KEY])).toBe(true)
    expect(await verifySecret(fixture.clientId, fixture.oldSecret, stored, [PEPPER_KEY])).toBe(
      false,
    )
  })

  it('writes one audit row', async () => {
    const fixture = await seedClient()

    await rotateOnce(fixture)
    const events = await listEvents(fixture.clientId)
    const stored = await readClient(fixture.clientId)

    expect(events).toHaveLength(1)
    expect(events[0]?.client_id).toBe(fixture.clientId)
    expect(events[0]?.actor_user_id).toBe(fixture.ownerId)
    expect(events[0]?.event).toBe('secret_rotated')
    expect(events[0]?.request_id).toBe(requestId)
    expect(events[0]?.ip).toBe(ip)
    expect(events[0]?.user_agent).toBe(userAgent)
    expect(events[0]?.occurred_at).toBe(stored?.updated_at)
    expect(events[0]?.id).toMatch(UUID)
  })

  it('never stores or logs the secret, the token or the pepper', async () => {
    const fixture = await seedClient()

    const { token, response } = await rotateOnce(fixture)
    const { data } = await readData(response)
    const database = await dumpDatabase()
    const logs = output.lines.join('\n')
    const hash = (await readClient(fixture.clientId))?.secret_hash ?? ''

    expect(output.lines.length).toBeGreaterThan(0)
    expect(database).not.toContain(data.secret)
    expect(database).not.toContain(token)
    expect(database).not.toContain(PEPPER)
    expect(logs).not.toContain(data.secret)
    expect(logs).not.toContain(token)
    expect(logs).not.toContain(PEPPER)
    expect(logs).not.toContain(hash)
    expect([...response.headers].join('\n')).not.toContain(data.secret)
  })

  it('returns a different secret on a second call', async () => {
    const fixture = await seedClient()

    const first = await readData((await rotateOnce(fixture)).response)
    const second = await readData((await rotateOnce(fixture)).response)
    const stored = (await readClient(fixture.clientId))?.secret_hash ?? ''

    expect(second.data.secret).not.toBe(first.data.secret)
    expect(await verifySecret(fixture.clientId, second.data.secret, stored, [PEPPER_KEY])).toBe(
      true,
    )
    expect(await verifySecret(fixture.clientId, first.data.secret, stored, [PEPPER_KEY])).toBe(
      false,
    )
    expect(await listRotations(fixture.clientId)).toHaveLength(2)
  })

  it('accepts the client id in upper case in the path', async () => {
    const fixture = await seedClient()
    const token = await ownerToken(fixture)

    const response = await refresh(fixture.clientId.toUpperCase(), { token })
    const { data } = await readData(response)
    const stored = (await readClient(fixture.clientId))?.secret_hash ?? ''

    expect(response.status).toBe(200)
    expect(data.id).toBe(fixture.clientId)
    expect(await verifySecret(fixture.clientId, data.secret, stored, [PEPPER_KEY])).toBe(true)
  })

  it('accepts the client id in upper case in the token', async () => {
    const fixture = await seedClient()
    const token = await tokenFor(fixture.ownerId, fixture.clientId.toUpperCase())

    const response = await refresh(fixture.clientId, { token })

    expect(response.status).toBe(200)
  })

  it('leaves the query string out of meta.url', async () => {
    const fixture = await seedClient()
    const request = new Request(
      `${BASE_URL}/admin/clients/${fixture.clientId}/refresh_secret?debug=1`,
      { method: 'PATCH', headers: { authorization: `Bearer ${await ownerToken(fixture)}` } },
    )

    const { meta } = await readData(await callWorker(request, workerEnv))

    expect(meta.url).toBe(`${BASE_URL}/admin/clients/${fixture.clientId}/refresh_secret`)
  })

  it.each([
    ['no body', undefined, undefined],
    ['an empty body of another type', '', 'text/plain'],
    ['an empty JSON object', '{}', 'application/json'],
    ['a JSON object with a charset', ' { } ', 'application/json; charset=utf-8'],
    ['a +json media type', '{}', 'application/merge-patch+json'],
    ['a JSON object of exactly 16 KiB', `{}${' '.repeat(16 * 1024 - 2)}`, 'application/json'],
  ])('accepts %s', async (_name, body, contentType) => {
    const fixture = await seedClient()
    const headers: Record<string, string> = contentType ? { 'content-type': contentType } : {}

    const response = await refresh(fixture.clientId, {
      token: await ownerToken(fixture),
      headers,
      body,
    })

    expect(response.status).toBe(200)
  })
})

describe('x-request-id', () => {
  it.each(['abc', 'req-1.2:3_4', 'a'.repeat(64)])('echoes the safe id %s', async (id) => {
    const fixture = await seedClient()

    const response = await refresh(fixture.clientId, { headers: { 'x-request-id': id } })
    const body = await readError(response)

    expect(response.headers.get('x-request-id')).toBe(id)
    expect(body.meta.request_id).toBe(id)
  })

  it.each([
    ['too long', 'a'.repeat(65)],
    ['with spaces', 'req 1'],
    ['with markup', '<script>'],
    ['with quotes', '"req"'],
    ['with a slash', 'req/1'],
  ])('replaces an id %s', async (_name, id) => {
    const fixture = await seedClient()

    const response = await refresh(fixture.clientId, { headers: { 'x-request-id': id } })
    const body = await readError(response)
    const echoed = response.headers.get('x-request-id')

    expect(echoed).not.toBe(id)
    expect(echoed).toMatch(UUID)
    expect(body.meta.request_id).toBe(echoed)
  })

  it('records the replaced id in the audit row', async () => {
    const fixture = await seedClient()

    const response = await refresh(fixture.clientId, {
      token: await ownerToken(fixture),
      headers: { 'x-request-id': 'bad id' },
    })
    const events = await listRotations(fixture.clientId)

    expect(response.status).toBe(200)
    expect(events[0]?.request_id).toBe(response.headers.get('x-request-id'))
  })

  it('creates an id when none is sent', async () => {
    const fixture = await seedClient()

    const response = await refresh(fixture.clientId)

    expect(response.headers.get('x-request-id')).toMatch(UUID)
  })
})

describe('request errors', () => {
  it.each(['GET', 'POST', 'PUT', 'DELETE'])('answers %s with 405', async (method) => {
    const fixture = await seedClient()

    const response = await refresh(fixture.clientId, {
      method,
      token: await ownerToken(fixture),
      body: method === 'GET' ? undefined : '{}',
    })
    await expectErrorResponse(response, 405, 'method_not_allowed')

    expect(response.headers.get('Allow')).toBe('PATCH')
    await expectNothingWritten(fixture)
  })

  it('answers HEAD with 405 and no body', async () => {
    const fixture = await seedClient()

    const response = await refresh(fixture.clientId, {
      method: 'HEAD',
      token: await ownerToken(fixture),
    })

    expect(response.status).toBe(405)
    expect(response.headers.get('Allow')).toBe('PATCH')
    expect(await response.text()).toBe('')
    await expectNothingWritten(fixture)
  })

  it.each([
    '/',
    '/admin/clients',
    '/admin/clients/a3f1c2d4-5b6e-4f70-8a91-b2c3d4e5f607',
    '/admin/clients/a3f1c2d4-5b6e-4f70-8a91-b2c3d4e5f607/refresh-secret',
    '/admin/clients/a3f1c2d4-5b6e-4f70-8a91-b2c3d4e5f607/refresh_secret/extra',
    '/api/clients/a3f1c2d4-5b6e-4f70-8a91-b2c3d4e5f607/refresh_secret',
  ])('answers the unknown path %s with 404', async (path) => {
    const response = await callWorker(
      new Request(`${BASE_URL}${path}`, { method: 'PATCH' }),
      workerEnv,
    )
    const body = await expectErrorResponse(response, 404, 'not_found')

    expect(body.meta.url).toBe(`${BASE_URL}${path}`)
  })

  it.each([
    ['malformed JSON', '{"revoke":', 'application/json', 400, 'request_malformed'],
    [
      'invalid UTF-8',
      new Uint8Array([0x7b, 0xff, 0x7d]),
      'application/json',
      400,
      'request_malformed',
    ],
    [
      'a non-JSON content type',
      'secret=1',
      'application/x-www-form-urlencoded',
      415,
      'content_type_invalid',
    ],
    ['no content type', '{}', undefined, 415, 'content_type_invalid'],
    ['a JSON array', '[]', 'application/json', 422, 'validation_failed'],
    ['a JSON string', '"x"', 'application/json', 422, 'validation_failed'],
    ['JSON null', 'null', 'application/json', 422, 'validation_failed'],
  ] as [string, BodyInit, string | undefined, number, string][])(
    'rejects %s',
    async (_name, body, contentType, status, type) => {
      const fixture = await seedClient()
      const headers: Record<string, string> = contentType ? { 'content-type': contentType } : {}

      const response = await refresh(fixture.clientId, {
        token: await ownerToken(fixture),
        headers,
        body,
      })
      await expectErrorResponse(response, status, type)

      await expectNothingWritten(fixture)
    },
  )

  it('rejects an unknown body field with 422', async () => {
    const fixture = await seedClient()

    const response = await refresh(fixture.clientId, {
      token: await ownerToken(fixture),
      headers: { 'content-type': 'application/json' },
      body: '{"unknown_field": true}',
    })
    const body = await expectErrorResponse(response, 422, 'validation_failed')

    expect(body.error.invalid?.[0]?.entry_type).toBe('json_data_property')
    expect(body.error.invalid?.[0]?.entry).toBe('$.unknown_field')
    await expectNothingWritten(fixture)
  })

  it('rejects a body larger than 16 KiB with 413', async () => {
    const fixture = await seedClient()

    const response = await refresh(fixture.clientId, {
      token: await ownerToken(fixture),
      headers: { 'content-type': 'application/json' },
      body: `{}${' '.repeat(16 * 1024 - 1)}`,
    })
    await expectErrorResponse(response, 413, 'request_too_large')

    await expectNothingWritten(fixture)
  })

  it('rejects a streamed body larger than 16 KiB with 413', async () => {
    const fixture = await seedClient()
    const chunk = new TextEncoder().encode(' '.repeat(4096))
    let sent = 0
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent === 0) controller.enqueue(new TextEncoder().encode('{}'))
        if (sent >= 5) controller.close()
        else controller.enqueue(chunk)
        sent += 1
      },
    })

    const response = await refresh(fixture.clientId, {
      token: await ownerToken(fixture),
      headers: { 'content-type': 'application/json' },
      body: stream,
    })
    await expectErrorResponse(response, 413, 'request_too_large')

    await expectNothingWritten(fixture)
  })
})

describe('configuration', () => {
  it.each([
    ['JWKS', 'JWKS_URL'],
    ['JWT_ISSUER', 'JWT_ISSUER'],
    ['JWT_AUDIENCE', 'JWT_AUDIENCE'],
    ['SECRET_PEPPER', 'SECRET_PEPPER'],
  ] as [keyof Settings, string][])(
    'answers 500 without %s and logs %s',
    async (removed, setting) => {
      const fixture = await seedClient()
      const incomplete = createEnv([key], { [removed]: undefined })

      const response = await refresh(
        fixture.clientId,
        { token: await ownerToken(fixture) },
        incomplete,
      )
      await expectErrorResponse(response, 500, 'internal_error')
      const logged = output.records().filter((record) => record.setting !== undefined)

      expect(logged).toHaveLength(1)
      expect(logged[0]?.setting).toBe(setting)
      expect(logged[0]?.level).toBe('error')
      await expectNothingWritten(fixture)
    },
  )

  it('names both key set settings when neither is set', async () => {
    const incomplete = createEnv([key], { JWKS: undefined })

    await refresh(crypto.randomUUID(), {}, incomplete)
    const logs = output.lines.join('\n')

    expect(logs).toContain('JWKS_URL')
    expect(logs).toContain('JWKS ')
  })

  it('answers 500 and logs the setting on every request', async () => {
    const incomplete = createEnv([key], { JWT_AUDIENCE: '' })

    const first = await refresh(crypto.randomUUID(), {}, incomplete)
    const second = await refresh(crypto.randomUUID(), {}, incomplete)
    const logged = output.records().filter((record) => record.setting === 'JWT_AUDIENCE')

    expect(first.status).toBe(500)
    expect(second.status).toBe(500)
    expect(logged).toHaveLength(2)
  })

  it('never logs the value of an invalid pepper', async () => {
    const shortPepper = 'c2hvcnQtcGVwcGVyLW9mLTMwLWJ5dGVzLWxvbmcuLi4'.slice(0, 40)
    const invalid = createEnv([key], { SECRET_PEPPER: shortPepper })

    const response = await refresh(crypto.randomUUID(), {}, invalid)
    const body = await response.text()
    const logged = output.records().filter((record) => record.setting !== undefined)

    expect(response.status).toBe(500)
    expect(logged[0]?.setting).toBe('SECRET_PEPPER')
    expect(output.lines.join('\n')).not.toContain(shortPepper)
    expect(body).not.toContain(shortPepper)
  })
})

describe('dependency failure', () => {
  it('answers 503 and writes nothing when D1 rejects the audit row', async () => {
    const fixture = await seedClient()
    const trigger = `reject_audit_${fixture.clientId.replace(/-/g, '')}`
    await env.DB.prepare(
      `CREATE TRIGGER ${trigger} BEFORE INSERT ON client_secret_events
      WHEN NEW.client_id = '${fixture.clientId}'
      BEGIN SELECT RAISE(ABORT, 'audit rejected by the test trigger'); END`,
    ).run()

    try {
      const response = await refresh(fixture.clientId, { token: await ownerToken(fixture) })
      const text = await response.clone().text()
      await expectErrorResponse(response, 503, 'service_unavailable')

      expect(response.headers.get('Retry-After')).toMatch(/^[1-9]\d*$/)
      expect(text).not.toContain('audit rejected')
      expect(text).not.toMatch(/sqlite|client_secret_events|D1_ERROR/i)
      await expectNothingWritten(fixture)
    } finally {
      await env.DB.prepare(`DROP TRIGGER ${trigger}`).run()
    }
  })
})
