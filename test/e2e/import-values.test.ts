/// <reference types="node" />
// Column conversions of the Mithril import: UUIDs, timestamps, booleans, JSON objects and text.

import { describe, expect, it } from 'vitest'
import { findTable } from '../../scripts/mithril/tables.mjs'
import { convertValue, parseTimestamp, parseUuid } from '../../scripts/mithril/values.mjs'

function column(table: string, name: string) {
  const spec = findTable(table)?.columns.find((candidate) => candidate.name === name)
  if (spec === undefined) throw new Error(`no column ${table}.${name}`)
  return spec
}

describe('parseUuid', () => {
  it('lowercases a UUID', () => {
    expect(parseUuid('7A0B40E4-FB04-4D70-88E7-3F7DCD8E7CE4')).toBe(
      '7a0b40e4-fb04-4d70-88e7-3f7dcd8e7ce4',
    )
  })

  it.each([
    '42',
    '7a0b40e4fb044d7088e73f7dcd8e7ce4',
    ' 7a0b40e4-fb04-4d70-88e7-3f7dcd8e7ce4',
    '7a0b40e4-fb04-4d70-88e7-3f7dcd8e7ce',
    'g00b40e4-fb04-4d70-88e7-3f7dcd8e7ce4',
  ])('rejects %j', (value) => {
    expect(parseUuid(value)).toBeUndefined()
  })

  it('rejects a number', () => {
    expect(parseUuid(42)).toBeUndefined()
  })
})

describe('parseTimestamp', () => {
  it.each([
    ['2017-04-20T19:14:13.000000', '2017-04-20T19:14:13.000Z'],
    ['2017-04-20 19:14:13', '2017-04-20T19:14:13.000Z'],
    ['2017-04-20T19:14:13Z', '2017-04-20T19:14:13.000Z'],
    ['2018-01-15T08:30:00.123456+02:00', '2018-01-15T06:30:00.123Z'],
    ['2019-03-01 10:00:00.5+03', '2019-03-01T07:00:00.500Z'],
    ['2019-03-01 01:00:00-0530', '2019-03-01T06:30:00.000Z'],
    ['2016-02-29T23:59:59.999999', '2016-02-29T23:59:59.999Z'],
    ['2020-01-01T01:00:00+02:00', '2019-12-31T23:00:00.000Z'],
  ])('reads %s as UTC', (input, expected) => {
    expect(parseTimestamp(input)).toBe(expected)
  })

  it.each([
    '2017-02-30T10:00:00',
    '2017-02-29T10:00:00',
    '2017-13-01T10:00:00',
    '2017-04-20T24:00:00',
    '2017-04-20T19:60:00',
    '2017-04-20T19:14:60',
    '2017-04-20',
    '20.04.2017 19:14',
    '2017-04-20T19:14:13+24:00',
    '2017-04-20T19:14:13+03:60',
    '0000-01-01T00:00:00',
    'infinity',
    '',
  ])('rejects %j', (input) => {
    expect(parseTimestamp(input)).toBeUndefined()
  })
})

describe('convertValue', () => {
  const isBlocked = column('users', 'is_blocked')
  const settings = column('clients', 'settings')
  const secret = column('clients', 'secret')
  const name = column('clients', 'name')
  const blockReason = column('clients', 'block_reason')
  const clientTypeId = column('clients', 'client_type_id')

  it.each([
    [true, 1],
    [false, 0],
  ])('reads JSON boolean %s', (input, expected) => {
    expect(convertValue(isBlocked, input, 'json')).toEqual({ value: expected })
  })

  it.each([
    ['t', 1],
    ['f', 0],
    ['true', 1],
    ['FALSE', 0],
  ])('reads CSV boolean %s', (input, expected) => {
    expect(convertValue(isBlocked, input, 'csv')).toEqual({ value: expected })
  })

  it.each([['yes'], ['1'], ['']])('rejects CSV boolean %j', (input) => {
    expect(convertValue(isBlocked, input, 'csv')).toHaveProperty('error')
  })

  it('rejects a string boolean in JSON', () => {
    expect(convertValue(isBlocked, 'true', 'json')).toHaveProperty('error')
  })

  it('stores a JSON object as compact JSON text', () => {
    expect(convertValue(settings, { a: [1, 2] }, 'json')).toEqual({ value: '{"a":[1,2]}' })
  })

  it('parses JSON text from CSV', () => {
    expect(convertValue(settings, '{"a": [1, 2]}', 'csv')).toEqual({ value: '{"a":[1,2]}' })
  })

  it.each([
    ['json', '{"a": 1}'],
    ['json', ['password']],
    ['csv', '[1, 2]'],
    ['csv', '"text"'],
  ] as const)('rejects a %s settings value that is no object: %j', (format, input) => {
    expect(convertValue(settings, input, format)).toEqual({
      error: 'settings must be a JSON object',
    })
  })

  it('rejects invalid JSON text without quoting it', () => {
    const result = convertValue(settings, '{"token": "abc123", }', 'csv')
    expect(result).toEqual({ error: 'settings is not valid JSON' })
  })

  it('rejects an empty secret', () => {
    expect(convertValue(secret, '', 'json')).toEqual({ error: 'secret is empty' })
    expect(convertValue(secret, '   ', 'csv')).toEqual({ error: 'secret is empty' })
  })

  it('rejects a NULL secret', () => {
    expect(convertValue(secret, null, 'csv')).toEqual({ error: 'secret is missing' })
  })

  it('never repeats a rejected value', () => {
    const value = 'N0FINVdUTk0rQ3FHWHZqcFlKWEt5Zz09'
    for (const spec of [isBlocked, settings, clientTypeId, column('users', 'inserted_at')]) {
      const result = convertValue(spec, value, 'csv')
      expect(JSON.stringify(result)).not.toContain(value)
      expect(result).toHaveProperty('error')
    }
  })

  it('keeps NULL in an optional column', () => {
    expect(convertValue(blockReason, null, 'json')).toEqual({ value: null })
  })

  it('rejects NULL in a required column', () => {
    expect(convertValue(clientTypeId, null, 'json')).toEqual({ error: 'client_type_id is missing' })
  })

  it('rejects an empty required text', () => {
    expect(convertValue(name, '', 'csv')).toEqual({ error: 'name is empty' })
  })

  it('accepts an empty optional text', () => {
    expect(convertValue(blockReason, '', 'csv')).toEqual({ value: '' })
  })

  it('rejects a number as text', () => {
    expect(convertValue(name, 42, 'json')).toEqual({ error: 'name must be a string' })
  })
})
