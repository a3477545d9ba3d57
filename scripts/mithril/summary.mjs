// Formats the import's report: rejected rows with their location, ignored columns, and per table
// the rows inserted, updated and rejected. It names rows by location and id, never by a value.

import { TABLE_ORDER } from './tables.mjs'

/**
 * @typedef {import('./plan.mjs').FilePlan} FilePlan
 *
 * @typedef {object} FileReport
 * @property {string} display the file as given on the command line
 * @property {string[]} ignoredColumns
 * @property {FilePlan} plan
 * @property {'written' | 'planned' | 'failed' | 'not attempted'} status `planned` in a dry run
 *
 * @typedef {object} Report
 * @property {string} target such as `DB (local, --persist-to /tmp/d1)`
 * @property {string | undefined} keySource such as `key k1 (SECRET_PEPPER from the environment)`
 * @property {boolean} dryRun
 * @property {FileReport[]} files
 */

/**
 * @param {FileReport} file
 */
function counts(file) {
  const written = file.status === 'written' || file.status === 'planned'
  return {
    inserted: written ? file.plan.inserts.length : 0,
    updated: written ? file.plan.updates.length : 0,
    rejected: file.plan.rejected.length,
  }
}

/**
 * Returns the inserted, updated and rejected rows per table, in foreign-key order.
 * @param {FileReport[]} files
 */
export function tableTotals(files) {
  const totals = []
  for (const table of TABLE_ORDER) {
    const ofTable = files.filter((file) => file.plan.table === table)
    if (ofTable.length === 0) continue

    const total = { table, inserted: 0, updated: 0, rejected: 0 }
    for (const file of ofTable) {
      const count = counts(file)
      total.inserted += count.inserted
      total.updated += count.updated
      total.rejected += count.rejected
    }
    totals.push(total)
  }
  return totals
}

/** @param {FileReport[]} files */
function rejectionLines(files) {
  const lines = files.flatMap((file) =>
    file.plan.rejected.map(
      (rejection) => `  ${rejection.location}: ${rejection.reasons.join('; ')}`,
    ),
  )
  return lines.length === 0 ? [] : ['Rejected rows (not written):', ...lines, '']
}

/** @param {ReturnType<typeof tableTotals>} totals */
function tableLines(totals) {
  const header = ['table', 'inserted', 'updated', 'rejected']
  const rows = totals.map((total) => [
    total.table,
    String(total.inserted),
    String(total.updated),
    String(total.rejected),
  ])
  const widths = header.map((title, index) =>
    Math.max(title.length, ...rows.map((row) => (row[index] ?? '').length)),
  )
  return [header, ...rows].map((cells) =>
    cells
      .map((cell, index) =>
        index === 0 ? cell.padEnd(widths[0] ?? 0) : cell.padStart(widths[index] ?? 0),
      )
      .join('  '),
  )
}

/** @param {FileReport[]} files */
function noteLines(files) {
  const notes = []
  for (const file of files) {
    if (file.ignoredColumns.length > 0) {
      notes.push(`${file.display}: ignored columns ${file.ignoredColumns.join(', ')} (not in D1).`)
    }
    if (file.plan.keptSecrets > 0) {
      notes.push(
        `${file.display}: ${file.plan.keptSecrets} updated client(s) keep the secret they ` +
          'rotated in this service.',
      )
    }
    const rows = file.plan.inserts.length + file.plan.updates.length
    if (file.status === 'failed') {
      notes.push(`${file.display}: wrangler failed, so none of its ${rows} rows were written.`)
    }
    if (file.status === 'not attempted') {
      notes.push(`${file.display}: not written (${rows} rows) because an earlier file failed.`)
    }
  }
  return notes
}

/**
 * Formats the report as text for the terminal.
 * @param {Report} report
 */
export function formatReport(report) {
  const failed = report.files.some((file) => file.status === 'failed')
  let heading = `Imported into ${report.target}; secrets hashed with ${report.keySource}.`
  if (failed) {
    heading = `The import into ${report.target} stopped at a failed file. Files before it were written.`
  }
  if (report.dryRun) {
    heading = `Dry run against ${report.target}: nothing was written. The counts are what an import would do.`
  }
  const notes = noteLines(report.files)

  return [
    ...rejectionLines(report.files),
    heading,
    '',
    ...tableLines(tableTotals(report.files)),
    ...(notes.length > 0 ? ['', ...notes] : []),
  ].join('\n')
}
