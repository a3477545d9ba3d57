import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite'
import { d1Error, describeSqliteError, toD1Error } from './d1-errors.ts'
import { findParameters, firstKeyword, isBlank, skipBlank } from './sql-text.ts'

/** The source of query results, reported as D1's `meta.served_by`. */
const SERVED_BY = 'node:sqlite'

/** How long a write waits for another process that holds the database file's lock. */
const BUSY_TIMEOUT_MS = 5_000

// D1 runs each batch as one transaction and rejects statements that manage transactions.
const TRANSACTION_KEYWORDS = new Set(['BEGIN', 'COMMIT', 'END', 'ROLLBACK', 'SAVEPOINT', 'RELEASE'])

type RowMode = 'objects' | 'arrays'

interface Execution {
  columns: string[]
  rows: unknown[]
  meta: D1Response['meta']
}

/**
 * Opens a SQLite file (or `:memory:`) with the settings D1 has: foreign keys enforced. WAL
 * journaling lets other tools read the file while the server writes.
 */
export function openSqlite(path: string): DatabaseSync {
  const connection = new DatabaseSync(path, { enableForeignKeyConstraints: true })
  connection.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`)
  if (path !== ':memory:') connection.exec('PRAGMA journal_mode = WAL')
  return connection
}

function describeValue(value: unknown): string {
  try {
    return String(value)
  } catch {
    return typeof value
  }
}

function isByteArray(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'number')
}

/**
 * Converts a bound value as D1 does. Booleans become 1 and 0, NaN and the infinities become NULL
 * (D1 sends parameters as JSON), and bytes become a BLOB. Anything else, undefined included,
 * throws D1's `D1_TYPE_ERROR` from `bind()`.
 */
function toSqliteValue(value: unknown): SQLInputValue {
  if (value === null || typeof value === 'string') return value
  if (typeof value === 'number') return Number.isFinite(value) ? value : null
  if (typeof value === 'boolean') return value ? 1 : 0
  if (value instanceof ArrayBuffer) return new Uint8Array(value)
  if (ArrayBuffer.isView(value)) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
  }
  if (isByteArray(value)) return Uint8Array.from(value)

  throw d1Error(
    'D1_TYPE_ERROR',
    `Type '${typeof value}' not supported for value '${describeValue(value)}'`,
  )
}

/**
 * Converts a column value as D1 returns it: a BLOB as an array of bytes, and an integer as a
 * number, which loses precision beyond 2^53 exactly as D1 does.
 */
function fromSqliteValue(value: unknown): unknown {
  if (typeof value === 'bigint') return Number(value)
  if (value instanceof Uint8Array) return Array.from(value)
  return value
}

function toRow(row: unknown, mode: RowMode): unknown {
  if (mode === 'arrays') return (row as unknown[]).map(fromSqliteValue)

  const converted: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(row as Record<string, unknown>)) {
    converted[name] = fromSqliteValue(value)
  }
  return converted
}

/**
 * Runs every statement of a script without parameters and returns how many ran. Unlike
 * DatabaseSync.exec, whose errors carry no SQLite result code on Deno 2.9, the errors of each
 * statement keep their code, and SQLite's own parser finds where a statement ends.
 */
export function runScript(connection: DatabaseSync, sql: string): number {
  let count = 0
  let rest = sql.slice(skipBlank(sql))
  while (rest !== '') {
    const statement = connection.prepare(rest)
    const length = statement.sourceSQL.length
    if (length === 0) throw new Error('SQLite compiled no statement from non-blank SQL.')

    statement.run()
    count += 1
    rest = rest.slice(length)
    rest = rest.slice(skipBlank(rest))
  }
  return count
}

/** Runs statements on one connection. Every call runs to completion before it returns. */
class SqliteRunner {
  readonly connection: DatabaseSync
  readonly #status: StatementSync
  readonly #size: StatementSync

  constructor(connection: DatabaseSync) {
    // D1 enforces foreign keys, so the adapter turns them on whatever options opened the connection.
    connection.exec('PRAGMA foreign_keys = ON')
    this.connection = connection
    this.#status = connection.prepare(
      'SELECT total_changes() AS total_changes, last_insert_rowid() AS last_row_id',
    )
    this.#size = connection.prepare(
      'SELECT page_count * page_size AS size FROM pragma_page_count(), pragma_page_size()',
    )
  }

  #readStatus(): { totalChanges: number; lastRowId: number } {
    const row = this.#status.get() as { total_changes: number; last_row_id: number }
    return { totalChanges: Number(row.total_changes), lastRowId: Number(row.last_row_id) }
  }

  /** Compiles one statement and checks its parameters as D1 does before it runs anything. */
  #compile(sql: string, values: readonly SQLInputValue[]): StatementSync {
    if (isBlank(sql)) throw d1Error('D1_ERROR', 'No SQL statements detected.')

    const keyword = firstKeyword(sql)
    if (TRANSACTION_KEYWORDS.has(keyword)) {
      throw d1Error(
        'D1_ERROR',
        `${keyword} is not supported: D1 runs each batch() as one transaction instead.`,
      )
    }

    // Leading comments and semicolons are cut off because node:sqlite crashes the process on a
    // statement that compiles to nothing (Deno 2.9.6).
    const text = sql.slice(skipBlank(sql))
    let statement: StatementSync
    try {
      statement = this.connection.prepare(text)
    } catch (error) {
      throw toD1Error(error)
    }

    // SQLite compiles the first statement only and node:sqlite silently ignores the rest, so a
    // second statement is rejected rather than dropped.
    if (!isBlank(text, statement.sourceSQL.length)) {
      throw d1Error(
        'D1_ERROR',
        'A prepared statement must hold exactly one SQL statement; use batch() to run several.',
      )
    }

    const parameters = findParameters(statement.sourceSQL)
    if (parameters.names.length > 0) {
      throw d1Error(
        'D1_ERROR',
        `Named parameters (${parameters.names.join(', ')}) are not supported; use ?NNN.`,
      )
    }
    if (parameters.count !== values.length) {
      throw d1Error('D1_ERROR', 'Wrong number of parameter bindings for SQL query.')
    }
    return statement
  }

  /** Runs one statement and returns its rows with D1's `meta`. */
  execute(sql: string, values: readonly SQLInputValue[], mode: RowMode): Execution {
    const statement = this.#compile(sql, values)
    statement.setReadBigInts(true)
    statement.setReturnArrays(mode === 'arrays')

    const before = this.#readStatus()
    const started = performance.now()
    let rows: unknown[]
    try {
      rows = statement.all(...values).map((row) => toRow(row, mode))
    } catch (error) {
      throw toD1Error(error)
    }
    const duration = performance.now() - started
    const after = this.#readStatus()
    const size = this.#size.get() as { size: number }

    // NOTE: node:sqlite reports no per-statement counters, so `changes` is the difference of
    // total_changes() (which also counts rows changed by triggers), `rows_read` is the number of
    // rows returned and `changed_db` is true only when rows changed, also after DDL.
    const changes = after.totalChanges - before.totalChanges
    return {
      columns: statement.columns().map((column) => column.name),
      rows,
      meta: {
        served_by: SERVED_BY,
        served_by_primary: true,
        total_attempts: 1,
        timings: { sql_duration_ms: duration },
        duration,
        changes,
        last_row_id: after.lastRowId,
        changed_db: changes > 0,
        size_after: Number(size.size),
        rows_read: rows.length,
        rows_written: changes,
      },
    }
  }

  /** Runs `work` in one transaction: all of its writes are kept, or none when it throws. */
  transaction<T>(work: () => T): T {
    try {
      this.connection.exec('BEGIN IMMEDIATE')
    } catch (error) {
      throw toD1Error(error)
    }

    let result: T
    try {
      result = work()
    } catch (error) {
      this.#rollback()
      throw error
    }

    try {
      this.connection.exec('COMMIT')
    } catch (error) {
      this.#rollback()
      throw toD1Error(error)
    }
    return result
  }

  #rollback(): void {
    if (this.connection.isTransaction) this.connection.exec('ROLLBACK')
  }
}

function toResult<T>(execution: Execution): D1Result<T> {
  return { success: true, meta: execution.meta, results: execution.rows as T[] }
}

/** A statement with its bound values. Like D1's, it is compiled only when it runs. */
class SqlitePreparedStatement implements D1PreparedStatement {
  readonly runner: SqliteRunner
  readonly sql: string
  readonly values: readonly SQLInputValue[]

  constructor(runner: SqliteRunner, sql: string, values: readonly SQLInputValue[] = []) {
    this.runner = runner
    this.sql = sql
    this.values = values
  }

  bind(...values: unknown[]): D1PreparedStatement {
    return new SqlitePreparedStatement(this.runner, this.sql, values.map(toSqliteValue))
  }

  execute(mode: RowMode): Execution {
    return this.runner.execute(this.sql, this.values, mode)
  }

  first<T = unknown>(colName: string): Promise<T | null>
  first<T = Record<string, unknown>>(): Promise<T | null>
  async first<T>(colName?: string): Promise<T | null> {
    const row = this.execute('objects').rows[0] as Record<string, unknown> | undefined
    if (row === undefined) return null
    if (colName === undefined) return row as T

    if (!(colName in row)) throw d1Error('D1_COLUMN_NOTFOUND', `Column not found (${colName})`)
    return row[colName] as T
  }

  async all<T = Record<string, unknown>>(): Promise<D1Result<T>> {
    return toResult<T>(this.execute('objects'))
  }

  /** Runs the statement. As on D1, rows that it returns (RETURNING) are in `results`. */
  async run<T = Record<string, unknown>>(): Promise<D1Result<T>> {
    return toResult<T>(this.execute('objects'))
  }

  raw<T = unknown[]>(options: { columnNames: true }): Promise<[string[], ...T[]]>
  raw<T = unknown[]>(options?: { columnNames?: false }): Promise<T[]>
  async raw<T>(options?: { columnNames?: boolean }): Promise<T[] | [string[], ...T[]]> {
    const execution = this.execute('arrays')
    const rows = execution.rows as T[]
    return options?.columnNames === true ? [execution.columns, ...rows] : rows
  }
}

/**
 * The D1 binding over a node:sqlite connection, for running the Worker on Deno. `batch()` runs
 * its statements in one transaction, and errors carry D1's messages.
 */
export class SqliteD1Database implements D1Database {
  readonly #runner: SqliteRunner

  constructor(connection: DatabaseSync) {
    this.#runner = new SqliteRunner(connection)
  }

  prepare(query: string): D1PreparedStatement {
    return new SqlitePreparedStatement(this.#runner, query)
  }

  /** Runs the statements in order in one transaction and returns one result per statement. */
  async batch<T = unknown>(statements: D1PreparedStatement[]): Promise<D1Result<T>[]> {
    if (statements.length === 0) throw d1Error('D1_ERROR', 'No SQL statements detected.')

    const own = statements.map((statement) => {
      if (statement instanceof SqlitePreparedStatement && statement.runner === this.#runner) {
        return statement
      }
      throw d1Error('D1_ERROR', 'batch() accepts only statements prepared on this database.')
    })
    return this.#runner.transaction(() =>
      own.map((statement) => toResult<T>(statement.execute('objects'))),
    )
  }

  /**
   * Runs SQL without parameters, one line at a time as D1 splits it, in one transaction. Returns
   * the number of non-empty lines.
   */
  async exec(query: string): Promise<D1ExecResult> {
    const lines = query
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '')
    if (lines.length === 0) throw d1Error('D1_ERROR', 'No SQL statements detected.')

    const started = performance.now()
    this.#runner.transaction(() => {
      for (const [index, line] of lines.entries()) {
        try {
          runScript(this.#runner.connection, line)
        } catch (error) {
          const detail = describeSqliteError(error)
          throw d1Error('D1_EXEC_ERROR', `Error in line ${index + 1}: ${line}: ${detail}`)
        }
      }
    })
    return { count: lines.length, duration: performance.now() - started }
  }

  /**
   * Returns a session on the same database. There are no read replicas, so every constraint
   * reads the one file and the session has no bookmark.
   */
  withSession(_constraintOrBookmark?: D1SessionBookmark | D1SessionConstraint): D1DatabaseSession {
    return {
      prepare: (query) => this.prepare(query),
      batch: (statements) => this.batch(statements),
      getBookmark: () => null,
    }
  }

  /** D1 deprecated dump(); copy the SQLite file instead. */
  dump(): Promise<ArrayBuffer> {
    return Promise.reject(
      d1Error('D1_ERROR', 'dump() is not supported on Deno; copy the SQLite file instead.'),
    )
  }
}
