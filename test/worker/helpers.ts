import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test'
import { env } from 'cloudflare:workers'
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose'
import { expect, vi } from 'vitest'
import type { Env, PepperKey } from '../../src/config'
import worker from '../../src/index'
import { hashSecret } from '../../src/secret'

export const ISSUER = 'https://issuer.test'
export const AUDIENCE = 'refresh-secret'
export const BASE_URL = 'https://api.test'

/**
 * Sensitive values that the helpers created (tokens, secrets, hashes, peppers), each with a
 * label that names where it came from. The leak guard in leak-guard.ts searches everything the
 * Worker printed or answered for them after each test file.
 */
const sensitiveValues = new Map<string, string>()

/** Output of the Worker: console lines, response headers, error bodies and database rows. */
export interface RecordedOutput {
  /** Where the text was seen, such as `console.error` or `headers of 401`. */
  source: string
  text: string
}

const recordedOutput: RecordedOutput[] = []

/** Registers a value that must never appear in any recorded output. */
export function registerSensitive(label: string, value: string): void {
  if (value !== '' && !sensitiveValues.has(value)) sensitiveValues.set(value, label)
}

/** Records text that the Worker printed or sent, to be searched for sensitive values. */
export function recordOutput(source: string, text: string): void {
  recordedOutput.push({ source, text })
}

/**
 * Records the headers of a response and, unless it is a 200 whose body carries the new secret
 * on purpose, its body. The response itself stays unread.
 */
export async function recordResponse(response: Response): Promise<void> {
  const headers = [...response.headers].map(([name, value]) => `${name}: ${value}`).join('\n')
  recordOutput(`headers of ${response.status}`, headers)
  if (response.status !== 200 && response.body !== null) {
    recordOutput(`body of ${response.status}`, await response.clone().text())
  }
}

/** A recorded text that contains a sensitive value or looks like a token or a stored hash. */
export interface Leak {
  source: string
  /** The label of the registered value, or the pattern that matched. */
  found: string
  /** The text with every registered value replaced by its label, safe to print. */
  redacted: string
}

const LEAK_PATTERNS: [string, RegExp][] = [
  ['a JWT (eyJ...eyJ...)', /eyJ[A-Za-z0-9_-]*\.eyJ[A-Za-z0-9_-]*/],
  ['a stored hash (hmac-sha256$)', /hmac-sha256\$/],
]

function redact(text: string): string {
  let redacted = text
  for (const [value, label] of sensitiveValues) redacted = redacted.replaceAll(value, `[${label}]`)
  return redacted.replace(/eyJ[A-Za-z0-9_-]*\.eyJ[A-Za-z0-9_-]*(\.[A-Za-z0-9_-]*)?/g, '[JWT]')
}

/** Searches recorded output, all of it by default, for registered values and token or hash patterns. */
export function findLeaks(outputs: readonly RecordedOutput[] = recordedOutput): Leak[] {
  const leaks: Leak[] = []
  for (const { source, text } of outputs) {
    for (const [value, label] of sensitiveValues) {
      if (text.includes(value)) leaks.push({ source, found: label, redacted: redact(text) })
    }
    for (const [name, pattern] of LEAK_PATTERNS) {
      if (pattern.test(text)) leaks.push({ source, found: name, redacted: redact(text) })
    }
  }
  return leaks
}

/** Counts the recorded outputs and registered values, so a test can tell the guard ran. */
export function leakGuardCounts(): { outputs: number; values: number } {
  return { outputs: recordedOutput.length, values: sensitiveValues.size }
}

/** Encodes bytes as Base64url without padding, independently of the code under test. */
export function toBase64url(bytes: Uint8Array): string {
  let binary = ''
  for (const byte of bytes) binary += String.fromCharCode(byte)
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

/** Returns a new pepper: 32 random bytes, as raw bytes and as the Base64url text of the setting. */
export function createPepper(id = 'k1'): { key: PepperKey; encoded: string } {
  const bytes = crypto.getRandomValues(new Uint8Array(32))
  const encoded = toBase64url(bytes)
  registerSensitive(`pepper ${id} from createPepper`, encoded)
  return { key: { id, key: bytes }, encoded }
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
  const token = await new SignJWT(payload)
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt', ...header })
    .sign(key.privateKey)
  registerSensitive('access token from signToken', token)
  return token
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
  registerSensitive('client secret from seedClient', oldSecret)
  registerSensitive('stored hash from seedClient', oldHash)
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
    'SELECT * FROM client_secret_events WHERE client_id = ?1 ORDER BY seq',
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
  await recordResponse(response)
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
  const body = (await response.json()) as DataBody
  if (typeof body.data?.secret === 'string') {
    registerSensitive('client secret from readData', body.data.secret)
  }
  return body
}

/**
 * Replaces console output with a capture, so tests can search what the Worker logged. Undo it
 * with `vi.restoreAllMocks()`.
 */
export function captureConsole(): { lines: string[]; records: () => Record<string, unknown>[] } {
  const lines: string[] = []
  for (const method of ['debug', 'info', 'log', 'warn', 'error'] as const) {
    vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
      const line = args
        .map((arg) => (typeof arg === 'string' ? arg : JSON.stringify(arg)))
        .join(' ')
      lines.push(line)
      recordOutput(`console.${method}`, line)
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

/** Encodes a JWS segment: bytes as they are, a string as its UTF-8, anything else as JSON. */
function segmentBytes(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value
  return new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value))
}

/**
 * Signs any header and payload as a compact JWS with an ES256 key, without the checks that
 * SignJWT makes, so tests can build tokens that a careful issuer never would. Bytes and strings
 * are sent as they are, anything else as JSON.
 */
export async function signCompact(
  key: SigningKey,
  header: unknown,
  payload: unknown,
): Promise<string> {
  if (key.alg !== 'ES256') throw new Error(`signCompact signs with ES256 keys only, not ${key.alg}`)

  const signingInput = `${toBase64url(segmentBytes(header))}.${toBase64url(segmentBytes(payload))}`
  const signature = await crypto.subtle.sign(
    { name: 'ECDSA', hash: 'SHA-256' },
    key.privateKey,
    new TextEncoder().encode(signingInput),
  )
  const token = `${signingInput}.${toBase64url(new Uint8Array(signature))}`
  registerSensitive('access token from signCompact', token)
  return token
}

/** The claims of a valid token of the test issuer for `userId` and `clientId`. */
export function validClaims(userId: string, clientId: string): Record<string, unknown> {
  const now = nowSeconds()
  return {
    iss: ISSUER,
    aud: AUDIENCE,
    sub: userId,
    client_id: clientId,
    scope: 'secret:refresh',
    iat: now,
    exp: now + 300,
  }
}

/** Answers a fetch of one URL, as a key set endpoint or an attacker's server would. */
export type FetchAnswer = (signal: AbortSignal | undefined) => Response | Promise<Response>

/**
 * Serves fetches of the URLs in `routes` and rejects every other URL, so no test reaches the
 * network. Returns every URL the Worker tried to fetch, served or not. Undo it with
 * `vi.restoreAllMocks()`.
 */
export function interceptFetch(routes: Record<string, FetchAnswer>): string[] {
  const fetched: string[] = []
  vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
    const url = input instanceof Request ? input.url : String(input)
    fetched.push(url)

    const answer = routes[url]
    if (answer === undefined) throw new TypeError(`the test blocks a fetch of ${url}`)
    return answer(init?.signal ?? undefined)
  })
  return fetched
}

/**
 * Checks the eHealth error envelope of a response and the headers that every response carries,
 * and returns its body.
 */
export async function expectErrorResponse(
  response: Response,
  status: number,
  type: string,
): Promise<ErrorBody> {
  const body = await readError(response)

  expect(response.status).toBe(status)
  expect(body.error.type).toBe(type)
  expect(body.meta.code).toBe(status)
  expect(body.meta.type).toBe('object')
  expect(body).not.toHaveProperty('data')
  expect(response.headers.get('Cache-Control')).toBe('no-store')
  expect(response.headers.get('Content-Type')).toBe('application/json; charset=utf-8')
  expect(response.headers.get('x-request-id')).toBe(body.meta.request_id)
  return body
}
