// D1 faults during a rotation. The rotation is one batch of five statements: write the audit row
// that stores the decision, rotate, read the decision, remember the response and prune expired
// records. A failure in any one of them leaves the client, its audit trail and its idempotency
// records as they were. The caller gets 503 with Retry-After and no driver text.

import { env } from 'cloudflare:workers'
import { beforeAll, describe, expect, it } from 'vitest'
import type { Env } from '../../src/config'
import type { RotationStatements } from '../../src/rotation-sql'
import {
  callWorker,
  captureConsole,
  createEnv,
  createSigningKey,
  expectErrorResponse,
  type Fixture,
  listEvents,
  listRotations,
  readClient,
  readData,
  refreshRequest,
  type SigningKey,
  seedClient,
  signToken,
} from './helpers'
import { expectedHash } from './safety-helpers'

/** The statements of the rotation batch, in the order the batch runs them. */
const STATEMENTS: (keyof RotationStatements)[] = [
  'audit',
  'rotate',
  'readDecision',
  'remember',
  'prune',
]

/** Text that a 503 body must never contain: driver names, SQL and table names. */
const DRIVER_TEXT =
  /D1_|SQLITE|sqlite|no such table|constraint|trigger|fault|SELECT|INSERT|UPDATE|DELETE|client_secret_events|idempotency_records/

let key: SigningKey

beforeAll(async () => {
  key = await createSigningKey('ES256')
})

function workerEnvWith(db: D1Database = env.DB): Env {
  return { ...createEnv([key], { ROTATION_RATE_LIMIT: '0' }), DB: db }
}

async function rotate(fixture: Fixture, workerEnv: Env, idempotencyKey: string): Promise<Response> {
  const token = await signToken(key, { sub: fixture.ownerId, client_id: fixture.clientId })
  return callWorker(
    refreshRequest(fixture.clientId, { token, headers: { 'idempotency-key': idempotencyKey } }),
    workerEnv,
  )
}

async function listRecords(clientId: string): Promise<Record<string, unknown>[]> {
  const { results } = await env.DB.prepare(
    'SELECT * FROM idempotency_records WHERE client_id = ?1 ORDER BY key_hash',
  )
    .bind(clientId)
    .all<Record<string, unknown>>()
  return results
}

/** Everything a rotation of the client may write. */
async function snapshot(clientId: string) {
  return {
    client: await readClient(clientId),
    events: await listEvents(clientId),
    records: await listRecords(clientId),
  }
}

/**
 * Seeds a client that rotated once with an Idempotency-Key, so it has an audit row and a
 * replayable record, plus an expired record that the prune statement of the next batch deletes.
 */
async function seedRotatedClient(): Promise<Fixture> {
  const fixture = await seedClient()
  const first = await rotate(fixture, workerEnvWith(), 'first-attempt')
  await first.body?.cancel()
  expect(first.status).toBe(200)

  await env.DB.prepare(
    `INSERT INTO idempotency_records (client_id, user_id, key_hash, request_fingerprint,
      pepper_id, response_ciphertext, response_data, request_id, created_at, expires_at)
    VALUES (?1, ?2, ?3, 'fingerprint', 'k1', 'ciphertext', '{}', 'expired', ?4, ?4)`,
  )
    .bind(
      fixture.clientId,
      fixture.ownerId,
      `expired-${crypto.randomUUID()}`,
      '1970-01-01T00:00:00.000Z',
    )
    .run()
  return fixture
}

/**
 * Wraps D1 so that the batch of the rotation fails at statement `index`: that statement is
 * replaced by one that reads a table that does not exist, so D1 itself aborts the transaction
 * after the statements before it have run.
 */
function failingAt(index: number): D1Database {
  const db = env.DB
  return new Proxy(db, {
    get(target, property) {
      if (property !== 'batch') {
        const value = Reflect.get(target, property, target)
        return typeof value === 'function' ? value.bind(target) : value
      }
      return (statements: D1PreparedStatement[]) => {
        expect(statements).toHaveLength(STATEMENTS.length)
        const replaced = [...statements]
        replaced[index] = target.prepare('SELECT * FROM fault_injected_missing_table')
        return target.batch(replaced)
      }
    },
  })
}

/** The table and event that a trigger must abort to make one writing statement fail. */
const TRIGGERS: Record<Exclude<keyof RotationStatements, 'readDecision'>, string> = {
  rotate: 'BEFORE UPDATE ON clients WHEN OLD.id = ?',
  audit: 'BEFORE INSERT ON client_secret_events WHEN NEW.client_id = ?',
  remember: 'BEFORE INSERT ON idempotency_records WHEN NEW.client_id = ?',
  prune: 'BEFORE DELETE ON idempotency_records WHEN OLD.client_id = ?',
}

async function withTrigger<T>(
  statement: keyof typeof TRIGGERS,
  clientId: string,
  action: () => Promise<T>,
): Promise<T> {
  const name = `fault_${statement}_${clientId.replace(/-/g, '')}`
  const condition = TRIGGERS[statement].replace('?', `'${clientId}'`)
  await env.DB.prepare(
    `CREATE TRIGGER ${name} ${condition}
    BEGIN SELECT RAISE(ABORT, 'fault injected into ${statement}'); END`,
  ).run()
  try {
    return await action()
  } finally {
    await env.DB.prepare(`DROP TRIGGER ${name}`).run()
  }
}

async function expectUnavailable(response: Response): Promise<void> {
  const text = await response.clone().text()
  await expectErrorResponse(response, 503, 'service_unavailable')

  expect(response.headers.get('Retry-After')).toMatch(/^[1-9]\d*$/)
  expect(response.headers.has('WWW-Authenticate')).toBe(false)
  expect(text).not.toMatch(DRIVER_TEXT)
}

/** After the fault, the same Idempotency-Key rotates anew: no record of the failed try was kept. */
async function expectCleanRetry(fixture: Fixture, before: Awaited<ReturnType<typeof snapshot>>) {
  const retry = await rotate(fixture, workerEnvWith(), 'second-attempt')
  await retry.body?.cancel()

  expect(retry.status).toBe(200)
  expect(retry.headers.get('Idempotent-Replayed')).toBeNull()
  expect(await listEvents(fixture.clientId)).toHaveLength(before.events.length + 1)
}

async function expectForeignKeysHold(): Promise<void> {
  const { results } = await env.DB.prepare('PRAGMA foreign_key_check').all()
  expect(results).toEqual([])
}

describe('a failing statement of the rotation batch', () => {
  it.each(STATEMENTS.map((statement, index) => ({ statement, index })))(
    '$statement failed by D1 writes nothing',
    async ({ index }) => {
      captureConsole()
      const fixture = await seedRotatedClient()
      const before = await snapshot(fixture.clientId)

      await expectUnavailable(
        await rotate(fixture, workerEnvWith(failingAt(index)), 'second-attempt'),
      )

      expect(await snapshot(fixture.clientId)).toEqual(before)
      await expectForeignKeysHold()
      await expectCleanRetry(fixture, before)
    },
  )

  it.each(Object.keys(TRIGGERS) as (keyof typeof TRIGGERS)[])(
    '%s aborted by a trigger writes nothing',
    async (statement) => {
      captureConsole()
      const fixture = await seedRotatedClient()
      const before = await snapshot(fixture.clientId)

      const response = await withTrigger(statement, fixture.clientId, () =>
        rotate(fixture, workerEnvWith(), 'second-attempt'),
      )
      await expectUnavailable(response)

      expect(await snapshot(fixture.clientId)).toEqual(before)
      await expectForeignKeysHold()
      await expectCleanRetry(fixture, before)
    },
  )
})

describe('an unavailable database', () => {
  /** Returns a D1 binding whose every call fails as when the database cannot be reached. */
  function unavailable(): D1Database {
    const lost = () => Promise.reject(new Error('D1_ERROR: Network connection lost.'))
    const statement = { bind: () => statement, first: lost, all: lost, run: lost, raw: lost }
    return {
      prepare: () => statement,
      batch: lost,
      exec: lost,
      dump: lost,
    } as unknown as D1Database
  }

  it('returns 503 to an authorized rotation', async () => {
    const output = captureConsole()
    const fixture = await seedClient()

    await expectUnavailable(await rotate(fixture, workerEnvWith(unavailable()), 'during-outage'))

    expect(await readClient(fixture.clientId)).toEqual(fixture.row)
    expect(output.records().some((record) => record.reason === 'database_unavailable')).toBe(true)
  })

  it('returns 403 to another client and logs', async () => {
    const output = captureConsole()
    const fixture = await seedClient()
    const token = await signToken(key, { sub: fixture.ownerId, client_id: crypto.randomUUID() })

    const response = await callWorker(
      refreshRequest(fixture.clientId, { token }),
      workerEnvWith(unavailable()),
    )
    await expectErrorResponse(response, 403, 'forbidden')

    expect(output.records().some((record) => record.message === 'audit write failed')).toBe(true)
    expect(await listEvents(fixture.clientId)).toEqual([])
  })
})

describe('a batch that commits but loses its reply', () => {
  const lost = () => new Error('D1_ERROR: Network connection lost.')

  /**
   * Returns a D1 binding whose batch commits and then fails, as when the reply is lost. With
   * `readsFail`, every read after that batch fails too.
   */
  function losingReplies(options: { readsFail: boolean }): D1Database {
    let committed = false
    return new Proxy(env.DB, {
      get(target, property) {
        if (property === 'batch') {
          return async (statements: D1PreparedStatement[]) => {
            await target.batch(statements)
            committed = true
            throw lost()
          }
        }
        if (property === 'prepare' && options.readsFail && committed) {
          return () => {
            const statement = { bind: () => statement, first: () => Promise.reject(lost()) }
            return statement
          }
        }
        const value = Reflect.get(target, property, target)
        return typeof value === 'function' ? value.bind(target) : value
      },
    })
  }

  it('returns the committed secret when the rotation can be read back', async () => {
    captureConsole()
    const fixture = await seedClient()

    const response = await rotate(
      fixture,
      workerEnvWith(losingReplies({ readsFail: false })),
      'lost-reply',
    )
    const { data } = await readData(response)
    const stored = await readClient(fixture.clientId)

    expect(response.status).toBe(200)
    expect(data.id).toBe(fixture.clientId)
    expect(stored?.secret_hash).toBe(await expectedHash(fixture.clientId, data.secret))
    expect(await listRotations(fixture.clientId)).toHaveLength(1)
  })

  it('answers 503 when the rotation cannot be read back, and a retry replays it', async () => {
    captureConsole()
    const fixture = await seedClient()

    const failed = await rotate(
      fixture,
      workerEnvWith(losingReplies({ readsFail: true })),
      'lost-reply',
    )
    await expectUnavailable(failed)
    const retry = await rotate(fixture, workerEnvWith(), 'lost-reply')
    const { data } = await readData(retry)
    const stored = await readClient(fixture.clientId)

    expect(retry.headers.get('Idempotent-Replayed')).toBe('true')
    expect(stored?.secret_hash).toBe(await expectedHash(fixture.clientId, data.secret))
    expect(await listRotations(fixture.clientId)).toHaveLength(1)
  })
})

describe('schema constraints', () => {
  const seededAt = '2025-03-01T10:00:00.000Z'

  const violations: [name: string, sql: (f: Fixture) => [string, ...unknown[]]][] = [
    [
      'an audit row naming a connection that does not exist',
      (f) => [
        `INSERT INTO client_secret_events (id, client_id, connection_id, event, occurred_at)
        VALUES (?1, ?2, ?3, 'secret_rotated', ?4)`,
        crypto.randomUUID(),
        f.clientId,
        crypto.randomUUID(),
        seededAt,
      ],
    ],
    [
      'an idempotency record of a client that does not exist',
      (f) => [
        `INSERT INTO idempotency_records (client_id, user_id, key_hash, request_fingerprint,
          pepper_id, response_ciphertext, response_data, request_id, created_at, expires_at)
        VALUES (?1, ?2, 'h', 'f', 'k1', 'c', '{}', 'r', ?3, ?3)`,
        crypto.randomUUID(),
        f.ownerId,
        seededAt,
      ],
    ],
    [
      'a client without a secret hash',
      (f) => ['UPDATE clients SET secret_hash = NULL WHERE id = ?1', f.clientId],
    ],
    ['a blocked flag of 2', (f) => ['UPDATE clients SET is_blocked = 2 WHERE id = ?1', f.clientId]],
    [
      'a second grant of the same role',
      (f) => [
        'INSERT INTO user_roles (id, user_id, role_id, client_id) VALUES (?1, ?2, ?3, ?4)',
        crypto.randomUUID(),
        f.ownerId,
        f.ownerRoleId,
        f.clientId,
      ],
    ],
    [
      'deleting a client that has audit rows',
      (f) => ['DELETE FROM clients WHERE id = ?1', f.clientId],
    ],
  ]

  it.each(violations)('reject %s', async (_name, build) => {
    const fixture = await seedRotatedClient()
    const [sql, ...values] = build(fixture)

    await expect(
      env.DB.prepare(sql)
        .bind(...values)
        .run(),
    ).rejects.toThrow(/constraint/i)
    expect(await readClient(fixture.clientId)).toMatchObject({
      id: fixture.clientId,
      is_blocked: 0,
    })
  })
})
