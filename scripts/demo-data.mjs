// Demo rows for a local database: an owner, a second user, a client type, an OWNER role and a
// client owned by the owner. The statements skip rows that exist, so seeding twice is harmless.

import { randomBytes, webcrypto } from 'node:crypto'

/** Fixed ids, so tokens and curl commands keep working after the database is seeded again. */
export const DEMO = Object.freeze({
  ownerId: 'a0000000-0000-4000-8000-000000000001',
  ownerEmail: 'owner@demo-clinic.example',
  otherUserId: 'a0000000-0000-4000-8000-000000000002',
  otherUserEmail: 'doctor@demo-clinic.example',
  clientTypeId: 'b0000000-0000-4000-8000-000000000001',
  roleId: 'c0000000-0000-4000-8000-000000000001',
  clientId: 'd0000000-0000-4000-8000-000000000001',
  userRoleId: 'e0000000-0000-4000-8000-000000000001',
})

/** The scope of the demo OWNER role, which grants secret:refresh. */
export const OWNER_ROLE_SCOPE = 'secret:refresh client:read'

/**
 * Hashes a client secret in the Worker's stored format:
 * `hmac-sha256$<key id>$<Base64url HMAC-SHA-256 of "<lowercase client id>\n<secret>">`,
 * with the pepper bytes as the HMAC key.
 * @param {string} clientId
 * @param {string} secret
 * @param {{ id: string, key: Uint8Array }} pepper
 */
export async function hashClientSecret(clientId, secret, pepper) {
  const key = await webcrypto.subtle.importKey(
    'raw',
    pepper.key,
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign'],
  )
  const input = new TextEncoder().encode(`${clientId.toLowerCase()}\n${secret}`)
  const mac = await webcrypto.subtle.sign('HMAC', key, input)
  return `hmac-sha256$${pepper.id}$${Buffer.from(mac).toString('base64url')}`
}

/** @param {string | number | null} value */
function sqlValue(value) {
  if (value === null) return 'NULL'
  if (typeof value === 'number') return String(value)
  return `'${value.replaceAll("'", "''")}'`
}

/**
 * @param {string} table
 * @param {Record<string, string | number | null>} row
 */
function insertIgnoringConflicts(table, row) {
  const columns = Object.keys(row).join(', ')
  const values = Object.values(row).map(sqlValue).join(', ')
  return `INSERT INTO ${table} (${columns}) VALUES (${values}) ON CONFLICT DO NOTHING;`
}

/**
 * Builds the demo seed as SQL. The client gets the hash of a random initial secret that is
 * discarded here and never stored. Rotate the secret to get a known one.
 * @param {{ id: string, key: Uint8Array }} pepper the SECRET_PEPPER key and its id
 * @param {Date} [now]
 */
export async function buildSeedSql(pepper, now = new Date()) {
  const timestamp = now.toISOString()
  const initialSecret = randomBytes(32).toString('base64url')
  const secretHash = await hashClientSecret(DEMO.clientId, initialSecret, pepper)

  const statements = [
    insertIgnoringConflicts('users', {
      id: DEMO.ownerId,
      email: DEMO.ownerEmail,
      is_blocked: 0,
      settings: '{}',
      inserted_at: timestamp,
      updated_at: timestamp,
    }),
    insertIgnoringConflicts('users', {
      id: DEMO.otherUserId,
      email: DEMO.otherUserEmail,
      is_blocked: 0,
      settings: '{}',
      inserted_at: timestamp,
      updated_at: timestamp,
    }),
    insertIgnoringConflicts('client_types', {
      id: DEMO.clientTypeId,
      name: 'MSP',
      scope: 'secret:refresh client:read legal_entity:read',
      inserted_at: timestamp,
      updated_at: timestamp,
    }),
    insertIgnoringConflicts('roles', {
      id: DEMO.roleId,
      name: 'OWNER',
      scope: OWNER_ROLE_SCOPE,
    }),
    insertIgnoringConflicts('clients', {
      id: DEMO.clientId,
      name: 'Demo clinic',
      secret_hash: secretHash,
      redirect_uri: 'https://demo-clinic.example/auth/callback',
      settings: JSON.stringify({ allowed_grant_types: ['password', 'refresh_token'] }),
      priv_settings: JSON.stringify({ access_type: 'DIRECT' }),
      user_id: DEMO.ownerId,
      client_type_id: DEMO.clientTypeId,
      is_blocked: 0,
      block_reason: null,
      inserted_at: timestamp,
      updated_at: timestamp,
    }),
    insertIgnoringConflicts('user_roles', {
      id: DEMO.userRoleId,
      user_id: DEMO.ownerId,
      role_id: DEMO.roleId,
      client_id: DEMO.clientId,
    }),
  ]
  return `${statements.join('\n')}\n`
}
