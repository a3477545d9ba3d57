import { env } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'
import { buildRotationStatements, type RotationStatements } from '../../src/rotation-sql'
import { prepareNamed, type SqlValue } from '../../src/sql'
import { CLIENT_TARGET, CONNECTION_TARGET } from '../../src/targets'

/** Tables that only the authorization decision reads. */
const DECISION_TABLES = ['users', 'user_roles', 'roles']

/** A value for every parameter of the rotation statements. */
const VALUES: Record<string, SqlValue> = {
  client_id: crypto.randomUUID(),
  connection_id: crypto.randomUUID(),
  user_id: crypto.randomUUID(),
  secret_hash: 'hash',
  previous_expires_at: null,
  grace_period: 0,
  scope_word: ' secret:refresh ',
  rate_limit: 10,
  window_start: '2026-01-01T00:00:00.000Z',
  key_hash: 'key-hash',
  key_hashes: '["key-hash","retired-key-hash"]',
  fingerprint: 'fingerprint',
  pepper_id: 'k1',
  ciphertext: 'ciphertext',
  expires_at: '2026-01-02T00:00:00.000Z',
  event_id: crypto.randomUUID(),
  request_id: crypto.randomUUID(),
  ip: null,
  user_agent: null,
  now: '2026-01-01T01:00:00.000Z',
}

// `one` and `d` are the batch's one-row subqueries, and json_each lists the key hashes.
const SCAN_WITHOUT_INDEX = /^SCAN (?!CONSTANT ROW|one$|d$|json_each )/

describe.each([CLIENT_TARGET, CONNECTION_TARGET])('rotation batch of a $name', (target) => {
  const statements = buildRotationStatements(target)
  const entries = Object.entries(statements) as [keyof RotationStatements, string][]

  it.each(DECISION_TABLES)('reads %s in the audit statement only', (table) => {
    const reads = new RegExp(`\\b(FROM|JOIN) ${table}\\b`)

    const readers = entries.filter(([, sql]) => reads.test(sql)).map(([name]) => name)

    expect(readers).toEqual(['audit'])
  })

  it.each(entries)('%s finds every row through an index', async (_name, sql) => {
    const { results } = await prepareNamed(env.DB, `EXPLAIN QUERY PLAN ${sql}`, VALUES).all<{
      detail: string
    }>()
    const details = results.map((row) => row.detail)

    expect(details.length).toBeGreaterThan(0)
    expect(details.filter((detail) => SCAN_WITHOUT_INDEX.test(detail))).toEqual([])
  })
})
