import { REFRESH_SCOPE } from './scope'

/** A client as returned to its owner. `priv_settings` and `secret_hash` never leave the store. */
export interface ClientRecord {
  id: string
  name: string | null
  redirect_uri: string | null
  settings: unknown
  is_blocked: boolean
  block_reason: string | null
  user_id: string | null
  client_type_id: string
  inserted_at: string | null
  updated_at: string | null
}

interface ClientRow {
  id: string
  name: string | null
  redirect_uri: string | null
  settings: string | null
  is_blocked: number
  block_reason: string | null
  user_id: string | null
  client_type_id: string
  inserted_at: string | null
  updated_at: string | null
}

/** What the rotation batch read before it wrote, to name the reason when it wrote nothing. */
interface AuthorizationFacts {
  client_blocked: number | null
  user_blocked: number | null
  has_role: number
}

export type RotationOutcome =
  | { kind: 'rotated'; client: ClientRecord }
  | { kind: 'client_not_found' }
  | { kind: 'user_invalid' }
  | { kind: 'role_missing' }
  | { kind: 'client_blocked' }

export interface RotationInput {
  clientId: string
  userId: string
  secretHash: string
  requestId: string
  ip: string | null
  userAgent: string | null
  now: string
}

/** Parses a JSON column, keeping the raw text when it is not valid JSON. */
function parseJsonColumn(value: string | null): unknown {
  if (value === null) return null
  try {
    return JSON.parse(value)
  } catch {
    return value
  }
}

function toClientRecord(row: ClientRow): ClientRecord {
  return {
    id: row.id,
    name: row.name,
    redirect_uri: row.redirect_uri,
    settings: parseJsonColumn(row.settings),
    is_blocked: row.is_blocked === 1,
    block_reason: row.block_reason,
    user_id: row.user_id,
    client_type_id: row.client_type_id,
    inserted_at: row.inserted_at,
    updated_at: row.updated_at,
  }
}

// The role check is a whole-word match in the space-delimited roles.scope column.
const HAS_ROLE = `EXISTS (
  SELECT 1 FROM user_roles ur JOIN roles r ON r.id = ur.role_id
  WHERE ur.user_id = ?2 AND ur.client_id = ?1
    AND instr(' ' || replace(r.scope, char(9), ' ') || ' ', ' ${REFRESH_SCOPE} ') > 0
)`

const READ_FACTS = `SELECT
  (SELECT is_blocked FROM clients WHERE id = ?1) AS client_blocked,
  (SELECT is_blocked FROM users WHERE id = ?2) AS user_blocked,
  ${HAS_ROLE} AS has_role`

const ROTATE = `UPDATE clients SET secret_hash = ?3, updated_at = ?4
WHERE id = ?1 AND is_blocked = 0
  AND EXISTS (SELECT 1 FROM users WHERE id = ?2 AND is_blocked = 0)
  AND ${HAS_ROLE}
RETURNING id, name, redirect_uri, settings, is_blocked, block_reason, user_id, client_type_id,
  inserted_at, updated_at`

// The audit row is written only when the update above stored this request's hash, so the
// two are written together or not at all.
const AUDIT = `INSERT INTO client_secret_events
  (id, client_id, actor_user_id, event, request_id, ip, user_agent, occurred_at)
SELECT ?4, id, ?2, 'secret_rotated', ?5, ?6, ?7, ?8 FROM clients WHERE id = ?1 AND secret_hash = ?3`

/**
 * Checks ownership and both blocked flags, stores the new hash and writes the audit row, all in
 * one D1 batch: one round trip and one transaction. When nothing was written, the facts read at
 * the start of the same transaction name the reason, in the order the authorization table gives.
 */
export async function rotateClientSecret(
  db: D1Database,
  input: RotationInput,
): Promise<RotationOutcome> {
  const [factsResult, rotateResult] = await db.batch([
    db.prepare(READ_FACTS).bind(input.clientId, input.userId),
    db.prepare(ROTATE).bind(input.clientId, input.userId, input.secretHash, input.now),
    db
      .prepare(AUDIT)
      .bind(
        input.clientId,
        input.userId,
        input.secretHash,
        crypto.randomUUID(),
        input.requestId,
        input.ip,
        input.userAgent,
        input.now,
      ),
  ])

  const rotated = (rotateResult?.results ?? []) as ClientRow[]
  if (rotated[0] !== undefined) return { kind: 'rotated', client: toClientRecord(rotated[0]) }

  const facts = (factsResult?.results?.[0] ?? {}) as AuthorizationFacts
  if (facts.client_blocked === null || facts.client_blocked === undefined) {
    return { kind: 'client_not_found' }
  }
  if (facts.user_blocked !== 0) return { kind: 'user_invalid' }
  if (facts.has_role !== 1) return { kind: 'role_missing' }
  if (facts.client_blocked === 1) return { kind: 'client_blocked' }
  throw new Error('The rotation wrote nothing although every check in the same transaction passed')
}
