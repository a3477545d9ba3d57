import { env } from 'cloudflare:workers'
import type { Env } from '../../src/config.ts'
import type { StoredSecrets } from '../../src/secret.ts'
import {
  CONNECTION_SCOPE,
  type ConnectionFixture,
  type ConnectionSeedOptions,
  connectionPath,
  readConnection,
  seedConnection,
} from './connection-helpers.ts'
import { BASE_URL, callWorker, readClient, type SigningKey, signToken } from './helpers.ts'

export type MethodName = 'client' | 'connection'

/** A stored row that carries the two secret slots of a client or a connection. */
export type SecretRow = Record<string, unknown> & StoredSecrets & { updated_at: string }

/** One of the two refresh-secret routes, described so that one test table runs over both. */
export interface SecretMethod {
  name: MethodName
  /** The scope that the token and one of the user's roles must grant. */
  scope: string
  /** Whether responses carry `Deprecation` and `Link`. */
  deprecated: boolean
  /** The route path for a client id and, on the connection route, a connection id. */
  path: (clientId: string, connectionId: string) => string
  /** The members of `data` in a 200 response. */
  dataFields: readonly string[]
  /** The id that the stored hash of the rotated secret is bound to. */
  targetId: (fixture: ConnectionFixture) => string
  /** The secret stored before any rotation, or null when none is stored. */
  oldSecret: (fixture: ConnectionFixture) => string | null
  /** The rotated row as the fixture seeded it. */
  seededRow: (fixture: ConnectionFixture) => Record<string, unknown>
  readTarget: (fixture: ConnectionFixture) => Promise<SecretRow>
  /** The `connection_id` that the audit rows of this route record. */
  auditConnectionId: (fixture: ConnectionFixture) => string | null
  /** Seed options that leave the owner with the other route's role only. */
  otherRoleOnly: ConnectionSeedOptions
}

async function readExisting<Row>(read: Promise<Row | null>, what: string): Promise<Row> {
  const row = await read
  if (row === null) throw new Error(`${what} was not found`)
  return row
}

export const CLIENT_METHOD: SecretMethod = {
  name: 'client',
  scope: 'secret:refresh',
  deprecated: true,
  path: (clientId) => `/admin/clients/${clientId}/refresh_secret`,
  dataFields: [
    'id',
    'name',
    'secret',
    'redirect_uri',
    'settings',
    'is_blocked',
    'block_reason',
    'user_id',
    'client_type_id',
    'inserted_at',
    'updated_at',
    'previous_secret_expires_at',
  ],
  targetId: (fixture) => fixture.clientId,
  oldSecret: (fixture) => fixture.oldSecret,
  seededRow: (fixture) => fixture.row,
  readTarget: (fixture) =>
    readExisting(readClient(fixture.clientId), `client ${fixture.clientId}`) as Promise<SecretRow>,
  auditConnectionId: () => null,
  otherRoleOnly: { ownerScope: null },
}

export const CONNECTION_METHOD: SecretMethod = {
  name: 'connection',
  scope: CONNECTION_SCOPE,
  deprecated: false,
  path: connectionPath,
  dataFields: [
    'id',
    'client_id',
    'consumer_id',
    'redirect_uri',
    'inserted_at',
    'updated_at',
    'previous_secret_expires_at',
    'secret',
  ],
  targetId: (fixture) => fixture.connection.connectionId,
  oldSecret: (fixture) => fixture.connection.oldSecret,
  seededRow: (fixture) => fixture.connection.row,
  readTarget: (fixture) =>
    readExisting(
      readConnection(fixture.connection.connectionId),
      `connection ${fixture.connection.connectionId}`,
    ),
  auditConnectionId: (fixture) => fixture.connection.connectionId,
  otherRoleOnly: { connectionScope: null },
}

export const METHODS: readonly SecretMethod[] = [CLIENT_METHOD, CONNECTION_METHOD]

export function otherMethod(method: SecretMethod): SecretMethod {
  return method.name === 'client' ? CONNECTION_METHOD : CLIENT_METHOD
}

/** A request to either route, split into the parts that the authorization checks read. */
export interface Attempt {
  token: 'valid' | 'foreign_key' | 'expired' | 'none'
  scope: string
  userId: string
  tokenClientId: string
  pathId: string
  pathConnectionId: string
}

/** Builds an attempt that passes every check: the owner's token for the fixture's client. */
export function validAttempt(method: SecretMethod, fixture: ConnectionFixture): Attempt {
  return {
    token: 'valid',
    scope: `openid ${method.scope}`,
    userId: fixture.ownerId,
    tokenClientId: fixture.clientId,
    pathId: fixture.clientId,
    pathConnectionId: fixture.connection.connectionId,
  }
}

/** What a spoil can use: the route, the seeded fixture, and a way to seed further clients. */
export interface SpoilContext {
  method: SecretMethod
  fixture: ConnectionFixture
  /** Seeds another client with a connection; the test checks that it is left unchanged. */
  seedOther: () => Promise<ConnectionFixture>
}

/** The error that a failed check returns. */
export interface ExpectedDenial {
  status: number
  type: string
  /** The `WWW-Authenticate` challenge: RFC 6750 `invalid_token`, `insufficient_scope` or none. */
  challenge: 'invalid_token' | 'insufficient_scope' | null
  /** The `invalid` entry of a 422, such as `$.id`. */
  invalidEntry?: string
  /** The `outcome` of the request log line. */
  outcome?: string
  /** The `reason` of the denial's audit row, or null when no audit row is written. */
  auditReason: string | null
}

/** One way for one authorization check to fail. */
export interface AuthorizationRow {
  name: string
  /** The check's position in the authorization order; ways to fail one check share it. */
  step: number
  /** The route that has this check, when only one of them has it. */
  only?: MethodName
  /** Seed options that make the check fail. */
  seed?: (method: SecretMethod) => ConnectionSeedOptions
  /** Changes a valid attempt so that the check fails. */
  spoil?: (attempt: Attempt, context: SpoilContext) => void | Promise<void>
  expected: ExpectedDenial
}

const INVALID_TOKEN: ExpectedDenial = {
  status: 401,
  type: 'access_denied',
  challenge: 'invalid_token',
  auditReason: null,
}

const SCOPE_MISSING: ExpectedDenial = {
  status: 403,
  type: 'forbidden',
  challenge: 'insufficient_scope',
  outcome: 'scope_missing',
  auditReason: 'scope_missing',
}

/** The 422 of a path parameter that is not a UUID, such as `$.id`. */
function invalidPath(entry: string): ExpectedDenial {
  return {
    status: 422,
    type: 'validation_failed',
    challenge: null,
    invalidEntry: entry,
    outcome: 'validation_failed',
    auditReason: null,
  }
}

const CLIENT_MISMATCH: ExpectedDenial = {
  status: 403,
  type: 'forbidden',
  challenge: null,
  outcome: 'client_mismatch',
  auditReason: 'client_mismatch',
}

const USER_INVALID: ExpectedDenial = {
  status: 401,
  type: 'access_denied',
  challenge: 'invalid_token',
  outcome: 'user_missing_or_blocked',
  auditReason: 'user_invalid',
}

const ROLE_MISSING: ExpectedDenial = {
  status: 403,
  type: 'forbidden',
  challenge: null,
  outcome: 'role_missing',
  auditReason: 'role_missing',
}

/**
 * The authorization checks of both routes, in the order they run: token, scope, `{id}`,
 * `{connection_id}`, token client, client, connection, user, role, blocked client. Each row
 * is one way to fail one check, and the first row of each step is the representative that
 * ordering tests combine with earlier rows.
 */
export const AUTHORIZATION_TABLE: readonly AuthorizationRow[] = [
  {
    name: 'a token signed by an unknown key',
    step: 1,
    spoil: (attempt) => {
      attempt.token = 'foreign_key'
    },
    expected: INVALID_TOKEN,
  },
  {
    name: 'an expired token',
    step: 1,
    spoil: (attempt) => {
      attempt.token = 'expired'
    },
    expected: INVALID_TOKEN,
  },
  {
    name: 'no Authorization header',
    step: 1,
    spoil: (attempt) => {
      attempt.token = 'none'
    },
    expected: { ...INVALID_TOKEN, outcome: 'token_missing' },
  },
  {
    name: 'a near miss of the scope',
    step: 2,
    spoil: (attempt, { method }) => {
      attempt.scope = `openid ${method.scope}_all`
    },
    expected: SCOPE_MISSING,
  },
  {
    name: "only the other route's scope",
    step: 2,
    spoil: (attempt, { method }) => {
      attempt.scope = `openid ${otherMethod(method).scope}`
    },
    expected: SCOPE_MISSING,
  },
  {
    name: 'an id that is no UUID',
    step: 3,
    spoil: (attempt) => {
      attempt.pathId = 'not-a-uuid'
    },
    expected: invalidPath('$.id'),
  },
  {
    name: 'an id of 32 hex digits without hyphens',
    step: 3,
    spoil: (attempt, { fixture }) => {
      attempt.pathId = fixture.clientId.replace(/-/g, '')
    },
    expected: invalidPath('$.id'),
  },
  {
    name: 'a connection id that is no UUID',
    step: 4,
    only: 'connection',
    spoil: (attempt) => {
      attempt.pathConnectionId = 'not-a-uuid'
    },
    expected: invalidPath('$.connection_id'),
  },
  {
    name: 'a connection id with a trailing character',
    step: 4,
    only: 'connection',
    spoil: (attempt, { fixture }) => {
      attempt.pathConnectionId = `${fixture.connection.connectionId}x`
    },
    expected: invalidPath('$.connection_id'),
  },
  {
    name: 'a token issued to another client id',
    step: 5,
    spoil: (attempt) => {
      attempt.tokenClientId = crypto.randomUUID()
    },
    expected: CLIENT_MISMATCH,
  },
  {
    name: 'a token issued to another seeded client',
    step: 5,
    spoil: async (attempt, { seedOther }) => {
      attempt.tokenClientId = (await seedOther()).clientId
    },
    expected: CLIENT_MISMATCH,
  },
  {
    name: 'an unknown client',
    step: 6,
    spoil: (attempt) => {
      const unknown = crypto.randomUUID()
      attempt.pathId = unknown
      attempt.tokenClientId = unknown
    },
    expected: {
      status: 404,
      type: 'not_found',
      challenge: null,
      outcome: 'client_not_found',
      auditReason: null,
    },
  },
  {
    name: 'an unknown connection',
    step: 7,
    only: 'connection',
    spoil: (attempt) => {
      attempt.pathConnectionId = crypto.randomUUID()
    },
    expected: {
      status: 404,
      type: 'not_found',
      challenge: null,
      outcome: 'connection_not_found',
      auditReason: 'connection_not_found',
    },
  },
  {
    name: "another client's connection",
    step: 7,
    only: 'connection',
    spoil: async (attempt, { seedOther }) => {
      attempt.pathConnectionId = (await seedOther()).connection.connectionId
    },
    expected: {
      status: 404,
      type: 'not_found',
      challenge: null,
      outcome: 'connection_not_found',
      auditReason: 'connection_not_found',
    },
  },
  {
    name: 'a user who does not exist',
    step: 8,
    spoil: (attempt) => {
      attempt.userId = crypto.randomUUID()
    },
    expected: USER_INVALID,
  },
  {
    name: 'a blocked user who holds the roles',
    step: 8,
    spoil: (attempt, { fixture }) => {
      attempt.userId = fixture.blockedUserId
    },
    expected: USER_INVALID,
  },
  {
    name: 'a user with near misses of the role scope',
    step: 9,
    spoil: (attempt, { fixture }) => {
      attempt.userId = fixture.nonOwnerId
    },
    expected: ROLE_MISSING,
  },
  {
    name: "an owner with only the other route's role",
    step: 9,
    seed: (method) => method.otherRoleOnly,
    expected: ROLE_MISSING,
  },
  {
    name: 'an owner of another client',
    step: 9,
    spoil: async (attempt, { seedOther }) => {
      attempt.userId = (await seedOther()).ownerId
    },
    expected: ROLE_MISSING,
  },
  {
    name: 'a blocked client',
    step: 10,
    seed: () => ({ clientBlocked: true }),
    expected: {
      status: 403,
      type: 'forbidden',
      challenge: null,
      outcome: 'client_blocked',
      auditReason: 'client_blocked',
    },
  },
]

/** Selects the rows of the checks that `method` makes. */
export function rowsOf(method: SecretMethod): AuthorizationRow[] {
  return AUTHORIZATION_TABLE.filter((row) => row.only === undefined || row.only === method.name)
}

/**
 * Returns `row` preceded by the representative of every later step, in descending step order, so
 * that applying them in turn leaves each check after `row`'s failing as well.
 */
export function withLaterFailures(method: SecretMethod, row: AuthorizationRow): AuthorizationRow[] {
  const representatives = new Map<number, AuthorizationRow>()
  for (const candidate of rowsOf(method)) {
    if (candidate.step > row.step && !representatives.has(candidate.step)) {
      representatives.set(candidate.step, candidate)
    }
  }
  const later = [...representatives.values()].sort((a, b) => b.step - a.step)
  return [...later, row]
}

/** A fixture with the attempt that the given rows spoil, and the other clients they seeded. */
export interface PreparedAttempt {
  fixture: ConnectionFixture
  attempt: Attempt
  others: ConnectionFixture[]
}

/** Seeds a fixture with every row's seed options and applies their spoils in the given order. */
export async function prepareAttempt(
  method: SecretMethod,
  rows: readonly AuthorizationRow[],
): Promise<PreparedAttempt> {
  const seed: ConnectionSeedOptions = {}
  for (const row of rows) Object.assign(seed, row.seed?.(method))

  const fixture = await seedConnection(seed)
  const attempt = validAttempt(method, fixture)
  const others: ConnectionFixture[] = []
  const context: SpoilContext = {
    method,
    fixture,
    seedOther: async () => {
      const other = await seedConnection()
      others.push(other)
      return other
    },
  }
  for (const row of rows) await row.spoil?.(attempt, context)
  return { fixture, attempt, others }
}

/** Signing keys: the issuer's, which the Worker trusts, and one it does not know. */
export interface AttemptKeys {
  issuer: SigningKey
  stranger: SigningKey
}

async function attemptToken(attempt: Attempt, keys: AttemptKeys): Promise<string | undefined> {
  const claims = { sub: attempt.userId, client_id: attempt.tokenClientId, scope: attempt.scope }
  if (attempt.token === 'none') return undefined
  if (attempt.token === 'foreign_key') return signToken(keys.stranger, claims)
  if (attempt.token === 'expired') {
    const past = Math.floor(Date.now() / 1000) - 3600
    return signToken(keys.issuer, { ...claims, iat: past, exp: past + 60 })
  }
  return signToken(keys.issuer, claims)
}

/** The parts of a request that an attempt leaves open. */
export interface AttemptRequest {
  /** The HTTP method; PATCH by default. */
  method?: string
  headers?: Record<string, string>
  /** A JSON body: objects are serialized, strings are sent as they are. */
  body?: unknown
}

/** Sends `attempt` to `method`'s route through the Worker's fetch handler. */
export async function sendAttempt(
  method: SecretMethod,
  attempt: Attempt,
  keys: AttemptKeys,
  workerEnv: Env,
  request: AttemptRequest = {},
): Promise<Response> {
  const token = await attemptToken(attempt, keys)
  const headers = new Headers(request.headers)
  if (token !== undefined) headers.set('authorization', `Bearer ${token}`)

  let body: string | undefined
  if (request.body !== undefined) {
    body = typeof request.body === 'string' ? request.body : JSON.stringify(request.body)
    if (!headers.has('content-type')) headers.set('content-type', 'application/json')
  }

  const url = `${BASE_URL}${method.path(attempt.pathId, attempt.pathConnectionId)}`
  return callWorker(
    new Request(url, { method: request.method ?? 'PATCH', headers, body }),
    workerEnv,
  )
}

/** Returns the `WWW-Authenticate` value of `challenge` on `method`'s route. */
export function challengeHeader(
  method: SecretMethod,
  challenge: ExpectedDenial['challenge'],
): string | null {
  if (challenge === 'invalid_token') return 'Bearer error="invalid_token"'
  if (challenge === 'insufficient_scope') {
    return `Bearer error="insufficient_scope", scope="${method.scope}"`
  }
  return null
}

/** Counts the idempotency records of a client, which a denied attempt must not add. */
export async function countIdempotencyRecords(clientId: string): Promise<number> {
  const row = await env.DB.prepare(
    'SELECT count(*) AS n FROM idempotency_records WHERE client_id = ?1',
  )
    .bind(clientId)
    .first<{ n: number }>()
  return row?.n ?? 0
}
