import { env } from 'cloudflare:workers'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { listEvents, PEPPER, readData, readError } from './helpers.ts'
import {
  insertEvents,
  isoAt,
  type RotationSetup,
  readSlots,
  rotate,
  setUpRotation,
  tokenFor,
} from './safety-helpers.ts'

const NOW = Date.parse('2026-06-01T12:00:00.000Z')
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const REQUEST_HEADERS = {
  'x-request-id': 'audit-request-1',
  'cf-connecting-ip': '203.0.113.7',
  'user-agent': 'clinic-app/2.1',
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] })
  vi.setSystemTime(NOW)
})

afterEach(() => {
  vi.useRealTimers()
})

/** Sends a request with `token` and returns its status and the audit rows it added. */
async function attempt(setup: RotationSetup, token: string, clientId = setup.fixture.clientId) {
  const response = await rotate(setup, { token, clientId, headers: REQUEST_HEADERS })
  return { status: response.status, events: await listEvents(clientId) }
}

function expectDenialRow(row: Record<string, unknown> | undefined, reason: string, actor: string) {
  expect(row?.event).toBe('secret_rotation_denied')
  expect(row?.outcome).toBe('denied')
  expect(row?.reason).toBe(reason)
  expect(row?.actor_user_id).toBe(actor)
  expect(row?.request_id).toBe(REQUEST_HEADERS['x-request-id'])
  expect(row?.ip).toBe(REQUEST_HEADERS['cf-connecting-ip'])
  expect(row?.user_agent).toBe(REQUEST_HEADERS['user-agent'])
  expect(row?.occurred_at).toBe(new Date(NOW).toISOString())
}

describe('rotation audit row', () => {
  it('records who, where and how', async () => {
    const setup = await setUpRotation()
    const response = await rotate(setup, {
      headers: REQUEST_HEADERS,
      body: { previous_secret_expires_in: 900 },
    })
    const events = await listEvents(setup.fixture.clientId)
    const [row] = events

    expect(response.status).toBe(200)
    expect(events).toHaveLength(1)
    expect(row?.id).toMatch(UUID)
    expect(row?.client_id).toBe(setup.fixture.clientId)
    expect(row?.actor_user_id).toBe(setup.fixture.ownerId)
    expect(row?.event).toBe('secret_rotated')
    expect(row?.outcome).toBe('rotated')
    expect(row?.reason).toBeNull()
    expect(row?.request_id).toBe('audit-request-1')
    expect(row?.ip).toBe('203.0.113.7')
    expect(row?.user_agent).toBe('clinic-app/2.1')
    expect(row?.grace_period).toBe(900)
    expect(row?.idempotency_replay).toBe(0)
    expect(row?.occurred_at).toBe(new Date(NOW).toISOString())
  })

  it('matches the response request id and update time', async () => {
    const setup = await setUpRotation()
    const response = await rotate(setup)
    const body = await readData(response)
    const [row] = await listEvents(setup.fixture.clientId)

    expect(row?.request_id).toBe(body.meta.request_id)
    expect(row?.request_id).toBe(response.headers.get('x-request-id'))
    expect(row?.occurred_at).toBe(body.data.updated_at)
  })

  it('records a grace period of 0 for revoke_previous', async () => {
    const setup = await setUpRotation({ GRACE_PERIOD_DEFAULT: '600' })
    await rotate(setup, { body: { revoke_previous: true } })
    const [row] = await listEvents(setup.fixture.clientId)

    expect(row?.grace_period).toBe(0)
  })

  it('records the default grace period when none is requested', async () => {
    const setup = await setUpRotation({ GRACE_PERIOD_DEFAULT: '600' })
    await rotate(setup)
    const [row] = await listEvents(setup.fixture.clientId)

    expect(row?.grace_period).toBe(600)
  })

  it('leaves ip and user agent null when absent', async () => {
    const setup = await setUpRotation()
    await rotate(setup)
    const [row] = await listEvents(setup.fixture.clientId)

    expect(row?.ip).toBeNull()
    expect(row?.user_agent).toBeNull()
  })

  it('caps a long user agent', async () => {
    const setup = await setUpRotation()
    await rotate(setup, { headers: { 'user-agent': 'u'.repeat(5000) } })
    const [row] = await listEvents(setup.fixture.clientId)
    const userAgent = row?.user_agent

    expect(typeof userAgent).toBe('string')
    expect(String(userAgent).length).toBeLessThanOrEqual(512)
    expect(String(userAgent)).toMatch(/^u+$/)
  })

  it('is written once per rotation', async () => {
    const setup = await setUpRotation()
    for (let index = 0; index < 3; index += 1) {
      expect((await rotate(setup)).status).toBe(200)
    }
    const events = await listEvents(setup.fixture.clientId)

    expect(events.map((row) => row.event)).toEqual([
      'secret_rotated',
      'secret_rotated',
      'secret_rotated',
    ])
    expect(new Set(events.map((row) => row.id)).size).toBe(3)
  })

  it('marks an Idempotency-Key replay', async () => {
    const setup = await setUpRotation()
    const key = `retry-${crypto.randomUUID()}`
    await rotate(setup, { idempotencyKey: key })
    await rotate(setup, { idempotencyKey: key, headers: REQUEST_HEADERS })
    const events = await listEvents(setup.fixture.clientId)
    // Both requests run at the same fake instant, so the replay is found by its request id.
    const replay = events.find((row) => row.request_id === REQUEST_HEADERS['x-request-id'])

    expect(events).toHaveLength(2)

    expect(replay?.event).toBe('secret_rotation_replayed')
    expect(replay?.outcome).toBe('replayed')
    expect(replay?.reason).toBeNull()
    expect(replay?.idempotency_replay).toBe(1)
    expect(replay?.actor_user_id).toBe(setup.fixture.ownerId)
  })
})

describe('denied attempts', () => {
  it('record a missing scope', async () => {
    const setup = await setUpRotation()
    const token = await tokenFor(setup.key, setup.fixture.ownerId, setup.fixture.clientId, {
      scope: 'legal_entity:read',
    })
    const { status, events } = await attempt(setup, token)

    expect(status).toBe(403)
    expect(events).toHaveLength(1)
    expectDenialRow(events[0], 'scope_missing', setup.fixture.ownerId)
  })

  it('record a token of another client', async () => {
    const setup = await setUpRotation()
    const token = await tokenFor(setup.key, setup.fixture.ownerId, crypto.randomUUID())
    const { status, events } = await attempt(setup, token)

    expect(status).toBe(403)
    expect(events).toHaveLength(1)
    expectDenialRow(events[0], 'client_mismatch', setup.fixture.ownerId)
  })

  it('record a blocked user', async () => {
    const setup = await setUpRotation()
    const { blockedUserId, clientId } = setup.fixture
    const { status, events } = await attempt(
      setup,
      await tokenFor(setup.key, blockedUserId, clientId),
    )

    expect(status).toBe(401)
    expect(events).toHaveLength(1)
    expectDenialRow(events[0], 'user_invalid', blockedUserId)
  })

  it('record an unknown user', async () => {
    const setup = await setUpRotation()
    const stranger = crypto.randomUUID()
    const token = await tokenFor(setup.key, stranger, setup.fixture.clientId)
    const { status, events } = await attempt(setup, token)

    expect(status).toBe(401)
    expect(events).toHaveLength(1)
    expectDenialRow(events[0], 'user_invalid', stranger)
  })

  it('record a user without the role', async () => {
    const setup = await setUpRotation()
    const { nonOwnerId, clientId } = setup.fixture
    const { status, events } = await attempt(setup, await tokenFor(setup.key, nonOwnerId, clientId))

    expect(status).toBe(403)
    expect(events).toHaveLength(1)
    expectDenialRow(events[0], 'role_missing', nonOwnerId)
  })

  it('record a blocked client', async () => {
    const setup = await setUpRotation({}, { clientBlocked: true })
    const { status, events } = await attempt(setup, setup.token)

    expect(status).toBe(403)
    expect(events).toHaveLength(1)
    expectDenialRow(events[0], 'client_blocked', setup.fixture.ownerId)
  })

  it('record the rate limit', async () => {
    const setup = await setUpRotation({ ROTATION_RATE_LIMIT: '1' })
    await insertEvents(setup.fixture.clientId, [isoAt(NOW, -10)])
    const { status, events } = await attempt(setup, setup.token)
    const denials = events.filter((row) => row.event === 'secret_rotation_denied')

    expect(status).toBe(429)
    expect(denials).toHaveLength(1)
    expectDenialRow(denials[0], 'rate_limited', setup.fixture.ownerId)
  })

  it('record a reused Idempotency-Key', async () => {
    const setup = await setUpRotation()
    const key = `retry-${crypto.randomUUID()}`
    await rotate(setup, { idempotencyKey: key })
    const response = await rotate(setup, {
      idempotencyKey: key,
      body: { previous_secret_expires_in: 60 },
      headers: REQUEST_HEADERS,
    })
    const denials = (await listEvents(setup.fixture.clientId)).filter(
      (row) => row.event === 'secret_rotation_denied',
    )

    expect(response.status).toBe(422)
    expect(denials).toHaveLength(1)
    expectDenialRow(denials[0], 'idempotency_key_reused', setup.fixture.ownerId)
  })

  it('leave the secret unchanged', async () => {
    const setup = await setUpRotation()
    const { nonOwnerId, clientId } = setup.fixture
    await attempt(setup, await tokenFor(setup.key, nonOwnerId, clientId))

    expect((await readSlots(clientId)).secret_hash).toBe(setup.fixture.row.secret_hash)
  })
})

describe('unknown clients', () => {
  async function countAllEvents(clientId: string): Promise<number> {
    const row = await env.DB.prepare(
      'SELECT count(*) AS n FROM client_secret_events WHERE client_id = ?1',
    )
      .bind(clientId)
      .first<{ n: number }>()
    return row?.n ?? 0
  }

  it('get no row for a matching token', async () => {
    const setup = await setUpRotation()
    const unknown = crypto.randomUUID()
    const token = await tokenFor(setup.key, setup.fixture.ownerId, unknown)
    const response = await rotate(setup, { token, clientId: unknown })

    expect(response.status).toBe(404)
    expect((await readError(response)).error.type).toBe('not_found')
    expect(await countAllEvents(unknown)).toBe(0)
  })

  it('get no row for a missing scope', async () => {
    const setup = await setUpRotation()
    const unknown = crypto.randomUUID()
    const token = await tokenFor(setup.key, setup.fixture.ownerId, unknown, { scope: 'openid' })
    const response = await rotate(setup, { token, clientId: unknown })

    expect(response.status).toBe(403)
    expect(await countAllEvents(unknown)).toBe(0)
  })

  it('get no row for a token of another client', async () => {
    const setup = await setUpRotation()
    const unknown = crypto.randomUUID()
    const response = await rotate(setup, { clientId: unknown })

    expect(response.status).toBe(403)
    expect(await countAllEvents(unknown)).toBe(0)
    expect(await countAllEvents(setup.fixture.clientId)).toBe(0)
  })
})

describe('audit trail contents', () => {
  it('hold no secret material', async () => {
    const setup = await setUpRotation()
    const key = `retry-${crypto.randomUUID()}`
    const first = await readData(
      await rotate(setup, { body: { previous_secret_expires_in: 600 }, headers: REQUEST_HEADERS }),
    )
    await rotate(setup, { idempotencyKey: key })
    await rotate(setup, { idempotencyKey: key })
    await rotate(setup, { idempotencyKey: key, body: { revoke_previous: true } })
    const slots = await readSlots(setup.fixture.clientId)
    const events = JSON.stringify(await listEvents(setup.fixture.clientId))

    expect(events).not.toContain(setup.fixture.oldSecret)
    expect(events).not.toContain(first.data.secret)
    expect(events).not.toContain(setup.fixture.row.secret_hash.split('$')[2])
    expect(events).not.toContain(slots.secret_hash.split('$')[2])
    expect(events).not.toContain(key)
    expect(events).not.toContain(PEPPER)
    expect(events).not.toContain(setup.token)
  })
})

describe('atomic rotation and audit', () => {
  it('keeps the old secret when the audit write fails', async () => {
    const setup = await setUpRotation()
    const trigger = `reject_audit_${setup.fixture.clientId.replace(/-/g, '_')}`
    await env.DB.prepare(
      `CREATE TRIGGER ${trigger} BEFORE INSERT ON client_secret_events
      WHEN NEW.client_id = '${setup.fixture.clientId}'
      BEGIN SELECT RAISE(ABORT, 'audit rejected by test'); END`,
    ).run()

    try {
      const response = await rotate(setup)
      const body = await readError(response)

      expect(response.status).toBe(503)
      expect(body.error.type).toBe('service_unavailable')
      expect(response.headers.get('Retry-After')).toMatch(/^[1-9][0-9]*$/)
      expect(JSON.stringify(body)).not.toContain('audit rejected')
      expect(await readSlots(setup.fixture.clientId)).toEqual({
        secret_hash: setup.fixture.row.secret_hash,
        previous_secret_hash: null,
        previous_secret_expires_at: null,
      })
    } finally {
      await env.DB.prepare(`DROP TRIGGER ${trigger}`).run()
    }
  })
})
