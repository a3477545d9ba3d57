/// <reference types="node" />
// Runs `npm run import:mithril` (scripts/import-mithril.mjs) on the sample export in
// test/fixtures/mithril against a local D1 in a temporary directory, runs it again, then rotates
// an imported client's secret under a real `wrangler dev`.

import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { exportJWK, generateKeyPair, type JWK } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { verifySecret } from '../../src/secret.ts'
import { signAccessToken, startWorkerDev } from './worker-dev'
import { childEnv, type DevServer, PROJECT_ROOT, type RunResult, run, wrangler } from './wrangler'

const FIXTURES = path.join(PROJECT_ROOT, 'test', 'fixtures', 'mithril')
const FILES = [
  'user_roles.json',
  'clients.json',
  'clients.csv',
  'roles.json',
  'client_types.json',
  'users.json',
  'users.csv',
].map((name) => path.join(FIXTURES, name))

// The command of `npm run import:mithril`. Node before 22.18 strips types from src/secret.ts only
// with the flag.
const SCRIPT = [
  '--experimental-strip-types',
  '--disable-warning=ExperimentalWarning',
  'scripts/import-mithril.mjs',
]

const ISSUER = 'https://issuer.import.test'
const AUDIENCE = 'refresh-secret-import'

// The valid rows of the sample export. Every other row is invalid on purpose, or refers to one.
const IMPORTED = {
  users: [
    '36ac4712-54fe-4289-88eb-36e2030da51d',
    '5f9a8197-0376-49d3-bc71-b6bdf4b659c7',
    'bd05ed1f-e8c5-4719-820e-413c70149872',
    'ef011bfa-fb43-4464-8941-052b2a63bc8b',
  ],
  client_types: ['594750e4-adb6-4040-abe3-c604022e8533', '62d442c2-1bc2-4669-93a9-7fee97a04936'],
  clients: [
    '5fdcd7a9-630d-4e47-bc10-f1b31f8c2aa9',
    '6c534979-eb7d-434d-bf2a-0610d9a60688',
    '7a0b40e4-fb04-4d70-88e7-3f7dcd8e7ce4',
    'c83123b8-8fae-4421-a2f2-89550908c4c2',
    'ca6aaf46-c638-4b1a-8695-d8c9d627969b',
  ],
  roles: [
    '7b65fe3d-7532-4756-a373-ba91e068285b',
    'b4658ba8-5711-41c5-981a-fea890106042',
    'e337d66d-d4cb-4471-a9f5-a175921d82fe',
  ],
  user_roles: [
    '4c96fb6a-3f9e-4b08-8022-de34664fa2c7',
    '5d654b88-d581-4d51-86f6-369bcd6a2ad4',
    'c4556ff8-81fb-443b-99be-a1d6802bd0a2',
    'edf0a4c7-de62-41e2-9468-c4c3915ac67d',
  ],
} as const
const REJECTED = { users: 9, client_types: 1, clients: 11, roles: 2, user_roles: 6 }

const CLINIC = {
  id: '7a0b40e4-fb04-4d70-88e7-3f7dcd8e7ce4',
  owner: 'ef011bfa-fb43-4464-8941-052b2a63bc8b',
}
const PHARMACY = {
  id: 'ca6aaf46-c638-4b1a-8695-d8c9d627969b',
  owner: 'bd05ed1f-e8c5-4719-820e-413c70149872',
}
const CSV_CLIENT = '5fdcd7a9-630d-4e47-bc10-f1b31f8c2aa9'
const CSV_SECRETS: Record<string, string> = {
  [CSV_CLIENT]: 'TDMvc0dhNkdxcXI1Mi9UMU5UTXl4dz09',
  'c83123b8-8fae-4421-a2f2-89550908c4c2': 'ckwwWTZMaDY2SmEwZS9tZ0h4SXdLUT09',
}
const OTHER_CSV_SECRETS = [
  'Y1Zlcm15V0R0Q2RRUXBmcC80ckpaUT09',
  'c0l3N2UxRGYxZ3Avd1VQK0JGeU5sZz09',
  'QzZCTWt2Qm1EVlUydnhwbmZUeWJmZz09',
  'YUdrSWtQeEtWalpVVzZ4NzM5T3lHZz09',
]

let workDir: string
let persistDir: string
let logDir: string
let scratchDir: string
let pepper: string
let server: DevServer | undefined
const runs: RunResult[] = []

/** Plain secrets of the sample export by client id, and every value that must never leak. */
const mithrilSecrets = new Map<string, string>()
const credentials: string[] = []

function pepperKeys() {
  return [{ id: 'k1', key: new Uint8Array(Buffer.from(pepper, 'base64url')) }]
}

async function importFixtures(files = FILES, persistTo = persistDir): Promise<RunResult> {
  const args = [...SCRIPT, '--local', '--persist-to', persistTo, ...files]
  const result = await run(process.execPath, args, {
    env: { ...childEnv(logDir), SECRET_PEPPER: pepper, TMPDIR: scratchDir },
  })
  runs.push(result)
  return result
}

/** Runs SQL statements in one wrangler call and returns the rows of each. */
async function queryAll(sql: string, persistTo = persistDir): Promise<Record<string, unknown>[][]> {
  const args = ['d1', 'execute', 'DB', '--local', '--persist-to', persistTo, '--json']
  const results = JSON.parse(await wrangler([...args, '--command', sql], { logDir })) as {
    results: Record<string, unknown>[]
  }[]
  return results.map((result) => result.results)
}

async function query(sql: string, persistTo = persistDir): Promise<Record<string, unknown>[]> {
  return (await queryAll(sql, persistTo))[0] ?? []
}

/** Returns inserted, updated and rejected per table from the summary table. */
function summary(stdout: string): Record<string, number[]> {
  const counts: Record<string, number[]> = {}
  for (const match of stdout.matchAll(/^(\w+)\s+(\d+)\s+(\d+)\s+(\d+)$/gm)) {
    counts[match[1] as string] = [Number(match[2]), Number(match[3]), Number(match[4])]
  }
  return counts
}

/** Checks that the summary counts every valid row as inserted, or every one as updated. */
function expectCounts(stdout: string, kind: 'inserted' | 'updated'): void {
  const counts = summary(stdout)
  for (const [table, ids] of Object.entries(IMPORTED)) {
    const written = kind === 'inserted' ? [ids.length, 0] : [0, ids.length]
    const rejected = REJECTED[table as keyof typeof REJECTED]
    expect(counts[table], table).toEqual([...written, rejected])
  }
}

async function idsByTable(persistTo = persistDir): Promise<Record<string, string[]>> {
  const tables = Object.keys(IMPORTED)
  const sql = tables.map((table) => `SELECT id FROM ${table} ORDER BY id;`).join('\n')
  const results = await queryAll(sql, persistTo)
  return Object.fromEntries(
    tables.map((table, index) => [table, (results[index] ?? []).map((row) => String(row.id))]),
  )
}

async function clientHashes(): Promise<Map<string, string>> {
  const rows = await query('SELECT id, secret_hash FROM clients')
  return new Map(rows.map((row) => [String(row.id), String(row.secret_hash)]))
}

async function clientHash(id: string): Promise<string> {
  return (await clientHashes()).get(id) ?? ''
}

/** Returns the text of every file below a directory, as Latin-1 so that any byte sequence matches. */
async function filesBelow(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  const files = entries.filter((entry) => entry.isFile())
  return Promise.all(
    files.map((entry) => readFile(path.join(entry.parentPath, entry.name), 'latin1')),
  )
}

async function readFixtureSecrets(): Promise<void> {
  const clients = JSON.parse(await readFile(path.join(FIXTURES, 'clients.json'), 'utf8')) as {
    id: string
    secret: string
  }[]
  for (const client of clients) mithrilSecrets.set(client.id, client.secret)
  for (const [id, secret] of Object.entries(CSV_SECRETS)) mithrilSecrets.set(id, secret)
  credentials.push(...[...mithrilSecrets.values()].filter((secret) => secret !== ''))
  credentials.push(...OTHER_CSV_SECRETS)
}

beforeAll(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'mithril-import-e2e-'))
  persistDir = path.join(workDir, 'state')
  logDir = path.join(workDir, 'logs')
  scratchDir = path.join(workDir, 'tmp')
  await mkdir(scratchDir)
  pepper = randomBytes(32).toString('base64url')
  credentials.push(pepper)
  await readFixtureSecrets()

  await wrangler(['d1', 'migrations', 'apply', 'DB', '--local', '--persist-to', persistDir], {
    logDir,
  })
})

afterAll(async () => {
  await server?.stop()
  if (workDir !== undefined) await rm(workDir, { recursive: true, force: true })
})

describe('npm run import:mithril', () => {
  it('imports the valid rows of the sample export', async () => {
    const result = await importFixtures()
    expect(result.stderr).toBe('')
    // 3: some rows were rejected and every other row was written.
    expect(result.code).toBe(3)

    expectCounts(result.stdout, 'inserted')
    expect(await idsByTable()).toEqual(IMPORTED)
  }, 240_000)

  it('reports rejected rows by file and line or index', () => {
    const stdout = runs[0]?.stdout ?? ''
    expect(stdout).toContain('clients.csv:5: secret is missing')
    expect(stdout).toContain('clients.json[3]: secret is empty')
    expect(stdout).toContain('clients.json[4]: client_type_id is missing')
    expect(stdout).toContain('clients.csv:6: settings is not valid JSON')
    expect(stdout).toContain('users.json[4]: id is not a UUID')
    expect(stdout).toContain('users.json[5]: is_blocked must be true or false')
    expect(stdout).toContain('users.csv:4: updated_at is not an ISO 8601 timestamp')
    expect(stdout).toMatch(/users\.json\[7\]: the id also appears at \S+users\.json\[8\]/)
    expect(stdout).toContain(
      'clients.json[6]: user_id 2f71f16a-b2d7-4b84-b64f-d1ccbe741ce8 is neither a users row',
    )
  })

  it('stores client secrets as hashes that verify', async () => {
    const hashes = await clientHashes()
    for (const id of IMPORTED.clients) {
      const stored = hashes.get(id) ?? ''
      expect(stored).toMatch(/^hmac-sha256\$k1\$[A-Za-z0-9_-]{43}$/)
      expect(await verifySecret(id, mithrilSecrets.get(id) ?? '', stored, pepperKeys()), id).toBe(
        true,
      )
    }
  })

  it('converts the columns of both formats', async () => {
    const [row] = await query(
      `SELECT name, settings, priv_settings, is_blocked, block_reason, inserted_at
       FROM clients WHERE id = '${CSV_CLIENT}'`,
    )
    expect(row).toEqual({
      name: 'КНП "Міська клінічна лікарня №3" Запорізької міської ради',
      settings: '{"allowed_grant_types":["password","refresh_token"]}',
      priv_settings: '{"access_type":"BROKER"}',
      is_blocked: 0,
      block_reason: null,
      inserted_at: '2019-03-01T07:00:00.500Z',
    })
    const [blocked] = await query(
      "SELECT is_blocked, block_reason FROM users WHERE id = '5f9a8197-0376-49d3-bc71-b6bdf4b659c7'",
    )
    expect(blocked).toEqual({ is_blocked: 1, block_reason: 'Звільнено з посади керівника' })
  })

  it('keeps plain secrets out of the database, the output and the logs', async () => {
    const stored = (await filesBelow(persistDir)).join('\n')
    const output = runs.map((result) => result.stdout + result.stderr).join('\n')
    const logs = (await filesBelow(logDir)).join('\n')

    expect(stored).toContain('hmac-sha256$k1$')
    for (const secret of credentials) {
      const latin1 = Buffer.from(secret, 'utf8').toString('latin1')
      expect(stored.includes(latin1), 'database').toBe(false)
      expect(output.includes(secret), 'output').toBe(false)
      expect(logs.includes(latin1), 'logs').toBe(false)
    }
    expect(output).not.toContain('hmac-sha256$')
    expect(await readdir(scratchDir)).toEqual([])
  })

  it('updates the same rows when run again', async () => {
    const hashBefore = await clientHash(CLINIC.id)
    const result = await importFixtures()
    expect(result.code).toBe(3)

    expectCounts(result.stdout, 'updated')
    expect(await idsByTable()).toEqual(IMPORTED)
    expect(await clientHash(CLINIC.id)).toBe(hashBefore)
  }, 240_000)
})

describe('a database without the rows', () => {
  let emptyPersist: string

  beforeAll(async () => {
    emptyPersist = path.join(workDir, 'empty')
    await wrangler(['d1', 'migrations', 'apply', 'DB', '--local', '--persist-to', emptyPersist], {
      logDir,
    })
  }, 60_000)

  it('gets nothing from a dry run', async () => {
    const args = [...SCRIPT, '--dry-run', '--persist-to', emptyPersist, ...FILES]
    // No pepper: a dry run hashes nothing.
    const env = { ...childEnv(logDir), TMPDIR: scratchDir }
    const result = await run(process.execPath, args, { env })
    runs.push(result)

    expect(result.stdout).toContain('nothing was written')
    expect(summary(result.stdout).clients).toEqual([IMPORTED.clients.length, 0, REJECTED.clients])
    expect(Object.values(await idsByTable(emptyPersist)).flat()).toEqual([])
  }, 60_000)

  it('gets a failed file whole or not at all', async () => {
    // A trigger raises an error for the pharmacy, the second row of clients.json, as any database
    // error would.
    await query(
      `CREATE TRIGGER reject_pharmacy BEFORE INSERT ON clients WHEN NEW.id = '${PHARMACY.id}'
       BEGIN SELECT RAISE(ABORT, 'rejected by the test trigger'); END`,
      emptyPersist,
    )

    const result = await importFixtures(FILES, emptyPersist)
    expect(result.code).toBe(1)
    expect(result.stderr).toContain('rejected by the test trigger')
    expect(result.stdout).toContain(
      'clients.json: wrangler failed, so none of its 3 rows were written.',
    )
    expect(result.stdout).toMatch(
      /clients\.csv: not written \(2 rows\) because an earlier file failed/,
    )

    const ids = await idsByTable(emptyPersist)
    expect(ids.users).toEqual(IMPORTED.users)
    expect(ids.client_types).toEqual(IMPORTED.client_types)
    expect(ids.clients).toEqual([])
    expect(ids.roles).toEqual([])
    expect(ids.user_roles).toEqual([])
  }, 240_000)
})

describe('an imported client under wrangler dev', () => {
  let signingKey: CryptoKey
  const rotated = new Map<string, string>()

  async function rotate(client: { id: string; owner: string }): Promise<Response> {
    const token = await signAccessToken({
      key: signingKey,
      kid: 'import-e2e',
      issuer: ISSUER,
      audience: AUDIENCE,
      subject: client.owner,
      clientId: client.id,
      scope: 'secret:refresh',
    })
    credentials.push(token)
    return fetch(`${server?.origin}/admin/clients/${client.id}/refresh_secret`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${token}` },
    })
  }

  beforeAll(async () => {
    const keys = await generateKeyPair('ES256', { extractable: true })
    signingKey = keys.privateKey
    const jwk: JWK = { ...(await exportJWK(keys.publicKey)), kid: 'import-e2e', alg: 'ES256' }

    server = await startWorkerDev(
      { keys: [jwk], issuer: ISSUER, audience: AUDIENCE, pepper },
      { workDir, persistDir, logDir },
    )
  }, 240_000)

  it('rotates the secret of the clinic for its OWNER', async () => {
    const response = await rotate(CLINIC)
    const body = (await response.json()) as { data?: { id: string; secret: string } }

    expect(response.status).toBe(200)
    expect(body.data?.id).toBe(CLINIC.id)
    rotated.set(CLINIC.id, body.data?.secret ?? '')
    credentials.push(body.data?.secret ?? '')
  })

  it('rotates the secret of the pharmacy for its PHARMACY_OWNER', async () => {
    const response = await rotate(PHARMACY)
    const body = (await response.json()) as { data?: { secret: string } }

    expect(response.status).toBe(200)
    credentials.push(body.data?.secret ?? '')
  })

  it('verifies only the new secret after the rotation', async () => {
    const stored = await clientHash(CLINIC.id)
    const mithril = mithrilSecrets.get(CLINIC.id) ?? ''

    expect(await verifySecret(CLINIC.id, mithril, stored, pepperKeys())).toBe(false)
    expect(await verifySecret(CLINIC.id, rotated.get(CLINIC.id) ?? '', stored, pepperKeys())).toBe(
      true,
    )
  })

  it('keeps the rotated secret when the export is imported again', async () => {
    await server?.stop()
    server = undefined

    const result = await importFixtures()
    expect(result.code).toBe(3)
    expect(result.stdout).toContain('2 updated client(s) keep the secret they rotated')

    const stored = await clientHash(CLINIC.id)
    const mithril = mithrilSecrets.get(CLINIC.id) ?? ''
    expect(await verifySecret(CLINIC.id, rotated.get(CLINIC.id) ?? '', stored, pepperKeys())).toBe(
      true,
    )
    expect(await verifySecret(CLINIC.id, mithril, stored, pepperKeys())).toBe(false)
  }, 240_000)

  it('keeps secrets and tokens out of every output', async () => {
    const output = runs.map((result) => result.stdout + result.stderr).join('\n')
    const logs = (await filesBelow(logDir)).join('\n')
    const stored = (await filesBelow(persistDir)).join('\n')

    for (const credential of credentials) {
      expect(output.includes(credential), 'output').toBe(false)
      expect(logs.includes(credential), 'logs').toBe(false)
      expect(stored.includes(credential), 'database').toBe(false)
    }
  })
})
