// Reads what the import needs to know about the database before it writes. It finds which ids
// exist, for inserted or updated and for foreign keys to rows outside the import. It also finds
// which rows have the UNIQUE values of the import's rows, and which clients rotated their secret.

import { chunk, sqlLiteral } from './sql.mjs'
import { findTable } from './tables.mjs'
import { keyOf } from './validate.mjs'

/** Values per lookup statement: 500 UUID literals are about 20 kB, under D1's 100 kB limit. */
const VALUES_PER_STATEMENT = 500

/**
 * @typedef {import('./validate.mjs').Row} Row
 * @typedef {{ table: string, rows: Row[] }} TableRows
 *
 * @typedef {object} DatabaseState
 * @property {Map<string, Set<string>>} ids table → the ids asked about that exist
 * @property {Map<string, Map<string, string>>} keyOwners `table:columns` → key → id of the row
 *   with that key
 * @property {Set<string>} rotatedClients clients whose own secret has a `secret_rotated` audit row
 *
 * @typedef {object} Lookup
 * @property {string} sql
 * @property {(results: Record<string, unknown>[], state: DatabaseState) => void} collect
 */

/** @returns {DatabaseState} */
export function emptyState() {
  return { ids: new Map(), keyOwners: new Map(), rotatedClients: new Set() }
}

/**
 * @param {string} table
 * @param {string[]} columns
 */
export function keyName(table, columns) {
  return `${table}:${columns.join(',')}`
}

/**
 * Returns, per table, the ids of the import's rows and the ids that its rows reference.
 * @param {TableRows[]} files
 */
function idsToLookUp(files) {
  /** @type {Map<string, Set<string>>} */
  const ids = new Map()
  const add = (/** @type {string} */ table, /** @type {unknown} */ id) => {
    if (typeof id !== 'string') return
    ids.set(table, (ids.get(table) ?? new Set()).add(id))
  }

  for (const { table, rows } of files) {
    const references = findTable(table)?.columns.filter((column) => column.references) ?? []
    for (const row of rows) {
      add(table, row.id)
      for (const column of references) add(column.references ?? '', row.values[column.name])
    }
  }
  return ids
}

/**
 * @param {string} table
 * @param {Set<string>} ids
 * @returns {Lookup[]}
 */
function idLookups(table, ids) {
  return chunk([...ids].sort(), VALUES_PER_STATEMENT).map((part) => ({
    sql: `SELECT id FROM ${table} WHERE id IN (${part.map(sqlLiteral).join(', ')})`,
    collect: (results, state) => {
      const found = state.ids.get(table) ?? new Set()
      for (const result of results) found.add(String(result.id))
      state.ids.set(table, found)
    },
  }))
}

/**
 * @param {string} table
 * @param {string[]} columns
 * @param {Row[]} rows
 * @returns {Lookup[]}
 */
function keyLookups(table, columns, rows) {
  const keys = [...new Set(rows.map((row) => keyOf(row, columns)).filter((key) => key))]
  const tuples = keys.map((key) => JSON.parse(/** @type {string} */ (key)))
  const target = columns.length === 1 ? columns[0] : `(${columns.join(', ')})`
  const name = keyName(table, columns)

  return chunk(tuples, VALUES_PER_STATEMENT).map((part) => {
    const list =
      columns.length === 1
        ? part.map((tuple) => sqlLiteral(tuple[0])).join(', ')
        : `VALUES ${part.map((tuple) => `(${tuple.map(sqlLiteral).join(', ')})`).join(', ')}`
    return {
      sql: `SELECT id, ${columns.join(', ')} FROM ${table} WHERE ${target} IN (${list})`,
      collect: (results, state) => {
        const owners = state.keyOwners.get(name) ?? new Map()
        for (const result of results) {
          owners.set(JSON.stringify(columns.map((column) => result[column])), String(result.id))
        }
        state.keyOwners.set(name, owners)
      },
    }
  })
}

/**
 * @param {Row[]} clients
 * @returns {Lookup[]}
 */
function rotationLookups(clients) {
  const ids = [...new Set(clients.map((row) => row.id))].sort()
  return chunk(ids, VALUES_PER_STATEMENT).map((part) => ({
    sql: `SELECT DISTINCT client_id FROM client_secret_events
  WHERE event = 'secret_rotated' AND connection_id IS NULL AND client_id IN (${part.map(sqlLiteral).join(', ')})`,
    collect: (results, state) => {
      for (const result of results) state.rotatedClients.add(String(result.client_id))
    },
  }))
}

/**
 * Builds the lookups for the rows of every file of the import.
 * @param {TableRows[]} files
 * @returns {Lookup[]}
 */
export function buildLookups(files) {
  const lookups = []
  for (const [table, ids] of idsToLookUp(files)) lookups.push(...idLookups(table, ids))

  for (const { table, rows } of files) {
    for (const columns of findTable(table)?.uniqueKeys ?? []) {
      lookups.push(...keyLookups(table, columns, rows))
    }
    if (table === 'clients') lookups.push(...rotationLookups(rows))
  }
  return lookups
}

/**
 * Groups lookups into commands of at most `maxChars` characters, because each command is one
 * argument of `wrangler d1 execute --command`, and Linux limits one argument to 128 KiB.
 * @param {Lookup[]} lookups
 * @param {number} maxChars
 * @returns {Lookup[][]}
 */
export function groupLookups(lookups, maxChars) {
  /** @type {Lookup[][]} */
  const groups = []
  let current = []
  let size = 0
  for (const lookup of lookups) {
    if (current.length > 0 && size + lookup.sql.length + 2 > maxChars) {
      groups.push(current)
      current = []
      size = 0
    }
    current.push(lookup)
    size += lookup.sql.length + 2
  }
  if (current.length > 0) groups.push(current)
  return groups
}

/**
 * Runs the lookups and returns what they found. `query` runs SQL statements separated by
 * semicolons and returns one result array per statement.
 * @param {TableRows[]} files
 * @param {(sql: string) => Promise<Record<string, unknown>[][]>} query
 * @param {number} [maxChars]
 */
export async function readDatabaseState(files, query, maxChars = 90_000) {
  const state = emptyState()
  for (const group of groupLookups(buildLookups(files), maxChars)) {
    const results = await query(group.map((lookup) => `${lookup.sql};`).join('\n'))
    if (results.length !== group.length) {
      throw new Error(
        `expected ${group.length} lookup results from wrangler, got ${results.length}`,
      )
    }
    group.forEach((lookup, index) => {
      lookup.collect(results[index] ?? [], state)
    })
  }
  return state
}
