// Reads Mithril export files: JSON arrays of records, or CSV with a header row, named after their
// table (`clients.json`, `users.csv`, `users.part-2.csv`).

import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { UsageError } from '../dev-env.mjs'
import { CsvSyntaxError, parseCsv } from './csv.mjs'
import { findTable, TABLE_ORDER } from './tables.mjs'

/**
 * @typedef {import('./values.mjs').SourceFormat} SourceFormat
 *
 * @typedef {object} Source
 * @property {string} path the absolute path
 * @property {string} display the path as given, for messages
 * @property {string} table
 * @property {SourceFormat} format
 *
 * @typedef {object} SourceRecord
 * @property {string} location `file:line` for CSV, `file[index]` for JSON
 * @property {Record<string, unknown>} values the columns present in the record; null is SQL NULL
 * @property {string} [error] why the record cannot be read at all
 *
 * @typedef {object} SourceContent
 * @property {SourceRecord[]} records
 * @property {string[]} ignoredColumns columns that the D1 schema does not have, such as password
 */

/**
 * Returns the table and format of an export file. The table is the file name up to its first dot
 * unless `table` is given, and the format is the extension.
 * @param {string} file the path as given on the command line
 * @param {string} baseDir the directory that relative paths start from
 * @param {string} [table]
 * @returns {Source}
 */
export function resolveSource(file, baseDir, table) {
  const name = path.basename(file)
  const extension = path.extname(name).toLowerCase()
  if (extension !== '.json' && extension !== '.csv') {
    throw new UsageError(`${file}: the file name must end in .json or .csv.`, 2)
  }

  const tableName = table ?? name.slice(0, name.indexOf('.')).toLowerCase()
  if (findTable(tableName) === undefined) {
    throw new UsageError(
      `${file}: "${tableName}" is not a table the import reads. Name the file after one of ` +
        `${TABLE_ORDER.join(', ')} (such as clients.csv), or pass --table.`,
      2,
    )
  }
  return {
    path: path.resolve(baseDir, file),
    display: file,
    table: tableName,
    format: extension === '.json' ? 'json' : 'csv',
  }
}

/**
 * Returns where in the text a JSON.parse error occurred, from the position in its message.
 * @param {string} text
 * @param {unknown} error
 */
function jsonErrorPlace(text, error) {
  const match = /position (\d+)/.exec(error instanceof Error ? error.message : '')
  if (match === null) return ''

  const before = text.slice(0, Number(match[1]))
  const line = before.split('\n').length
  const column = before.length - before.lastIndexOf('\n')
  return ` at line ${line}, column ${column}`
}

/**
 * @param {Source} source
 * @param {string} text
 * @returns {SourceContent}
 */
function readJsonRecords(source, text) {
  let parsed
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    // The parser's message quotes the text around the error, which may contain a secret.
    throw new UsageError(`${source.display}: invalid JSON${jsonErrorPlace(text, error)}.`, 2)
  }
  if (!Array.isArray(parsed)) {
    throw new UsageError(`${source.display}: expected a JSON array of ${source.table} records.`, 2)
  }

  const seen = new Set()
  const records = parsed.map((item, index) => {
    const location = `${source.display}[${index}]`
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      return { location, values: {}, error: 'the record is not a JSON object' }
    }
    for (const key of Object.keys(item)) seen.add(key)
    return { location, values: { ...item } }
  })
  return { records, ignoredColumns: unknownColumns(source.table, seen) }
}

/**
 * @param {string} table
 * @param {Iterable<string>} columns
 */
function unknownColumns(table, columns) {
  const known = new Set(findTable(table)?.columns.map((column) => column.name))
  return [...columns].filter((column) => !known.has(column)).sort()
}

/**
 * @param {Source} source
 * @param {string[]} header
 */
function checkCsvHeader(source, header) {
  const duplicate = header.find((name, index) => header.indexOf(name) !== index)
  if (duplicate !== undefined) {
    throw new UsageError(`${source.display}: the header names the column ${duplicate} twice.`, 2)
  }

  const spec = findTable(source.table)
  const missing = (spec?.columns ?? [])
    .filter((column) => column.required && !header.includes(column.name))
    .map((column) => column.name)
  if (missing.length > 0) {
    throw new UsageError(
      `${source.display}: the header has no ${missing.join(', ')} column; ${source.table} ` +
        'rows need it. Export with CSV HEADER.',
      2,
    )
  }
}

/**
 * @param {Source} source
 * @param {string} text
 * @returns {SourceContent}
 */
function readCsvRecords(source, text) {
  let rows
  try {
    rows = parseCsv(text)
  } catch (error) {
    if (error instanceof CsvSyntaxError) {
      throw new UsageError(`${source.display}: invalid CSV at ${error.message}.`, 2)
    }
    throw error
  }

  const [headerRow, ...dataRows] = rows
  if (headerRow === undefined) throw new UsageError(`${source.display}: the file is empty.`, 2)
  const header = headerRow.fields.map((field) => field.value.trim())
  checkCsvHeader(source, header)

  const records = dataRows.map((row) => {
    const location = `${source.display}:${row.line}`
    if (row.fields.length !== header.length) {
      const error = `the row has ${row.fields.length} fields, but the header has ${header.length}`
      return { location, values: {}, error }
    }
    /** @type {Record<string, unknown>} */
    const values = {}
    header.forEach((name, index) => {
      const field = row.fields[index]
      // COPY writes NULL as an unquoted empty field and an empty string as "".
      values[name] =
        field === undefined || (field.value === '' && !field.quoted) ? null : field.value
    })
    return { location, values }
  })
  return { records, ignoredColumns: unknownColumns(source.table, header) }
}

/**
 * Reads and parses an export file. A file that cannot be read or parsed throws a UsageError.
 * A record that cannot be read carries an `error`, and the rest of the file is still read.
 * @param {Source} source
 * @returns {Promise<SourceContent>}
 */
export async function readSource(source) {
  let text
  try {
    text = await readFile(source.path, 'utf8')
  } catch (error) {
    const reason = /** @type {NodeJS.ErrnoException} */ (error).code ?? 'unreadable'
    throw new UsageError(`${source.display}: cannot read the file (${reason}).`, 2)
  }
  const body = text.startsWith('\uFEFF') ? text.slice(1) : text
  return source.format === 'json' ? readJsonRecords(source, body) : readCsvRecords(source, body)
}
