// SQL text for `wrangler d1 execute`: literals, the upserts that write a file's rows, and the
// lookups that read ids before the write. Values are literals because a --file has no parameters.

import { findTable, targetColumn } from './tables.mjs'

/**
 * Wrangler strips the first "BEGIN TRANSACTION;" and "COMMIT;" from a file that contains
 * "BEGIN TRANSACTION", even inside a string (wrangler 4.164, workers-utils d1-trimmer). Text
 * with either phrase or with control characters is written as hex, so wrangler never alters it.
 */
const TRANSACTION_WORDS = /BEGIN TRANSACTION|COMMIT;/i

/** @param {string} value */
function needsHex(value) {
  for (let index = 0; index < value.length; index += 1) {
    const code = value.charCodeAt(index)
    if (code < 0x20 || code === 0x7f) return true
  }
  return TRANSACTION_WORDS.test(value)
}

/**
 * Returns an SQLite literal for a value.
 * @param {string | number | null | undefined} value
 */
export function sqlLiteral(value) {
  if (value === null || value === undefined) return 'NULL'
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new TypeError('only whole numbers are written as SQL')
    return String(value)
  }
  if (needsHex(value)) return `CAST(X'${Buffer.from(value, 'utf8').toString('hex')}' AS TEXT)`
  return `'${value.replaceAll("'", "''")}'`
}

// A client whose own secret (not a connection's) was rotated by this service keeps that secret when an older Mithril
// export is imported again, so a re-run never restores a secret that Mithril stored in plain text.
const KEEP_ROTATED_SECRET = `CASE WHEN EXISTS (SELECT 1 FROM client_secret_events e
    WHERE e.client_id = clients.id AND e.event = 'secret_rotated' AND e.connection_id IS NULL)
  THEN clients.secret_hash ELSE excluded.secret_hash END`

/**
 * Builds `INSERT ... ON CONFLICT (id) DO UPDATE` for one row. Only the columns present in the
 * row are written, so a column missing from the export keeps its stored value on update.
 * @param {string} tableName
 * @param {import('./validate.mjs').Row} row
 * @param {string} [secretHash] the hash of `row.secret`, for clients
 */
export function buildUpsert(tableName, row, secretHash) {
  const table = findTable(tableName)
  if (table === undefined) throw new TypeError(`unknown table ${tableName}`)

  /** @type {[string, string | number | null][]} */
  const assignments = []
  for (const column of table.columns) {
    if (column.type === 'secret') {
      if (secretHash !== undefined) assignments.push([targetColumn(column), secretHash])
    } else if (Object.hasOwn(row.values, column.name)) {
      assignments.push([targetColumn(column), row.values[column.name] ?? null])
    }
  }

  const columns = assignments.map(([name]) => name)
  const values = assignments.map(([, value]) => sqlLiteral(value))
  const updates = columns
    .filter((name) => name !== 'id')
    .map((name) =>
      name === 'secret_hash'
        ? `secret_hash = ${KEEP_ROTATED_SECRET}`
        : `${name} = excluded.${name}`,
    )
  const conflict = updates.length === 0 ? 'DO NOTHING' : `DO UPDATE SET ${updates.join(', ')}`

  return `INSERT INTO ${table.name} (${columns.join(', ')}) VALUES (${values.join(', ')})
  ON CONFLICT (id) ${conflict};`
}

/**
 * Splits values into chunks, so that no lookup statement grows past D1's statement size limit.
 * @template T
 * @param {T[]} values
 * @param {number} size
 * @returns {T[][]}
 */
export function chunk(values, size) {
  /** @type {T[][]} */
  const chunks = []
  for (let start = 0; start < values.length; start += size) {
    chunks.push(values.slice(start, start + size))
  }
  return chunks
}
