// Runs an import: reads and validates every file, reads the database state once, plans the files
// in foreign-key order, then writes each file's rows with one `wrangler d1 execute --file`.

import { hashSecret } from '../../src/secret.ts'
import { D1Error, executeD1File, queryD1 } from './d1.mjs'
import { readDatabaseState } from './lookups.mjs'
import { emptyRun, planFile } from './plan.mjs'
import { readSource } from './sources.mjs'
import { buildUpsert } from './sql.mjs'
import { findTable, TABLE_ORDER } from './tables.mjs'
import { convertRecords, rejectRepeatedRows } from './validate.mjs'

/**
 * @typedef {import('./sources.mjs').Source} Source
 * @typedef {import('./validate.mjs').Row} Row
 * @typedef {import('./validate.mjs').Rejection} Rejection
 * @typedef {import('./summary.mjs').FileReport} FileReport
 * @typedef {{ id: string, key: Uint8Array }} PepperKey
 *
 * @typedef {object} ImportOptions
 * @property {Source[]} sources
 * @property {Omit<import('./d1.mjs').D1Target, 'secrets'>} target
 * @property {PepperKey | undefined} pepper required unless `dryRun`
 * @property {boolean} dryRun
 *
 * @typedef {object} ImportResult
 * @property {FileReport[]} files
 * @property {string | undefined} failure the redacted wrangler error that stopped the import
 */

/**
 * Orders sources so that every table comes after the tables it references. Files of one table
 * keep their command-line order.
 * @param {Source[]} sources
 */
export function sortSources(sources) {
  return [...sources].sort((a, b) => TABLE_ORDER.indexOf(a.table) - TABLE_ORDER.indexOf(b.table))
}

/**
 * @param {Source} source
 */
async function readAndConvert(source) {
  const content = await readSource(source)
  const table = findTable(source.table)
  if (table === undefined) throw new TypeError(`unknown table ${source.table}`)

  const order = new Map(content.records.map((record, index) => [record.location, index]))
  const { rows, rejected } = convertRecords(table, content.records, source.format)
  return { source, content, rows, rejected, order }
}

/**
 * Rejects rows whose id or UNIQUE key repeats across all files of their table, and moves each
 * rejection to the file that the row came from.
 * @param {Awaited<ReturnType<typeof readAndConvert>>[]} files
 */
function rejectRepeatsPerTable(files) {
  for (const name of TABLE_ORDER) {
    const ofTable = files.filter((file) => file.source.table === name)
    const table = findTable(name)
    if (ofTable.length === 0 || table === undefined) continue

    const result = rejectRepeatedRows(
      table,
      ofTable.flatMap((file) => file.rows),
    )
    const accepted = new Set(result.rows)
    for (const file of ofTable) {
      const locations = new Set(file.rows.map((row) => row.location))
      file.rows = file.rows.filter((row) => accepted.has(row))
      file.rejected.push(
        ...result.rejected.filter((rejection) => locations.has(rejection.location)),
      )
    }
  }
}

/**
 * Builds the SQL of one file's rows. Client secrets are hashed here, and the SQL contains only
 * the hashes.
 * @param {string} table
 * @param {Row[]} rows
 * @param {PepperKey} pepper
 */
export async function buildFileSql(table, rows, pepper) {
  const statements = []
  for (const row of rows) {
    const hash = row.secret === undefined ? undefined : await hashSecret(row.id, row.secret, pepper)
    statements.push(buildUpsert(table, row, hash))
  }
  return `${statements.join('\n')}\n`
}

/**
 * Writes the planned rows of each file in order, and stops at the first file that wrangler
 * fails to apply. Every file is applied whole or not at all.
 * @param {{ source: Source, report: FileReport }[]} files
 * @param {import('./d1.mjs').D1Target} target
 * @param {PepperKey} pepper
 */
async function writeFiles(files, target, pepper) {
  for (const { source, report } of files) {
    const rows = [...report.plan.inserts, ...report.plan.updates]
    try {
      if (rows.length > 0)
        await executeD1File(target, await buildFileSql(source.table, rows, pepper))
      report.status = 'written'
    } catch (error) {
      if (!(error instanceof D1Error)) throw error
      report.status = 'failed'
      return error.message
    }
  }
  return undefined
}

/**
 * Imports the sources. Invalid rows are rejected and reported, never written. A file that
 * cannot be read or parsed throws a UsageError before anything is written.
 * @param {ImportOptions} options
 * @returns {Promise<ImportResult>}
 */
export async function importFiles({ sources, target, pepper, dryRun }) {
  const files = []
  for (const source of sortSources(sources)) files.push(await readAndConvert(source))
  rejectRepeatsPerTable(files)

  const secrets = files.flatMap((file) => file.rows.map((row) => row.secret ?? ''))
  const d1Target = { ...target, secrets: secrets.filter((secret) => secret !== '') }
  const tables = files.map((file) => ({ table: file.source.table, rows: file.rows }))
  const database = await readDatabaseState(tables, (sql) => queryD1(d1Target, sql))

  const run = emptyRun()
  const planned = files.map(({ source, content, rows, rejected, order }) => {
    const plan = planFile(source.table, rows, database, run)
    plan.rejected = [...rejected, ...plan.rejected].sort(
      (a, b) => (order.get(a.location) ?? 0) - (order.get(b.location) ?? 0),
    )
    /** @type {FileReport} */
    const report = {
      display: source.display,
      ignoredColumns: content.ignoredColumns,
      plan,
      status: dryRun ? 'planned' : 'not attempted',
    }
    return { source, report }
  })

  let failure
  if (!dryRun) {
    if (pepper === undefined) throw new TypeError('a pepper is required unless dryRun is set')
    failure = await writeFiles(planned, d1Target, pepper)
  }
  return { files: planned.map((file) => file.report), failure }
}
