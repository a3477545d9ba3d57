-- Connections get the same grace-period slot as clients.
ALTER TABLE connections ADD COLUMN previous_secret_hash TEXT;
ALTER TABLE connections ADD COLUMN previous_secret_expires_at TEXT;

-- Audit rows of connection secrets name the connection; rows of client secrets leave it NULL.
ALTER TABLE client_secret_events ADD COLUMN connection_id TEXT REFERENCES connections (id);

CREATE INDEX client_secret_events_connection_id_occurred_at
  ON client_secret_events (connection_id, occurred_at);
