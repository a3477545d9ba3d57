// Validates the rows of one table on their own: column values, and ids and UNIQUE keys that
// repeat. Foreign keys and checks against the database are in plan.mjs.

import { convertValue } from './values.mjs'

/**
 * @typedef {import('./tables.mjs').TableSpec} TableSpec
 * @typedef {import('./sources.mjs').SourceRecord} SourceRecord
 * @typedef {import('./values.mjs').SourceFormat} SourceFormat
 *
 * @typedef {object} Row
 * @property {string} location
 * @property {string} id the canonical lowercase UUID
 * @property {Record<string, string | number | null>} values the converted columns present in the
 *   record, by Mithril name; never the secret
 * @property {string} [secret] the plain client secret, kept apart so that it is only ever hashed
 *
 * @typedef {{ location: string, reasons: string[] }} Rejection
 * @typedef {{ rows: Row[], rejected: Rejection[] }} Validation
 */

/**
 * Converts one record to a row, or returns every reason it is invalid.
 * @param {TableSpec} table
 * @param {SourceRecord} record
 * @param {SourceFormat} format
 * @returns {{ row: Row } | { rejection: Rejection }}
 */
export function convertRecord(table, record, format) {
  const { location } = record
  if (record.error !== undefined) return { rejection: { location, reasons: [record.error] } }

  /** @type {string[]} */
  const reasons = []
  /** @type {Row} */
  const row = { location, id: '', values: {} }
  for (const column of table.columns) {
    const present = Object.hasOwn(record.values, column.name)
    if (!present) {
      if (column.required) reasons.push(`${column.name} is missing`)
      continue
    }

    const converted = convertValue(column, record.values[column.name], format)
    if ('error' in converted) {
      reasons.push(converted.error)
    } else if (column.type === 'secret') {
      row.secret = String(converted.value)
    } else {
      row.values[column.name] = converted.value
    }
  }

  if (reasons.length > 0) return { rejection: { location, reasons } }
  row.id = String(row.values.id)
  return { row }
}

/**
 * Returns the key of a row as a string, or undefined when a key column is NULL or absent, because
 * NULLs never conflict in a UNIQUE constraint.
 * @param {Row} row
 * @param {string[]} columns
 */
export function keyOf(row, columns) {
  const parts = columns.map((column) => row.values[column])
  if (parts.some((part) => part === null || part === undefined)) return undefined
  return JSON.stringify(parts)
}

/**
 * Rejects every row whose key repeats among `rows`. No copy is kept, because the export does not
 * say which one is right.
 * @param {Row[]} rows
 * @param {string[]} columns
 * @param {(others: string) => string} describe the reason, given the other rows' locations
 * @returns {Validation}
 */
export function rejectRepeatedKeys(rows, columns, describe) {
  /** @type {Map<string, Row[]>} */
  const groups = new Map()
  for (const row of rows) {
    const key = keyOf(row, columns)
    if (key === undefined) continue
    groups.set(key, [...(groups.get(key) ?? []), row])
  }

  /** @type {Rejection[]} */
  const rejected = []
  const repeated = new Set()
  for (const group of groups.values()) {
    if (group.length < 2) continue
    for (const row of group) {
      const others = group.filter((other) => other !== row).map((other) => other.location)
      rejected.push({ location: row.location, reasons: [describe(others.join(', '))] })
      repeated.add(row)
    }
  }
  return { rows: rows.filter((row) => !repeated.has(row)), rejected }
}

/**
 * Converts the records of one file. Rejections are in file order.
 * @param {TableSpec} table
 * @param {SourceRecord[]} records
 * @param {SourceFormat} format
 * @returns {Validation}
 */
export function convertRecords(table, records, format) {
  /** @type {Validation} */
  const result = { rows: [], rejected: [] }
  for (const record of records) {
    const converted = convertRecord(table, record, format)
    if ('row' in converted) result.rows.push(converted.row)
    else result.rejected.push(converted.rejection)
  }
  return result
}

/**
 * Rejects every row whose id or UNIQUE key repeats among the rows of one table, which may come
 * from several files.
 * @param {TableSpec} table
 * @param {Row[]} rows
 * @returns {Validation}
 */
export function rejectRepeatedRows(table, rows) {
  const byId = rejectRepeatedKeys(rows, ['id'], (others) => `the id also appears at ${others}`)
  const rejected = [...byId.rejected]

  let remaining = byId.rows
  for (const columns of table.uniqueKeys) {
    const byKey = rejectRepeatedKeys(
      remaining,
      columns,
      (others) => `${columns.join(', ')} must be unique but repeats at ${others}`,
    )
    remaining = byKey.rows
    rejected.push(...byKey.rejected)
  }
  return { rows: remaining, rejected }
}
