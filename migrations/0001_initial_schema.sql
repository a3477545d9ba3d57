-- Tables and columns follow Mithril's names so that its exports import without renaming.
-- JSON columns contain JSON text; timestamps are ISO 8601 UTC strings.

CREATE TABLE users (
  id TEXT PRIMARY KEY NOT NULL,
  email TEXT UNIQUE,
  is_blocked INTEGER NOT NULL DEFAULT 0 CHECK (is_blocked IN (0, 1)),
  block_reason TEXT,
  settings TEXT,
  inserted_at TEXT,
  updated_at TEXT
);

CREATE TABLE client_types (
  id TEXT PRIMARY KEY NOT NULL,
  name TEXT UNIQUE,
  scope TEXT,
  inserted_at TEXT,
  updated_at TEXT
);

CREATE TABLE clients (
  id TEXT PRIMARY KEY NOT NULL,
  name TEXT,
  secret_hash TEXT NOT NULL,
  redirect_uri TEXT,
  settings TEXT,
  priv_settings TEXT,
  user_id TEXT REFERENCES users (id),
  client_type_id TEXT NOT NULL REFERENCES client_types (id),
  is_blocked INTEGER NOT NULL DEFAULT 0 CHECK (is_blocked IN (0, 1)),
  block_reason TEXT,
  inserted_at TEXT,
  updated_at TEXT
);

CREATE INDEX clients_user_id ON clients (user_id);
CREATE INDEX clients_client_type_id ON clients (client_type_id);

-- roles.scope is a space-delimited list of scopes.
CREATE TABLE roles (
  id TEXT PRIMARY KEY NOT NULL,
  name TEXT UNIQUE,
  scope TEXT
);

CREATE TABLE user_roles (
  id TEXT PRIMARY KEY NOT NULL,
  user_id TEXT NOT NULL REFERENCES users (id),
  role_id TEXT NOT NULL REFERENCES roles (id),
  client_id TEXT NOT NULL REFERENCES clients (id),
  UNIQUE (user_id, role_id, client_id)
);

-- The ownership check looks up the grants of one user for one client.
CREATE INDEX user_roles_user_id_client_id ON user_roles (user_id, client_id);
CREATE INDEX user_roles_client_id ON user_roles (client_id);
CREATE INDEX user_roles_role_id ON user_roles (role_id);

-- The audit trail of secret rotations. It never contains secret material.
CREATE TABLE client_secret_events (
  id TEXT PRIMARY KEY NOT NULL,
  client_id TEXT NOT NULL REFERENCES clients (id),
  actor_user_id TEXT,
  event TEXT NOT NULL,
  request_id TEXT,
  ip TEXT,
  user_agent TEXT,
  occurred_at TEXT NOT NULL
);

CREATE INDEX client_secret_events_client_id_occurred_at
  ON client_secret_events (client_id, occurred_at);

-- Per-consumer secrets of the successor method.
CREATE TABLE connections (
  id TEXT PRIMARY KEY NOT NULL,
  client_id TEXT NOT NULL REFERENCES clients (id),
  consumer_id TEXT NOT NULL REFERENCES clients (id),
  secret_hash TEXT,
  redirect_uri TEXT,
  inserted_at TEXT,
  updated_at TEXT,
  UNIQUE (client_id, consumer_id)
);

CREATE INDEX connections_consumer_id ON connections (consumer_id);
