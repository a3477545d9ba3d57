import { buildRotationStatements, NEXT_AUDIT_SEQ } from './rotation-sql.ts'
import { prepareNamed, type SqlValue } from './sql.ts'
import { CLIENT_TARGET, CONNECTION_TARGET, type SecretTarget } from './targets.ts'

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

/** The reason the rotation batch wrote no new secret, as decided inside the transaction. */
export type DenialReason =
  | 'client_not_found'
  | 'connection_not_found'
  | 'user_invalid'
  | 'role_missing'
  | 'client_blocked'
  | 'idempotency_key_reused'
  | 'rate_limited'

/** A stored response for an Idempotency-Key retry. */
export interface StoredReplay {
  pepperId: string
  ciphertext: string
  /** The rotated row as the first response returned it. */
  row: Record<string, unknown>
}

export type RotationOutcome =
  | { kind: 'rotated'; row: Record<string, unknown> }
  | { kind: 'replayed'; replay: StoredReplay }
  | { kind: 'denied'; reason: Exclude<DenialReason, 'rate_limited'> }
  /** `oldestCounted`: the time of the rotation that must leave the window before the next one. */
  | { kind: 'denied'; reason: 'rate_limited'; oldestCounted: string }

/** The idempotency part of a rotation: the key's hash, the body's fingerprint and the record. */
export interface IdempotencyInput {
  /** The key's hash under the current pepper, stored with a new record. */
  keyHash: string
  /** The key's hash under every accepted pepper, current first, to find an existing record. */
  lookupHashes: string[]
  fingerprint: string
  pepperId: string
  ciphertext: string
  expiresAt: string
}

export interface RotationInput {
  clientId: string
  /** The connection whose secret rotates, or null for the client's own secret. */
  connectionId?: string | null
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

const CLIENT_STATEMENTS = buildRotationStatements(CLIENT_TARGET)
const CONNECTION_STATEMENTS = buildRotationStatements(CONNECTION_TARGET)

interface DecisionRow {
  decision: DenialReason | 'replay' | null
  rate_reset_from: string | null
  pepper_id: string | null
  response_ciphertext: string | null
  response_data: string | null
}

function parametersOf(target: SecretTarget, input: RotationInput): Record<string, SqlValue> {
  return {
    client_id: input.clientId,
    connection_id: input.connectionId ?? null,
    user_id: input.userId,
    secret_hash: input.secretHash,
    previous_expires_at: input.previousExpiresAt,
    grace_period: input.gracePeriod,
    scope_word: ` ${target.scope} `,
    rate_limit: input.rateLimit.limit,
    window_start: input.rateLimit.windowStart,
    key_hash: input.idempotency?.keyHash ?? null,
    key_hashes: JSON.stringify(input.idempotency?.lookupHashes ?? []),
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
 * Checks ownership, both blocked flags, the idempotency record and the rate limit, writes the
 * audit row, stores the new hash and keeps the response for retries, all in one D1 batch: one
 * round trip and one transaction. When nothing was rotated, the decision that the audit row of
 * the same transaction stores names the reason or carries the stored response.
 */
export async function rotateSecret(
  db: D1Database,
  target: SecretTarget,
  input: RotationInput,
): Promise<RotationOutcome> {
  const statements = target.name === 'client' ? CLIENT_STATEMENTS : CONNECTION_STATEMENTS
  const values = parametersOf(target, input)
  const [, rotateResult, decisionResult] = await db.batch([
    prepareNamed(db, statements.audit, values),
    prepareNamed(db, statements.rotate, values),
    prepareNamed(db, statements.readDecision, values),
    prepareNamed(db, statements.remember, values),
    prepareNamed(db, statements.prune, values),
  ])

  const rotated = rotateResult?.results?.[0] as Record<string, unknown> | undefined
  if (rotated !== undefined) return { kind: 'rotated', row: rotated }

  const row = decisionResult?.results?.[0] as DecisionRow | undefined
  const decision = row?.decision ?? null
  if (decision === 'replay' && row?.response_data && row.response_ciphertext && row.pepper_id) {
    return {
      kind: 'replayed',
      replay: {
        pepperId: row.pepper_id,
        ciphertext: row.response_ciphertext,
        row: JSON.parse(row.response_data) as Record<string, unknown>,
      },
    }
  }
  if (decision === 'rate_limited') {
    return { kind: 'denied', reason: decision, oldestCounted: row?.rate_reset_from ?? input.now }
  }
  if (decision !== null && decision !== 'replay') return { kind: 'denied', reason: decision }

  throw new Error('The rotation wrote nothing although every check in the same transaction passed')
}

/**
 * Reads the row of the target if its current hash is `secretHash`, else returns null. A batch
 * whose reply was lost may still have committed, and each hash belongs to one request, so
 * finding it proves that this request's rotation committed.
 */
export function findRotatedRow(
  db: D1Database,
  target: SecretTarget,
  input: { clientId: string; connectionId: string | null; secretHash: string },
): Promise<Record<string, unknown> | null> {
  const sql = `SELECT ${target.columns.join(', ')} FROM ${target.table}
WHERE ${target.rowMatch} AND secret_hash = :secret_hash`
  return prepareNamed(db, sql, {
    client_id: input.clientId,
    connection_id: input.connectionId,
    secret_hash: input.secretHash,
  }).first<Record<string, unknown>>()
}

/** Rotates a client's own secret; see rotateSecret. */
export function rotateClientSecret(db: D1Database, input: RotationInput): Promise<RotationOutcome> {
  return rotateSecret(db, CLIENT_TARGET, input)
}

/** Records an attempt that was denied before the rotation batch, if the client exists. */
export async function recordDenial(
  db: D1Database,
  input: {
    clientId: string
    connectionId?: string | null
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
    `INSERT INTO client_secret_events (id, seq, client_id, connection_id, actor_user_id, event,
      outcome, reason, request_id, ip, user_agent, occurred_at)
    SELECT :event_id, ${NEXT_AUDIT_SEQ}, id,
      (SELECT id FROM connections WHERE id = :connection_id AND client_id = :client_id),
      :user_id, 'secret_rotation_denied', 'denied', :reason, :request_id, :ip, :user_agent, :now
    FROM clients WHERE id = :client_id`,
    {
      event_id: crypto.randomUUID(),
      client_id: input.clientId,
      connection_id: input.connectionId ?? null,
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
export function toClientRecord(row: Record<string, unknown>): ClientRecord {
  const client = row as unknown as ClientRow
  return {
    id: client.id,
    name: client.name,
    redirect_uri: client.redirect_uri,
    settings: parseJsonColumn(client.settings),
    is_blocked: client.is_blocked === 1,
    block_reason: client.block_reason,
    user_id: client.user_id,
    client_type_id: client.client_type_id,
    inserted_at: client.inserted_at,
    updated_at: client.updated_at,
    previous_secret_expires_at: client.previous_secret_expires_at,
  }
}

/** A connection as returned to the owner of its client. */
export interface ConnectionRecord {
  id: string
  client_id: string
  consumer_id: string
  redirect_uri: string | null
  inserted_at: string | null
  updated_at: string | null
  previous_secret_expires_at: string | null
}

/** Maps a connection row to the record returned to the owner of its client. */
export function toConnectionRecord(row: Record<string, unknown>): ConnectionRecord {
  const connection = row as unknown as ConnectionRecord
  return {
    id: connection.id,
    client_id: connection.client_id,
    consumer_id: connection.consumer_id,
    redirect_uri: connection.redirect_uri,
    inserted_at: connection.inserted_at,
    updated_at: connection.updated_at,
    previous_secret_expires_at: connection.previous_secret_expires_at,
  }
}

/** The stored secret slots of a client or connection, for verification. */
export interface SecretSlots {
  secret_hash: string | null
  previous_secret_hash: string | null
  previous_secret_expires_at: string | null
  /** 1 when the client, or the client of the connection, is blocked. */
  is_blocked: number
}

const READ_CLIENT_SLOTS = `SELECT secret_hash, previous_secret_hash, previous_secret_expires_at,
  is_blocked FROM clients WHERE id = ?1`

const READ_CONNECTION_SLOTS = `SELECT n.secret_hash, n.previous_secret_hash,
  n.previous_secret_expires_at, c.is_blocked
FROM connections n JOIN clients c ON c.id = n.client_id WHERE n.id = ?1`

/** Reads the secret slots of a client, or of a connection, by its id. */
export async function readSecretSlots(
  db: D1Database,
  target: SecretTarget,
  id: string,
): Promise<SecretSlots | null> {
  const sql = target.name === 'client' ? READ_CLIENT_SLOTS : READ_CONNECTION_SLOTS
  return db.prepare(sql).bind(id).first<SecretSlots>()
}
