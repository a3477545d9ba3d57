-- A rotation may keep the previous secret valid for a grace period. The slot is cleared or
-- replaced by the next rotation.
ALTER TABLE clients ADD COLUMN previous_secret_hash TEXT;
ALTER TABLE clients ADD COLUMN previous_secret_expires_at TEXT;

-- Audit rows record denied attempts too. outcome is 'rotated', 'replayed' or 'denied'; reason
-- names why an attempt was denied; grace_period is in seconds.
ALTER TABLE client_secret_events ADD COLUMN outcome TEXT;
ALTER TABLE client_secret_events ADD COLUMN reason TEXT;
ALTER TABLE client_secret_events ADD COLUMN grace_period INTEGER;
ALTER TABLE client_secret_events ADD COLUMN idempotency_replay INTEGER NOT NULL DEFAULT 0;

UPDATE client_secret_events SET outcome = 'rotated' WHERE outcome IS NULL AND event = 'secret_rotated';

-- The rate limit counts the rotations of one client in a time window.
CREATE INDEX client_secret_events_client_id_event_occurred_at
  ON client_secret_events (client_id, event, occurred_at);

-- Responses kept for Idempotency-Key retries. key_hash is an HMAC of the key, and
-- response_ciphertext is AES-GCM under a key derived from the server key and the idempotency
-- key, so this table alone never yields a secret.
CREATE TABLE idempotency_records (
  client_id TEXT NOT NULL REFERENCES clients (id),
  user_id TEXT NOT NULL,
  key_hash TEXT NOT NULL,
  request_fingerprint TEXT NOT NULL,
  pepper_id TEXT NOT NULL,
  response_ciphertext TEXT NOT NULL,
  response_data TEXT NOT NULL,
  request_id TEXT NOT NULL,
  created_at TEXT NOT NULL,
  expires_at TEXT NOT NULL,
  PRIMARY KEY (client_id, user_id, key_hash)
);

CREATE INDEX idempotency_records_expires_at ON idempotency_records (expires_at);
