// Test fixtures for the Worker on Deno: a signing key, tokens, an in-memory database with the
// migrations applied, demo rows, and the Worker served by the Deno entry on a free loopback port.

import { Buffer } from 'node:buffer'
import type { DatabaseSync } from 'node:sqlite'
import { exportJWK, generateKeyPair, type JWTPayload, SignJWT } from 'jose'
import type { PepperKey } from '../../src/config.ts'
import type { Settings } from '../../src/deno/env.ts'
import { createWorkerEnv, serveWorker } from '../../src/deno/main.ts'
import { hashSecret } from '../../src/index.ts'

export const ISSUER = 'https://issuer.test'
export const AUDIENCE = 'refresh-secret'

/** Encodes bytes as Base64url without padding, independently of the code under test. */
export function toBase64url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url')
}

const pepperBytes = crypto.getRandomValues(new Uint8Array(32))

/** The SECRET_PEPPER of every test server, and the key that verifies its hashes. */
export const PEPPER = toBase64url(pepperBytes)
export const PEPPER_KEY: PepperKey = { id: 'k1', key: pepperBytes }

export interface SigningKey {
  kid: string
  privateKey: CryptoKey
  keySetJson: string
}

export async function createSigningKey(): Promise<SigningKey> {
  const kid = crypto.randomUUID()
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true })
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' }
  return { kid, privateKey, keySetJson: JSON.stringify({ keys: [publicJwk] }) }
}

export interface TokenClaims {
  sub: string
  client_id: string
  scope?: string
  iss?: string
  aud?: string
  /** Seconds from now until `exp`; negative for an expired token. */
  expiresIn?: number
}

/** Signs an ES256 access token; the claims default to a valid token of the test issuer. */
export function signToken(key: SigningKey, claims: TokenClaims): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  const payload: JWTPayload = {
    client_id: claims.client_id,
    scope: claims.scope ?? 'secret:refresh',
  }

  return new SignJWT(payload)
    .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'at+jwt' })
    .setIssuer(claims.iss ?? ISSUER)
    .setAudience(claims.aud ?? AUDIENCE)
    .setSubject(claims.sub)
    .setIssuedAt(now)
    .setExpirationTime(now + (claims.expiresIn ?? 300))
    .sign(key.privateKey)
}

export interface TestServer {
  /** Base URL of the Worker, such as http://127.0.0.1:41234. */
  url: string
  db: D1Database
  connection: DatabaseSync
  close(): Promise<void>
}

/**
 * Serves the Worker through the Deno entry on a free port, over a new in-memory database with the
 * migrations applied. Only `settings` configure it: no file or environment variable is read.
 */
export async function startServer(key: SigningKey, settings: Settings = {}): Promise<TestServer> {
  const { env, connection } = await createWorkerEnv({
    database: ':memory:',
    isolated: true,
    settings: {
      JWKS: key.keySetJson,
      JWT_ISSUER: ISSUER,
      JWT_AUDIENCE: AUDIENCE,
      SECRET_PEPPER: PEPPER,
      ...settings,
    },
  })
  const server = serveWorker(env, { port: 0 })

  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    db: env.DB,
    connection,
    async close() {
      await server.shutdown()
      connection.close()
    },
  }
}

export interface DemoRows {
  userId: string
  clientId: string
  oldSecret: string
}

export interface DemoOptions {
  userBlocked?: boolean
  clientBlocked?: boolean
  /** The scope of the user's role for the client; null gives the user no role. */
  roleScope?: string | null
}

/** Inserts a user who owns a client through a role, with fresh ids, and returns them. */
export async function insertOwner(db: D1Database, options: DemoOptions = {}): Promise<DemoRows> {
  const userId = crypto.randomUUID()
  const clientId = crypto.randomUUID()
  const typeId = crypto.randomUUID()
  const roleId = crypto.randomUUID()
  const oldSecret = toBase64url(crypto.getRandomValues(new Uint8Array(32)))
  const now = new Date().toISOString()
  const roleScope =
    options.roleScope === undefined ? 'secret:refresh client:read' : options.roleScope

  const statements = [
    db
      .prepare(
        'INSERT INTO users (id, email, is_blocked, settings, inserted_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)',
      )
      .bind(userId, `${userId}@owner.test`, options.userBlocked === true ? 1 : 0, '{}', now),
    db
      .prepare('INSERT INTO client_types (id, name, scope) VALUES (?1, ?2, ?3)')
      .bind(typeId, `MSP ${typeId}`, 'secret:refresh'),
    db
      .prepare(
        `INSERT INTO clients (id, name, secret_hash, redirect_uri, settings, priv_settings, user_id,
          client_type_id, is_blocked, block_reason, inserted_at, updated_at)
        VALUES (?1, 'Clinic', ?2, 'https://clinic.test/cb', '{"a":1}', '{"p":1}', ?3, ?4, ?5, ?6, ?7, ?7)`,
      )
      .bind(
        clientId,
        await hashSecret(clientId, oldSecret, PEPPER_KEY),
        userId,
        typeId,
        options.clientBlocked === true ? 1 : 0,
        options.clientBlocked === true ? 'unpaid' : null,
        now,
      ),
  ]
  if (roleScope !== null) {
    statements.push(
      db
        .prepare('INSERT INTO roles (id, name, scope) VALUES (?1, ?2, ?3)')
        .bind(roleId, `OWNER ${roleId}`, roleScope),
      db
        .prepare('INSERT INTO user_roles (id, user_id, role_id, client_id) VALUES (?1, ?2, ?3, ?4)')
        .bind(crypto.randomUUID(), userId, roleId, clientId),
    )
  }
  await db.batch(statements)
  return { userId, clientId, oldSecret }
}

/** Sends PATCH /admin/clients/{id}/refresh_secret with an optional bearer token. */
export function patchRefresh(
  server: TestServer,
  clientId: string,
  token?: string,
  init: RequestInit = {},
): Promise<Response> {
  const headers = new Headers(init.headers)
  if (token !== undefined) headers.set('Authorization', `Bearer ${token}`)
  return fetch(`${server.url}/admin/clients/${clientId}/refresh_secret`, {
    method: 'PATCH',
    ...init,
    headers,
  })
}
