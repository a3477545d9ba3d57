import { env } from 'cloudflare:workers'
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import type { Env } from '../../src/config'
import { generateSecret, hashSecret, verifySecret } from '../../src/secret'
import { type RotationInput, rotateClientSecret } from '../../src/store'
import {
  callWorker,
  captureConsole,
  createEnv,
  createSigningKey,
  type Fixture,
  listEvents,
  listRotations,
  PEPPER_KEY,
  readClient,
  readData,
  refreshRequest,
  type SigningKey,
  seedClient,
  signToken,
} from './helpers'

/** A client id and a user id. */
type Pair = [clientId: string, userId: string]

/** Builds a rotation of `clientId` by `userId`, with no grace period, rate limit or retry key. */
async function rotationInput(
  clientId: string,
  userId: string,
): Promise<RotationInput & { secret: string }> {
  const secret = generateSecret()
  return {
    secret,
    clientId,
    userId,
    secretHash: await hashSecret(clientId, secret, PEPPER_KEY),
    previousExpiresAt: null,
    gracePeriod: 0,
    rateLimit: { limit: 0, windowStart: new Date(Date.now() - 3_600_000).toISOString() },
    idempotency: null,
    requestId: crypto.randomUUID(),
    ip: '198.51.100.20',
    userAgent: 'store-test',
    now: new Date().toISOString(),
  }
}

async function expectNotRotated(fixture: Fixture): Promise<void> {
  expect(await readClient(fixture.clientId)).toEqual(fixture.row)
  expect(await listRotations(fixture.clientId)).toEqual([])
}

/** Creates a trigger that aborts `event` on `table` for one client, and returns a drop function. */
async function rejectWrites(
  table: 'clients' | 'client_secret_events',
  event: 'INSERT' | 'UPDATE',
  clientId: string,
): Promise<() => Promise<unknown>> {
  const name = `reject_${table}_${event}_${clientId.replace(/-/g, '')}`.toLowerCase()
  const column = table === 'clients' ? 'id' : 'client_id'
  await env.DB.prepare(
    `CREATE TRIGGER ${name} BEFORE ${event} ON ${table}
    WHEN NEW.${column} = '${clientId}'
    BEGIN SELECT RAISE(ABORT, 'rejected by the test trigger'); END`,
  ).run()
  return () => env.DB.prepare(`DROP TRIGGER ${name}`).run()
}

describe('rotateClientSecret', () => {
  it('stores the new hash and returns the client', async () => {
    const fixture = await seedClient()
    const input = await rotationInput(fixture.clientId, fixture.ownerId)

    const outcome = await rotateClientSecret(env.DB, input)
    const stored = await readClient(fixture.clientId)

    expect(outcome.kind).toBe('rotated')
    expect(outcome).toHaveProperty('row.id', fixture.clientId)
    expect(outcome).not.toHaveProperty('row.secret_hash')
    expect(outcome).not.toHaveProperty('row.priv_settings')
    expect(stored?.secret_hash).toBe(input.secretHash)
    expect(stored?.updated_at).toBe(input.now)
    expect(await verifySecret(fixture.clientId, input.secret, input.secretHash, [PEPPER_KEY])).toBe(
      true,
    )
  })

  it('writes one audit row with the request facts', async () => {
    const fixture = await seedClient()
    const input = await rotationInput(fixture.clientId, fixture.ownerId)

    await rotateClientSecret(env.DB, input)
    const events = await listEvents(fixture.clientId)

    expect(events).toHaveLength(1)
    expect(events[0]?.event).toBe('secret_rotated')
    expect(events[0]?.actor_user_id).toBe(fixture.ownerId)
    expect(events[0]?.request_id).toBe(input.requestId)
    expect(events[0]?.ip).toBe(input.ip)
    expect(events[0]?.user_agent).toBe(input.userAgent)
    expect(events[0]?.occurred_at).toBe(input.now)
  })

  it.each([
    [
      'a missing client',
      'client_not_found',
      (f: Fixture): Pair => [crypto.randomUUID(), f.ownerId],
    ],
    ['a missing user', 'user_invalid', (f: Fixture): Pair => [f.clientId, crypto.randomUUID()]],
    ['a blocked user', 'user_invalid', (f: Fixture): Pair => [f.clientId, f.blockedUserId]],
    ['a role without the scope', 'role_missing', (f: Fixture): Pair => [f.clientId, f.nonOwnerId]],
  ] as const)('denies %s as %s', async (_name, reason, pick) => {
    const fixture = await seedClient()
    const [clientId, userId] = pick(fixture)

    const outcome = await rotateClientSecret(env.DB, await rotationInput(clientId, userId))

    expect(outcome).toEqual({ kind: 'denied', reason })
    await expectNotRotated(fixture)
  })

  it('denies the owner of another client as role_missing', async () => {
    const own = await seedClient()
    const other = await seedClient()

    const outcome = await rotateClientSecret(
      env.DB,
      await rotationInput(other.clientId, own.ownerId),
    )

    expect(outcome).toEqual({ kind: 'denied', reason: 'role_missing' })
    await expectNotRotated(other)
  })

  it('denies a blocked client as client_blocked', async () => {
    const fixture = await seedClient({ clientBlocked: true })

    const outcome = await rotateClientSecret(
      env.DB,
      await rotationInput(fixture.clientId, fixture.ownerId),
    )

    expect(outcome).toEqual({ kind: 'denied', reason: 'client_blocked' })
    await expectNotRotated(fixture)
  })

  it.each([
    [
      'a missing client and user',
      'client_not_found',
      {},
      (): Pair => [crypto.randomUUID(), crypto.randomUUID()],
    ],
    [
      'a blocked user of a blocked client',
      'user_invalid',
      { clientBlocked: true },
      (f: Fixture): Pair => [f.clientId, f.blockedUserId],
    ],
    [
      'a user without the role of a blocked client',
      'role_missing',
      { clientBlocked: true },
      (f: Fixture): Pair => [f.clientId, f.nonOwnerId],
    ],
  ] as const)('reports %s as %s', async (_name, reason, options, pick) => {
    const fixture = await seedClient(options)
    const [clientId, userId] = pick(fixture)

    const outcome = await rotateClientSecret(env.DB, await rotationInput(clientId, userId))

    expect(outcome).toEqual({ kind: 'denied', reason })
  })

  it.each([
    'secret:refresh',
    'openid secret:refresh',
    'secret:refresh openid',
    'a secret:refresh b',
  ])('grants the role scope %j', async (ownerScope) => {
    const fixture = await seedClient({ ownerScope })

    const outcome = await rotateClientSecret(
      env.DB,
      await rotationInput(fixture.clientId, fixture.ownerId),
    )

    expect(outcome.kind).toBe('rotated')
  })

  it.each([
    'secret:refresh_all',
    'xsecret:refresh',
    'secret:refreshing',
    'SECRET:REFRESH',
    'secret:refresh,openid',
    'secret',
    '',
  ])('denies the role scope %j', async (ownerScope) => {
    const fixture = await seedClient({ ownerScope })

    const outcome = await rotateClientSecret(
      env.DB,
      await rotationInput(fixture.clientId, fixture.ownerId),
    )

    expect(outcome).toEqual({ kind: 'denied', reason: 'role_missing' })
    await expectNotRotated(fixture)
  })
})

describe('schema', () => {
  it('enforces the user of a role grant', async () => {
    const fixture = await seedClient()
    const insert = env.DB.prepare(
      'INSERT INTO user_roles (id, user_id, role_id, client_id) VALUES (?1, ?2, ?3, ?4)',
    ).bind(crypto.randomUUID(), crypto.randomUUID(), fixture.ownerRoleId, fixture.clientId)

    await expect(insert.run()).rejects.toThrow(/FOREIGN KEY/i)
  })

  it('enforces the client type of a client', async () => {
    const insert = env.DB.prepare(
      "INSERT INTO clients (id, secret_hash, client_type_id) VALUES (?1, 'x', ?2)",
    ).bind(crypto.randomUUID(), crypto.randomUUID())

    await expect(insert.run()).rejects.toThrow(/FOREIGN KEY/i)
  })

  it('enforces the client of an audit row', async () => {
    const insert = env.DB.prepare(
      "INSERT INTO client_secret_events (id, client_id, event, occurred_at) VALUES (?1, ?2, 'secret_rotated', ?3)",
    ).bind(crypto.randomUUID(), crypto.randomUUID(), new Date().toISOString())

    await expect(insert.run()).rejects.toThrow(/FOREIGN KEY/i)
  })
})

describe('atomic rotation', () => {
  it.each([
    ['the audit row', 'client_secret_events', 'INSERT'],
    ['the client update', 'clients', 'UPDATE'],
  ] as const)('writes nothing when %s fails', async (_name, table, event) => {
    const fixture = await seedClient()
    const drop = await rejectWrites(table, event, fixture.clientId)

    try {
      const input = await rotationInput(fixture.clientId, fixture.ownerId)

      await expect(rotateClientSecret(env.DB, input)).rejects.toThrow()
      expect(await readClient(fixture.clientId)).toEqual(fixture.row)
      expect(await listEvents(fixture.clientId)).toEqual([])
    } finally {
      await drop()
    }
  })
})

describe('concurrent rotations', () => {
  const requests = 20
  let key: SigningKey

  beforeAll(async () => {
    key = await createSigningKey('ES256')
  })

  beforeEach(() => {
    captureConsole()
  })

  afterEach(() => {
    vi.restoreAllMocks()
  })

  async function rotateAtOnce(fixture: Fixture, workerEnv: Env) {
    const token = await signToken(key, { sub: fixture.ownerId, client_id: fixture.clientId })
    const responses = await Promise.all(
      Array.from({ length: requests }, () =>
        callWorker(refreshRequest(fixture.clientId, { token }), workerEnv),
      ),
    )

    const secrets: string[] = []
    for (const response of responses) {
      if (response.status === 200) secrets.push((await readData(response)).data.secret)
      else await response.body?.cancel()
    }
    return { statuses: responses.map((response) => response.status), secrets }
  }

  async function countVerified(fixture: Fixture, secrets: string[]): Promise<number> {
    const stored = (await readClient(fixture.clientId))?.secret_hash ?? ''
    let verified = 0
    for (const secret of secrets) {
      if (await verifySecret(fixture.clientId, secret, stored, [PEPPER_KEY])) verified += 1
    }
    return verified
  }

  it('leaves one winning secret and one audit row per success', async () => {
    const fixture = await seedClient()
    // Without the per-client rate limit, only concurrency decides which requests succeed.
    const workerEnv = createEnv([key], { ROTATION_RATE_LIMIT: '0' })

    const { statuses, secrets } = await rotateAtOnce(fixture, workerEnv)

    expect(statuses.filter((status) => status !== 200 && status !== 409)).toEqual([])
    expect(secrets.length).toBeGreaterThan(0)
    expect(new Set(secrets).size).toBe(secrets.length)
    expect(await countVerified(fixture, secrets)).toBe(1)
    expect(await listRotations(fixture.clientId)).toHaveLength(secrets.length)
  })

  it('lets no more rotations through than the rate limit', async () => {
    const fixture = await seedClient()
    const workerEnv = createEnv([key], { ROTATION_RATE_LIMIT: '3', ROTATION_RATE_WINDOW: '3600' })

    const { statuses, secrets } = await rotateAtOnce(fixture, workerEnv)

    expect(statuses.filter((status) => status !== 200 && status !== 429)).toEqual([])
    expect(secrets).toHaveLength(3)
    expect(await countVerified(fixture, secrets)).toBe(1)
    expect(await listRotations(fixture.clientId)).toHaveLength(3)
  })
})
