/// <reference types="node" />
// Runs the Worker under a real `wrangler dev` with its own key set, issuer, audience and pepper,
// seeded with the commands that the README gives, and calls it over HTTP.

import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { exportJWK, generateKeyPair, type JWK } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEMO } from '../../scripts/demo-data.mjs'
import { verifySecret } from '../../src/secret'
import { signAccessToken, startWorkerDev } from './worker-dev'
import { childEnv, type DevServer, run, wrangler } from './wrangler'

const ISSUER = 'https://issuer.e2e.test'
const AUDIENCE = 'refresh-secret-e2e'
const ROUTE = `/admin/clients/${DEMO.clientId}/refresh_secret`
const SECRET_PATTERN = /^[A-Za-z0-9_-]{43}$/

let workDir: string
let persistDir: string
let logDir: string
let server: DevServer | undefined
let signingKey: CryptoKey
let pepper: string

/** Everything sent to a client or used as a credential, to search the logs for afterwards. */
const credentials: string[] = []

interface TokenOptions {
  sub?: string
  clientId?: string
  scope?: string
  key?: CryptoKey
}

async function token(options: TokenOptions = {}): Promise<string> {
  const signed = await signAccessToken({
    key: options.key ?? signingKey,
    kid: 'e2e',
    issuer: ISSUER,
    audience: AUDIENCE,
    subject: options.sub ?? DEMO.ownerId,
    clientId: options.clientId ?? DEMO.clientId,
    scope: options.scope ?? 'secret:refresh',
  })
  credentials.push(signed)
  return signed
}

function call(pathname: string, init: RequestInit & { bearer?: string } = {}): Promise<Response> {
  const headers = new Headers(init.headers)
  if (init.bearer !== undefined) headers.set('authorization', `Bearer ${init.bearer}`)
  return fetch(`${server?.origin}${pathname}`, { method: 'PATCH', ...init, headers })
}

interface Envelope {
  meta: { url: string; type: string; code: number; request_id: string }
  data?: Record<string, unknown>
  error?: { type: string; message: string; invalid?: unknown[] }
}

async function rotate(): Promise<{ response: Response; body: Envelope }> {
  const response = await call(ROUTE, { bearer: await token() })
  return { response, body: (await response.json()) as Envelope }
}

/** Runs SQL against the local database that wrangler dev serves, and returns the rows. */
async function query(sql: string): Promise<Record<string, unknown>[]> {
  const args = ['d1', 'execute', 'DB', '--local', '--persist-to', persistDir, '--json']
  const stdout = await wrangler([...args, '--command', sql], { logDir })
  const [result] = JSON.parse(stdout) as [{ results: Record<string, unknown>[] }]
  return result.results
}

function pepperKey() {
  return [{ id: 'k1', key: new Uint8Array(Buffer.from(pepper, 'base64url')) }]
}

beforeAll(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'refresh-secret-e2e-'))
  persistDir = path.join(workDir, 'state')
  logDir = path.join(workDir, 'logs')

  const keys = await generateKeyPair('ES256', { extractable: true })
  signingKey = keys.privateKey
  const jwk: JWK = { ...(await exportJWK(keys.publicKey)), kid: 'e2e', alg: 'ES256', use: 'sig' }
  pepper = randomBytes(32).toString('base64url')
  credentials.push(pepper)

  // The README's steps: migrations, the demo seed hashed with this pepper, then wrangler dev.
  const seedFile = path.join(workDir, 'seed.sql')
  const seed = await run(
    process.execPath,
    ['scripts/seed.mjs', '--out', seedFile, '--pepper-id', 'k1'],
    { env: { ...childEnv(), SECRET_PEPPER: pepper } },
  )
  expect(seed.stderr).toBe('')
  expect(seed.code).toBe(0)

  await wrangler(['d1', 'migrations', 'apply', 'DB', '--local', '--persist-to', persistDir], {
    logDir,
  })
  await wrangler(
    ['d1', 'execute', 'DB', '--local', '--persist-to', persistDir, '--file', seedFile],
    {
      logDir,
    },
  )

  server = await startWorkerDev(
    { keys: [jwk], issuer: ISSUER, audience: AUDIENCE, pepper },
    { workDir, persistDir, logDir },
  )
})

afterAll(async () => {
  await server?.stop()
  if (workDir !== undefined) await rm(workDir, { recursive: true, force: true })
})

describe('PATCH refresh_secret under wrangler dev', () => {
  const secrets: string[] = []

  it('returns 200 with a new secret', async () => {
    const { response, body } = await rotate()

    expect(response.status).toBe(200)
    expect(response.headers.get('cache-control')).toBe('no-store')
    expect(response.headers.get('pragma')).toBe('no-cache')
    expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8')
    expect(response.headers.get('deprecation')).toMatch(/^@\d+$/)
    expect(response.headers.get('x-request-id')).toBe(body.meta.request_id)
    expect(body.meta).toMatchObject({ url: `${server?.origin}${ROUTE}`, type: 'object', code: 200 })
    expect(body.error).toBeUndefined()
    expect(body.data).toMatchObject({
      id: DEMO.clientId,
      user_id: DEMO.ownerId,
      client_type_id: DEMO.clientTypeId,
      is_blocked: false,
    })
    expect(body.data).not.toHaveProperty('priv_settings')
    expect(body.data).not.toHaveProperty('secret_hash')
    expect(body.data?.secret).toMatch(SECRET_PATTERN)
    secrets.push(body.data?.secret as string)
  })

  it('returns a different secret on the next call', async () => {
    const { response, body } = await rotate()

    expect(response.status).toBe(200)
    expect(body.data?.secret).toMatch(SECRET_PATTERN)
    expect(secrets).not.toContain(body.data?.secret)
    secrets.push(body.data?.secret as string)
    credentials.push(...secrets)
  })

  it('stores a hash that verifies only the latest secret', async () => {
    const [row] = await query(`SELECT secret_hash FROM clients WHERE id = '${DEMO.clientId}'`)
    const stored = row?.secret_hash as string
    const [first, latest] = secrets as [string, string]

    expect(stored).toMatch(/^hmac-sha256\$k1\$[A-Za-z0-9_-]{43}$/)
    expect(await verifySecret(DEMO.clientId, latest, stored, pepperKey())).toBe(true)
    expect(await verifySecret(DEMO.clientId, first, stored, pepperKey())).toBe(false)
  })

  it('audits rotations without secret material', async () => {
    const rows = await query(
      `SELECT * FROM client_secret_events
       WHERE client_id = '${DEMO.clientId}' AND event = 'secret_rotated'`,
    )
    const text = JSON.stringify(rows)

    expect(rows).toHaveLength(2)
    for (const secret of secrets) expect(text).not.toContain(secret)
  })

  it('echoes a safe x-request-id', async () => {
    const response = await call(ROUTE, { headers: { 'x-request-id': 'e2e-request-1' } })
    const body = (await response.json()) as Envelope

    expect(response.headers.get('x-request-id')).toBe('e2e-request-1')
    expect(body.meta.request_id).toBe('e2e-request-1')
  })

  it('returns 401 without a token', async () => {
    const response = await call(ROUTE)
    const body = (await response.json()) as Envelope

    expect(response.status).toBe(401)
    expect(body.error?.type).toBe('access_denied')
    expect(body.data).toBeUndefined()
    expect(response.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"')
  })

  it('returns 401 for a token signed by another key', async () => {
    const { privateKey } = await generateKeyPair('ES256')
    const response = await call(ROUTE, { bearer: await token({ key: privateKey }) })
    const body = (await response.json()) as Envelope

    expect(response.status).toBe(401)
    expect(body.error?.type).toBe('access_denied')
  })

  it('returns 403 for a token without the scope', async () => {
    const response = await call(ROUTE, { bearer: await token({ scope: 'client:read' }) })
    const body = (await response.json()) as Envelope

    expect(response.status).toBe(403)
    expect(body.error?.type).toBe('forbidden')
    expect(body.error?.message).toContain('secret:refresh')
    expect(response.headers.get('www-authenticate')).toBe(
      'Bearer error="insufficient_scope", scope="secret:refresh"',
    )
  })

  it('returns 403 for a token of another client', async () => {
    const response = await call(ROUTE, { bearer: await token({ clientId: randomUUID() }) })
    const body = (await response.json()) as Envelope

    expect(response.status).toBe(403)
    expect(body.error?.type).toBe('forbidden')
  })

  it('returns 403 for a user without a role', async () => {
    const response = await call(ROUTE, { bearer: await token({ sub: DEMO.otherUserId }) })
    const body = (await response.json()) as Envelope

    expect(response.status).toBe(403)
    expect(body.error?.type).toBe('forbidden')
  })

  it('returns 404 for an unknown client', async () => {
    const unknown = randomUUID()
    const response = await call(`/admin/clients/${unknown}/refresh_secret`, {
      bearer: await token({ clientId: unknown }),
    })
    const body = (await response.json()) as Envelope

    expect(response.status).toBe(404)
    expect(body.error?.type).toBe('not_found')
  })

  it('returns 422 for an unknown body field', async () => {
    const response = await call(ROUTE, {
      bearer: await token(),
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ colour: 'blue' }),
    })
    const body = (await response.json()) as Envelope

    expect(response.status).toBe(422)
    expect(body.error?.type).toBe('validation_failed')
    expect(body.error?.invalid).toEqual([
      expect.objectContaining({ entry_type: 'json_data_property', entry: '$.colour' }),
    ])
  })

  it('returns 405 with Allow for GET', async () => {
    const response = await call(ROUTE, { method: 'GET' })
    const body = (await response.json()) as Envelope

    expect(response.status).toBe(405)
    expect(body.error?.type).toBe('method_not_allowed')
    expect(response.headers.get('allow')).toBe('PATCH')
  })

  it('returns 404 for an unknown path', async () => {
    const response = await call('/admin/clients', { bearer: await token() })
    const body = (await response.json()) as Envelope

    expect(response.status).toBe(404)
    expect(body.error?.type).toBe('not_found')
  })

  it('keeps secrets, tokens and the pepper out of the logs', async () => {
    const logFiles = await readdir(logDir)
    const logs = await Promise.all(
      logFiles.map((file) => readFile(path.join(logDir, file), 'utf8')),
    )
    const output = [server?.output() ?? '', ...logs].join('\n')

    expect(output).toContain('refresh_secret')
    for (const credential of credentials) expect(output).not.toContain(credential)
  })
})
