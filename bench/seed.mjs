// Seeds D1 with clients, their owners and the owners' role grants, generated inside D1.

const CLIENT_TYPE_ID = '5eed0000-0000-4000-8000-000000000001'
export const OWNER_ROLE_ID = '5eed0000-0000-4000-8000-000000000002'
const PLAIN_ROLE_ID = '5eed0000-0000-4000-8000-000000000003'
const SEEDED_AT = '2026-01-01T00:00:00.000Z'
// Not the hash of any secret: the benchmark never verifies a seeded secret.
const PLACEHOLDER_HASH = 'hmac-sha256$k1$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'
const ROWS_PER_STATEMENT = 50_000

// The second group of each id names the table, so ids of different tables never collide.
const KINDS = { client: 'c100', user: 'a100', grant: 'b100' }

/**
 * Returns the UUID of row `n` of a table. Knuth's multiplicative hash spreads the first group,
 * so ids are not inserted or looked up in key order. `n` in the last group keeps them unique.
 */
export function benchId(kind, n) {
  const spread = ((n * 2654435761) % 2 ** 32).toString(16).padStart(8, '0')
  return `${spread}-${KINDS[kind]}-4000-8000-${n.toString(16).padStart(12, '0')}`
}

/** Builds the SQL expression that computes benchId's id from the column `n`. */
function sqlId(kind) {
  return `printf('%08x-${KINDS[kind]}-4000-8000-%012x', (n * 2654435761) % 4294967296, n)`
}

const SEQUENCE =
  'WITH RECURSIVE seq(n) AS (SELECT CAST(?1 AS INTEGER) UNION ALL SELECT n + 1 FROM seq WHERE n < ?2)'

const INSERT_USERS = `INSERT INTO users (id, email, is_blocked, settings, inserted_at, updated_at)
${SEQUENCE}
SELECT ${sqlId('user')}, 'owner' || n || '@bench.test', 0, '{}', ?3, ?3 FROM seq`

const INSERT_CLIENTS = `INSERT INTO clients (id, name, secret_hash, redirect_uri, settings,
  priv_settings, user_id, client_type_id, is_blocked, inserted_at, updated_at)
${SEQUENCE}
SELECT ${sqlId('client')}, 'Clinic ' || n, '${PLACEHOLDER_HASH}',
  'https://clinic' || n || '.bench.test/callback',
  '{"allowed_grant_types":["password","authorization_code"]}', '{"access_type":"DIRECT"}',
  ${sqlId('user')}, '${CLIENT_TYPE_ID}', 0, ?3, ?3 FROM seq`

const INSERT_GRANTS = `INSERT INTO user_roles (id, user_id, role_id, client_id)
${SEQUENCE}
SELECT ${sqlId('grant')}, ${sqlId('user')}, '${OWNER_ROLE_ID}', ${sqlId('client')} FROM seq`

/** Inserts the client type and the two roles that every seeded grant refers to. */
export async function seedRoles(db) {
  await db.batch([
    db
      .prepare(
        'INSERT INTO client_types (id, name, scope, inserted_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)',
      )
      .bind(CLIENT_TYPE_ID, 'MSP', 'app:authorize legal_entity:read', SEEDED_AT),
    db
      .prepare('INSERT INTO roles (id, name, scope) VALUES (?1, ?2, ?3)')
      .bind(OWNER_ROLE_ID, 'OWNER', 'legal_entity:read secret:refresh'),
    db
      .prepare('INSERT INTO roles (id, name, scope) VALUES (?1, ?2, ?3)')
      .bind(PLAIN_ROLE_ID, 'DOCTOR', 'legal_entity:read'),
  ])
}

/**
 * Inserts clients `from` to `to` (inclusive) with one owner and one OWNER grant each, in
 * statements of at most ROWS_PER_STATEMENT rows. Returns the elapsed milliseconds.
 */
export async function seedClients(db, from, to) {
  const started = performance.now()
  for (let first = from; first <= to; first += ROWS_PER_STATEMENT) {
    const last = Math.min(to, first + ROWS_PER_STATEMENT - 1)
    await db.batch([
      db.prepare(INSERT_USERS).bind(first, last, SEEDED_AT),
      db.prepare(INSERT_CLIENTS).bind(first, last, SEEDED_AT),
      db.prepare(INSERT_GRANTS).bind(first, last),
    ])
  }
  return performance.now() - started
}

// Row numbers above any seeded population, for the fixtures of single outcomes.
const SPECIAL = 100_000_000

/** Ids of the users and clients whose requests end in one particular denial. */
export const FIXTURES = {
  blockedUser: benchId('user', SPECIAL + 1),
  plainUser: benchId('user', SPECIAL + 2),
  blockedClient: benchId('client', SPECIAL + 3),
  blockedClientOwner: benchId('user', SPECIAL + 3),
}

/**
 * Inserts a blocked user with the OWNER role for client 1, a user with only a plain role for
 * client 1, and a blocked client with its owner.
 */
export async function seedFixtures(db) {
  const insertUser = db.prepare(
    `INSERT INTO users (id, email, is_blocked, settings, inserted_at, updated_at)
    VALUES (?1, ?2, ?3, '{}', ?4, ?4)`,
  )
  const insertGrant = db.prepare(
    'INSERT INTO user_roles (id, user_id, role_id, client_id) VALUES (?1, ?2, ?3, ?4)',
  )
  await db.batch([
    insertUser.bind(FIXTURES.blockedUser, 'blocked@bench.test', 1, SEEDED_AT),
    insertUser.bind(FIXTURES.plainUser, 'plain@bench.test', 0, SEEDED_AT),
    insertUser.bind(FIXTURES.blockedClientOwner, 'blocked-owner@bench.test', 0, SEEDED_AT),
    db
      .prepare(
        `INSERT INTO clients (id, name, secret_hash, user_id, client_type_id, is_blocked,
          block_reason, inserted_at, updated_at)
        VALUES (?1, 'Blocked clinic', ?2, ?3, ?4, 1, 'contract ended', ?5, ?5)`,
      )
      .bind(
        FIXTURES.blockedClient,
        PLACEHOLDER_HASH,
        FIXTURES.blockedClientOwner,
        CLIENT_TYPE_ID,
        SEEDED_AT,
      ),
    insertGrant.bind(
      benchId('grant', SPECIAL + 1),
      FIXTURES.blockedUser,
      OWNER_ROLE_ID,
      benchId('client', 1),
    ),
    insertGrant.bind(
      benchId('grant', SPECIAL + 2),
      FIXTURES.plainUser,
      PLAIN_ROLE_ID,
      benchId('client', 1),
    ),
    insertGrant.bind(
      benchId('grant', SPECIAL + 3),
      FIXTURES.blockedClientOwner,
      OWNER_ROLE_ID,
      FIXTURES.blockedClient,
    ),
  ])
}

/** Counts the rows of the seeded tables, to check that seeding produced what it promised. */
export async function countRows(db) {
  const row = await db
    .prepare(
      `SELECT (SELECT count(*) FROM clients) AS clients, (SELECT count(*) FROM users) AS users,
        (SELECT count(*) FROM user_roles) AS grants`,
    )
    .first()
  return row
}

/**
 * Deletes every audit row and idempotency record, so that each measurement starts from the same
 * tables. With a rate limit, the rotation's audit statement counts the client's rows of its rate
 * window, and every statement's cost grows a little with the size of its table.
 */
export async function clearAuditTrail(db) {
  await db.batch([
    db.prepare('DELETE FROM client_secret_events'),
    db.prepare('DELETE FROM idempotency_records'),
  ])
}

const INSERT_AUDIT_ROWS = `INSERT INTO client_secret_events (id, client_id, actor_user_id, event,
  outcome, request_id, occurred_at)
${SEQUENCE}
SELECT printf('%08x-e100-4000-8000-%012x', (n * 2654435761) % 4294967296, n),
  printf('%08x-${KINDS.client}-4000-8000-%012x', (c * 2654435761) % 4294967296, c),
  printf('%08x-${KINDS.user}-4000-8000-%012x', (c * 2654435761) % 4294967296, c),
  'secret_rotated', 'rotated', 'bench-seed',
  strftime('%Y-%m-%dT%H:%M:%fZ', 'now', printf('-%d seconds', n % 1800))
FROM (SELECT n, 1 + n % ?3 AS c FROM seq)`

/**
 * Inserts `count` rotation audit rows of the last 30 minutes, spread over clients 1 to
 * `clients`, as a busy service would have in its rate window. Returns the elapsed milliseconds.
 */
export async function seedAuditRows(db, count, clients) {
  const started = performance.now()
  for (let first = 1; first <= count; first += ROWS_PER_STATEMENT) {
    const last = Math.min(count, first + ROWS_PER_STATEMENT - 1)
    await db.prepare(INSERT_AUDIT_ROWS).bind(first, last, clients).run()
  }
  return performance.now() - started
}
