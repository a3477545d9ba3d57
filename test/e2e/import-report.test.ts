/// <reference types="node" />
// The Mithril import's summary and the redaction of wrangler output.

import { describe, expect, it } from 'vitest'
import { redact } from '../../scripts/mithril/d1.mjs'
import { type FileReport, formatReport, tableTotals } from '../../scripts/mithril/summary.mjs'
import type { Row } from '../../scripts/mithril/validate.mjs'

const SECRET = 'N0FINVdUTk0rQ3FHWHZqcFlKWEt5Zz09'

function clientRow(id: string): Row {
  return { location: 'clients.json[0]', id, values: { id, name: 'КНП' }, secret: SECRET }
}

function file(
  display: string,
  table: string,
  counts: { inserts?: number; updates?: number; rejected?: number },
  status: FileReport['status'] = 'written',
): FileReport {
  const rows = (count = 0) => Array.from({ length: count }, (_, index) => clientRow(`id-${index}`))
  return {
    display,
    ignoredColumns: [],
    status,
    plan: {
      table,
      inserts: rows(counts.inserts),
      updates: rows(counts.updates),
      rejected: Array.from({ length: counts.rejected ?? 0 }, (_, index) => ({
        location: `${display}:${index + 2}`,
        reasons: ['secret is empty'],
      })),
      keptSecrets: 0,
    },
  }
}

describe('tableTotals', () => {
  it('adds up the files of a table in foreign-key order', () => {
    const totals = tableTotals([
      file('clients.json', 'clients', { inserts: 2, rejected: 1 }),
      file('users.json', 'users', { inserts: 1 }),
      file('clients.csv', 'clients', { updates: 3, rejected: 2 }),
    ])
    expect(totals).toEqual([
      { table: 'users', inserted: 1, updated: 0, rejected: 0 },
      { table: 'clients', inserted: 2, updated: 3, rejected: 3 },
    ])
  })

  it('counts no writes for a failed file', () => {
    const totals = tableTotals([file('roles.json', 'roles', { inserts: 2, rejected: 1 }, 'failed')])
    expect(totals).toEqual([{ table: 'roles', inserted: 0, updated: 0, rejected: 1 }])
  })
})

describe('formatReport', () => {
  const report = {
    target: 'DB (local)',
    keySource: 'key k1 (SECRET_PEPPER from the environment)',
    dryRun: false,
    files: [
      file('users.json', 'users', { inserts: 1 }),
      file('clients.csv', 'clients', { inserts: 2, rejected: 1 }),
    ],
  }

  it('lists rejected rows by location', () => {
    expect(formatReport(report)).toContain('  clients.csv:2: secret is empty')
  })

  it('prints a row per table', () => {
    const lines = formatReport(report).split('\n')
    expect(lines).toContain('table    inserted  updated  rejected')
    expect(lines).toContain('clients         2        0         1')
  })

  it('never prints a secret', () => {
    expect(formatReport(report)).not.toContain(SECRET)
  })

  it('says a dry run wrote nothing', () => {
    expect(formatReport({ ...report, dryRun: true })).toContain('nothing was written')
  })

  it('names a file that failed and one not attempted', () => {
    const text = formatReport({
      ...report,
      files: [
        file('users.json', 'users', { inserts: 1 }),
        file('clients.csv', 'clients', { inserts: 2 }, 'failed'),
        file('user_roles.json', 'user_roles', { inserts: 1 }, 'not attempted'),
      ],
    })
    expect(text).toContain('clients.csv: wrangler failed, so none of its 2 rows were written.')
    expect(text).toContain('user_roles.json: not written (1 rows) because an earlier file failed.')
  })
})

describe('redact', () => {
  it('removes hashes, secrets and colours', () => {
    const output = `\u001b[31m✘ ERROR\u001b[0m near 'hmac-sha256$k1$MddbhoyuP_a6VrHqsOhFRBR37I7nP3Knu9cHGh3mzJ4' (${SECRET})`
    expect(redact(output, [SECRET])).toBe("✘ ERROR near '[secret hash]' ([secret])")
  })
})
