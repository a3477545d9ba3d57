/// <reference types="node" />
// The database lookups and the per-file plan of the Mithril import, run against SQLite with the
// project's migrations.

import { describe, expect, it } from 'vitest'
import { buildFileSql } from '../../scripts/mithril/importer.mjs'
import { buildLookups, groupLookups, readDatabaseState } from '../../scripts/mithril/lookups.mjs'
import { emptyRun, planFile } from '../../scripts/mithril/plan.mjs'
import type { Row } from '../../scripts/mithril/validate.mjs'
import { executeLikeWrangler, migratedDatabase } from './import-sqlite'

const PEPPER = { id: 'k1', key: new Uint8Array(32).fill(3) }
const OWNER = 'ef011bfa-fb43-4464-8941-052b2a63bc8b'
const PHARMACIST = 'bd05ed1f-e8c5-4719-820e-413c70149872'
const NEW_USER = 'd8983dcf-def8-4e18-8a8f-4ed302211677'
const MSP = '594750e4-adb6-4040-abe3-c604022e8533'
const ROLE = 'b4658ba8-5711-41c5-981a-fea890106042'
const CLIENT = '7a0b40e4-fb04-4d70-88e7-3f7dcd8e7ce4'
const ROTATED_CLIENT = 'ca6aaf46-c638-4b1a-8695-d8c9d627969b'
const MISSING = '2f71f16a-b2d7-4b84-b64f-d1ccbe741ce8'

function row(
  location: string,
  values: Record<string, string | number | null>,
  secret?: string,
): Row {
  return { location, id: String(values.id), values, ...(secret ? { secret } : {}) }
}

const ownerRow = row('users.json[0]', { id: OWNER, email: 'owner@cpmsd1.example' })
const pharmacistRow = row('users.json[1]', { id: PHARMACIST, email: 'pharmacy@apteka.example' })
const mspRow = row('client_types.json[0]', { id: MSP, name: 'MSP' })
const roleRow = row('roles.json[0]', { id: ROLE, name: 'OWNER', scope: 'secret:refresh' })

function clientRow(location: string, id: string, userId: string | null) {
  return row(
    location,
    { id, name: `Client ${location}`, user_id: userId, client_type_id: MSP },
    'secret',
  )
}

/** Creates a database with an owner, a pharmacist, the MSP type and two clients, one rotated. */
async function existingDatabase() {
  const db = migratedDatabase()
  executeLikeWrangler(db, await buildFileSql('users', [ownerRow, pharmacistRow], PEPPER))
  executeLikeWrangler(db, await buildFileSql('client_types', [mspRow], PEPPER))
  const clients = [clientRow('a', CLIENT, OWNER), clientRow('b', ROTATED_CLIENT, PHARMACIST)]
  executeLikeWrangler(db, await buildFileSql('clients', clients, PEPPER))
  db.exec(`INSERT INTO client_secret_events (id, client_id, event, occurred_at)
    VALUES ('e1', '${ROTATED_CLIENT}', 'secret_rotated', '2026-01-01T00:00:00.000Z')`)
  return db
}

function stateOf(
  db: ReturnType<typeof migratedDatabase>,
  files: { table: string; rows: Row[] }[],
  maxChars?: number,
) {
  const queries: string[] = []
  const state = readDatabaseState(
    files,
    async (sql: string) => {
      queries.push(sql)
      return executeLikeWrangler(db, sql)
    },
    maxChars,
  )
  return { state, queries }
}

describe('readDatabaseState', () => {
  it('finds existing ids and referenced ids', async () => {
    const db = await existingDatabase()
    const files = [
      { table: 'users', rows: [ownerRow, row('u', { id: NEW_USER, email: 'new@x' })] },
      { table: 'clients', rows: [clientRow('c', CLIENT, MISSING)] },
    ]
    const state = await stateOf(db, files).state
    expect([...(state.ids.get('users') ?? [])].sort()).toEqual([OWNER])
    expect([...(state.ids.get('clients') ?? [])]).toEqual([CLIENT])
    expect([...(state.ids.get('client_types') ?? [])]).toEqual([MSP])
  })

  it('finds the owners of UNIQUE values', async () => {
    const db = await existingDatabase()
    const files = [
      { table: 'users', rows: [row('u', { id: NEW_USER, email: 'owner@cpmsd1.example' })] },
    ]
    const state = await stateOf(db, files).state
    expect(state.keyOwners.get('users:email')).toEqual(
      new Map([[JSON.stringify(['owner@cpmsd1.example']), OWNER]]),
    )
  })

  it('finds composite UNIQUE values', async () => {
    const db = await existingDatabase()
    executeLikeWrangler(db, await buildFileSql('roles', [roleRow], PEPPER))
    const grant = (id: string) => row('g', { id, user_id: OWNER, role_id: ROLE, client_id: CLIENT })
    executeLikeWrangler(db, await buildFileSql('user_roles', [grant(NEW_USER)], PEPPER))

    const state = await stateOf(db, [{ table: 'user_roles', rows: [grant(MISSING)] }]).state
    expect(state.keyOwners.get('user_roles:user_id,role_id,client_id')).toEqual(
      new Map([[JSON.stringify([OWNER, ROLE, CLIENT]), NEW_USER]]),
    )
  })

  it('finds clients that rotated their secret', async () => {
    const db = await existingDatabase()
    const files = [
      {
        table: 'clients',
        rows: [clientRow('a', CLIENT, OWNER), clientRow('b', ROTATED_CLIENT, OWNER)],
      },
    ]
    const state = await stateOf(db, files).state
    expect([...state.rotatedClients]).toEqual([ROTATED_CLIENT])
  })

  it('splits many ids into commands under the size limit', async () => {
    const db = await existingDatabase()
    const many = Array.from({ length: 1200 }, (_, index) => {
      const id = `00000000-0000-4000-8000-${String(index).padStart(12, '0')}`
      return row(`u${index}`, { id, email: `user${index}@x` })
    })
    const { state, queries } = stateOf(db, [{ table: 'users', rows: [...many, ownerRow] }], 30_000)
    const found = await state
    expect(queries.length).toBeGreaterThan(1)
    for (const query of queries) expect(query.length).toBeLessThanOrEqual(30_000)
    expect([...(found.ids.get('users') ?? [])]).toEqual([OWNER])
  })
})

describe('groupLookups', () => {
  it('keeps each lookup whole', () => {
    const lookups = buildLookups([{ table: 'roles', rows: [roleRow] }])
    const groups = groupLookups(lookups, 1)
    expect(groups.flat()).toEqual(lookups)
    expect(groups).toHaveLength(lookups.length)
  })
})

describe('planFile', () => {
  it('sorts rows into inserts and updates', async () => {
    const db = await existingDatabase()
    const rows = [ownerRow, row('u', { id: NEW_USER, email: 'new@x' })]
    const database = await stateOf(db, [{ table: 'users', rows }]).state
    const plan = planFile('users', rows, database, emptyRun())
    expect(plan.updates.map((planned) => planned.id)).toEqual([OWNER])
    expect(plan.inserts.map((planned) => planned.id)).toEqual([NEW_USER])
    expect(plan.rejected).toEqual([])
  })

  it('accepts a reference to a row of an earlier file', async () => {
    const db = migratedDatabase()
    const users = [row('users.json[0]', { id: NEW_USER, email: 'new@x' })]
    const clients = [clientRow('clients.json[0]', CLIENT, NEW_USER)]
    const types = [mspRow]
    const files = [
      { table: 'users', rows: users },
      { table: 'client_types', rows: types },
      { table: 'clients', rows: clients },
    ]
    const database = await stateOf(db, files).state

    const run = emptyRun()
    planFile('users', users, database, run)
    planFile('client_types', types, database, run)
    const plan = planFile('clients', clients, database, run)
    expect(plan.rejected).toEqual([])
    expect(plan.inserts).toHaveLength(1)
  })

  it('rejects a reference that is nowhere', async () => {
    const db = await existingDatabase()
    const clients = [clientRow('clients.json[6]', 'a7ffd091-f70a-4755-b844-21e83d880cbd', MISSING)]
    const database = await stateOf(db, [{ table: 'clients', rows: clients }]).state
    const plan = planFile('clients', clients, database, emptyRun())
    expect(plan.rejected).toEqual([
      {
        location: 'clients.json[6]',
        reasons: [`user_id ${MISSING} is neither a users row of this import nor in the database`],
      },
    ])
  })

  it('rejects a UNIQUE value that another row holds', async () => {
    const db = await existingDatabase()
    const rows = [row('users.csv:2', { id: NEW_USER, email: 'owner@cpmsd1.example' })]
    const database = await stateOf(db, [{ table: 'users', rows }]).state
    const plan = planFile('users', rows, database, emptyRun())
    expect(plan.rejected[0]?.reasons).toEqual([
      `email must be unique but belongs to users row ${OWNER}`,
    ])
  })

  it('counts updated clients that keep a rotated secret', async () => {
    const db = await existingDatabase()
    const rows = [clientRow('a', CLIENT, OWNER), clientRow('b', ROTATED_CLIENT, PHARMACIST)]
    const database = await stateOf(db, [{ table: 'clients', rows }]).state
    const plan = planFile('clients', rows, database, emptyRun())
    expect(plan.keptSecrets).toBe(1)
    expect(plan.updates).toHaveLength(2)
  })
})
