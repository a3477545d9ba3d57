/// <reference types="node" />
// Row validation of the Mithril import, on records and on the sample export in
// test/fixtures/mithril.

import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { readSource, resolveSource } from '../../scripts/mithril/sources.mjs'
import { findTable } from '../../scripts/mithril/tables.mjs'
import {
  convertRecord,
  convertRecords,
  type Row,
  rejectRepeatedRows,
} from '../../scripts/mithril/validate.mjs'
import { PROJECT_ROOT } from './wrangler'

const FIXTURES = path.join(PROJECT_ROOT, 'test', 'fixtures', 'mithril')
const CLIENT_ID = '7a0b40e4-fb04-4d70-88e7-3f7dcd8e7ce4'
const TYPE_ID = '594750e4-adb6-4040-abe3-c604022e8533'

function table(name: string) {
  const spec = findTable(name)
  if (spec === undefined) throw new Error(`no table ${name}`)
  return spec
}

function clientRecord(values: Record<string, unknown>) {
  return {
    location: 'clients.json[0]',
    values: {
      id: CLIENT_ID,
      name: 'КНП «ЦПМСД №1»',
      secret: 's3cret',
      client_type_id: TYPE_ID,
      ...values,
    },
  }
}

function userRow(id: string, email: string | null, location: string): Row {
  return { location, id, values: { id, email } }
}

async function fixture(name: string) {
  const source = resolveSource(name, FIXTURES)
  const content = await readSource(source)
  return convertRecords(table(source.table), content.records, source.format)
}

describe('convertRecord', () => {
  it('keeps the secret apart from the values', () => {
    const result = convertRecord(table('clients'), clientRecord({}), 'json')
    expect(result).toEqual({
      row: {
        location: 'clients.json[0]',
        id: CLIENT_ID,
        secret: 's3cret',
        values: { id: CLIENT_ID, name: 'КНП «ЦПМСД №1»', client_type_id: TYPE_ID },
      },
    })
  })

  it('lowercases ids and references', () => {
    const result = convertRecord(
      table('clients'),
      clientRecord({ id: CLIENT_ID.toUpperCase(), client_type_id: TYPE_ID.toUpperCase() }),
      'json',
    )
    expect(result).toHaveProperty('row.id', CLIENT_ID)
    expect(result).toHaveProperty('row.values.client_type_id', TYPE_ID)
  })

  it('reports every invalid column of a row', () => {
    const result = convertRecord(
      table('clients'),
      clientRecord({ secret: '', is_blocked: 'no', client_type_id: undefined, settings: [] }),
      'json',
    )
    expect(result).toHaveProperty('rejection.reasons', [
      'secret is empty',
      'settings must be a JSON object',
      'client_type_id is not a UUID',
      'is_blocked must be true or false',
    ])
  })

  it('rejects a row without a required key', () => {
    const { client_type_id: _omitted, ...values } = clientRecord({}).values
    const result = convertRecord(table('clients'), { location: 'x', values }, 'json')
    expect(result).toHaveProperty('rejection.reasons', ['client_type_id is missing'])
  })

  it('skips optional columns that are absent', () => {
    const result = convertRecord(table('clients'), clientRecord({}), 'json')
    expect(result).not.toHaveProperty('row.values.is_blocked')
  })

  it('passes an unreadable record on', () => {
    const result = convertRecord(
      table('roles'),
      { location: 'roles.json[2]', values: {}, error: 'the record is not a JSON object' },
      'json',
    )
    expect(result).toEqual({
      rejection: { location: 'roles.json[2]', reasons: ['the record is not a JSON object'] },
    })
  })
})

describe('rejectRepeatedRows', () => {
  const a = 'ef011bfa-fb43-4464-8941-052b2a63bc8b'
  const b = 'bd05ed1f-e8c5-4719-820e-413c70149872'
  const c = 'd8983dcf-def8-4e18-8a8f-4ed302211677'

  it('rejects every copy of a repeated id', () => {
    const rows = [userRow(a, 'a@x', 'f:2'), userRow(b, 'b@x', 'f:3'), userRow(a, 'c@x', 'g:2')]
    const result = rejectRepeatedRows(table('users'), rows)
    expect(result.rows.map((row) => row.location)).toEqual(['f:3'])
    expect(result.rejected).toEqual([
      { location: 'f:2', reasons: ['the id also appears at g:2'] },
      { location: 'g:2', reasons: ['the id also appears at f:2'] },
    ])
  })

  it('rejects every copy of a repeated UNIQUE value', () => {
    const rows = [
      userRow(a, 'same@x', 'f:2'),
      userRow(b, 'same@x', 'f:3'),
      userRow(c, 'c@x', 'f:4'),
    ]
    const result = rejectRepeatedRows(table('users'), rows)
    expect(result.rows.map((row) => row.location)).toEqual(['f:4'])
    expect(result.rejected.map((rejection) => rejection.reasons[0])).toEqual([
      'email must be unique but repeats at f:3',
      'email must be unique but repeats at f:2',
    ])
  })

  it('lets NULLs repeat in a UNIQUE column', () => {
    const rows = [userRow(a, null, 'f:2'), userRow(b, null, 'f:3')]
    expect(rejectRepeatedRows(table('users'), rows).rejected).toEqual([])
  })

  it('compares composite keys whole', () => {
    const grant = (id: string, clientId: string, location: string): Row => ({
      location,
      id,
      values: { id, user_id: a, role_id: b, client_id: clientId },
    })
    const rows = [grant(a, c, 'f[0]'), grant(b, a, 'f[1]'), grant(c, c, 'f[2]')]
    const result = rejectRepeatedRows(table('user_roles'), rows)
    expect(result.rows.map((row) => row.location)).toEqual(['f[1]'])
  })
})

describe('sample export', () => {
  it('rejects the invalid clients.csv rows by line', async () => {
    const result = await fixture('clients.csv')
    expect(result.rejected.map((rejection) => rejection.location)).toEqual([
      'clients.csv:5',
      'clients.csv:6',
      'clients.csv:7',
      'clients.csv:10',
    ])
    expect(result.rows.map((row) => row.location)).toEqual([
      'clients.csv:2',
      'clients.csv:3',
      'clients.csv:8',
      'clients.csv:9',
    ])
  })

  it('reads a multi-line CSV field', async () => {
    const result = await fixture('clients.csv')
    expect(result.rows[1]?.values.block_reason).toBe(
      'Договір з НСЗУ розірвано.\nПовторна перевірка: 2020-09-01',
    )
    expect(result.rows[1]?.values.user_id).toBeNull()
  })

  it('rejects the invalid clients.json rows by index', async () => {
    const result = await fixture('clients.json')
    expect(result.rejected).toEqual([
      { location: 'clients.json[3]', reasons: ['secret is empty'] },
      { location: 'clients.json[4]', reasons: ['client_type_id is missing'] },
      { location: 'clients.json[5]', reasons: ['settings must be a JSON object'] },
    ])
  })

  it('rejects the invalid users.json rows', async () => {
    const result = await fixture('users.json')
    const rejected = result.rejected.map((rejection) => rejection.location)
    expect(rejected).toEqual(['users.json[4]', 'users.json[5]', 'users.json[6]'])

    const repeated = rejectRepeatedRows(table('users'), result.rows)
    expect(repeated.rejected.map((rejection) => rejection.location)).toEqual([
      'users.json[7]',
      'users.json[8]',
    ])
  })

  it('converts Mithril timestamps to UTC', async () => {
    const result = await fixture('users.json')
    expect(result.rows[0]?.values.inserted_at).toBe('2017-04-20T19:14:13.000Z')
    expect(result.rows[1]?.values.inserted_at).toBe('2018-01-15T06:30:00.123Z')
  })

  it('never carries a password', async () => {
    for (const name of ['users.json', 'users.csv']) {
      const result = await fixture(name)
      for (const row of result.rows) expect(row.values).not.toHaveProperty('password')
    }
  })
})
