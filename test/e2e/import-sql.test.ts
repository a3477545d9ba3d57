/// <reference types="node" />
// The SQL that the Mithril import passes to wrangler, run on SQLite with the project's migrations.

import { describe, expect, it } from 'vitest'
import { unstable_splitSqlQuery as splitSqlQuery } from 'wrangler'
import { buildFileSql } from '../../scripts/mithril/importer.mjs'
import { buildUpsert, chunk, sqlLiteral } from '../../scripts/mithril/sql.mjs'
import type { Row } from '../../scripts/mithril/validate.mjs'
import { verifySecret } from '../../src/secret.ts'
import { executeLikeWrangler, migratedDatabase, rows } from './import-sqlite'

const PEPPER = { id: 'k1', key: new Uint8Array(32).fill(7) }
const USER_ID = 'ef011bfa-fb43-4464-8941-052b2a63bc8b'
const TYPE_ID = '594750e4-adb6-4040-abe3-c604022e8533'
const CLIENT_ID = '7a0b40e4-fb04-4d70-88e7-3f7dcd8e7ce4'
const MITHRIL_SECRET = 'N0FINVdUTk0rQ3FHWHZqcFlKWEt5Zz09'

function row(values: Record<string, string | number | null>, secret?: string): Row {
  return { location: 'test', id: String(values.id), values, ...(secret ? { secret } : {}) }
}

const user = row({ id: USER_ID, email: 'owner@cpmsd1.example', is_blocked: 0, settings: '{}' })
const clientType = row({ id: TYPE_ID, name: 'MSP', scope: 'secret:refresh' })

function client(values: Record<string, string | number | null> = {}, secret = MITHRIL_SECRET) {
  return row(
    {
      id: CLIENT_ID,
      name: 'КНП «Центр ПМСД №1»',
      user_id: USER_ID,
      client_type_id: TYPE_ID,
      settings: '{"allowed_grant_types":["password"]}',
      priv_settings: '{"access_type":"DIRECT"}',
      ...values,
    },
    secret,
  )
}

async function seededDatabase() {
  const db = migratedDatabase()
  executeLikeWrangler(db, await buildFileSql('users', [user], PEPPER))
  executeLikeWrangler(db, await buildFileSql('client_types', [clientType], PEPPER))
  return db
}

function storedHash(db: ReturnType<typeof migratedDatabase>): string {
  return String(
    rows(db, `SELECT secret_hash FROM clients WHERE id = '${CLIENT_ID}'`)[0]?.secret_hash,
  )
}

describe('sqlLiteral', () => {
  it('writes NULL and whole numbers', () => {
    expect(sqlLiteral(null)).toBe('NULL')
    expect(sqlLiteral(undefined)).toBe('NULL')
    expect(sqlLiteral(1)).toBe('1')
  })

  it('rejects a fraction', () => {
    expect(() => sqlLiteral(1.5)).toThrow(TypeError)
  })

  it('doubles single quotes', () => {
    expect(sqlLiteral("Здоров'я")).toBe("'Здоров''я'")
  })

  it.each([
    "O'Brien",
    'line one\nline two',
    'tab\there',
    'BEGIN TRANSACTION; DROP TABLE users; COMMIT;',
    'begin transaction',
    'COMMIT;',
    '-- not a comment',
    '/* not a comment */',
    'hmac$k1$x; SELECT 1;',
    '"[`quoted`]"',
    'Аптека «Подільська» 💊',
    '',
  ])('reads back %j unchanged after wrangler splits the SQL', (text) => {
    const db = migratedDatabase()
    const [result] = executeLikeWrangler(db, `SELECT ${sqlLiteral(text)} AS value;`)
    expect(result?.[0]?.value).toBe(text)
  })

  it('writes text with BEGIN TRANSACTION as hex', () => {
    expect(sqlLiteral('x BEGIN TRANSACTION')).toMatch(/^CAST\(X'[0-9a-f]+' AS TEXT\)$/)
  })
})

describe('buildUpsert', () => {
  it('is one statement for wrangler', () => {
    const sql = buildUpsert('clients', client(), 'hmac-sha256$k1$abc')
    expect(splitSqlQuery(`${sql}\n${sql}`)).toHaveLength(2)
  })

  it('inserts a new row', async () => {
    const db = await seededDatabase()
    executeLikeWrangler(db, await buildFileSql('clients', [client()], PEPPER))
    const [stored] = rows(db, 'SELECT name, user_id, is_blocked, priv_settings FROM clients')
    expect(stored).toEqual({
      name: 'КНП «Центр ПМСД №1»',
      user_id: USER_ID,
      is_blocked: 0,
      priv_settings: '{"access_type":"DIRECT"}',
    })
  })

  it('updates a row with the same id', async () => {
    const db = await seededDatabase()
    executeLikeWrangler(db, await buildFileSql('clients', [client()], PEPPER))
    executeLikeWrangler(db, await buildFileSql('clients', [client({ name: 'Нова назва' })], PEPPER))
    expect(rows(db, 'SELECT name FROM clients')).toEqual([{ name: 'Нова назва' }])
  })

  it('keeps a column that the row does not have', async () => {
    const db = await seededDatabase()
    executeLikeWrangler(
      db,
      await buildFileSql('clients', [client({ redirect_uri: 'https://a.example' })], PEPPER),
    )
    executeLikeWrangler(db, await buildFileSql('clients', [client()], PEPPER))
    expect(rows(db, 'SELECT redirect_uri FROM clients')).toEqual([
      { redirect_uri: 'https://a.example' },
    ])
  })

  it('stores a hash that verifies, never the secret', async () => {
    const db = await seededDatabase()
    const sql = await buildFileSql('clients', [client()], PEPPER)
    expect(sql).not.toContain(MITHRIL_SECRET)

    executeLikeWrangler(db, sql)
    const hash = storedHash(db)
    expect(hash).toMatch(/^hmac-sha256\$k1\$/)
    expect(await verifySecret(CLIENT_ID, MITHRIL_SECRET, hash, [PEPPER])).toBe(true)
  })

  it('replaces the secret of a client that never rotated', async () => {
    const db = await seededDatabase()
    executeLikeWrangler(db, await buildFileSql('clients', [client()], PEPPER))
    executeLikeWrangler(
      db,
      await buildFileSql('clients', [client({}, 'a-newer-mithril-secret')], PEPPER),
    )
    expect(await verifySecret(CLIENT_ID, 'a-newer-mithril-secret', storedHash(db), [PEPPER])).toBe(
      true,
    )
  })

  it('keeps the secret of a client that rotated it', async () => {
    const db = await seededDatabase()
    executeLikeWrangler(db, await buildFileSql('clients', [client()], PEPPER))
    const rotated = storedHash(db)
    db.exec(`INSERT INTO client_secret_events (id, client_id, event, occurred_at)
      VALUES ('e1', '${CLIENT_ID}', 'secret_rotated', '2026-01-01T00:00:00.000Z')`)

    executeLikeWrangler(
      db,
      await buildFileSql('clients', [client({ name: 'Інша назва' }, 'other')], PEPPER),
    )
    expect(storedHash(db)).toBe(rotated)
    expect(rows(db, 'SELECT name FROM clients')).toEqual([{ name: 'Інша назва' }])
  })

  it('ignores audit rows of other events', async () => {
    const db = await seededDatabase()
    executeLikeWrangler(db, await buildFileSql('clients', [client()], PEPPER))
    db.exec(`INSERT INTO client_secret_events (id, client_id, event, occurred_at)
      VALUES ('e1', '${CLIENT_ID}', 'secret_rotation_denied', '2026-01-01T00:00:00.000Z')`)

    executeLikeWrangler(db, await buildFileSql('clients', [client({}, 'other')], PEPPER))
    expect(await verifySecret(CLIENT_ID, 'other', storedHash(db), [PEPPER])).toBe(true)
  })

  it('writes nothing of a file when one row fails', async () => {
    const db = await seededDatabase()
    const second = row({
      id: 'bd05ed1f-e8c5-4719-820e-413c70149872',
      email: 'owner@cpmsd1.example',
    })
    const third = row({ id: 'd8983dcf-def8-4e18-8a8f-4ed302211677', email: 'third@cpmsd1.example' })
    const sql = await buildFileSql('users', [third, second], PEPPER)
    expect(() => executeLikeWrangler(db, sql)).toThrow(/UNIQUE/)
    expect(rows(db, 'SELECT id FROM users')).toEqual([{ id: USER_ID }])
  })
})

describe('chunk', () => {
  it('splits into parts of at most the size', () => {
    expect(chunk([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]])
    expect(chunk([], 2)).toEqual([])
  })
})
