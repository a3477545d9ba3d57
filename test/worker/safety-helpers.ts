import { env } from 'cloudflare:workers'
import { expect } from 'vitest'
import { ConfigError, type Env, type PepperKey, parseConfig } from '../../src/config.ts'
import type { ClientSecretCheck } from '../../src/verifier.ts'
import {
  callWorker,
  createEnv,
  createSigningKey,
  type ErrorBody,
  type Fixture,
  PEPPER_KEY,
  readClient,
  readError,
  refreshRequest,
  type SeedOptions,
  type Settings,
  type SigningKey,
  seedClient,
  signToken,
  toBase64url,
} from './helpers.ts'

/** A seeded client, a Worker env configured for it and a token of the client's owner. */
export interface RotationSetup {
  fixture: Fixture
  key: SigningKey
  workerEnv: Env
  token: string
}

/** Seeds a client and builds a Worker env with `settings` applied to the valid defaults. */
export async function setUpRotation(
  settings: Settings = {},
  seed: SeedOptions = {},
): Promise<RotationSetup> {
  const fixture = await seedClient(seed)
  const key = await createSigningKey()
  const workerEnv = createEnv([key], settings)
  const token = await tokenFor(key, fixture.ownerId, fixture.clientId)
  return { fixture, key, workerEnv, token }
}

/** Signs a token of `userId` for `clientId` with the scope `secret:refresh`. */
export function tokenFor(
  key: SigningKey,
  userId: string,
  clientId: string,
  claims: Record<string, unknown> = {},
): Promise<string> {
  return signToken(key, { sub: userId, client_id: clientId, ...claims })
}

export interface RotateOptions {
  /** A JSON body: objects are serialized, strings are sent as they are. */
  body?: unknown
  idempotencyKey?: string
  headers?: Record<string, string>
  /** Another token than the owner's. */
  token?: string
  /** Another path id than the fixture's client. */
  clientId?: string
}

/** Sends a refresh-secret request for the set-up client through the Worker's fetch handler. */
export function rotate(setup: RotationSetup, options: RotateOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { ...options.headers }
  let body: string | undefined
  if (options.body !== undefined) {
    body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body)
    headers['content-type'] ??= 'application/json'
  }
  if (options.idempotencyKey !== undefined) headers['idempotency-key'] = options.idempotencyKey

  const request = refreshRequest(options.clientId ?? setup.fixture.clientId, {
    token: options.token ?? setup.token,
    headers,
    body,
  })
  return callWorker(request, setup.workerEnv)
}

/**
 * Computes the stored form of a secret, `hmac-sha256$<key id>$<Base64url MAC>` over
 * `<client id>\n<secret>`, with Web Crypto directly rather than through the code under test.
 */
export async function expectedHash(
  clientId: string,
  secret: string,
  pepper: PepperKey = PEPPER_KEY,
): Promise<string> {
  const key = await crypto.subtle.importKey(
    'raw',
    pepper.key,
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign'],
  )
  const input = new TextEncoder().encode(`${clientId.toLowerCase()}\n${secret}`)
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, input))
  return `hmac-sha256$${pepper.id}$${toBase64url(mac)}`
}

/** The two secret slots of a client as D1 stores them. */
export interface StoredSlots {
  secret_hash: string
  previous_secret_hash: string | null
  previous_secret_expires_at: string | null
}

export async function readSlots(clientId: string): Promise<StoredSlots> {
  const row = await readClient(clientId)
  if (row === null) throw new Error(`client ${clientId} was not found`)
  return {
    secret_hash: row.secret_hash,
    previous_secret_hash: row.previous_secret_hash as string | null,
    previous_secret_expires_at: row.previous_secret_expires_at as string | null,
  }
}

/** Inserts audit rows for `clientId` with chosen times, as earlier requests would have. */
export async function insertEvents(
  clientId: string,
  occurredAt: readonly string[],
  event = 'secret_rotated',
): Promise<void> {
  if (occurredAt.length === 0) return
  const insert = env.DB.prepare(
    `INSERT INTO client_secret_events (id, client_id, actor_user_id, event, outcome, occurred_at)
    VALUES (?1, ?2, NULL, ?3, ?4, ?5)`,
  )
  const outcome = event === 'secret_rotated' ? 'rotated' : 'denied'
  await env.DB.batch(
    occurredAt.map((time) => insert.bind(crypto.randomUUID(), clientId, event, outcome, time)),
  )
}

/** Returns an ISO 8601 time `seconds` after `from` (before it when negative). */
export function isoAt(from: number, seconds: number): string {
  return new Date(from + seconds * 1000).toISOString()
}

/** Inserts a user with the fixture's OWNER role for its client and returns the user id. */
export async function addOwner(fixture: Fixture): Promise<string> {
  const userId = crypto.randomUUID()
  await env.DB.prepare(
    `INSERT INTO users (id, email, is_blocked, inserted_at, updated_at)
    VALUES (?1, ?2, 0, ?3, ?3)`,
  )
    .bind(userId, `${userId}@owner.test`, '2025-03-01T10:00:00.000Z')
    .run()
  await grantOwner(userId, fixture)
  return userId
}

/** Grants an existing user the OWNER role of `fixture` for its client. */
export async function grantOwner(userId: string, fixture: Fixture): Promise<void> {
  await env.DB.prepare(
    'INSERT INTO user_roles (id, user_id, role_id, client_id) VALUES (?1, ?2, ?3, ?4)',
  )
    .bind(crypto.randomUUID(), userId, fixture.ownerRoleId, fixture.clientId)
    .run()
}

export interface IdempotencyRow {
  client_id: string
  user_id: string
  key_hash: string
  request_fingerprint: string
  pepper_id: string
  response_ciphertext: string
  response_data: string
  request_id: string
  created_at: string
  expires_at: string
}

export async function listIdempotencyRecords(clientId: string): Promise<IdempotencyRow[]> {
  const { results } = await env.DB.prepare(
    'SELECT * FROM idempotency_records WHERE client_id = ?1 ORDER BY created_at',
  )
    .bind(clientId)
    .all<IdempotencyRow>()
  return results
}

/** The RPC interface of the `SecretVerifier` entrypoint, with arguments left untyped on purpose. */
export interface SecretVerifierRpc {
  verifyClientSecret(clientId: unknown, secret: unknown): Promise<ClientSecretCheck>
}

/** The test Worker's service binding to the `SecretVerifier` entrypoint. */
export function secretVerifier(): SecretVerifierRpc {
  return (env as unknown as { SECRET_VERIFIER: SecretVerifierRpc }).SECRET_VERIFIER
}

/**
 * Returns the `SECRET_PEPPER` binding of the test runtime, which the `SecretVerifier` entrypoint
 * uses. Hashes checked through RPC must be made with it.
 */
export function runtimePepper(): { key: PepperKey; encoded: string } {
  const encoded = env.SECRET_PEPPER
  if (encoded === undefined) throw new Error('the test runtime has no SECRET_PEPPER binding')

  const base64 = encoded.replace(/-/g, '+').replace(/_/g, '/')
  const bytes = Uint8Array.from(atob(base64), (char) => char.charCodeAt(0))
  return { key: { id: env.SECRET_PEPPER_ID ?? 'k1', key: bytes }, encoded }
}

/**
 * Checks that `response` is a 422 whose `invalid` list names `entry`, and returns its body.
 * The entry's rules are left to the caller.
 */
export async function expectInvalid(
  response: Response,
  entryType: string,
  entry: string,
): Promise<ErrorBody> {
  const body = await readError(response)
  expect(response.status).toBe(422)
  expect(body.error.type).toBe('validation_failed')
  expect(body.data).toBeUndefined()

  const entries = (body.error.invalid ?? []).map((item) => `${item.entry_type} ${item.entry}`)
  expect(entries).toContain(`${entryType} ${entry}`)
  return body
}

/** Parses a configuration that must be invalid and returns its ConfigError. */
export function configErrorOf(workerEnv: Env): ConfigError {
  try {
    parseConfig(workerEnv)
  } catch (error) {
    if (error instanceof ConfigError) return error
    throw new Error(`parseConfig threw ${String(error)} instead of a ConfigError`)
  }
  throw new Error('parseConfig accepted an invalid configuration')
}
