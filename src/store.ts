import { REFRESH_SCOPE } from './scope.ts'
import { prepareNamed, type SqlValue } from './sql.ts'

/** A client as returned to its owner. `priv_settings` and the hashes never leave the store. */
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
  previous_secret_expires_at: string | null
}

/** A client row as the rotation returns it and as an idempotency record stores it. */
export interface ClientRow {
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
  previous_secret_expires_at: string | null
}

/** Why the rotation batch wrote no new secret, as decided inside the transaction. */
export type DenialReason =
  | 'client_not_found'
  | 'user_invalid'
  | 'role_missing'
  | 'client_blocked'
  | 'idempotency_key_reused'
  | 'rate_limited'

/** A stored response for an Idempotency-Key retry. */
export interface StoredReplay {
  pepperId: string
  ciphertext: string
  client: ClientRow
}

export type RotationOutcome =
  | { kind: 'rotated'; client: ClientRow }
  | { kind: 'replayed'; replay: StoredReplay }
  | { kind: 'denied'; reason: Exclude<DenialReason, 'rate_limited'> }
  | { kind: 'denied'; reason: 'rate_limited'; retryAt: string }

/** The idempotency part of a rotation: the key's hash, the body's fingerprint and the record. */
export interface IdempotencyInput {
  keyHash: string
  fingerprint: string
  pepperId: string
  ciphertext: string
  expiresAt: string
}

export interface RotationInput {
  clientId: string
  userId: string
  secretHash: string
  /** When the previous secret stops verifying, or null to retire it now. */
  previousExpiresAt: string | null
  gracePeriod: number
  rateLimit: { limit: number; windowStart: string }
  idempotency: IdempotencyInput | null
  requestId: string
  ip: string | null
  userAgent: string | null
  now: string
}

const CLIENT_COLUMNS = `id, name, redirect_uri, settings, is_blocked, block_reason, user_id,
  client_type_id, inserted_at, updated_at, previous_secret_expires_at`

const IDEMPOTENCY_MATCH = `client_id = :client_id AND user_id = :user_id AND key_hash = :key_hash
  AND expires_at > :now`

const RECENT_ROTATIONS = `SELECT occurred_at FROM client_secret_events
  WHERE client_id = :client_id AND event = 'secret_rotated' AND occurred_at > :window_start`

/**
 * The authorization and safety checks in the order the API documents, as one SQL expression:
 * NULL allows a rotation, 'replay' returns the stored response, and any other value names the
 * denial. Every statement of the batch evaluates this same expression, so they cannot disagree.
 * The role check is a whole-word match in the space-delimited roles.scope column.
 */
const DECISION = `CASE
  WHEN NOT EXISTS (SELECT 1 FROM clients WHERE id = :client_id) THEN 'client_not_found'
  WHEN NOT EXISTS (SELECT 1 FROM users WHERE id = :user_id AND is_blocked = 0) THEN 'user_invalid'
  WHEN NOT EXISTS (
    SELECT 1 FROM user_roles ur JOIN roles r ON r.id = ur.role_id
    WHERE ur.user_id = :user_id AND ur.client_id = :client_id
      AND instr(' ' || replace(r.scope, char(9), ' ') || ' ', :scope_word) > 0
  ) THEN 'role_missing'
  WHEN EXISTS (SELECT 1 FROM clients WHERE id = :client_id AND is_blocked <> 0) THEN 'client_blocked'
  WHEN EXISTS (
    SELECT 1 FROM idempotency_records
    WHERE ${IDEMPOTENCY_MATCH} AND request_fingerprint <> :fingerprint
  ) THEN 'idempotency_key_reused'
  WHEN EXISTS (SELECT 1 FROM idempotency_records WHERE ${IDEMPOTENCY_MATCH}) THEN 'replay'
  WHEN :rate_limit > 0 AND (SELECT count(*) FROM (${RECENT_ROTATIONS})) >= :rate_limit
    THEN 'rate_limited'
END`

const READ_DECISION = `SELECT
  (${DECISION}) AS decision,
  (${RECENT_ROTATIONS} ORDER BY occurred_at
    LIMIT 1 OFFSET max(0, (SELECT count(*) FROM (${RECENT_ROTATIONS})) - :rate_limit)
  ) AS rate_reset_from,
  i.pepper_id, i.response_ciphertext, i.response_data
FROM (SELECT 1) AS one
LEFT JOIN idempotency_records i ON i.client_id = :client_id AND i.user_id = :user_id
  AND i.key_hash = :key_hash AND i.expires_at > :now`

const ROTATE = `UPDATE clients SET
  previous_secret_hash = CASE WHEN :previous_expires_at IS NULL THEN NULL ELSE secret_hash END,
  previous_secret_expires_at = :previous_expires_at,
  secret_hash = :secret_hash,
  updated_at = :now
WHERE id = :client_id AND (${DECISION}) IS NULL
RETURNING ${CLIENT_COLUMNS}`

// Runs after ROTATE: the client carries this request's hash exactly when the rotation happened.
const AUDIT = `INSERT INTO client_secret_events (id, client_id, actor_user_id, event, outcome, reason,
  request_id, ip, user_agent, grace_period, idempotency_replay, occurred_at)
SELECT :event_id, c.id, :user_id,
  CASE WHEN c.secret_hash = :secret_hash THEN 'secret_rotated'
    WHEN d.decision = 'replay' THEN 'secret_rotation_replayed'
    ELSE 'secret_rotation_denied' END,
  CASE WHEN c.secret_hash = :secret_hash THEN 'rotated'
    WHEN d.decision = 'replay' THEN 'replayed' ELSE 'denied' END,
  CASE WHEN c.secret_hash = :secret_hash OR d.decision = 'replay' THEN NULL ELSE d.decision END,
  :request_id, :ip, :user_agent, :grace_period,
  CASE WHEN d.decision = 'replay' THEN 1 ELSE 0 END, :now
FROM clients c, (SELECT (${DECISION}) AS decision) AS d
WHERE c.id = :client_id`

const REMEMBER = `INSERT INTO idempotency_records (client_id, user_id, key_hash, request_fingerprint,
  pepper_id, response_ciphertext, response_data, request_id, created_at, expires_at)
SELECT id, :user_id, :key_hash, :fingerprint, :pepper_id, :ciphertext,
  json_object('id', id, 'name', name, 'redirect_uri', redirect_uri, 'settings', settings,
    'is_blocked', is_blocked, 'block_reason', block_reason, 'user_id', user_id,
    'client_type_id', client_type_id, 'inserted_at', inserted_at, 'updated_at', updated_at,
    'previous_secret_expires_at', previous_secret_expires_at),
  :request_id, :now, :expires_at
FROM clients WHERE id = :client_id AND secret_hash = :secret_hash AND :key_hash IS NOT NULL
ON CONFLICT (client_id, user_id, key_hash) DO UPDATE SET
  request_fingerprint = excluded.request_fingerprint, pepper_id = excluded.pepper_id,
  response_ciphertext = excluded.response_ciphertext, response_data = excluded.response_data,
  request_id = excluded.request_id, created_at = excluded.created_at,
  expires_at = excluded.expires_at`

/** Removes a bounded number of expired idempotency records on each rotation attempt. */
const PRUNE = `DELETE FROM idempotency_records WHERE rowid IN (
  SELECT rowid FROM idempotency_records WHERE expires_at <= :now LIMIT 20)`

interface DecisionRow {
  decision: DenialReason | 'replay' | null
  rate_reset_from: string | null
  pepper_id: string | null
  response_ciphertext: string | null
  response_data: string | null
}

function parametersOf(input: RotationInput): Record<string, SqlValue> {
  return {
    client_id: input.clientId,
    user_id: input.userId,
    secret_hash: input.secretHash,
    previous_expires_at: input.previousExpiresAt,
    grace_period: input.gracePeriod,
    scope_word: ` ${REFRESH_SCOPE} `,
    rate_limit: input.rateLimit.limit,
    window_start: input.rateLimit.windowStart,
    key_hash: input.idempotency?.keyHash ?? null,
    fingerprint: input.idempotency?.fingerprint ?? '',
    pepper_id: input.idempotency?.pepperId ?? '',
    ciphertext: input.idempotency?.ciphertext ?? '',
    expires_at: input.idempotency?.expiresAt ?? input.now,
    event_id: crypto.randomUUID(),
    request_id: input.requestId,
    ip: input.ip,
    user_agent: input.userAgent,
    now: input.now,
  }
}

/**
 * Checks ownership, both blocked flags, the idempotency record and the rate limit, stores the new
 * hash, writes the audit row and keeps the response for retries, all in one D1 batch: one round
 * trip and one transaction. When nothing was rotated, the decision read at the start of the same
 * transaction names the reason or carries the stored response.
 */
export async function rotateClientSecret(
  db: D1Database,
  input: RotationInput,
): Promise<RotationOutcome> {
  const values = parametersOf(input)
  const [decisionResult, rotateResult] = await db.batch([
    prepareNamed(db, READ_DECISION, values),
    prepareNamed(db, ROTATE, values),
    prepareNamed(db, AUDIT, values),
    prepareNamed(db, REMEMBER, values),
    prepareNamed(db, PRUNE, values),
  ])

  const rotated = rotateResult?.results?.[0] as ClientRow | undefined
  if (rotated !== undefined) return { kind: 'rotated', client: rotated }

  const row = decisionResult?.results?.[0] as DecisionRow | undefined
  const decision = row?.decision ?? null
  if (decision === 'replay' && row?.response_data && row.response_ciphertext && row.pepper_id) {
    return {
      kind: 'replayed',
      replay: {
        pepperId: row.pepper_id,
        ciphertext: row.response_ciphertext,
        client: JSON.parse(row.response_data) as ClientRow,
      },
    }
  }
  if (decision === 'rate_limited') {
    return { kind: 'denied', reason: decision, retryAt: row?.rate_reset_from ?? input.now }
  }
  if (decision !== null && decision !== 'replay') return { kind: 'denied', reason: decision }

  throw new Error('The rotation wrote nothing although every check in the same transaction passed')
}

/** Records an attempt that was denied before the rotation batch, if the client exists. */
export async function recordDenial(
  db: D1Database,
  input: {
    clientId: string
    userId: string
    reason: string
    requestId: string
    ip: string | null
    userAgent: string | null
    now: string
  },
): Promise<void> {
  await prepareNamed(
    db,
    `INSERT INTO client_secret_events (id, client_id, actor_user_id, event, outcome, reason,
      request_id, ip, user_agent, occurred_at)
    SELECT :event_id, id, :user_id, 'secret_rotation_denied', 'denied', :reason, :request_id, :ip,
      :user_agent, :now
    FROM clients WHERE id = :client_id`,
    {
      event_id: crypto.randomUUID(),
      client_id: input.clientId,
      user_id: input.userId,
      reason: input.reason,
      request_id: input.requestId,
      ip: input.ip,
      user_agent: input.userAgent,
      now: input.now,
    },
  ).run()
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

/** Maps a client row to the record returned to its owner. */
export function toClientRecord(row: ClientRow): ClientRecord {
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
    previous_secret_expires_at: row.previous_secret_expires_at,
  }
}

/** The stored secret slots of a client, for verification. */
export interface SecretSlots {
  secret_hash: string
  previous_secret_hash: string | null
  previous_secret_expires_at: string | null
  is_blocked: number
}

export async function readSecretSlots(
  db: D1Database,
  clientId: string,
): Promise<SecretSlots | null> {
  return db
    .prepare(
      `SELECT secret_hash, previous_secret_hash, previous_secret_expires_at, is_blocked
      FROM clients WHERE id = ?1`,
    )
    .bind(clientId)
    .first<SecretSlots>()
}
