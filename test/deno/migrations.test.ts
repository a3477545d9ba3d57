import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { openSqlite, SqliteD1Database } from '../../src/deno/d1.ts'
import { createWorkerEnv, PROJECT_ROOT } from '../../src/deno/main.ts'
import {
  applyMigrations,
  compareMigrationNames,
  listMigrations,
  MIGRATIONS_TABLE,
} from '../../src/deno/migrations.ts'

/** Test files live under .dev/ (ignored by git), the only place the test task may write. */
const SCRATCH = join(PROJECT_ROOT, '.dev', 'deno-test')

async function withScratchDir(body: (directory: string) => Promise<void>): Promise<void> {
  await mkdir(SCRATCH, { recursive: true })
  const directory = await mkdtemp(join(SCRATCH, 'run-'))
  try {
    await body(directory)
  } finally {
    await rm(directory, { recursive: true, force: true })
  }
}

function appliedNames(connection: ReturnType<typeof openSqlite>): string[] {
  return connection
    .prepare(`SELECT name FROM ${MIGRATIONS_TABLE} ORDER BY id`)
    .all()
    .map((row) => String(row.name))
}

Deno.test('migration order follows wrangler', () => {
  const names = ['0010_late.sql', 'notes.sql', '0002_b.sql', '2_a.sql', '0001_first.sql']
  assert.deepEqual(names.sort(compareMigrationNames), [
    '0001_first.sql',
    '0002_b.sql',
    '2_a.sql',
    '0010_late.sql',
    'notes.sql',
  ])
})

Deno.test('project migrations apply and are recorded', async () => {
  const connection = openSqlite(':memory:')
  const directory = join(PROJECT_ROOT, 'migrations')
  const files = await listMigrations(directory)

  assert.deepEqual(await applyMigrations(connection, directory), files)
  assert.deepEqual(appliedNames(connection), files)
  assert.deepEqual(await applyMigrations(connection, directory), [])

  const tables = connection
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
    .all()
    .map((row) => String(row.name))
  for (const table of ['users', 'clients', 'roles', 'user_roles', 'client_secret_events']) {
    assert.ok(tables.includes(table), `table ${table}`)
  }
})

Deno.test('failed migration leaves no trace', () =>
  withScratchDir(async (directory) => {
    await writeFile(join(directory, '0001_ok.sql'), 'CREATE TABLE a (id INTEGER PRIMARY KEY);\n')
    await writeFile(
      join(directory, '0002_broken.sql'),
      'CREATE TABLE b (id INTEGER);\nINSERT INTO missing VALUES (1);\n',
    )
    const connection = openSqlite(':memory:')

    await assert.rejects(applyMigrations(connection, directory), {
      message: 'Migration 0002_broken.sql failed: no such table: missing: SQLITE_ERROR',
    })
    assert.deepEqual(appliedNames(connection), ['0001_ok.sql'])
    const tableB = connection.prepare("SELECT name FROM sqlite_master WHERE name = 'b'").get()
    assert.equal(tableB, undefined)
  }))

Deno.test('migration may hold a trigger', () =>
  withScratchDir(async (directory) => {
    await writeFile(
      join(directory, '0001_trigger.sql'),
      `CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER);
CREATE TABLE log (n INTEGER);
CREATE TRIGGER t_insert AFTER INSERT ON t BEGIN
  INSERT INTO log (n) VALUES (new.n);
  INSERT INTO log (n) VALUES (new.n + 1);
END;`,
    )
    const connection = openSqlite(':memory:')
    await applyMigrations(connection, directory)

    const db = new SqliteD1Database(connection)
    await db.prepare('INSERT INTO t (n) VALUES (?1)').bind(5).run()
    assert.deepEqual((await db.prepare('SELECT n FROM log ORDER BY n').raw()).flat(), [5, 6])
  }))

Deno.test('data persists in the SQLite file', () =>
  withScratchDir(async (directory) => {
    const database = join(directory, 'nested', 'd1.sqlite')
    const first = await createWorkerEnv({ database, isolated: true })
    assert.ok(first.migrated.length > 0)
    await first.env.DB.prepare("INSERT INTO users (id, email) VALUES ('u1', 'u1@x')").run()
    first.connection.close()

    const second = await createWorkerEnv({ database, isolated: true })
    try {
      assert.deepEqual(second.migrated, [])
      const email = await second.env.DB.prepare("SELECT email FROM users WHERE id = 'u1'").first(
        'email',
      )
      assert.equal(email, 'u1@x')
    } finally {
      second.connection.close()
    }
  }))
