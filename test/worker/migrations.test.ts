import { applyD1Migrations, type D1Migration } from 'cloudflare:test'
import { env } from 'cloudflare:workers'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  callWorker,
  createEnv,
  createSigningKey,
  PEPPER_KEY,
  readData,
  refreshRequest,
} from './helpers.ts'
import { expectedHash, tokenFor } from './safety-helpers.ts'

/**
 * A database of its own (`MIGRATION_DB` in vitest.config.ts), upgraded as a deployed one is:
 * the schema of 0001 with rows in it, then 0002 on top. The test setup migrated `DB` in one step,
 * which shows nothing about existing rows.
 */
const db = (env as unknown as { MIGRATION_DB: D1Database }).MIGRATION_DB

const SEEDED_AT = '2025-03-01T10:00:00.000Z'
const ids = {
  user: '6f1c0f4e-0000-4000-8000-000000000001',
  clientType: '6f1c0f4e-0000-4000-8000-000000000002',
  client: '6f1c0f4e-0000-4000-8000-000000000003',
  role: '6f1c0f4e-0000-4000-8000-000000000004',
  userRole: '6f1c0f4e-0000-4000-8000-000000000005',
  consumer: '6f1c0f4e-0000-4000-8000-000000000006',
  connection: '6f1c0f4e-0000-4000-8000-000000000007',
}
const legacySecret = 'kG5nJ8rYb2Qw4Vt7Zx1Lp9Hs3Df6Ma0Ce2Ru5Wy8Tio'

function migrationNamed(prefix: string): D1Migration {
  const migration = env.TEST_MIGRATIONS.find((item) => item.name.startsWith(prefix))
  if (migration === undefined) throw new Error(`no migration named ${prefix}_*.sql`)
  return migration
}

async function selectAll(sql: string): Promise<Record<string, unknown>[]> {
  return (await db.prepare(sql).all<Record<string, unknown>>()).results
}

async function columnsOf(table: string): Promise<string[]> {
  const rows = await selectAll(`SELECT name FROM pragma_table_info('${table}')`)
  return rows.map((row) => row.name as string)
}

/** Inserts a client with its owner, role, a connection and audit rows, using 0001 columns only. */
async function insertLegacyRows(secretHash: string): Promise<void> {
  const insertEvent = db.prepare(
    `INSERT INTO client_secret_events (id, client_id, actor_user_id, event, request_id, ip,
      user_agent, occurred_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)`,
  )
  const insertClient = db.prepare(
    `INSERT INTO clients (id, name, secret_hash, redirect_uri, settings, priv_settings, user_id,
      client_type_id, is_blocked, block_reason, inserted_at, updated_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, NULL, ?9, ?9)`,
  )
  await db.batch([
    db
      .prepare(`INSERT INTO users (id, email, inserted_at, updated_at) VALUES (?1, ?2, ?3, ?3)`)
      .bind(ids.user, 'owner@legacy.test', SEEDED_AT),
    db
      .prepare(`INSERT INTO client_types (id, name, scope) VALUES (?1, 'MSP', 'app:authorize')`)
      .bind(ids.clientType),
    insertClient.bind(
      ids.client,
      'Legacy clinic',
      secretHash,
      'https://legacy.test/cb',
      '{"allowed_grant_types":["password"]}',
      '{"access_type":"DIRECT"}',
      ids.user,
      ids.clientType,
      SEEDED_AT,
    ),
    insertClient.bind(
      ids.consumer,
      'Legacy consumer',
      secretHash,
      null,
      '{}',
      null,
      ids.user,
      ids.clientType,
      SEEDED_AT,
    ),
    db
      .prepare(`INSERT INTO roles (id, name, scope) VALUES (?1, 'OWNER', 'secret:refresh')`)
      .bind(ids.role),
    db
      .prepare(`INSERT INTO user_roles (id, user_id, role_id, client_id) VALUES (?1, ?2, ?3, ?4)`)
      .bind(ids.userRole, ids.user, ids.role, ids.client),
    db
      .prepare(
        `INSERT INTO connections (id, client_id, consumer_id, secret_hash, inserted_at)
        VALUES (?1, ?2, ?3, NULL, ?4)`,
      )
      .bind(ids.connection, ids.client, ids.consumer, SEEDED_AT),
    insertEvent.bind(
      'event-rotated',
      ids.client,
      ids.user,
      'secret_rotated',
      'req-1',
      '198.51.100.1',
      'legacy-ui',
      '2025-03-02T10:00:00.000Z',
    ),
    insertEvent.bind(
      'event-other',
      ids.client,
      ids.user,
      'secret_viewed',
      'req-2',
      null,
      null,
      '2025-03-03T10:00:00.000Z',
    ),
  ])
}

let legacyHash: string
let clientsBefore: Record<string, unknown>[]
let eventsBefore: Record<string, unknown>[]
let otherTablesBefore: string

async function dumpOtherTables(): Promise<string> {
  const tables = ['users', 'client_types', 'roles', 'user_roles']
  const dump = await Promise.all(tables.map((table) => selectAll(`SELECT * FROM ${table}`)))
  return JSON.stringify(dump)
}

beforeAll(async () => {
  legacyHash = await expectedHash(ids.client, legacySecret, PEPPER_KEY)
  await applyD1Migrations(db, [migrationNamed('0001')])
  await insertLegacyRows(legacyHash)

  clientsBefore = await selectAll('SELECT * FROM clients ORDER BY id')
  eventsBefore = await selectAll('SELECT * FROM client_secret_events ORDER BY id')
  otherTablesBefore = await dumpOtherTables()

  await applyD1Migrations(db, [migrationNamed('0001'), migrationNamed('0002')])
})

describe('0002 on a database with rows', () => {
  it('records both migrations as applied', async () => {
    const applied = await selectAll('SELECT name FROM d1_migrations ORDER BY id')

    expect(applied.map((row) => row.name)).toEqual([
      migrationNamed('0001').name,
      migrationNamed('0002').name,
    ])
  })

  it('keeps every client column and value', async () => {
    const clients = await selectAll('SELECT * FROM clients ORDER BY id')

    expect(clients).toHaveLength(clientsBefore.length)
    for (const [index, before] of clientsBefore.entries()) {
      expect(clients[index]).toMatchObject(before)
    }
  })

  it('adds an empty previous-secret slot to clients', async () => {
    const clients = await selectAll('SELECT * FROM clients ORDER BY id')

    expect(await columnsOf('clients')).toEqual(
      expect.arrayContaining(['previous_secret_hash', 'previous_secret_expires_at']),
    )
    for (const client of clients) {
      expect(client.previous_secret_hash).toBeNull()
      expect(client.previous_secret_expires_at).toBeNull()
    }
  })

  it('keeps every audit row', async () => {
    const events = await selectAll('SELECT * FROM client_secret_events ORDER BY id')

    expect(events).toHaveLength(eventsBefore.length)
    for (const [index, before] of eventsBefore.entries()) {
      expect(events[index]).toMatchObject(before)
    }
  })

  it('backfills outcome for past rotations only', async () => {
    const events = await selectAll(
      'SELECT id, outcome, reason, grace_period, idempotency_replay FROM client_secret_events',
    )
    const byId = new Map(events.map((row) => [row.id, row]))

    expect(byId.get('event-rotated')).toEqual({
      id: 'event-rotated',
      outcome: 'rotated',
      reason: null,
      grace_period: null,
      idempotency_replay: 0,
    })
    expect(byId.get('event-other')?.outcome).toBeNull()
    expect(byId.get('event-other')?.idempotency_replay).toBe(0)
  })

  it('leaves users, client types, roles and grants unchanged', async () => {
    expect(await dumpOtherTables()).toBe(otherTablesBefore)
  })

  it('creates idempotency_records keyed by client, user and key hash', async () => {
    const insert = db.prepare(
      `INSERT INTO idempotency_records (client_id, user_id, key_hash, request_fingerprint,
        pepper_id, response_ciphertext, response_data, request_id, created_at, expires_at)
      VALUES (?1, ?2, 'hash', 'fp', 'k1', 'iv.ct', '{}', 'req', ?3, ?3)`,
    )
    await insert.bind(ids.client, ids.user, SEEDED_AT).run()

    await expect(insert.bind(ids.client, ids.user, SEEDED_AT).run()).rejects.toThrow(/UNIQUE/)
    await insert.bind(ids.consumer, ids.user, SEEDED_AT).run()
    expect(await columnsOf('idempotency_records')).toEqual([
      'client_id',
      'user_id',
      'key_hash',
      'request_fingerprint',
      'pepper_id',
      'response_ciphertext',
      'response_data',
      'request_id',
      'created_at',
      'expires_at',
    ])
    await db.prepare('DELETE FROM idempotency_records').run()
  })

  it('creates the indexes for the rate limit and pruning', async () => {
    const indexes = await selectAll("SELECT name FROM sqlite_master WHERE type = 'index'")
    const names = indexes.map((row) => row.name)

    expect(names).toContain('client_secret_events_client_id_event_occurred_at')
    expect(names).toContain('idempotency_records_expires_at')
  })

  it('has no column that stores a plain secret', async () => {
    const tables = ['clients', 'client_secret_events', 'idempotency_records']
    const columns = (await Promise.all(tables.map(columnsOf))).flat()

    expect(columns.filter((name) => /^(secret|previous_secret|client_secret)$/.test(name))).toEqual(
      [],
    )
  })
})

describe('the Worker on the upgraded database', () => {
  beforeAll(async () => {
    await applyD1Migrations(db, env.TEST_MIGRATIONS)
  })

  it('rotates a client created before 0002', async () => {
    const key = await createSigningKey()
    const workerEnv = { ...createEnv([key]), DB: db }
    const token = await tokenFor(key, ids.user, ids.client)
    const request = refreshRequest(ids.client, {
      token,
      headers: { 'content-type': 'application/json', 'idempotency-key': 'legacy-retry' },
      body: JSON.stringify({ previous_secret_expires_in: 600 }),
    })
    const response = await callWorker(request, workerEnv)
    const { data } = await readData(response)
    const [client] = await selectAll(
      `SELECT secret_hash, previous_secret_hash, previous_secret_expires_at FROM clients
      WHERE id = '${ids.client}'`,
    )
    const events = await selectAll(
      `SELECT event, outcome, grace_period FROM client_secret_events
      WHERE client_id = '${ids.client}' ORDER BY occurred_at`,
    )

    expect(response.status).toBe(200)
    expect(data.name).toBe('Legacy clinic')
    expect(client?.secret_hash).toBe(await expectedHash(ids.client, data.secret, PEPPER_KEY))
    expect(client?.previous_secret_hash).toBe(legacyHash)
    expect(client?.previous_secret_expires_at).toBe(data.previous_secret_expires_at)
    expect(events.at(-1)).toEqual({
      event: 'secret_rotated',
      outcome: 'rotated',
      grace_period: 600,
    })
    expect(await selectAll('SELECT client_id FROM idempotency_records')).toEqual([
      { client_id: ids.client },
    ])
  })
})
