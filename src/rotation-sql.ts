import type { SecretTarget } from './targets.ts'

/** The next audit sequence number: an index lookup of the current maximum. */
export const NEXT_AUDIT_SEQ = '(SELECT ifnull(max(seq), 0) + 1 FROM client_secret_events)'

/**
 * The statements of one rotation batch, in the order they run. The audit statement evaluates the
 * decision once and stores it in the audit row `:event_id`, and the later statements read it there.
 */
export interface RotationStatements {
  audit: string
  rotate: string
  readDecision: string
  remember: string
  prune: string
}

// :key_hashes is a JSON array of the key's hash under every accepted pepper, so a record written
// before a pepper rotation is still found.
const IDEMPOTENCY_MATCH = `client_id = :client_id AND user_id = :user_id
  AND key_hash IN (SELECT value FROM json_each(:key_hashes)) AND expires_at > :now`

// `connection_id IS :connection_id` also matches NULL, which marks the client's own secret.
// INDEXED BY keeps SQLite on the per-client index: `connection_id IS NULL` would otherwise lead
// it to the connection index, which contains every client's rotations.
const RECENT_ROTATIONS = `SELECT occurred_at FROM client_secret_events
  INDEXED BY client_secret_events_client_id_event_occurred_at
  WHERE client_id = :client_id AND event = 'secret_rotated' AND occurred_at > :window_start
    AND connection_id IS :connection_id`

/**
 * The authorization and safety checks in the order the API documents, as one SQL expression:
 * NULL allows a rotation, 'replay' returns the stored response, and any other value names the
 * denial. A NULL decision implies that the target row exists, so the rotation's UPDATE matches it.
 * The role check is a whole-word match in the space-delimited roles.scope column.
 */
function decision(target: SecretTarget): string {
  const targetMissing =
    target.table === 'clients'
      ? ''
      : `WHEN NOT EXISTS (SELECT 1 FROM ${target.table} WHERE ${target.rowMatch})
    THEN '${target.name}_not_found'`

  return `CASE
  WHEN NOT EXISTS (SELECT 1 FROM clients WHERE id = :client_id) THEN 'client_not_found'
  ${targetMissing}
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
}

/** Builds the SQL of a rotation batch for one kind of secret. */
export function buildRotationStatements(target: SecretTarget): RotationStatements {
  const columns = target.columns.join(', ')
  const snapshot = `json_object(${target.columns.map((column) => `'${column}', ${column}`).join(', ')})`

  // Runs first and is the only statement that evaluates the decision. The rate limit counts only
  // earlier rows, because SQLite evaluates the whole SELECT of an INSERT that reads its own table
  // before it inserts a row. Attempts against a client that does not exist leave no row, as the
  // foreign key requires.
  const audit = `INSERT INTO client_secret_events (id, seq, client_id, connection_id, actor_user_id,
  event, outcome, reason, request_id, ip, user_agent, grace_period, idempotency_replay, occurred_at)
SELECT :event_id, ${NEXT_AUDIT_SEQ}, c.id,
  (SELECT id FROM connections WHERE id = :connection_id AND client_id = :client_id),
  :user_id,
  CASE WHEN d.decision IS NULL THEN 'secret_rotated'
    WHEN d.decision = 'replay' THEN 'secret_rotation_replayed'
    ELSE 'secret_rotation_denied' END,
  CASE WHEN d.decision IS NULL THEN 'rotated'
    WHEN d.decision = 'replay' THEN 'replayed'
    ELSE 'denied' END,
  CASE WHEN d.decision = 'replay' THEN NULL ELSE d.decision END,
  :request_id, :ip, :user_agent, :grace_period,
  CASE WHEN d.decision = 'replay' THEN 1 ELSE 0 END, :now
FROM clients c, (SELECT (${decision(target)}) AS decision) AS d
WHERE c.id = :client_id`

  const rotate = `UPDATE ${target.table} SET
  previous_secret_hash = CASE WHEN :previous_expires_at IS NULL THEN NULL ELSE secret_hash END,
  previous_secret_expires_at =
    CASE WHEN secret_hash IS NULL THEN NULL ELSE :previous_expires_at END,
  secret_hash = :secret_hash,
  updated_at = :now
WHERE ${target.rowMatch} AND EXISTS (
  SELECT 1 FROM client_secret_events WHERE id = :event_id AND event = 'secret_rotated')
RETURNING ${columns}`

  // Reads the decision back from the audit row. A missing row means that the client does not
  // exist. The stored response is looked up only for a replay, and the time of the rotation that
  // frees the rate limit only for a rate-limited attempt.
  const readDecision = `SELECT
  CASE WHEN e.id IS NULL THEN 'client_not_found'
    WHEN e.outcome = 'replayed' THEN 'replay'
    ELSE e.reason END AS decision,
  CASE WHEN e.reason = 'rate_limited' THEN (${RECENT_ROTATIONS} ORDER BY occurred_at
    LIMIT 1 OFFSET max(0, (SELECT count(*) FROM (${RECENT_ROTATIONS})) - :rate_limit)
  ) END AS rate_reset_from,
  i.pepper_id, i.response_ciphertext, i.response_data
FROM (SELECT 1) AS one
LEFT JOIN client_secret_events e ON e.id = :event_id
LEFT JOIN idempotency_records i ON e.outcome = 'replayed'
  AND i.client_id = :client_id AND i.user_id = :user_id
  AND i.key_hash IN (SELECT value FROM json_each(:key_hashes)) AND i.expires_at > :now
ORDER BY i.created_at DESC
LIMIT 1`

  const remember = `INSERT INTO idempotency_records (client_id, user_id, key_hash,
  request_fingerprint, pepper_id, response_ciphertext, response_data, request_id, created_at,
  expires_at)
SELECT :client_id, :user_id, :key_hash, :fingerprint, :pepper_id, :ciphertext, ${snapshot},
  :request_id, :now, :expires_at
FROM ${target.table}
WHERE ${target.rowMatch} AND secret_hash = :secret_hash AND :key_hash IS NOT NULL
ON CONFLICT (client_id, user_id, key_hash) DO UPDATE SET
  request_fingerprint = excluded.request_fingerprint, pepper_id = excluded.pepper_id,
  response_ciphertext = excluded.response_ciphertext, response_data = excluded.response_data,
  request_id = excluded.request_id, created_at = excluded.created_at,
  expires_at = excluded.expires_at`

  // A bounded number of expired records go on each attempt, so cleanup never needs a cron job.
  const prune = `DELETE FROM idempotency_records WHERE rowid IN (
  SELECT rowid FROM idempotency_records WHERE expires_at <= :now LIMIT 20)`

  return { audit, rotate, readDecision, remember, prune }
}
