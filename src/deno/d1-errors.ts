// Errors in the form D1 gives them, so the Worker gets the same messages on Deno as on D1:
// `D1_ERROR: <SQLite message>: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_UNIQUE)`, with the
// text after the prefix as the `cause`. The forms are those of the local D1 that miniflare runs
// for @cloudflare/vitest-plugin 1.5.

/** SQLite's primary result codes (https://sqlite.org/rescode.html). */
const PRIMARY_CODES: Record<number, string> = {
  1: 'SQLITE_ERROR',
  2: 'SQLITE_INTERNAL',
  3: 'SQLITE_PERM',
  4: 'SQLITE_ABORT',
  5: 'SQLITE_BUSY',
  6: 'SQLITE_LOCKED',
  7: 'SQLITE_NOMEM',
  8: 'SQLITE_READONLY',
  9: 'SQLITE_INTERRUPT',
  10: 'SQLITE_IOERR',
  11: 'SQLITE_CORRUPT',
  12: 'SQLITE_NOTFOUND',
  13: 'SQLITE_FULL',
  14: 'SQLITE_CANTOPEN',
  15: 'SQLITE_PROTOCOL',
  16: 'SQLITE_EMPTY',
  17: 'SQLITE_SCHEMA',
  18: 'SQLITE_TOOBIG',
  19: 'SQLITE_CONSTRAINT',
  20: 'SQLITE_MISMATCH',
  21: 'SQLITE_MISUSE',
  22: 'SQLITE_NOLFS',
  23: 'SQLITE_AUTH',
  24: 'SQLITE_FORMAT',
  25: 'SQLITE_RANGE',
  26: 'SQLITE_NOTADB',
}

/** Extended result codes of constraint and lock failures; others are shown as numbers. */
const EXTENDED_CODES: Record<number, string> = {
  261: 'SQLITE_BUSY_RECOVERY',
  517: 'SQLITE_BUSY_SNAPSHOT',
  773: 'SQLITE_BUSY_TIMEOUT',
  262: 'SQLITE_LOCKED_SHAREDCACHE',
  275: 'SQLITE_CONSTRAINT_CHECK',
  531: 'SQLITE_CONSTRAINT_COMMITHOOK',
  787: 'SQLITE_CONSTRAINT_FOREIGNKEY',
  1043: 'SQLITE_CONSTRAINT_FUNCTION',
  1299: 'SQLITE_CONSTRAINT_NOTNULL',
  1555: 'SQLITE_CONSTRAINT_PRIMARYKEY',
  1811: 'SQLITE_CONSTRAINT_TRIGGER',
  2067: 'SQLITE_CONSTRAINT_UNIQUE',
  2323: 'SQLITE_CONSTRAINT_VTAB',
  2579: 'SQLITE_CONSTRAINT_ROWID',
  3091: 'SQLITE_CONSTRAINT_DATATYPE',
}

/** Builds an error as D1 throws it: `<prefix>: <detail>`, with `detail` as the cause. */
export function d1Error(prefix: string, detail: string): Error {
  return new Error(`${prefix}: ${detail}`, { cause: new Error(detail) })
}

/** Names a SQLite result code the way D1 appends it to the message. */
function describeCode(code: number): string {
  const primary = PRIMARY_CODES[code & 0xff] ?? `SQLITE_${code & 0xff}`
  if (code === (code & 0xff)) return primary

  const extended = EXTENDED_CODES[code] ?? String(code)
  return `${primary} (extended: ${extended})`
}

/** The SQLite details that node:sqlite sets on the errors it throws. */
interface SqliteError extends Error {
  code?: string
  errcode?: number
}

function isSqliteError(error: unknown): error is SqliteError & { errcode: number } {
  return error instanceof Error && typeof (error as SqliteError).errcode === 'number'
}

/**
 * Describes an error of node:sqlite as D1 does after its prefix: the SQLite message, then the
 * result code. Errors that did not come from SQLite keep their own message.
 */
export function describeSqliteError(error: unknown): string {
  if (isSqliteError(error)) return `${error.message}: ${describeCode(error.errcode)}`
  return error instanceof Error ? error.message : String(error)
}

/** Converts an error of node:sqlite into the `D1_ERROR` that D1 would throw. */
export function toD1Error(error: unknown): Error {
  return d1Error('D1_ERROR', describeSqliteError(error))
}
