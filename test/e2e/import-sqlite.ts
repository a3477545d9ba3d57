/// <reference types="node" />
// An in-memory SQLite database with the project's migrations, which runs SQL the way
// `wrangler d1 execute --local` does, for fast tests of the import's SQL without wrangler.

import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { fileURLToPath } from 'node:url'
import { unstable_splitSqlQuery as splitSqlQuery } from 'wrangler'

const MIGRATIONS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../migrations')

export type ResultRows = Record<string, unknown>[]

/**
 * Opens an empty database with every migration applied and foreign keys enforced, as in D1.
 * NOTE: node:sqlite works without a flag from Node 22.13, but package.json allows 22.12.
 */
export function migratedDatabase(): DatabaseSync {
  const db = new DatabaseSync(':memory:')
  db.exec('PRAGMA foreign_keys = ON')
  for (const file of readdirSync(MIGRATIONS)
    .filter((name) => name.endsWith('.sql'))
    .sort()) {
    db.exec(readFileSync(path.join(MIGRATIONS, file), 'utf8'))
  }
  return db
}

/**
 * Splits SQL with wrangler's own splitter and runs the statements in one transaction, as wrangler
 * runs a local --file or --command as one D1 batch. Returns the rows of each statement.
 */
export function executeLikeWrangler(db: DatabaseSync, sql: string): ResultRows[] {
  const statements = splitSqlQuery(sql)
  db.exec('BEGIN')
  try {
    const results = statements.map((statement) => db.prepare(statement).all() as ResultRows)
    db.exec('COMMIT')
    return results
  } catch (error) {
    db.exec('ROLLBACK')
    throw error
  }
}

/** Returns the rows of one query. */
export function rows(db: DatabaseSync, sql: string): ResultRows {
  return db.prepare(sql).all() as ResultRows
}
