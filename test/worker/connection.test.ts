import { env } from 'cloudflare:workers'
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import type { Env, PepperKey } from '../../src/config.ts'
import { verifyClientSecret } from '../../src/secret.ts'
import {
  type Attempt,
  type AttemptKeys,
  type AttemptRequest,
  CLIENT_METHOD,
  CONNECTION_METHOD,
  challengeHeader,
  countIdempotencyRecords,
  METHODS,
  otherMethod,
  prepareAttempt,
  rowsOf,
  type SecretMethod,
  sendAttempt,
  validAttempt,
  withLaterFailures,
} from './authorization-table.ts'
import {
  addConnection,
  type ConnectionFixture,
  connectionPath,
  connectionVerifier,
  insertConnectionRotations,
  newSecret,
  readConnection,
  type SeededConnection,
  seedConnection,
} from './connection-helpers.ts'
import {
  BASE_URL,
  captureConsole,
  createEnv,
  createSigningKey,
  dumpDatabase,
  expectErrorResponse,
  listEvents,
  PEPPER,
  PEPPER_KEY,
  readClient,
  readData,
  type Settings,
} from './helpers.ts'
import { expectedHash, insertEvents, isoAt, runtimePepper } from './safety-helpers.ts'

const NOW = Date.parse('2026-06-01T12:00:00.000Z')
const NOW_ISO = new Date(NOW).toISOString()
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const REQUEST_HEADERS = {
  'x-request-id': 'connection-request-1',
  'cf-connecting-ip': '203.0.113.9',
  'user-agent': 'consumer-admin/1.0',
}
const INVALID = { valid: false, slot: null, previousExpiresAt: null, deprecated: false }
const CURRENT = { valid: true, slot: 'current', previousExpiresAt: null, deprecated: false }

let keys: AttemptKeys
let workerEnv: Env
let output: ReturnType<typeof captureConsole>

beforeAll(async () => {
  keys = { issuer: await createSigningKey('ES256'), stranger: await createSigningKey('ES256') }
  workerEnv = createEnv([keys.issuer])
})

beforeEach(() => {
  output = captureConsole()
})

afterEach(() => {
  vi.useRealTimers()
  vi.restoreAllMocks()
})

/** Fixes the clock at NOW, so grace periods and audit times are exact. */
function freezeClock(): void {
  vi.useFakeTimers({ toFake: ['Date'] })
  vi.setSystemTime(NOW)
}

/** Sends the owner's request for the fixture's client, and its connection on that route. */
function rotateAs(
  method: SecretMethod,
  fixture: ConnectionFixture,
  request: AttemptRequest = {},
  on: Env = workerEnv,
  change: Partial<Attempt> = {},
): Promise<Response> {
  return sendAttempt(method, { ...validAttempt(method, fixture), ...change }, keys, on, request)
}

async function rotateOk(
  method: SecretMethod,
  fixture: ConnectionFixture,
  request: AttemptRequest = {},
  on: Env = workerEnv,
) {
  const response = await rotateAs(method, fixture, request, on)
  expect(response.status).toBe(200)
  return { response, body: await readData(response) }
}

/** Checks that no secret of the fixture changed and that nothing was rotated or remembered. */
async function expectNothingRotated(fixture: ConnectionFixture): Promise<void> {
  const rotations = await listRotationRows(fixture.clientId)

  expect(await readClient(fixture.clientId)).toEqual(fixture.row)
  expect(await readConnection(fixture.connection.connectionId)).toEqual(fixture.connection.row)
  expect(rotations).toEqual([])
  expect(await countIdempotencyRecords(fixture.clientId)).toBe(0)
}

function loggedOutcome(): unknown {
  return output.records().find((record) => record.message === 'request')?.outcome
}

/** Lists the audit rows of `clientId` that record rotations that happened. */
async function listRotationRows(clientId: string): Promise<Record<string, unknown>[]> {
  return (await listEvents(clientId)).filter((event) => event.event === 'secret_rotated')
}

/**
 * Returns a getter of an env with `settings`, built on first use because the signing key only
 * exists once `beforeAll` has run.
 */
function createEnvLater(settings: Settings): () => Env {
  let built: Env | undefined
  return () => {
    built ??= createEnv([keys.issuer], settings)
    return built
  }
}

describe.each(METHODS)('authorization order on the $name route', (method) => {
  it('accepts the attempt that the table spoils', async () => {
    const { fixture, attempt } = await prepareAttempt(method, [])

    const response = await sendAttempt(method, attempt, keys, workerEnv)
    const { data } = await readData(response)
    const stored = await method.readTarget(fixture)

    expect(response.status).toBe(200)
    expect(stored.secret_hash).toBe(await expectedHash(method.targetId(fixture), data.secret))
  })

  it.each(rowsOf(method))('rejects $name', async (row) => {
    const { fixture, attempt, others } = await prepareAttempt(method, [row])

    const response = await sendAttempt(method, attempt, keys, workerEnv, {
      headers: REQUEST_HEADERS,
    })
    const body = await expectErrorResponse(response, row.expected.status, row.expected.type)

    expect(response.headers.get('WWW-Authenticate')).toBe(
      challengeHeader(method, row.expected.challenge),
    )
    if (row.expected.challenge === 'insufficient_scope') {
      expect(body.error.message).toContain(method.scope)
    }
    if (row.expected.invalidEntry !== undefined) {
      expect(body.error.invalid?.[0]?.entry_type).toBe('path_parameter')
      expect(body.error.invalid?.[0]?.entry).toBe(row.expected.invalidEntry)
    }
    if (row.expected.outcome !== undefined) expect(loggedOutcome()).toBe(row.expected.outcome)
    if (row.expected.outcome === 'client_blocked') expect(body.error.message).toMatch(/blocked/i)

    await expectNothingRotated(fixture)
    for (const other of others) await expectNothingRotated(other)
  })

  it.each(rowsOf(method))('audits $name as the path client', async (row) => {
    const { fixture, attempt } = await prepareAttempt(method, [row])

    await sendAttempt(method, attempt, keys, workerEnv, { headers: REQUEST_HEADERS })
    const events = await listEvents(fixture.clientId)
    const ownConnection =
      method.name === 'connection' && attempt.pathConnectionId === fixture.connection.connectionId

    if (row.expected.auditReason === null) {
      expect(events).toEqual([])
      return
    }
    expect(events).toHaveLength(1)
    expect(events[0]?.event).toBe('secret_rotation_denied')
    expect(events[0]?.outcome).toBe('denied')
    expect(events[0]?.reason).toBe(row.expected.auditReason)
    expect(events[0]?.actor_user_id).toBe(attempt.userId)
    expect(events[0]?.connection_id).toBe(ownConnection ? fixture.connection.connectionId : null)
    expect(events[0]?.request_id).toBe(REQUEST_HEADERS['x-request-id'])
  })

  it.each(rowsOf(method))('rejects $name before every later check', async (row) => {
    const { fixture, attempt, others } = await prepareAttempt(
      method,
      withLaterFailures(method, row),
    )

    const response = await sendAttempt(method, attempt, keys, workerEnv)
    const body = await expectErrorResponse(response, row.expected.status, row.expected.type)

    expect(response.headers.get('WWW-Authenticate')).toBe(
      challengeHeader(method, row.expected.challenge),
    )
    if (row.expected.invalidEntry !== undefined) {
      expect(body.error.invalid?.[0]?.entry).toBe(row.expected.invalidEntry)
    }
    if (row.expected.outcome !== undefined) expect(loggedOutcome()).toBe(row.expected.outcome)

    await expectNothingRotated(fixture)
    for (const other of others) await expectNothingRotated(other)
  })
})

interface RotationCase {
  name: string
  settings?: Settings
  body?: unknown
  /** Seconds that the old secret keeps verifying after the rotation. */
  graceSeconds: number
}

const ROTATION_CASES: RotationCase[] = [
  { name: 'no body', graceSeconds: 0 },
  { name: 'an empty JSON object', body: {}, graceSeconds: 0 },
  {
    name: 'a grace period in the body',
    body: { previous_secret_expires_in: 600 },
    graceSeconds: 600,
  },
  {
    name: 'the default grace period',
    settings: { GRACE_PERIOD_DEFAULT: '900' },
    graceSeconds: 900,
  },
  {
    name: 'a grace period of 0 over the default',
    settings: { GRACE_PERIOD_DEFAULT: '900' },
    body: { previous_secret_expires_in: 0 },
    graceSeconds: 0,
  },
  {
    name: 'revoke_previous over the default',
    settings: { GRACE_PERIOD_DEFAULT: '900' },
    body: { revoke_previous: true },
    graceSeconds: 0,
  },
]

describe.each(METHODS)('rotation on the $name route', (method) => {
  beforeEach(freezeClock)

  it.each(ROTATION_CASES)('rotates with $name', async (rotation) => {
    const fixture = await seedConnection()
    const on = createEnv([keys.issuer], rotation.settings)
    const oldSecret = method.oldSecret(fixture) ?? ''

    const { body } = await rotateOk(method, fixture, { body: rotation.body }, on)
    const stored = await method.readTarget(fixture)
    const id = method.targetId(fixture)
    const expiresAt = rotation.graceSeconds > 0 ? isoAt(NOW, rotation.graceSeconds) : null

    expect(body.data.secret).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(stored.secret_hash).toBe(await expectedHash(id, body.data.secret))
    expect(body.data.previous_secret_expires_at).toBe(expiresAt)
    expect(stored.previous_secret_expires_at).toBe(expiresAt)
    expect(body.data.updated_at).toBe(NOW_ISO)
    expect(await verifyClientSecret(id, body.data.secret, stored, [PEPPER_KEY], NOW)).toEqual({
      valid: true,
      slot: 'current',
      previousExpiresAt: null,
    })

    const old = await verifyClientSecret(id, oldSecret, stored, [PEPPER_KEY], NOW)
    if (expiresAt === null) {
      expect(old.valid).toBe(false)
      expect(stored.previous_secret_hash).toBeNull()
    } else {
      expect(old).toEqual({ valid: true, slot: 'previous', previousExpiresAt: expiresAt })
      const atExpiry = Date.parse(expiresAt)
      expect((await verifyClientSecret(id, oldSecret, stored, [PEPPER_KEY], atExpiry)).valid).toBe(
        false,
      )
    }
  })

  it.each(ROTATION_CASES)('writes one audit row with $name', async (rotation) => {
    const fixture = await seedConnection()
    const on = createEnv([keys.issuer], rotation.settings)

    await rotateOk(method, fixture, { body: rotation.body, headers: REQUEST_HEADERS }, on)
    const events = await listEvents(fixture.clientId)

    expect(events).toHaveLength(1)
    expect(events[0]?.id).toMatch(UUID)
    expect(events[0]?.event).toBe('secret_rotated')
    expect(events[0]?.outcome).toBe('rotated')
    expect(events[0]?.reason).toBeNull()
    expect(events[0]?.client_id).toBe(fixture.clientId)
    expect(events[0]?.connection_id).toBe(method.auditConnectionId(fixture))
    expect(events[0]?.actor_user_id).toBe(fixture.ownerId)
    expect(events[0]?.grace_period).toBe(rotation.graceSeconds)
    expect(events[0]?.request_id).toBe(REQUEST_HEADERS['x-request-id'])
    expect(events[0]?.ip).toBe(REQUEST_HEADERS['cf-connecting-ip'])
    expect(events[0]?.user_agent).toBe(REQUEST_HEADERS['user-agent'])
    expect(events[0]?.occurred_at).toBe(NOW_ISO)
  })

  it('returns exactly the documented fields', async () => {
    const fixture = await seedConnection()

    const { body } = await rotateOk(method, fixture)

    expect(Object.keys(body.data).sort()).toEqual([...method.dataFields].sort())
  })

  it('sets the no-store headers', async () => {
    const fixture = await seedConnection()

    const { response, body } = await rotateOk(method, fixture, { headers: REQUEST_HEADERS })

    expect(response.headers.get('Cache-Control')).toBe('no-store')
    expect(response.headers.get('Pragma')).toBe('no-cache')
    expect(response.headers.get('Content-Type')).toBe('application/json; charset=utf-8')
    expect(response.headers.get('x-request-id')).toBe(REQUEST_HEADERS['x-request-id'])
    expect(body.meta.request_id).toBe(REQUEST_HEADERS['x-request-id'])
  })

  it('returns a new secret on every call', async () => {
    const fixture = await seedConnection()

    const first = await rotateOk(method, fixture, { body: { previous_secret_expires_in: 600 } })
    const second = await rotateOk(method, fixture, { body: { previous_secret_expires_in: 600 } })
    const stored = await method.readTarget(fixture)
    const id = method.targetId(fixture)
    const check = (secret: string) => verifyClientSecret(id, secret, stored, [PEPPER_KEY], NOW)

    expect(second.body.data.secret).not.toBe(first.body.data.secret)
    expect((await check(second.body.data.secret)).slot).toBe('current')
    expect((await check(first.body.data.secret)).slot).toBe('previous')
    expect((await check(method.oldSecret(fixture) ?? '')).valid).toBe(false)
    expect(await listRotationRows(fixture.clientId)).toHaveLength(2)
  })

  it('leaves every other secret of the client unchanged', async () => {
    const fixture = await seedConnection()
    const sibling = await addConnection(fixture)

    await rotateOk(method, fixture, { body: { previous_secret_expires_in: 600 } })
    const other = otherMethod(method)

    expect(await other.readTarget(fixture)).toEqual(other.seededRow(fixture))
    expect(await readConnection(sibling.connectionId)).toEqual(sibling.row)
  })

  it('accepts the path ids in upper case', async () => {
    const fixture = await seedConnection()
    const attempt = validAttempt(method, fixture)
    attempt.pathId = attempt.pathId.toUpperCase()
    attempt.pathConnectionId = attempt.pathConnectionId.toUpperCase()

    const response = await sendAttempt(method, attempt, keys, workerEnv)
    const { data } = await readData(response)
    const stored = await method.readTarget(fixture)

    expect(response.status).toBe(200)
    expect(data.id).toBe(method.targetId(fixture))
    expect(stored.secret_hash).toBe(await expectedHash(method.targetId(fixture), data.secret))
  })

  it('never stores or logs the secret, the token or the pepper', async () => {
    const fixture = await seedConnection()
    const attempt = validAttempt(method, fixture)

    const response = await sendAttempt(method, attempt, keys, workerEnv, {
      headers: { 'idempotency-key': `key-${crypto.randomUUID()}` },
      body: { previous_secret_expires_in: 600 },
    })
    const { data } = await readData(response)
    const database = await dumpDatabase()
    const logs = output.lines.join('\n')
    const hash = (await method.readTarget(fixture)).secret_hash ?? ''
    const headers = [...response.headers].join('\n')

    expect(response.status).toBe(200)
    expect(output.lines.length).toBeGreaterThan(0)
    expect(database).not.toContain(data.secret)
    expect(database).not.toContain(PEPPER)
    expect(logs).not.toContain(data.secret)
    expect(logs).not.toContain(PEPPER)
    expect(logs).not.toContain(hash)
    expect(logs).not.toContain(method.oldSecret(fixture) ?? '')
    expect(headers).not.toContain(data.secret)
  })
})

describe('connection route response', () => {
  it('returns the connection and its new secret', async () => {
    const fixture = await seedConnection()
    const { connection } = fixture

    const { body } = await rotateOk(CONNECTION_METHOD, fixture, {
      headers: REQUEST_HEADERS,
    })

    expect(body.meta).toEqual({
      url: `${BASE_URL}${connectionPath(fixture.clientId, connection.connectionId)}`,
      type: 'object',
      code: 200,
      request_id: REQUEST_HEADERS['x-request-id'],
    })
    expect(body.data.id).toBe(connection.connectionId)
    expect(body.data.client_id).toBe(fixture.clientId)
    expect(body.data.consumer_id).toBe(connection.consumerId)
    expect(body.data.redirect_uri).toBe(connection.row.redirect_uri)
    expect(body.data.inserted_at).toBe(connection.row.inserted_at)
    expect(body.data).not.toHaveProperty('secret_hash')
    expect(body.data).not.toHaveProperty('previous_secret_hash')
  })

  it('sends no deprecation headers when configured', async () => {
    const fixture = await seedConnection()
    const configured = createEnv([keys.issuer], {
      DEPRECATION_DATE: '2026-06-01T00:00:00Z',
      SUNSET_DATE: '2027-07-01T00:00:00Z',
      DEPRECATION_LINK: 'https://docs.test/deprecations/refresh-secret',
      SUCCESSOR_LINK: 'https://docs.test/connections/refresh-secret',
    })

    const ok = await rotateAs(CONNECTION_METHOD, fixture, {}, configured)
    const denied = await rotateAs(CONNECTION_METHOD, fixture, {}, configured, {
      token: 'none',
    })

    for (const response of [ok, denied]) {
      expect(response.headers.has('Deprecation')).toBe(false)
      expect(response.headers.has('Sunset')).toBe(false)
      expect(response.headers.has('Link')).toBe(false)
    }
    expect(ok.status).toBe(200)
    expect(denied.status).toBe(401)
  })

  it('logs the path client of the request', async () => {
    const fixture = await seedConnection()

    await rotateOk(CONNECTION_METHOD, fixture)
    const line = output.records().find((record) => record.message === 'request')

    expect(line?.status).toBe(200)
    expect(line?.client_id).toBe(fixture.clientId)
    expect(line?.user_id).toBe(fixture.ownerId)
    expect(line?.outcome).toBe('rotated')
  })
})

describe.each(METHODS)('Idempotency-Key on the $name route', (method) => {
  it('replays the first response without rotating again', async () => {
    const fixture = await seedConnection()
    const request = {
      headers: { 'idempotency-key': `retry-${crypto.randomUUID()}` },
      body: { previous_secret_expires_in: 600 },
    }

    const first = await rotateOk(method, fixture, request)
    const hashAfterFirst = (await method.readTarget(fixture)).secret_hash
    const retry = await rotateOk(method, fixture, request)
    const events = await listEvents(fixture.clientId)
    const replayed = events.filter((event) => event.event === 'secret_rotation_replayed')

    expect(retry.body.data).toEqual(first.body.data)
    expect(first.response.headers.get('Idempotent-Replayed')).toBeNull()
    expect(retry.response.headers.get('Idempotent-Replayed')).toBe('true')
    expect((await method.readTarget(fixture)).secret_hash).toBe(hashAfterFirst)
    expect(hashAfterFirst).toBe(
      await expectedHash(method.targetId(fixture), first.body.data.secret),
    )
    expect(await listRotationRows(fixture.clientId)).toHaveLength(1)
    expect(replayed).toHaveLength(1)
    expect(replayed[0]?.connection_id).toBe(method.auditConnectionId(fixture))
  })

  it('rejects a reused key with another body', async () => {
    const fixture = await seedConnection()
    const headers = { 'idempotency-key': `retry-${crypto.randomUUID()}` }

    await rotateOk(method, fixture, { headers, body: { previous_secret_expires_in: 600 } })
    const hashAfterFirst = (await method.readTarget(fixture)).secret_hash
    const response = await rotateAs(method, fixture, { headers, body: { revoke_previous: true } })
    const body = await expectErrorResponse(response, 422, 'validation_failed')

    expect(body.error.invalid?.[0]?.entry_type).toBe('header')
    expect(body.error.invalid?.[0]?.entry).toBe('Idempotency-Key')
    expect((await method.readTarget(fixture)).secret_hash).toBe(hashAfterFirst)
    expect(await listRotationRows(fixture.clientId)).toHaveLength(1)
  })

  it("keeps the key apart from the other route's", async () => {
    const fixture = await seedConnection()
    const request = { headers: { 'idempotency-key': `retry-${crypto.randomUUID()}` } }

    const other = await rotateOk(otherMethod(method), fixture, request)
    const own = await rotateOk(method, fixture, request)
    const stored = await method.readTarget(fixture)

    expect(own.response.headers.get('Idempotent-Replayed')).toBeNull()
    expect(own.body.data.secret).not.toBe(other.body.data.secret)
    expect(stored.secret_hash).toBe(
      await expectedHash(method.targetId(fixture), own.body.data.secret),
    )
    expect(await listRotationRows(fixture.clientId)).toHaveLength(2)
  })
})

describe('Idempotency-Key on two connections', () => {
  it('rotates another connection under the same key', async () => {
    const fixture = await seedConnection()
    const sibling = await addConnection(fixture)
    const headers = { 'idempotency-key': `retry-${crypto.randomUUID()}` }

    const first = await rotateOk(CONNECTION_METHOD, fixture, { headers })
    const second = await rotateAs(CONNECTION_METHOD, fixture, { headers }, workerEnv, {
      pathConnectionId: sibling.connectionId,
    })
    const { data } = await readData(second)
    const stored = await readConnection(sibling.connectionId)

    expect(second.status).toBe(200)
    expect(second.headers.get('Idempotent-Replayed')).toBeNull()
    expect(data.id).toBe(sibling.connectionId)
    expect(data.secret).not.toBe(first.body.data.secret)
    expect(stored?.secret_hash).toBe(await expectedHash(sibling.connectionId, data.secret))
  })
})

describe.each(METHODS)('rate limit on the $name route', (method) => {
  beforeEach(freezeClock)

  const limited = createEnvLater({ ROTATION_RATE_LIMIT: '2', ROTATION_RATE_WINDOW: '60' })

  it('answers 429 after the limit without rotating', async () => {
    const fixture = await seedConnection()
    const statuses: number[] = []
    for (let count = 0; count < 2; count += 1) {
      statuses.push((await rotateAs(method, fixture, {}, limited())).status)
    }
    const hashAtLimit = (await method.readTarget(fixture)).secret_hash

    const response = await rotateAs(method, fixture, {}, limited())
    await expectErrorResponse(response, 429, 'too_many_requests')

    expect(statuses).toEqual([200, 200])
    expect(response.headers.get('Retry-After')).toBe('60')
    expect((await method.readTarget(fixture)).secret_hash).toBe(hashAtLimit)
    expect(await listRotationRows(fixture.clientId)).toHaveLength(2)
  })

  it("does not count the other route's rotations", async () => {
    const fixture = await seedConnection()
    const times = [10, 20, 30, 40, 50].map((seconds) => isoAt(NOW, -seconds))
    if (method.name === 'client') {
      await insertConnectionRotations(fixture.clientId, fixture.connection.connectionId, times)
    } else {
      await insertEvents(fixture.clientId, times)
    }

    expect((await rotateAs(method, fixture)).status).toBe(200)
  })
})

describe('rate limit per connection', () => {
  beforeEach(freezeClock)

  const limited = createEnvLater({ ROTATION_RATE_LIMIT: '2', ROTATION_RATE_WINDOW: '60' })

  async function rotateConnection(fixture: ConnectionFixture, connection: SeededConnection) {
    const response = await rotateAs(CONNECTION_METHOD, fixture, {}, limited(), {
      pathConnectionId: connection.connectionId,
    })
    return response.status
  }

  it('limits each connection of a client on its own', async () => {
    const fixture = await seedConnection()
    const sibling = await addConnection(fixture)
    const first: number[] = []
    const second: number[] = []

    for (let count = 0; count < 3; count += 1)
      first.push(await rotateConnection(fixture, fixture.connection))
    for (let count = 0; count < 3; count += 1) second.push(await rotateConnection(fixture, sibling))

    expect(first).toEqual([200, 200, 429])
    expect(second).toEqual([200, 200, 429])
    expect((await rotateAs(CLIENT_METHOD, fixture, {}, limited())).status).toBe(200)
  })

  it("does not count a sibling connection's rotations", async () => {
    const fixture = await seedConnection()
    const sibling = await addConnection(fixture)
    await insertConnectionRotations(
      fixture.clientId,
      sibling.connectionId,
      [10, 20, 30, 40, 50].map((seconds) => isoAt(NOW, -seconds)),
    )

    expect((await rotateAs(CONNECTION_METHOD, fixture)).status).toBe(200)
    expect(
      (
        await rotateAs(CONNECTION_METHOD, fixture, {}, workerEnv, {
          pathConnectionId: sibling.connectionId,
        })
      ).status,
    ).toBe(429)
  })

  it('sets Retry-After from the oldest rotation of the connection', async () => {
    const fixture = await seedConnection()
    await insertConnectionRotations(
      fixture.clientId,
      fixture.connection.connectionId,
      [3500, 3000, 2000, 1000, 10].map((seconds) => isoAt(NOW, -seconds)),
    )

    const response = await rotateAs(CONNECTION_METHOD, fixture)

    expect(response.status).toBe(429)
    expect(response.headers.get('Retry-After')).toBe('100')
  })
})

describe.each(METHODS)('request errors on the $name route', (method) => {
  it.each(['GET', 'POST', 'PUT', 'DELETE'])('answers %s with 405', async (httpMethod) => {
    const fixture = await seedConnection()

    const response = await rotateAs(method, fixture, {
      method: httpMethod,
      body: httpMethod === 'GET' ? undefined : '{}',
    })
    await expectErrorResponse(response, 405, 'method_not_allowed')

    expect(response.headers.get('Allow')).toBe('PATCH')
    expect(response.headers.has('Deprecation')).toBe(method.deprecated)
    expect(await listEvents(fixture.clientId)).toEqual([])
    await expectNothingRotated(fixture)
  })

  it('answers 404 to its path with a trailing slash', async () => {
    const fixture = await seedConnection()
    const slashed: SecretMethod = {
      ...method,
      path: (id, connectionId) => `${method.path(id, connectionId)}/`,
    }

    const response = await rotateAs(slashed, fixture)
    await expectErrorResponse(response, 404, 'not_found')

    await expectNothingRotated(fixture)
  })

  it('answers HEAD with 405 and no body', async () => {
    const fixture = await seedConnection()

    const response = await rotateAs(method, fixture, { method: 'HEAD' })

    expect(response.status).toBe(405)
    expect(response.headers.get('Allow')).toBe('PATCH')
    expect(await response.text()).toBe('')
    await expectNothingRotated(fixture)
  })

  interface RequestErrorCase {
    name: string
    request: AttemptRequest
    status: number
    type: string
    /** The `entry_type` and `entry` of the first `invalid` entry. */
    invalid?: [string, string]
  }

  const json = { 'content-type': 'application/json' }
  const cases: RequestErrorCase[] = [
    {
      name: 'malformed JSON',
      request: { headers: json, body: '{"revoke_previous":' },
      status: 400,
      type: 'request_malformed',
    },
    {
      name: 'a form body',
      request: { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1' },
      status: 415,
      type: 'content_type_invalid',
    },
    {
      name: 'a body larger than 16 KiB',
      request: { headers: json, body: `{}${' '.repeat(16 * 1024 - 1)}` },
      status: 413,
      type: 'request_too_large',
    },
    {
      name: 'a JSON array',
      request: { headers: json, body: '[]' },
      status: 422,
      type: 'validation_failed',
    },
    {
      name: 'an unknown field',
      request: { body: { unknown_field: true } },
      status: 422,
      type: 'validation_failed',
      invalid: ['json_data_property', '$.unknown_field'],
    },
    {
      name: 'a negative grace period',
      request: { body: { previous_secret_expires_in: -1 } },
      status: 422,
      type: 'validation_failed',
      invalid: ['json_data_property', '$.previous_secret_expires_in'],
    },
    {
      name: 'a grace period as text',
      request: { body: { previous_secret_expires_in: '600' } },
      status: 422,
      type: 'validation_failed',
      invalid: ['json_data_property', '$.previous_secret_expires_in'],
    },
    {
      name: 'revoke_previous as text',
      request: { body: { revoke_previous: 'yes' } },
      status: 422,
      type: 'validation_failed',
      invalid: ['json_data_property', '$.revoke_previous'],
    },
    {
      name: 'revoke_previous with a grace period',
      request: { body: { revoke_previous: true, previous_secret_expires_in: 600 } },
      status: 422,
      type: 'validation_failed',
      invalid: ['json_data_property', '$.revoke_previous'],
    },
    {
      name: 'an Idempotency-Key with a space',
      request: { headers: { 'idempotency-key': 'retry 1' } },
      status: 422,
      type: 'validation_failed',
      invalid: ['header', 'Idempotency-Key'],
    },
    {
      name: 'an Idempotency-Key of 256 characters',
      request: { headers: { 'idempotency-key': 'k'.repeat(256) } },
      status: 422,
      type: 'validation_failed',
      invalid: ['header', 'Idempotency-Key'],
    },
  ]

  it.each(cases)('rejects $name and changes nothing', async (errorCase) => {
    const fixture = await seedConnection()

    const response = await rotateAs(method, fixture, errorCase.request)
    const body = await expectErrorResponse(response, errorCase.status, errorCase.type)

    if (errorCase.invalid !== undefined) {
      expect(body.error.invalid?.[0]?.entry_type).toBe(errorCase.invalid[0])
      expect(body.error.invalid?.[0]?.entry).toBe(errorCase.invalid[1])
    }
    expect(await listEvents(fixture.clientId)).toEqual([])
    await expectNothingRotated(fixture)
  })

  it('answers 503 and changes nothing when D1 rejects the audit row', async () => {
    const fixture = await seedConnection()
    const trigger = `reject_audit_${fixture.clientId.replace(/-/g, '')}`
    await env.DB.prepare(
      `CREATE TRIGGER ${trigger} BEFORE INSERT ON client_secret_events
      WHEN NEW.client_id = '${fixture.clientId}'
      BEGIN SELECT RAISE(ABORT, 'audit rejected by the test trigger'); END`,
    ).run()

    try {
      const response = await rotateAs(method, fixture)
      const text = await response.clone().text()
      await expectErrorResponse(response, 503, 'service_unavailable')

      expect(response.headers.get('Retry-After')).toMatch(/^[1-9]\d*$/)
      expect(text).not.toMatch(/audit rejected|sqlite|client_secret_events|D1_ERROR/i)
      await expectNothingRotated(fixture)
    } finally {
      await env.DB.prepare(`DROP TRIGGER ${trigger}`).run()
    }
  })
})

describe('SecretVerifier.verifyConnectionSecret over RPC', () => {
  let pepper: PepperKey
  let verifierEnv: Env

  beforeAll(() => {
    const runtime = runtimePepper()
    pepper = runtime.key
    verifierEnv = createEnv([keys.issuer], {
      SECRET_PEPPER: runtime.encoded,
      SECRET_PEPPER_ID: runtime.key.id,
    })
  })

  /** Seeds a connection whose hash uses the runtime pepper, which the entrypoint reads. */
  function seedVerified(clientBlocked = false): Promise<ConnectionFixture> {
    return seedConnection({ pepper, clientBlocked })
  }

  function connectionSecret(fixture: ConnectionFixture): string {
    return fixture.connection.oldSecret ?? ''
  }

  async function setConnectionSlots(connectionId: string, slots: Record<string, string | null>) {
    for (const [column, value] of Object.entries(slots)) {
      await env.DB.prepare(`UPDATE connections SET ${column} = ?1 WHERE id = ?2`)
        .bind(value, connectionId)
        .run()
    }
  }

  async function setPrevious(fixture: ConnectionFixture, previous: string, offsetMs: number) {
    const { connectionId } = fixture.connection
    const expiresAt = new Date(Date.now() + offsetMs).toISOString()
    await setConnectionSlots(connectionId, {
      previous_secret_hash: await expectedHash(connectionId, previous, pepper),
      previous_secret_expires_at: expiresAt,
    })
    return expiresAt
  }

  it('accepts the current secret', async () => {
    const fixture = await seedVerified()
    const { connectionId } = fixture.connection

    expect(
      await connectionVerifier().verifyConnectionSecret(connectionId, connectionSecret(fixture)),
    ).toEqual(CURRENT)
    expect(
      await connectionVerifier().verifyConnectionSecret(
        connectionId.toUpperCase(),
        connectionSecret(fixture),
      ),
    ).toEqual(CURRENT)
  })

  it('marks the previous secret deprecated in its grace period', async () => {
    const fixture = await seedVerified()
    const previous = newSecret()
    const expiresAt = await setPrevious(fixture, previous, 3600 * 1000)

    const result = await connectionVerifier().verifyConnectionSecret(
      fixture.connection.connectionId,
      previous,
    )

    expect(result).toEqual({
      valid: true,
      slot: 'previous',
      previousExpiresAt: expiresAt,
      deprecated: true,
    })
  })

  it('rejects the previous secret after its grace period', async () => {
    const fixture = await seedVerified()
    const previous = newSecret()
    await setPrevious(fixture, previous, -1000)

    expect(
      await connectionVerifier().verifyConnectionSecret(fixture.connection.connectionId, previous),
    ).toEqual(INVALID)
  })

  it('rejects a wrong secret', async () => {
    const fixture = await seedVerified()

    expect(
      await connectionVerifier().verifyConnectionSecret(
        fixture.connection.connectionId,
        newSecret(),
      ),
    ).toEqual(INVALID)
  })

  it('rejects both secrets of a connection of a blocked client', async () => {
    const fixture = await seedVerified(true)
    const previous = newSecret()
    await setPrevious(fixture, previous, 3600 * 1000)
    const verifier = connectionVerifier()
    const { connectionId } = fixture.connection

    expect(await verifier.verifyConnectionSecret(connectionId, connectionSecret(fixture))).toEqual(
      INVALID,
    )
    expect(await verifier.verifyConnectionSecret(connectionId, previous)).toEqual(INVALID)
  })

  it('rejects an unknown connection', async () => {
    const fixture = await seedVerified()

    expect(
      await connectionVerifier().verifyConnectionSecret(
        crypto.randomUUID(),
        connectionSecret(fixture),
      ),
    ).toEqual(INVALID)
  })

  it('keeps client secrets and connection secrets apart', async () => {
    const fixture = await seedVerified()
    await env.DB.prepare('UPDATE clients SET secret_hash = ?1 WHERE id = ?2')
      .bind(await expectedHash(fixture.clientId, fixture.oldSecret, pepper), fixture.clientId)
      .run()
    const verifier = connectionVerifier()
    const { connectionId } = fixture.connection

    expect(await verifier.verifyClientSecret(fixture.clientId, fixture.oldSecret)).toEqual(CURRENT)
    expect(await verifier.verifyConnectionSecret(fixture.clientId, fixture.oldSecret)).toEqual(
      INVALID,
    )
    expect(await verifier.verifyConnectionSecret(connectionId, fixture.oldSecret)).toEqual(INVALID)
    expect(await verifier.verifyClientSecret(connectionId, connectionSecret(fixture))).toEqual(
      INVALID,
    )
  })

  it('rejects a hash copied from another connection', async () => {
    const fixture = await seedVerified()
    const sibling = await addConnection(fixture, { pepper })
    await setConnectionSlots(fixture.connection.connectionId, {
      secret_hash: sibling.row.secret_hash,
    })
    const verifier = connectionVerifier()

    expect(await verifier.verifyConnectionSecret(sibling.connectionId, sibling.oldSecret)).toEqual(
      CURRENT,
    )
    expect(
      await verifier.verifyConnectionSecret(fixture.connection.connectionId, sibling.oldSecret),
    ).toEqual(INVALID)
  })

  it.each([
    ['not a UUID', 'not-a-uuid'],
    ['empty', ''],
    ['with a SQL wildcard', '%'],
  ])('rejects a connection id %s', async (_name, connectionId) => {
    const fixture = await seedVerified()

    expect(
      await connectionVerifier().verifyConnectionSecret(connectionId, connectionSecret(fixture)),
    ).toEqual(INVALID)
  })

  it('rejects non-string arguments', async () => {
    const fixture = await seedVerified()
    const { connectionId } = fixture.connection
    const cases: [unknown, unknown][] = [
      [connectionId, null],
      [connectionId, 12345],
      [connectionId, [connectionSecret(fixture)]],
      [null, connectionSecret(fixture)],
      [[connectionId], connectionSecret(fixture)],
    ]

    for (const [id, secret] of cases) {
      expect(
        await connectionVerifier().verifyConnectionSecret(id, secret),
        JSON.stringify(id),
      ).toEqual(INVALID)
    }
  })

  it('accepts the new secret and flags the old one after a rotation', async () => {
    const fixture = await seedVerified()
    const { connectionId } = fixture.connection

    const { body } = await rotateOk(
      CONNECTION_METHOD,
      fixture,
      { body: { previous_secret_expires_in: 600 } },
      verifierEnv,
    )
    const verifier = connectionVerifier()

    expect(await verifier.verifyConnectionSecret(connectionId, body.data.secret)).toEqual(CURRENT)
    expect(await verifier.verifyConnectionSecret(connectionId, connectionSecret(fixture))).toEqual({
      valid: true,
      slot: 'previous',
      previousExpiresAt: body.data.previous_secret_expires_at,
      deprecated: true,
    })
  })

  it('rejects the old secret after revoke_previous', async () => {
    const fixture = await seedVerified()
    const { connectionId } = fixture.connection

    const { body } = await rotateOk(
      CONNECTION_METHOD,
      fixture,
      { body: { revoke_previous: true } },
      verifierEnv,
    )
    const verifier = connectionVerifier()

    expect(await verifier.verifyConnectionSecret(connectionId, body.data.secret)).toEqual(CURRENT)
    expect(await verifier.verifyConnectionSecret(connectionId, connectionSecret(fixture))).toEqual(
      INVALID,
    )
  })

  describe('a connection whose secret_hash is NULL', () => {
    it('verifies no secret before its first rotation', async () => {
      const fixture = await seedConnection({ withoutSecret: true })
      const stored = await readConnection(fixture.connection.connectionId)

      expect(stored?.secret_hash).toBeNull()
      for (const secret of [newSecret(), 'a']) {
        expect(
          await connectionVerifier().verifyConnectionSecret(
            fixture.connection.connectionId,
            secret,
          ),
        ).toEqual(INVALID)
      }
    })

    it('rotates and then verifies the new secret', async () => {
      const fixture = await seedConnection({ withoutSecret: true, pepper })
      const { connectionId } = fixture.connection

      const { body } = await rotateOk(CONNECTION_METHOD, fixture, {}, verifierEnv)
      const stored = await readConnection(connectionId)

      expect(stored?.secret_hash).toBe(await expectedHash(connectionId, body.data.secret, pepper))
      expect(stored?.previous_secret_hash).toBeNull()
      expect(body.data.previous_secret_expires_at).toBeNull()
      expect(
        await connectionVerifier().verifyConnectionSecret(connectionId, body.data.secret),
      ).toEqual(CURRENT)
    })

    it('reports no expiry without a previous secret', async () => {
      const fixture = await seedConnection({ withoutSecret: true, pepper })
      const { connectionId } = fixture.connection

      const { body } = await rotateOk(
        CONNECTION_METHOD,
        fixture,
        { body: { previous_secret_expires_in: 600 } },
        verifierEnv,
      )
      const stored = await readConnection(connectionId)

      expect(stored?.previous_secret_hash).toBeNull()
      expect(body.data.previous_secret_expires_at).toBeNull()
      expect(stored?.previous_secret_expires_at).toBeNull()
    })
  })
})
