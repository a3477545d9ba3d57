/// <reference types="node" />
// The CSV reader of the Mithril import, on the shapes PostgreSQL COPY ... CSV HEADER writes.

import { describe, expect, it } from 'vitest'
import { CsvSyntaxError, parseCsv } from '../../scripts/mithril/csv.mjs'

function values(text: string): (string | null)[][] {
  return parseCsv(text).map((record) =>
    record.fields.map((field) => (field.value === '' && !field.quoted ? null : field.value)),
  )
}

describe('parseCsv', () => {
  it('splits fields and records', () => {
    expect(values('id,name\n1,a\n2,b\n')).toEqual([
      ['id', 'name'],
      ['1', 'a'],
      ['2', 'b'],
    ])
  })

  it('reads the last record without a line break', () => {
    expect(values('id\n1')).toEqual([['id'], ['1']])
  })

  it('accepts CRLF line breaks', () => {
    expect(values('id,name\r\n1,a\r\n')).toEqual([
      ['id', 'name'],
      ['1', 'a'],
    ])
  })

  it('tells NULL from an empty string', () => {
    expect(values('a,b,c\n,"",x\n')[1]).toEqual([null, '', 'x'])
  })

  it('unescapes doubled quotes', () => {
    expect(values('name\n"КНП ""Лікарня №3"", м. Запоріжжя"\n')[1]).toEqual([
      'КНП "Лікарня №3", м. Запоріжжя',
    ])
  })

  it('keeps line breaks inside quoted fields', () => {
    const records = parseCsv('id,reason\n1,"line one\nline two"\n2,x\n')
    expect(records[1]?.fields[1]?.value).toBe('line one\nline two')
    expect(records[2]?.line).toBe(4)
  })

  it('numbers records by their first line', () => {
    expect(parseCsv('id\n1\n\n2\n').map((record) => record.line)).toEqual([1, 2, 4])
  })

  it('skips blank lines', () => {
    expect(values('id\n\n1\n\n')).toEqual([['id'], ['1']])
  })

  it('ignores a byte order mark', () => {
    expect(values('\uFEFFid\n1\n')[0]).toEqual(['id'])
  })

  it('keeps a JSON object field intact', () => {
    const [, record] = values('settings\n"{""a"": [1, 2], ""b"": ""x,y""}"\n')
    expect(JSON.parse(record?.[0] ?? '')).toEqual({ a: [1, 2], b: 'x,y' })
  })

  it('rejects an unclosed quote with its line', () => {
    expect(() => parseCsv('id,name\n1,ok\n2,"open\nstill open\n')).toThrow(CsvSyntaxError)
    try {
      parseCsv('id,name\n1,ok\n2,"open\nstill open\n')
    } catch (error) {
      expect((error as CsvSyntaxError).line).toBe(3)
    }
  })

  it('rejects text after a closing quote', () => {
    expect(() => parseCsv('a\n"x"y\n')).toThrow(/line 2/)
  })

  it('rejects a quote inside an unquoted field', () => {
    expect(() => parseCsv('a\nx"y\n')).toThrow(/line 2/)
  })
})
