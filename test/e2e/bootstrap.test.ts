/// <reference types="node" />
// Runs the setup part of `npm start` (scripts/start.mjs --setup-only) twice in a copy of the
// project, then checks the key, .dev.vars, the local database and scripts/token.mjs.

import { cp, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parseEnv } from 'node:util'
import { createLocalJWKSet, decodeProtectedHeader, type JSONWebKeySet, jwtVerify } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEMO, hashClientSecret } from '../../scripts/demo-data.mjs'
import { hashSecret } from '../../src/secret'
import { PROJECT_ROOT, type RunResult, run, wrangler } from './wrangler'

let copyDir: string
const runs: RunResult[] = []
const snapshots: { key: string; devVars: string }[] = []

function copyPath(...parts: string[]): string {
  return path.join(copyDir, ...parts)
}

function runScript(script: string, args: string[], cwd = copyDir): Promise<RunResult> {
  return run(process.execPath, [path.join(cwd, 'scripts', script), ...args], { cwd })
}

/** Copies what the scripts need: wrangler.toml, the migrations and the scripts themselves. */
async function copyProject(target: string): Promise<void> {
  for (const entry of ['wrangler.toml', 'migrations', 'scripts']) {
    await cp(path.join(PROJECT_ROOT, entry), path.join(target, entry), { recursive: true })
  }
  await symlink(path.join(PROJECT_ROOT, 'node_modules'), path.join(target, 'node_modules'), 'dir')
}

async function setupAndSnapshot(): Promise<void> {
  const result = await runScript('start.mjs', ['--setup-only'])
  runs.push(result)
  if (result.code !== 0) throw new Error(`start.mjs failed:\n${result.stdout}${result.stderr}`)

  snapshots.push({
    key: await readFile(copyPath('.dev', 'signing-key.json'), 'utf8'),
    devVars: await readFile(copyPath('.dev.vars'), 'utf8'),
  })
}

async function devVars(): Promise<Record<string, string | undefined>> {
  return parseEnv(await readFile(copyPath('.dev.vars'), 'utf8'))
}

async function query(sql: string): Promise<Record<string, unknown>[]> {
  const args = ['d1', 'execute', 'DB', '--local', '--json', '--command', sql]
  const [result] = JSON.parse(await wrangler(args, { cwd: copyDir })) as [
    { results: Record<string, unknown>[] },
  ]
  return result.results
}

beforeAll(async () => {
  copyDir = await mkdtemp(path.join(tmpdir(), 'refresh-secret-setup-'))
  await copyProject(copyDir)
  await setupAndSnapshot()
  await setupAndSnapshot()
})

afterAll(async () => {
  if (copyDir !== undefined) await rm(copyDir, { recursive: true, force: true })
})

describe('npm start setup', () => {
  it('creates a private ES256 key with a kid', async () => {
    const jwk = JSON.parse(snapshots[0]?.key ?? '')

    expect(jwk).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256' })
    expect(jwk.d).toEqual(expect.any(String))
    expect(jwk.kid).toEqual(expect.any(String))
    expect((await stat(copyPath('.dev', 'signing-key.json'))).mode & 0o077).toBe(0)
  })

  it('writes .dev.vars with the public key set', async () => {
    const vars = await devVars()
    const keySet = JSON.parse(vars.JWKS ?? '') as JSONWebKeySet
    const privateJwk = JSON.parse(snapshots[0]?.key ?? '')

    expect(keySet.keys).toHaveLength(1)
    expect(keySet.keys[0]).not.toHaveProperty('d')
    expect(keySet.keys[0]).toMatchObject({ kid: privateJwk.kid, x: privateJwk.x, y: privateJwk.y })
    expect(vars.JWT_ISSUER).toEqual(expect.any(String))
    expect(vars.JWT_AUDIENCE).toEqual(expect.any(String))
    expect(Buffer.from(vars.SECRET_PEPPER ?? '', 'base64url')).toHaveLength(32)
    expect(vars.SECRET_PEPPER).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect((await stat(copyPath('.dev.vars'))).mode & 0o077).toBe(0)
  })

  it('keeps the key and .dev.vars on a second run', () => {
    expect(snapshots).toHaveLength(2)
    expect(snapshots[1]?.key).toBe(snapshots[0]?.key)
    expect(snapshots[1]?.devVars).toBe(snapshots[0]?.devVars)
    expect(runs[0]?.stdout).toContain('Created the dev signing key')
    expect(runs[1]?.stdout).toContain('Using the dev signing key')
  })

  it('inserts each demo row once', async () => {
    const [counts] = await query(`SELECT
      (SELECT count(*) FROM users) AS users,
      (SELECT count(*) FROM client_types) AS client_types,
      (SELECT count(*) FROM roles) AS roles,
      (SELECT count(*) FROM clients) AS clients,
      (SELECT count(*) FROM user_roles) AS user_roles`)

    expect(counts).toEqual({ users: 2, client_types: 1, roles: 1, clients: 1, user_roles: 1 })
  })

  it('seeds the owner with a role that grants secret:refresh', async () => {
    const rows = await query(`SELECT r.name, r.scope, c.user_id FROM user_roles ur
      JOIN roles r ON r.id = ur.role_id JOIN clients c ON c.id = ur.client_id
      WHERE ur.user_id = '${DEMO.ownerId}' AND ur.client_id = '${DEMO.clientId}'`)

    expect(rows).toHaveLength(1)
    expect(rows[0]?.name).toBe('OWNER')
    expect(String(rows[0]?.scope).split(' ')).toContain('secret:refresh')
    expect(rows[0]?.user_id).toBe(DEMO.ownerId)
  })

  it('stores a secret hash in the Worker format', async () => {
    const [row] = await query(`SELECT secret_hash FROM clients WHERE id = '${DEMO.clientId}'`)

    expect(row?.secret_hash).toMatch(/^hmac-sha256\$k1\$[A-Za-z0-9_-]{43}$/)
  })

  it('hashes secrets exactly as the Worker does', async () => {
    const pepper = { id: 'k1', key: new Uint8Array(32).fill(7) }
    const clientId = DEMO.clientId.toUpperCase()

    expect(await hashClientSecret(clientId, 'a-secret', pepper)).toBe(
      await hashSecret(clientId, 'a-secret', pepper),
    )
  })

  it('prints no pepper and leaves no seed file', async () => {
    const { SECRET_PEPPER: pepper } = await devVars()
    const output = runs.map((result) => result.stdout + result.stderr).join('\n')

    expect(pepper).toEqual(expect.any(String))
    expect(output).not.toContain(pepper)
    expect(await readdir(copyPath('.dev'))).toEqual(['signing-key.json'])
  })

  it('rejects an invalid port', async () => {
    const result = await runScript('start.mjs', ['--port', '80a', '--setup-only'])

    expect(result.code).toBe(2)
    expect(result.stderr).toContain('The port "80a" is invalid')
  })

  it('rejects a --var without a name', async () => {
    const result = await runScript('start.mjs', ['--var', ':0', '--setup-only'])

    expect(result.code).toBe(2)
    expect(result.stderr).toContain('--var ":0" is invalid: use NAME:VALUE')
  })

  it('keeps other lines of .dev.vars', async () => {
    const before = await devVars()
    await writeFile(copyPath('.dev.vars'), `${snapshots[1]?.devVars}SUNSET_DATE=2027-06-30\n`)

    const result = await runScript('start.mjs', ['--setup-only'])
    const after = await devVars()

    expect(result.code).toBe(0)
    expect(after.SUNSET_DATE).toBe('2027-06-30')
    expect(after.SECRET_PEPPER).toBe(before.SECRET_PEPPER)
    expect(after.JWKS).toBe(before.JWKS)
  })
})

describe('npm run token', () => {
  it('mints a token that the dev key set verifies', async () => {
    const vars = await devVars()
    const result = await runScript('token.mjs', [
      '--sub',
      DEMO.ownerId,
      '--client-id',
      DEMO.clientId,
      '--scope',
      'secret:refresh',
      '--ttl',
      '120',
    ])
    const token = result.stdout.trim()
    const keySet = createLocalJWKSet(JSON.parse(vars.JWKS ?? ''))
    const { payload } = await jwtVerify(token, keySet, {
      issuer: vars.JWT_ISSUER,
      audience: vars.JWT_AUDIENCE,
      algorithms: ['ES256'],
    })

    expect(result.code).toBe(0)
    expect(result.stdout).toBe(`${token}\n`)
    expect(decodeProtectedHeader(token).typ).toBe('at+jwt')
    expect(payload).toMatchObject({
      sub: DEMO.ownerId,
      client_id: DEMO.clientId,
      scope: 'secret:refresh',
    })
    expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(120)
  })

  it('leaves the scope claim out for an empty scope', async () => {
    const result = await runScript('token.mjs', ['--sub', 'u', '--client-id', 'c', '--scope', ''])
    const [, payload] = result.stdout.trim().split('.')

    expect(result.code).toBe(0)
    expect(JSON.parse(Buffer.from(payload ?? '', 'base64url').toString())).not.toHaveProperty(
      'scope',
    )
  })

  it('rejects missing options', async () => {
    const result = await runScript('token.mjs', ['--sub', DEMO.ownerId])

    expect(result.code).toBe(2)
    expect(result.stdout).toBe('')
    expect(result.stderr).toContain('Missing --client-id, --scope')
  })

  it('rejects an invalid ttl', async () => {
    const result = await runScript('token.mjs', [
      '--sub',
      'u',
      '--client-id',
      'c',
      '--scope',
      's',
      '--ttl',
      '1h',
    ])

    expect(result.code).toBe(2)
    expect(result.stderr).toContain('--ttl must be a whole number of seconds')
  })

  it('rejects an unknown option', async () => {
    const result = await runScript('token.mjs', ['--subject', 'u'])

    expect(result.code).toBe(2)
    expect(result.stderr).toContain("Unknown option '--subject'")
  })

  it('asks for npm start when there is no key', async () => {
    const emptyDir = await mkdtemp(path.join(tmpdir(), 'refresh-secret-nokey-'))
    try {
      await copyProject(emptyDir)
      const result = await runScript(
        'token.mjs',
        ['--sub', 'u', '--client-id', 'c', '--scope', 's'],
        emptyDir,
      )

      expect(result.code).toBe(1)
      expect(result.stdout).toBe('')
      expect(result.stderr).toContain('No dev signing key')
      expect(result.stderr).toContain('npm start')
    } finally {
      await rm(emptyDir, { recursive: true, force: true })
    }
  })
})
