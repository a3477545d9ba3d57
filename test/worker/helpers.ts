import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test'
import { env } from 'cloudflare:workers'
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose'
import { vi } from 'vitest'
import type { Env, PepperKey } from '../../src/config'
import worker from '../../src/index'
import { hashSecret } from '../../src/secret'

export const ISSUER = 'https://issuer.test'
export const AUDIENCE = 'refresh-secret'
export const BASE_URL = 'https://api.test'

/** Encodes bytes as Base64url without padding, independently of the code under test. */
export function toBase64url(bytes: Uint8Array): string {
  let binary = ''
  for (const byte of bytes) binary += String.fromCharCode(byte)
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

/** Returns a new pepper: 32 random bytes, as raw bytes and as the Base64url text of the setting. */
export function createPepper(id = 'k1'): { key: PepperKey; encoded: string } {
  const bytes = crypto.getRandomValues(new Uint8Array(32))
  return { key: { id, key: bytes }, encoded: toBase64url(bytes) }
}

const pepper = createPepper('k1')

/** The `SECRET_PEPPER` of every test environment, and the key that verifies its hashes. */
export const PEPPER = pepper.encoded
export const PEPPER_KEY: PepperKey = pepper.key

/** A signing key pair of the test issuer, with the public half as a JWK. */
export interface SigningKey {
  alg: string
  kid: string
  privateKey: CryptoKey
  publicJwk: JWK
}

export async function createSigningKey(
  alg = 'ES256',
  kid: string = crypto.randomUUID(),
): Promise<SigningKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true })
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }
  return { alg, kid, privateKey, publicJwk }
}

export function keySetJson(keys: readonly SigningKey[]): string {
  return JSON.stringify({ keys: keys.map((key) => key.publicJwk) })
}

/** Worker settings: every setting is a string, and undefined leaves a setting unset. */
export type Settings = { [Name in Exclude<keyof Env, 'DB'>]?: string | undefined }

/**
 * Builds a new env object for the Worker: the bindings and wrangler vars of the test runtime
 * plus a valid configuration, with `overrides` applied last. The Worker caches its parsed
 * configuration per env object, so each configuration needs its own object.
 */
export function createEnv(keys: readonly SigningKey[], overrides: Settings = {}): Env {
  return {
    ...env,
    JWKS: keySetJson(keys),
    JWT_ISSUER: ISSUER,
    JWT_AUDIENCE: AUDIENCE,
    SECRET_PEPPER: PEPPER,
    ...overrides,
  }
}

/** Current time in seconds since the epoch, as JWT claims count it. */
export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000)
}

/**
 * Signs an access token with `key`. The claims default to a valid token of the test issuer
 * with the scope `secret:refresh`; a claim given as undefined is left out.
 */
export async function signToken(
  key: SigningKey,
  claims: Record<string, unknown> = {},
  header: Record<string, unknown> = {},
): Promise<string> {
  const now = nowSeconds()
  const payload: Record<string, unknown> = {
    iss: ISSUER,
    aud: AUDIENCE,
    iat: now,
    exp: now + 300,
    scope: 'secret:refresh',
    ...claims,
  }
  for (const [name, value] of Object.entries(payload)) {
    if (value === undefined) delete payload[name]
  }
  return new SignJWT(payload)
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt', ...header })
    .sign(key.privateKey)
}

/** A client and the users around it, each test with its own ids. */
export interface Fixture {
  clientId: string
  clientTypeId: string
  /** Holds the OWNER role, whose scope grants `secret:refresh`, for the client. */
  ownerId: string
  /** Holds a role for the client whose scope lacks `secret:refresh`. */
  nonOwnerId: string
  /** Blocked, and holds the OWNER role for the client. */
  blockedUserId: string
  ownerRoleId: string
  plainRoleId: string
  /** The client's secret before any rotation; its hash is stored. */
  oldSecret: string
  /** The client row as seeded. */
  row: ClientRow
}

export interface SeedOptions {
  clientBlocked?: boolean
  /** The scope of the OWNER role; `secret:refresh` among other scopes by default. */
  ownerScope?: string | null
}

/** Every column of a client row as D1 stores it. */
export type ClientRow = Record<string, unknown> & { secret_hash: string; updated_at: string }

/** Inserts a client with its owner, a non-owner, a blocked user and their roles. */
export async function seedClient(options: SeedOptions = {}): Promise<Fixture> {
  const ids = {
    clientId: crypto.randomUUID(),
    clientTypeId: crypto.randomUUID(),
    ownerId: crypto.randomUUID(),
    nonOwnerId: crypto.randomUUID(),
    blockedUserId: crypto.randomUUID(),
    ownerRoleId: crypto.randomUUID(),
    plainRoleId: crypto.randomUUID(),
  }
  const oldSecret = toBase64url(crypto.getRandomValues(new Uint8Array(32)))
  const oldHash = await hashSecret(ids.clientId, oldSecret, PEPPER_KEY)
  const seededAt = '2025-03-01T10:00:00.000Z'
  const ownerScope =
    options.ownerScope === undefined ? 'legal_entity:read secret:refresh' : options.ownerScope

  const db = env.DB
  const insertUser = db.prepare(
    'INSERT INTO users (id, email, is_blocked, block_reason, settings, inserted_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)',
  )
  const insertRole = db.prepare('INSERT INTO roles (id, name, scope) VALUES (?1, ?2, ?3)')
  const insertGrant = db.prepare(
    'INSERT INTO user_roles (id, user_id, role_id, client_id) VALUES (?1, ?2, ?3, ?4)',
  )
  await db.batch([
    insertUser.bind(ids.ownerId, `${ids.ownerId}@owner.test`, 0, null, '{}', seededAt),
    insertUser.bind(ids.nonOwnerId, `${ids.nonOwnerId}@doctor.test`, 0, null, '{}', seededAt),
    insertUser.bind(
      ids.blockedUserId,
      `${ids.blockedUserId}@blocked.test`,
      1,
      'fired',
      '{}',
      seededAt,
    ),
    db
      .prepare(
        'INSERT INTO client_types (id, name, scope, inserted_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)',
      )
      .bind(
        ids.clientTypeId,
        `MSP ${ids.clientTypeId}`,
        'app:authorize legal_entity:read',
        seededAt,
      ),
    insertRole.bind(ids.ownerRoleId, `OWNER ${ids.ownerRoleId}`, ownerScope),
    // A near miss: `secret:refresh_all` must not grant `secret:refresh`.
    insertRole.bind(
      ids.plainRoleId,
      `DOCTOR ${ids.plainRoleId}`,
      'legal_entity:read secret:refresh_all',
    ),
    db
      .prepare(
        `INSERT INTO clients (id, name, secret_hash, redirect_uri, settings, priv_settings, user_id,
          client_type_id, is_blocked, block_reason, inserted_at, updated_at)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)`,
      )
      .bind(
        ids.clientId,
        'Clinic No. 1',
        oldHash,
        'https://clinic.test/callback',
        '{"allowed_grant_types":["password","authorization_code"]}',
        '{"access_type":"DIRECT"}',
        ids.ownerId,
        ids.clientTypeId,
        options.clientBlocked ? 1 : 0,
        options.clientBlocked ? 'contract ended' : null,
        seededAt,
      ),
    insertGrant.bind(crypto.randomUUID(), ids.ownerId, ids.ownerRoleId, ids.clientId),
    insertGrant.bind(crypto.randomUUID(), ids.blockedUserId, ids.ownerRoleId, ids.clientId),
    insertGrant.bind(crypto.randomUUID(), ids.nonOwnerId, ids.plainRoleId, ids.clientId),
  ])

  const row = await readClient(ids.clientId)
  if (row === null) throw new Error(`seeded client ${ids.clientId} was not found`)
  return { ...ids, oldSecret, row }
}

export function readClient(clientId: string): Promise<ClientRow | null> {
  return env.DB.prepare('SELECT * FROM clients WHERE id = ?1').bind(clientId).first<ClientRow>()
}

export async function listEvents(clientId: string): Promise<Record<string, unknown>[]> {
  const { results } = await env.DB.prepare(
    'SELECT * FROM client_secret_events WHERE client_id = ?1 ORDER BY occurred_at, id',
  )
    .bind(clientId)
    .all<Record<string, unknown>>()
  return results
}

/** Audit rows of rotations that happened; rows of denied attempts are not counted. */
export async function listRotations(clientId: string): Promise<Record<string, unknown>[]> {
  const events = await listEvents(clientId)
  return events.filter((event) => event.event === 'secret_rotated')
}

/** Returns every row of every application table as JSON text, to search for leaked values. */
export async function dumpDatabase(): Promise<string> {
  const { results: tables } = await env.DB.prepare(
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'",
  ).all<{ name: string }>()

  const dump: Record<string, unknown[]> = {}
  for (const { name } of tables) {
    const { results } = await env.DB.prepare(`SELECT * FROM "${name}"`).all()
    dump[name] = results
  }
  return JSON.stringify(dump)
}

export interface RefreshOptions {
  method?: string
  token?: string
  headers?: Record<string, string>
  body?: BodyInit
}

/** Builds a request to the refresh-secret route of `clientId`. */
export function refreshRequest(clientId: string, options: RefreshOptions = {}): Request {
  const headers = new Headers(options.headers)
  if (options.token !== undefined) headers.set('authorization', `Bearer ${options.token}`)
  return new Request(`${BASE_URL}/admin/clients/${clientId}/refresh_secret`, {
    method: options.method ?? 'PATCH',
    headers,
    body: options.body,
  })
}

/** Calls the Worker's fetch handler, as the runtime does, and waits for its background work. */
export async function callWorker(request: Request, workerEnv: Env): Promise<Response> {
  const ctx = createExecutionContext()
  const response = await worker.fetch(request as Parameters<typeof worker.fetch>[0], workerEnv, ctx)
  await waitOnExecutionContext(ctx)
  return response
}

export interface Meta {
  url: string
  type: string
  code: number
  request_id: string
}

export interface InvalidEntry {
  entry_type: string
  entry: string
  rules: { rule: string; params: unknown; description: string }[]
}

export interface ErrorBody {
  meta: Meta
  error: { type: string; message: string; invalid?: InvalidEntry[] }
  data?: unknown
}

export interface DataBody {
  meta: Meta
  data: Record<string, unknown> & { id: string; secret: string }
}

export async function readError(response: Response): Promise<ErrorBody> {
  return (await response.json()) as ErrorBody
}

export async function readData(response: Response): Promise<DataBody> {
  return (await response.json()) as DataBody
}

/**
 * Replaces console output with a capture, so tests can search what the Worker logged. Undo it
 * with `vi.restoreAllMocks()`.
 */
export function captureConsole(): { lines: string[]; records: () => Record<string, unknown>[] } {
  const lines: string[] = []
  for (const method of ['debug', 'info', 'log', 'warn', 'error'] as const) {
    vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
      lines.push(args.map((arg) => (typeof arg === 'string' ? arg : JSON.stringify(arg))).join(' '))
    })
  }

  const records = () =>
    lines.flatMap((line) => {
      try {
        const parsed: unknown = JSON.parse(line)
        return typeof parsed === 'object' && parsed !== null
          ? [parsed as Record<string, unknown>]
          : []
      } catch {
        return []
      }
    })
  return { lines, records }
}

/** Runs `action` and returns what it threw, or fails when it threw nothing. */
export async function catchError(action: () => unknown): Promise<unknown> {
  try {
    await action()
  } catch (error) {
    return error
  }
  throw new Error('expected the call to throw, but it returned')
}
