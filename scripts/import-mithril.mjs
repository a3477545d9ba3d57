#!/usr/bin/env node
// `npm run import:mithril`: imports a Mithril export (users, client_types, clients, roles and
// user_roles as JSON or CSV) into the D1 database through wrangler, hashing client secrets with
// the Worker's pepper. docs/IMPORT.md describes the formats, the checks and the summary.

import path from 'node:path'
import { parseArgs } from 'node:util'
import { PROJECT_ROOT, runMain, UsageError } from './dev-env.mjs'
import { D1Error } from './mithril/d1.mjs'
import { importFiles } from './mithril/importer.mjs'
import { loadPepper } from './mithril/pepper.mjs'
import { resolveSource } from './mithril/sources.mjs'
import { formatReport } from './mithril/summary.mjs'
import { TABLE_ORDER } from './mithril/tables.mjs'

const USAGE = `Usage: npm run import:mithril -- [--local | --remote] [options] FILE...

Imports Mithril tables into D1. Each FILE is a JSON array of records or a CSV file with a
header row, named after its table (${TABLE_ORDER.join(', ')}): users.json,
clients.csv, clients.part-2.csv. Tables are imported in that order whatever the order of the
files. Rows are upserted by id, so the import can run again. Invalid rows are reported and
skipped. Client secrets are stored only as HMAC-SHA-256 hashes under the pepper.

Options:
  --local             write to the local database of wrangler dev (the default)
  --remote            write to the database on Cloudflare
  --database DB       D1 binding or database name in wrangler.toml (default: DB)
  --persist-to DIR    local persistence directory, as for wrangler (--local only)
  --table TABLE       read every FILE as this table instead of taking it from the file name
  --pepper-env VAR    environment variable with the pepper (default: SECRET_PEPPER); the key
                      id comes from VAR_ID, else SECRET_PEPPER_ID in wrangler.toml, else k1.
                      With --local and VAR unset, both come from .dev.vars
  --dry-run           validate and compare with the database, but write nothing
  -h, --help          show this help

Exit status: 0 when every row was written, 3 when some rows were rejected and the rest
written, 1 when a write failed, 2 for invalid arguments, settings or files (nothing is
written then).`

const OPTIONS = {
  local: { type: 'boolean' },
  remote: { type: 'boolean' },
  database: { type: 'string', default: 'DB' },
  'persist-to': { type: 'string' },
  table: { type: 'string' },
  'pepper-env': { type: 'string', default: 'SECRET_PEPPER' },
  'dry-run': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
}

const EXIT_WRITE_FAILED = 1
const EXIT_ROWS_REJECTED = 3

/** Parses the command line, or throws a UsageError with exit code 2. */
function parseOptions() {
  let parsed
  try {
    parsed = parseArgs({ options: /** @type {any} */ (OPTIONS), allowPositionals: true })
  } catch (error) {
    throw new UsageError(`${/** @type {Error} */ (error).message}\n\n${USAGE}`, 2)
  }

  const values = /** @type {Record<string, string | boolean | undefined>} */ (parsed.values)
  if (values.local && values.remote) throw new UsageError('Pass --local or --remote, not both.', 2)
  if (values.remote && values['persist-to'] !== undefined) {
    throw new UsageError('--persist-to applies to --local only.', 2)
  }
  if (values.database === '') throw new UsageError('--database must not be empty.', 2)
  const pepperEnv = String(values['pepper-env'])
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(pepperEnv)) {
    throw new UsageError('--pepper-env must be an environment variable name.', 2)
  }
  if (!values.help && parsed.positionals.length === 0) {
    throw new UsageError(`No FILE given.\n\n${USAGE}`, 2)
  }
  return { values, files: parsed.positionals, pepperEnv }
}

/**
 * @param {ReturnType<typeof parseOptions>} options
 * @param {string} baseDir
 */
function buildTarget(options, baseDir) {
  const persistTo = /** @type {string | undefined} */ (options.values['persist-to'])
  return {
    root: PROJECT_ROOT,
    database: String(options.values.database),
    mode: options.values.remote ? /** @type {const} */ ('remote') : /** @type {const} */ ('local'),
    persistTo: persistTo === undefined ? undefined : path.resolve(baseDir, persistTo),
  }
}

/** @param {ReturnType<typeof buildTarget>} target */
function describeTarget(target) {
  const where = target.persistTo === undefined ? '' : `, --persist-to ${target.persistTo}`
  return `${target.database} (${target.mode}${where})`
}

async function main() {
  const options = parseOptions()
  if (options.values.help) {
    console.log(USAGE)
    return
  }

  // npm runs scripts in the package directory; INIT_CWD is where `npm run` was called.
  const baseDir = process.env.INIT_CWD ?? process.cwd()
  const table = /** @type {string | undefined} */ (options.values.table)
  const sources = options.files.map((file) => resolveSource(file, baseDir, table))
  const repeated = sources.find((source, index) =>
    sources.slice(0, index).some((other) => other.path === source.path),
  )
  if (repeated !== undefined) throw new UsageError(`${repeated.display} is given twice.`, 2)
  const target = buildTarget(options, baseDir)
  const dryRun = options.values['dry-run'] === true

  const loaded = dryRun
    ? undefined
    : await loadPepper({
        envName: options.pepperEnv,
        local: target.mode === 'local',
        root: target.root,
      })

  let result
  try {
    result = await importFiles({ sources, target, pepper: loaded?.pepper, dryRun })
  } catch (error) {
    // A failed lookup happens before any write, so the database is unchanged.
    if (error instanceof D1Error) throw new UsageError(`${error.message}\nNothing was written.`, 1)
    throw error
  }
  console.log(
    formatReport({
      target: describeTarget(target),
      keySource: loaded === undefined ? undefined : `key ${loaded.pepper.id} (${loaded.source})`,
      dryRun,
      files: result.files,
    }),
  )

  if (result.failure !== undefined) {
    console.error(`\n${result.failure}`)
    process.exitCode = EXIT_WRITE_FAILED
  } else if (result.files.some((file) => file.plan.rejected.length > 0)) {
    process.exitCode = EXIT_ROWS_REJECTED
  }
}

runMain(main)
