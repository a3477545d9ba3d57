// Decides, file by file in foreign-key order, which valid rows are written as inserts or updates.
// A row is rejected when a foreign key matches no row of this run or of the database, or when a
// UNIQUE value belongs to another row in the database.

import { keyName } from './lookups.mjs'
import { findTable } from './tables.mjs'
import { keyOf } from './validate.mjs'

/**
 * @typedef {import('./validate.mjs').Row} Row
 * @typedef {import('./validate.mjs').Rejection} Rejection
 * @typedef {import('./lookups.mjs').DatabaseState} DatabaseState
 *
 * @typedef {object} RunState what the files planned so far write
 * @property {Map<string, Set<string>>} ids table → ids
 *
 * @typedef {object} FilePlan
 * @property {string} table
 * @property {Row[]} inserts
 * @property {Row[]} updates
 * @property {Rejection[]} rejected
 * @property {number} keptSecrets updated clients that keep the secret they rotated here
 */

/** @returns {RunState} */
export function emptyRun() {
  return { ids: new Map() }
}

/**
 * @param {Map<string, Set<string>>} ids
 * @param {string} table
 * @param {string} id
 */
function has(ids, table, id) {
  return ids.get(table)?.has(id) === true
}

/**
 * Returns why a row's foreign keys or UNIQUE values cannot be written, if they cannot.
 * @param {string} table
 * @param {Row} row
 * @param {DatabaseState} database
 * @param {RunState} run
 */
function conflictsOf(table, row, database, run) {
  const spec = findTable(table)
  const reasons = []
  for (const column of spec?.columns ?? []) {
    const value = row.values[column.name]
    if (column.references === undefined || typeof value !== 'string') continue
    if (has(run.ids, column.references, value) || has(database.ids, column.references, value)) {
      continue
    }
    reasons.push(
      `${column.name} ${value} is neither a ${column.references} row of this import nor in the database`,
    )
  }

  for (const columns of spec?.uniqueKeys ?? []) {
    const key = keyOf(row, columns)
    if (key === undefined) continue

    // NOTE: a row is rejected when its UNIQUE value belongs to another database row, even when
    // this import changes that other row's value, because the order of updates would decide.
    const owner = database.keyOwners.get(keyName(table, columns))?.get(key)
    if (owner !== undefined && owner !== row.id) {
      reasons.push(`${columns.join(', ')} must be unique but belongs to ${table} row ${owner}`)
    }
  }
  return reasons
}

/**
 * Plans the valid rows of one file. `run` must contain the rows of the files planned before it,
 * and is updated with the rows this file writes. Ids must not repeat across the files of a table
 * (see rejectRepeatedRows), so a row is an update exactly when its id is in the database.
 * @param {string} table
 * @param {Row[]} rows
 * @param {DatabaseState} database
 * @param {RunState} run
 * @returns {FilePlan}
 */
export function planFile(table, rows, database, run) {
  /** @type {FilePlan} */
  const plan = { table, inserts: [], updates: [], rejected: [], keptSecrets: 0 }
  for (const row of rows) {
    const reasons = conflictsOf(table, row, database, run)
    if (reasons.length > 0) {
      plan.rejected.push({ location: row.location, reasons })
      continue
    }

    const exists = has(database.ids, table, row.id)
    if (exists) plan.updates.push(row)
    else plan.inserts.push(row)
    if (exists && table === 'clients' && database.rotatedClients.has(row.id)) plan.keptSecrets += 1
    run.ids.set(table, (run.ids.get(table) ?? new Set()).add(row.id))
  }
  return plan
}
