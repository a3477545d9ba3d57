import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { DatabaseSync } from 'node:sqlite'
import { runScript } from './d1.ts'
import { describeSqliteError } from './d1-errors.ts'

/** The table where wrangler records applied migrations, created with wrangler's own statement. */
export const MIGRATIONS_TABLE = 'd1_migrations'

const CREATE_MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE}(
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  name       TEXT UNIQUE,
  applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL
)`

function leadingNumber(name: string): number {
  return Number.parseInt(name.split('_')[0] ?? '', 10)
}

/** Orders migration files as wrangler 4 does: numbered files by number first, then by name. */
export function compareMigrationNames(a: string, b: string): number {
  const numberA = leadingNumber(a)
  const numberB = leadingNumber(b)
  const finiteA = Number.isFinite(numberA)
  const finiteB = Number.isFinite(numberB)
  if (finiteA && finiteB && numberA !== numberB) return numberA - numberB
  if (finiteA !== finiteB) return finiteA ? -1 : 1

  if (a < b) return -1
  return a > b ? 1 : 0
}

/** Lists the `.sql` files of a migrations directory in the order they are applied. */
export async function listMigrations(directory: string): Promise<string[]> {
  const entries = await readdir(directory, { withFileTypes: true })
  return entries
    .filter((entry) => entry.isFile() && entry.name.endsWith('.sql'))
    .map((entry) => entry.name)
    .sort(compareMigrationNames)
}

/**
 * Applies the migrations of `directory` that `d1_migrations` does not list yet, in order, as
 * `wrangler d1 migrations apply` does. Each file and its record are written in one transaction,
 * so a failed file leaves no trace and stops the run. Returns the names applied.
 */
export async function applyMigrations(
  connection: DatabaseSync,
  directory: string,
): Promise<string[]> {
  connection.exec(CREATE_MIGRATIONS_TABLE)
  const appliedRows = connection.prepare(`SELECT name FROM ${MIGRATIONS_TABLE}`).all()
  const applied = new Set(appliedRows.map((row) => String(row.name)))
  const record = connection.prepare(`INSERT INTO ${MIGRATIONS_TABLE} (name) VALUES (?1)`)

  const names: string[] = []
  for (const name of await listMigrations(directory)) {
    if (applied.has(name)) continue

    const sql = await readFile(join(directory, name), 'utf8')
    connection.exec('BEGIN IMMEDIATE')
    try {
      runScript(connection, sql)
      record.run(name)
      connection.exec('COMMIT')
    } catch (error) {
      if (connection.isTransaction) connection.exec('ROLLBACK')
      throw new Error(`Migration ${name} failed: ${describeSqliteError(error)}`, { cause: error })
    }
    names.push(name)
  }
  return names
}
