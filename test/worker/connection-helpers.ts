import { env } from 'cloudflare:workers'
import type { PepperKey } from '../../src/config.ts'
import type { ClientSecretCheck } from '../../src/verifier.ts'
import {
  BASE_URL,
  type Fixture,
  PEPPER_KEY,
  type RefreshOptions,
  type SeedOptions,
  seedClient,
  toBase64url,
} from './helpers.ts'
import { expectedHash } from './safety-helpers.ts'

/** The scope of the connection-secret method, in tokens and in `roles.scope`. */
export const CONNECTION_SCOPE = 'connection:refresh_secret'

const SEEDED_AT = '2025-03-01T10:00:00.000Z'

/** Every column of a connection row as D1 stores it. */
export type ConnectionRow = Record<string, unknown> & {
  id: string
  client_id: string
  consumer_id: string
  secret_hash: string | null
  previous_secret_hash: string | null
  previous_secret_expires_at: string | null
  updated_at: string
}

/** A connection of the fixture's client to a consumer client of its own. */
export interface SeededConnection {
  connectionId: string
  consumerId: string
  /** The connection's secret before any rotation, or null when its `secret_hash` is NULL. */
  oldSecret: string | null
  row: ConnectionRow
}

/**
 * A client fixture with one connection. Besides OWNER, the owner and the blocked user are granted
 * a role for the client whose scope includes `connection:refresh_secret`. The non-owner is
 * granted a near miss of that scope too.
 */
export interface ConnectionFixture extends Fixture {
  connectionRoleId: string
  plainConnectionRoleId: string
  connection: SeededConnection
}

export interface ConnectionOptions {
  /** Stores NULL in `secret_hash`, as for a connection whose secret was never set. */
  withoutSecret?: boolean
  /** The key of the stored hash; the module's `PEPPER_KEY` by default. */
  pepper?: PepperKey
}

export interface ConnectionSeedOptions extends SeedOptions, ConnectionOptions {
  /** The scope of the connection role; `connection:refresh_secret` among other scopes by default. */
  connectionScope?: string | null
}

/** Returns a new random secret in the format the Worker issues. */
export function newSecret(): string {
  return toBase64url(crypto.getRandomValues(new Uint8Array(32)))
}

/** Inserts a client with its users and roles, plus a connection role and one connection. */
export async function seedConnection(
  options: ConnectionSeedOptions = {},
): Promise<ConnectionFixture> {
  const fixture = await seedClient(options)
  const connectionRoleId = crypto.randomUUID()
  const plainConnectionRoleId = crypto.randomUUID()
  const connectionScope =
    options.connectionScope === undefined
      ? `connection:read ${CONNECTION_SCOPE}`
      : options.connectionScope

  const db = env.DB
  const insertRole = db.prepare('INSERT INTO roles (id, name, scope) VALUES (?1, ?2, ?3)')
  const insertGrant = db.prepare(
    'INSERT INTO user_roles (id, user_id, role_id, client_id) VALUES (?1, ?2, ?3, ?4)',
  )
  await db.batch([
    insertRole.bind(connectionRoleId, `CONNECTION_ADMIN ${connectionRoleId}`, connectionScope),
    // A near miss: `connection:refresh_secret_all` must not grant `connection:refresh_secret`.
    insertRole.bind(
      plainConnectionRoleId,
      `CONNECTION_VIEWER ${plainConnectionRoleId}`,
      `connection:read ${CONNECTION_SCOPE}_all`,
    ),
    insertGrant.bind(crypto.randomUUID(), fixture.ownerId, connectionRoleId, fixture.clientId),
    insertGrant.bind(
      crypto.randomUUID(),
      fixture.blockedUserId,
      connectionRoleId,
      fixture.clientId,
    ),
    insertGrant.bind(
      crypto.randomUUID(),
      fixture.nonOwnerId,
      plainConnectionRoleId,
      fixture.clientId,
    ),
  ])

  const connection = await addConnection(fixture, options)
  return { ...fixture, connectionRoleId, plainConnectionRoleId, connection }
}

/** Inserts a consumer client and a connection of `fixture`'s client to it. */
export async function addConnection(
  fixture: Fixture,
  options: ConnectionOptions = {},
): Promise<SeededConnection> {
  const connectionId = crypto.randomUUID()
  const consumerId = crypto.randomUUID()
  const oldSecret = options.withoutSecret ? null : newSecret()
  const secretHash =
    oldSecret === null
      ? null
      : await expectedHash(connectionId, oldSecret, options.pepper ?? PEPPER_KEY)

  const db = env.DB
  await db.batch([
    db
      .prepare(
        `INSERT INTO clients (id, name, secret_hash, redirect_uri, settings, priv_settings, user_id,
          client_type_id, is_blocked, block_reason, inserted_at, updated_at)
        VALUES (?1, ?2, ?3, ?4, ?5, NULL, NULL, ?6, 0, NULL, ?7, ?7)`,
      )
      .bind(
        consumerId,
        `Consumer ${consumerId}`,
        await expectedHash(consumerId, newSecret()),
        'https://consumer.test/callback',
        '{}',
        fixture.clientTypeId,
        SEEDED_AT,
      ),
    db
      .prepare(
        `INSERT INTO connections (id, client_id, consumer_id, secret_hash, redirect_uri,
          inserted_at, updated_at)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)`,
      )
      .bind(
        connectionId,
        fixture.clientId,
        consumerId,
        secretHash,
        'https://consumer.test/connection/callback',
        SEEDED_AT,
      ),
  ])

  const row = await readConnection(connectionId)
  if (row === null) throw new Error(`seeded connection ${connectionId} was not found`)
  return { connectionId, consumerId, oldSecret, row }
}

export function readConnection(connectionId: string): Promise<ConnectionRow | null> {
  return env.DB.prepare('SELECT * FROM connections WHERE id = ?1')
    .bind(connectionId)
    .first<ConnectionRow>()
}

/** Returns the path of the connection-secret route. */
export function connectionPath(clientId: string, connectionId: string): string {
  return `/api/clients/${clientId}/connections/${connectionId}/actions/refresh_secret`
}

/** Builds a request to the connection-secret route. */
export function connectionRequest(
  clientId: string,
  connectionId: string,
  options: RefreshOptions = {},
): Request {
  const headers = new Headers(options.headers)
  if (options.token !== undefined) headers.set('authorization', `Bearer ${options.token}`)
  return new Request(`${BASE_URL}${connectionPath(clientId, connectionId)}`, {
    method: options.method ?? 'PATCH',
    headers,
    body: options.body,
  })
}

/** Inserts audit rows of rotations of `connectionId` at the given times. */
export async function insertConnectionRotations(
  clientId: string,
  connectionId: string,
  occurredAt: readonly string[],
): Promise<void> {
  const insert = env.DB.prepare(
    `INSERT INTO client_secret_events (id, client_id, connection_id, actor_user_id, event,
      outcome, occurred_at)
    VALUES (?1, ?2, ?3, NULL, 'secret_rotated', 'rotated', ?4)`,
  )
  await env.DB.batch(
    occurredAt.map((time) => insert.bind(crypto.randomUUID(), clientId, connectionId, time)),
  )
}

/** The RPC methods of the `SecretVerifier` entrypoint, with arguments left untyped on purpose. */
export interface ConnectionVerifierRpc {
  verifyClientSecret(clientId: unknown, secret: unknown): Promise<ClientSecretCheck>
  verifyConnectionSecret(connectionId: unknown, secret: unknown): Promise<ClientSecretCheck>
}

/** The test Worker's service binding to the `SecretVerifier` entrypoint. */
export function connectionVerifier(): ConnectionVerifierRpc {
  return (env as unknown as { SECRET_VERIFIER: ConnectionVerifierRpc }).SECRET_VERIFIER
}
