import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { loadSettings, parseWranglerVars, pickSettings } from '../../src/deno/env.ts'
import { DEFAULT_PORT, PROJECT_ROOT, parseCommandLine } from '../../src/deno/main.ts'
import { findParameters, firstKeyword, isBlank } from '../../src/deno/sql-text.ts'

Deno.test('wrangler vars are read from [vars]', () => {
  const toml = `name = "x"
[vars]
JWT_ALGORITHMS = "RS256,ES256" # comment
SECRET_PEPPER_ID = 'k2'
QUOTED = "a \\"b\\" # c"

[[d1_databases]]
binding = "DB"
[env.production.vars]
JWT_ALGORITHMS = "PS256"
`
  assert.deepEqual(parseWranglerVars(toml), {
    JWT_ALGORITHMS: 'RS256,ES256',
    SECRET_PEPPER_ID: 'k2',
    QUOTED: 'a "b" # c',
  })
})

Deno.test('wrangler vars reject other value types', () => {
  assert.throws(
    () => parseWranglerVars('[vars]\nLIMIT = 5\n'),
    /line 2: the Deno entry reads only NAME = "text" entries/,
  )
})

Deno.test('project wrangler.toml parses', async () => {
  const toml = await Deno.readTextFile(join(PROJECT_ROOT, 'wrangler.toml'))
  assert.equal(typeof parseWranglerVars(toml), 'object')
})

Deno.test('only Worker settings are kept', () => {
  assert.deepEqual(
    pickSettings({ JWKS: '{}', PATH: '/bin', HOME: undefined, JWT_ISSUER: undefined }),
    {
      JWKS: '{}',
    },
  )
})

Deno.test('environment overrides .dev.vars over [vars]', async () => {
  await mkdir(join(PROJECT_ROOT, '.dev', 'deno-test'), { recursive: true })
  const directory = await mkdtemp(join(PROJECT_ROOT, '.dev', 'deno-test', 'settings-'))
  try {
    const wranglerToml = join(directory, 'wrangler.toml')
    const devVars = join(directory, '.dev.vars')
    await writeFile(
      wranglerToml,
      '[vars]\nJWT_ISSUER = "toml"\nJWT_AUDIENCE = "toml"\nCORS_ORIGINS = "toml"\n',
    )
    await writeFile(devVars, "JWT_AUDIENCE=dotenv\nCORS_ORIGINS='dotenv'\nOTHER=1\n")

    const settings = await loadSettings({
      wranglerToml,
      devVars,
      environment: { CORS_ORIGINS: 'environment', UNRELATED: 'x' },
    })
    assert.deepEqual(settings, {
      JWT_ISSUER: 'toml',
      JWT_AUDIENCE: 'dotenv',
      CORS_ORIGINS: 'environment',
    })

    const missing = await loadSettings({
      wranglerToml: join(directory, 'none.toml'),
      devVars: join(directory, 'none.vars'),
      environment: {},
    })
    assert.deepEqual(missing, {})
  } finally {
    await rm(directory, { recursive: true, force: true })
  }
})

Deno.test('command line takes port and database', () => {
  assert.equal(parseCommandLine([]).port, DEFAULT_PORT)
  assert.deepEqual(parseCommandLine(['--port', '9000', '--database', 'x.sqlite']), {
    port: 9000,
    database: 'x.sqlite',
  })
  assert.throws(() => parseCommandLine(['--port', 'http']), /--port must be a whole number/)
  assert.throws(() => parseCommandLine(['--verbose']), /Usage: deno task start/)
})

Deno.test('parameters are counted as SQLite does', () => {
  assert.deepEqual(findParameters('SELECT ?1, ?2, ?1'), { count: 2, names: [] })
  assert.deepEqual(findParameters('SELECT ?, ?, ?'), { count: 3, names: [] })
  assert.deepEqual(findParameters('SELECT ?5'), { count: 5, names: [] })
  assert.deepEqual(findParameters('SELECT ?2, ?'), { count: 3, names: [] })
  assert.deepEqual(findParameters('SELECT :a, @b, :a, $c'), { count: 3, names: [':a', '@b', '$c'] })
  assert.deepEqual(findParameters(`SELECT '?1', "?2", [?3], \`?4\`, x'3f' -- ?5\n/* ?6 */`), {
    count: 0,
    names: [],
  })
  assert.deepEqual(findParameters("SELECT 'it''s ?', ?1"), { count: 1, names: [] })
  assert.deepEqual(findParameters('SELECT a$b, ?1'), { count: 1, names: [] })
})

Deno.test('blank SQL and first keyword', () => {
  assert.equal(isBlank(' ; -- c\n /* d */ ;'), true)
  assert.equal(isBlank('/* unterminated'), true)
  assert.equal(isBlank('-- c\nSELECT 1'), false)
  assert.equal(firstKeyword('  /* c */ begin transaction'), 'BEGIN')
  assert.equal(firstKeyword('-- x\nselect 1'), 'SELECT')
})
