/// <reference types="node" />
// Reading Mithril export files: table and format from the file name, JSON and CSV parsing, and
// file-level errors that stop the import before it writes.

import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { UsageError } from '../../scripts/dev-env.mjs'
import { readSource, resolveSource } from '../../scripts/mithril/sources.mjs'

const SECRET = 'N0FINVdUTk0rQ3FHWHZqcFlKWEt5Zz09'
let dir: string

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'mithril-sources-'))
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function source(name: string, content: string, table?: string) {
  await writeFile(path.join(dir, name), content)
  return resolveSource(name, dir, table)
}

async function readError(name: string, content: string): Promise<UsageError> {
  const error = await readSource(await source(name, content)).catch((caught) => caught)
  expect(error).toBeInstanceOf(UsageError)
  expect(error.exitCode).toBe(2)
  return error as UsageError
}

describe('resolveSource', () => {
  it.each([
    ['clients.csv', 'clients', 'csv'],
    ['users.json', 'users', 'json'],
    ['Clients.CSV', 'clients', 'csv'],
    ['user_roles.part-2.json', 'user_roles', 'json'],
    ['export/client_types.json', 'client_types', 'json'],
  ])('reads %s as %s %s', (file, table, format) => {
    const resolved = resolveSource(file, '/data', undefined)
    expect(resolved.table).toBe(table)
    expect(resolved.format).toBe(format)
    expect(resolved.path).toBe(path.resolve('/data', file))
  })

  it('takes the table from --table', () => {
    expect(resolveSource('export-2024.csv', '/data', 'clients').table).toBe('clients')
  })

  it('rejects an unknown table', () => {
    expect(() => resolveSource('tokens.json', '/data', undefined)).toThrow(UsageError)
  })

  it('rejects another extension', () => {
    expect(() => resolveSource('clients.sql', '/data', undefined)).toThrow(/\.json or \.csv/)
  })
})

describe('readSource', () => {
  it('reads JSON records by index', async () => {
    const content = await readSource(await source('roles.json', '[{"id": "a"}, {"id": "b"}]'))
    expect(content.records.map((record) => record.location)).toEqual([
      'roles.json[0]',
      'roles.json[1]',
    ])
  })

  it('marks a JSON element that is no object', async () => {
    const content = await readSource(await source('roles.json', '[{"id": "a"}, 42, null]'))
    expect(content.records[1]?.error).toBe('the record is not a JSON object')
    expect(content.records[2]?.error).toBe('the record is not a JSON object')
  })

  it('lists columns that D1 does not have', async () => {
    const content = await readSource(
      await source('users.json', '[{"id": "a", "password": "x", "tax_id": null}]'),
    )
    expect(content.ignoredColumns).toEqual(['password', 'tax_id'])
  })

  it('reports invalid JSON by line without quoting it', async () => {
    const error = await readError('clients.json', `[\n{"secret": "${SECRET}",}\n]`)
    expect(error.message).toMatch(/invalid JSON at line 2, column \d+/)
    expect(error.message).not.toContain(SECRET)
  })

  it('rejects JSON that is no array', async () => {
    const error = await readError('users.json', '{"id": "a"}')
    expect(error.message).toContain('expected a JSON array of users records')
  })

  it('reads CSV records by line with NULLs', async () => {
    const content = await readSource(
      await source('roles.csv', 'id,name,scope\n"a",OWNER,\n"b",DOCTOR,""\n'),
    )
    expect(content.records).toEqual([
      { location: 'roles.csv:2', values: { id: 'a', name: 'OWNER', scope: null } },
      { location: 'roles.csv:3', values: { id: 'b', name: 'DOCTOR', scope: '' } },
    ])
  })

  it('marks a CSV row with the wrong number of fields', async () => {
    const content = await readSource(await source('roles.csv', 'id,name\na,OWNER,extra\n'))
    expect(content.records[0]?.error).toBe('the row has 3 fields, but the header has 2')
  })

  it('rejects a CSV header without a required column', async () => {
    const error = await readError('clients.csv', 'id,name,client_type_id\n')
    expect(error.message).toContain('no secret column')
  })

  it('rejects a CSV header that repeats a column', async () => {
    const error = await readError('roles.csv', 'id,name,name\n')
    expect(error.message).toContain('names the column name twice')
  })

  it('rejects an empty CSV file', async () => {
    const error = await readError('roles.csv', '')
    expect(error.message).toContain('the file is empty')
  })

  it('reports malformed CSV by line', async () => {
    const error = await readError('roles.csv', 'id,name\na,"OWNER\n')
    expect(error.message).toContain('invalid CSV at line 2')
  })

  it('reports a missing file', async () => {
    const error = await readSource(resolveSource('users.json', path.join(dir, 'nope'))).catch(
      (caught) => caught,
    )
    expect(error.message).toContain('cannot read the file (ENOENT)')
  })
})
