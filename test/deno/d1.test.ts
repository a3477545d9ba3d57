// The D1 adapter against the behaviour of the local D1 that miniflare runs under
// @cloudflare/vitest-plugin 1.5: the expected messages and result shapes are D1's own.

import assert from 'node:assert/strict'
import type { DatabaseSync } from 'node:sqlite'
import { openSqlite, SqliteD1Database } from '../../src/deno/d1.ts'

const SCHEMA = `
CREATE TABLE parents (
  id TEXT PRIMARY KEY NOT NULL,
  email TEXT UNIQUE,
  flag INTEGER NOT NULL DEFAULT 0 CHECK (flag IN (0, 1)),
  data BLOB
);
CREATE TABLE children (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  parent_id TEXT NOT NULL REFERENCES parents (id)
);`

function openDatabase(): { db: SqliteD1Database; connection: DatabaseSync } {
  const connection = openSqlite(':memory:')
  connection.exec(SCHEMA)
  return { db: new SqliteD1Database(connection), connection }
}

async function countRows(db: D1Database, table: string): Promise<number> {
  const count = await db.prepare(`SELECT count(*) AS n FROM ${table}`).first<number>('n')
  return count ?? -1
}

/** Resolves to the message of the error that `action` rejects with or throws. */
async function errorMessage(action: () => Promise<unknown>): Promise<string> {
  try {
    await action()
  } catch (error) {
    return (error as Error).message
  }
  return 'no error'
}

Deno.test('run returns D1 result shape', async () => {
  const { db } = openDatabase()
  const result = await db
    .prepare('INSERT INTO parents (id, email) VALUES (?1, ?2)')
    .bind('a', 'a@x')
    .run()

  assert.equal(result.success, true)
  assert.deepEqual(result.results, [])
  assert.equal(result.meta.changes, 1)
  assert.equal(result.meta.last_row_id, 1)
  assert.equal(result.meta.changed_db, true)
  assert.equal(result.meta.served_by_primary, true)
  assert.equal(typeof result.meta.duration, 'number')
  assert.ok(result.meta.size_after > 0)
})

Deno.test('run returns RETURNING rows', async () => {
  const { db } = openDatabase()
  const result = await db
    .prepare('INSERT INTO parents (id) VALUES (?1) RETURNING id, flag')
    .bind('a')
    .run()

  assert.deepEqual(result.results, [{ id: 'a', flag: 0 }])
  assert.equal(result.meta.changes, 1)
})

Deno.test('all returns rows as plain objects', async () => {
  const { db } = openDatabase()
  await db.prepare("INSERT INTO parents (id, email) VALUES ('a', 'a@x'), ('b', NULL)").run()
  const result = await db.prepare('SELECT id, email FROM parents ORDER BY id').all()

  assert.deepEqual(result.results, [
    { id: 'a', email: 'a@x' },
    { id: 'b', email: null },
  ])
  assert.equal(Object.getPrototypeOf(result.results[0]), Object.prototype)
  assert.equal(result.meta.changes, 0)
  assert.equal(result.meta.changed_db, false)
})

Deno.test('first returns row, column or null', async () => {
  const { db } = openDatabase()
  await db.prepare("INSERT INTO parents (id, email) VALUES ('a', 'a@x'), ('b', 'b@x')").run()
  const query = db.prepare('SELECT id, email FROM parents ORDER BY id')

  assert.deepEqual(await query.first(), { id: 'a', email: 'a@x' })
  assert.equal(await query.first('email'), 'a@x')
  assert.equal(await db.prepare("SELECT id FROM parents WHERE id = 'z'").first(), null)
  assert.equal(await db.prepare("SELECT id FROM parents WHERE id = 'z'").first('id'), null)
  assert.equal(
    await errorMessage(() => query.first('missing')),
    'D1_COLUMN_NOTFOUND: Column not found (missing)',
  )
})

Deno.test('raw returns arrays, optionally with names', async () => {
  const { db } = openDatabase()
  await db.prepare("INSERT INTO parents (id, email) VALUES ('a', 'a@x')").run()
  const query = db.prepare('SELECT id, email FROM parents')

  assert.deepEqual(await query.raw(), [['a', 'a@x']])
  assert.deepEqual(await query.raw({ columnNames: true }), [
    ['id', 'email'],
    ['a', 'a@x'],
  ])
  assert.deepEqual(await db.prepare('SELECT id FROM parents WHERE 0').raw({ columnNames: true }), [
    ['id'],
  ])
})

Deno.test('bind numbers parameters by index', async () => {
  const { db } = openDatabase()
  const row = await db
    .prepare('SELECT ?2 AS second, ?1 AS first, ?2 AS again')
    .bind('x', 'y')
    .first()
  assert.deepEqual(row, { second: 'y', first: 'x', again: 'y' })

  const anonymous = await db.prepare('SELECT ? AS a, ? AS b').bind(1, 2).first()
  assert.deepEqual(anonymous, { a: 1, b: 2 })
})

Deno.test('bind rejects a wrong number of values', async () => {
  const { db } = openDatabase()
  const expected = 'D1_ERROR: Wrong number of parameter bindings for SQL query.'

  assert.equal(await errorMessage(() => db.prepare('SELECT ?1, ?2').bind(1).first()), expected)
  assert.equal(await errorMessage(() => db.prepare('SELECT ?1').bind(1, 2).first()), expected)
  assert.equal(await errorMessage(() => db.prepare('SELECT ?3').bind(1).first()), expected)
  assert.equal(await errorMessage(() => db.prepare('SELECT ?1').first()), expected)
})

Deno.test('bind ignores ? in literals and comments', async () => {
  const { db } = openDatabase()
  const row = await db
    .prepare(`SELECT '?5' AS text, ?1 AS "?2" -- ?9\n /* :name ?7 */`)
    .bind('v')
    .first()
  assert.deepEqual(row, { text: '?5', '?2': 'v' })
})

Deno.test('bind rejects named parameters', async () => {
  const { db } = openDatabase()
  const message = await errorMessage(() => db.prepare('SELECT :name AS a').bind(1).first())
  assert.equal(message, 'D1_ERROR: Named parameters (:name) are not supported; use ?NNN.')
})

Deno.test('bind converts values as D1 does', async () => {
  const { db } = openDatabase()
  const select = db.prepare('SELECT ?1 AS value, typeof(?1) AS type')

  assert.deepEqual(await select.bind(true).first(), { value: 1, type: 'real' })
  assert.deepEqual(await select.bind(false).first(), { value: 0, type: 'real' })
  assert.deepEqual(await select.bind(null).first(), { value: null, type: 'null' })
  assert.deepEqual(await select.bind(Number.NaN).first(), { value: null, type: 'null' })
  assert.deepEqual(await select.bind(3).first(), { value: 3, type: 'real' })
  assert.deepEqual(await select.bind(new Uint8Array([1, 2])).first(), {
    value: [1, 2],
    type: 'blob',
  })
  assert.deepEqual(await select.bind([7, 8]).first(), { value: [7, 8], type: 'blob' })

  await db.prepare('INSERT INTO parents (id, flag) VALUES (?1, ?2)').bind('t', true).run()
  const stored = await db
    .prepare("SELECT flag, typeof(flag) AS type FROM parents WHERE id = 't'")
    .first()
  assert.deepEqual(stored, { flag: 1, type: 'integer' })
})

Deno.test('bind throws D1_TYPE_ERROR at once', () => {
  const { db } = openDatabase()
  const statement = db.prepare('SELECT ?1')

  assert.throws(() => statement.bind(undefined), {
    message: "D1_TYPE_ERROR: Type 'undefined' not supported for value 'undefined'",
  })
  assert.throws(() => statement.bind(3n), {
    message: "D1_TYPE_ERROR: Type 'bigint' not supported for value '3'",
  })
  assert.throws(() => statement.bind({ a: 1 }), {
    message: "D1_TYPE_ERROR: Type 'object' not supported for value '[object Object]'",
  })
})

Deno.test('integers beyond 2^53 lose precision', async () => {
  const { db } = openDatabase()
  assert.equal(await db.prepare('SELECT 9007199254740993 AS v').first('v'), 9007199254740992)
})

Deno.test('UNIQUE violation maps to D1 error', async () => {
  const { db } = openDatabase()
  await db.prepare("INSERT INTO parents (id, email) VALUES ('a', 'a@x')").run()

  const unique = await errorMessage(() =>
    db.prepare("INSERT INTO parents (id, email) VALUES ('b', 'a@x')").run(),
  )
  assert.equal(
    unique,
    'D1_ERROR: UNIQUE constraint failed: parents.email: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_UNIQUE)',
  )

  const primaryKey = await errorMessage(() =>
    db.prepare("INSERT INTO parents (id) VALUES ('a')").run(),
  )
  assert.equal(
    primaryKey,
    'D1_ERROR: UNIQUE constraint failed: parents.id: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_PRIMARYKEY)',
  )
})

Deno.test('CHECK and NOT NULL map to D1 errors', async () => {
  const { db } = openDatabase()

  const check = await errorMessage(() =>
    db.prepare('INSERT INTO parents (id, flag) VALUES (?1, ?2)').bind('a', 5).run(),
  )
  assert.equal(
    check,
    'D1_ERROR: CHECK constraint failed: flag IN (0, 1): SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_CHECK)',
  )

  const notNull = await errorMessage(() =>
    db.prepare("INSERT INTO parents (id, flag) VALUES ('a', NULL)").run(),
  )
  assert.equal(
    notNull,
    'D1_ERROR: NOT NULL constraint failed: parents.flag: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_NOTNULL)',
  )
})

Deno.test('errors keep SQLite text as cause', async () => {
  const { db } = openDatabase()
  try {
    await db.prepare('SELECT * FROM missing').all()
    assert.fail('the query should have failed')
  } catch (error) {
    assert.equal((error as Error).message, 'D1_ERROR: no such table: missing: SQLITE_ERROR')
    assert.equal(((error as Error).cause as Error).message, 'no such table: missing: SQLITE_ERROR')
  }
})

Deno.test('foreign keys are enforced', async () => {
  const { db } = openDatabase()
  const expected =
    'D1_ERROR: FOREIGN KEY constraint failed: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_FOREIGNKEY)'

  const orphan = await errorMessage(() =>
    db.prepare('INSERT INTO children (parent_id) VALUES (?1)').bind('none').run(),
  )
  assert.equal(orphan, expected)

  await db.prepare("INSERT INTO parents (id) VALUES ('p')").run()
  await db.prepare("INSERT INTO children (parent_id) VALUES ('p')").run()
  const parentDelete = await errorMessage(() =>
    db.prepare("DELETE FROM parents WHERE id = 'p'").run(),
  )
  assert.equal(parentDelete, expected)
  assert.equal(await countRows(db, 'parents'), 1)
})

Deno.test('foreign keys are on whoever opened the file', async () => {
  const { DatabaseSync } = await import('node:sqlite')
  const connection = new DatabaseSync(':memory:', { enableForeignKeyConstraints: false })
  connection.exec(SCHEMA)
  const db = new SqliteD1Database(connection)

  assert.equal(await db.prepare('PRAGMA foreign_keys').first('foreign_keys'), 1)
})

Deno.test('batch returns one result per statement', async () => {
  const { db } = openDatabase()
  const results = await db.batch([
    db.prepare("INSERT INTO parents (id) VALUES ('a')"),
    db.prepare('SELECT id FROM parents'),
    db.prepare("UPDATE parents SET flag = 1 WHERE id = 'none'"),
  ])

  assert.equal(results.length, 3)
  assert.equal(results[0]?.meta.changes, 1)
  assert.deepEqual(results[1]?.results, [{ id: 'a' }])
  assert.equal(results[2]?.meta.changes, 0)
  assert.ok(results.every((result) => result.success))
})

Deno.test('batch rolls back when a later statement fails', async () => {
  const { db } = openDatabase()
  await db.prepare("INSERT INTO parents (id, email) VALUES ('a', 'a@x')").run()

  const message = await errorMessage(() =>
    db.batch([
      db.prepare("INSERT INTO parents (id) VALUES ('b')"),
      db.prepare("UPDATE parents SET flag = 1 WHERE id = 'a'"),
      db.prepare("INSERT INTO parents (id, email) VALUES ('c', 'a@x')"),
    ]),
  )

  assert.match(message, /^D1_ERROR: UNIQUE constraint failed: parents\.email/)
  assert.equal(await countRows(db, 'parents'), 1)
  assert.equal(await db.prepare("SELECT flag FROM parents WHERE id = 'a'").first('flag'), 0)
})

Deno.test('batch rolls back on a foreign key failure', async () => {
  const { db } = openDatabase()
  const message = await errorMessage(() =>
    db.batch([
      db.prepare("INSERT INTO parents (id) VALUES ('p')"),
      db.prepare('INSERT INTO children (parent_id) VALUES (?1)').bind('none'),
    ]),
  )

  assert.match(message, /FOREIGN KEY constraint failed/)
  assert.equal(await countRows(db, 'parents'), 0)
})

Deno.test('batch leaves the connection usable after failure', async () => {
  const { db, connection } = openDatabase()
  await errorMessage(() => db.batch([db.prepare('SELECT * FROM missing')]))

  assert.equal(connection.isTransaction, false)
  await db.batch([db.prepare("INSERT INTO parents (id) VALUES ('a')")])
  assert.equal(await countRows(db, 'parents'), 1)
})

Deno.test('batch rejects empty list and foreign statements', async () => {
  const { db } = openDatabase()
  const other = openDatabase().db

  assert.equal(await errorMessage(() => db.batch([])), 'D1_ERROR: No SQL statements detected.')
  assert.equal(
    await errorMessage(() => db.batch([other.prepare('SELECT 1')])),
    'D1_ERROR: batch() accepts only statements prepared on this database.',
  )
})

Deno.test('prepare rejects blank, multiple and transaction SQL', async () => {
  const { db } = openDatabase()

  for (const blank of ['', '  ', '-- comment only', '/* c */ ;', ';']) {
    assert.equal(
      await errorMessage(() => db.prepare(blank).all()),
      'D1_ERROR: No SQL statements detected.',
      `for ${JSON.stringify(blank)}`,
    )
  }
  assert.equal(
    await errorMessage(() => db.prepare("INSERT INTO parents (id) VALUES ('a'); SELECT 1").run()),
    'D1_ERROR: A prepared statement must hold exactly one SQL statement; use batch() to run several.',
  )
  assert.equal(await countRows(db, 'parents'), 0)
  assert.match(
    await errorMessage(() => db.prepare('BEGIN').run()),
    /^D1_ERROR: BEGIN is not supported/,
  )
})

Deno.test('prepare accepts comments and a final semicolon', async () => {
  const { db } = openDatabase()
  const row = await db.prepare('-- leading\n/* c */ SELECT ?1 AS a; -- trailing').bind(1).first()
  assert.deepEqual(row, { a: 1 })
})

Deno.test('prepare reports syntax errors on run', async () => {
  const { db } = openDatabase()
  const statement = db.prepare('SELEC 1')
  assert.equal(
    await errorMessage(() => statement.all()),
    'D1_ERROR: near "SELEC": syntax error: SQLITE_ERROR',
  )
})

Deno.test('exec runs lines in one transaction', async () => {
  const { db } = openDatabase()
  const result = await db.exec(
    "INSERT INTO parents (id) VALUES ('a');\n\nINSERT INTO parents (id) VALUES ('b')",
  )
  assert.equal(result.count, 2)
  assert.equal(await countRows(db, 'parents'), 2)

  const message = await errorMessage(() =>
    db.exec("INSERT INTO parents (id) VALUES ('c');\nINSERT INTO parents (id) VALUES ('a')"),
  )
  assert.equal(
    message,
    "D1_EXEC_ERROR: Error in line 2: INSERT INTO parents (id) VALUES ('a'): UNIQUE constraint failed: parents.id: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_PRIMARYKEY)",
  )
  assert.equal(await countRows(db, 'parents'), 2)
})

Deno.test('withSession uses the same database', async () => {
  const { db } = openDatabase()
  const session = db.withSession('first-primary')
  await session.batch([session.prepare("INSERT INTO parents (id) VALUES ('a')")])

  assert.equal(await countRows(db, 'parents'), 1)
  assert.equal(session.getBookmark(), null)
})
