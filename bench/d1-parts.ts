/**
 * Bench-only routes that run parts of the rotation's D1 work without the HTTP and token layers,
 * so the benchmark can measure what each part costs. The parts are the whole batch as the
 * Worker sends it, each of its statements alone, and empty statements that cost only the trip
 * through D1. Run alone, `rotate` finds no audit row of its request and so updates nothing.
 */
import { NEXT_AUDIT_SEQ } from '../src/rotation-sql.ts'
import { type RotationInput, rotateClientSecret } from '../src/store.ts'
import { type CapturedStatement, createStubDatabase } from './stub-database.ts'

/** The statements of the rotation batch in the order the Worker sends them. */
const STATEMENT_NAMES = ['audit', 'rotate', 'readDecision', 'remember', 'prune'] as const

/** Builds a rotation without grace period, idempotency key or rate limit, as most requests are. */
function rotationInput(clientId: string, userId: string): RotationInput {
  const now = new Date()
  return {
    clientId,
    userId,
    // Unique per call, as a real hash is, because later statements look for this value.
    secretHash: `bench$k1$${crypto.randomUUID()}`,
    previousExpiresAt: null,
    gracePeriod: 0,
    rateLimit: { limit: 0, windowStart: new Date(now.getTime() - 3_600_000).toISOString() },
    idempotency: null,
    requestId: crypto.randomUUID(),
    ip: null,
    userAgent: null,
    now: now.toISOString(),
  }
}

/**
 * Builds the rotation batch with the Worker's own code, but through a stub binding that records
 * the statements and their values instead of sending them, so each can be run alone.
 */
async function captureRotationBatch(clientId: string, userId: string) {
  const stub = createStubDatabase()
  await rotateClientSecret(stub.db, rotationInput(clientId, userId))
  const captured = stub.lastBatch()
  if (captured.length !== STATEMENT_NAMES.length) {
    throw new Error(`expected ${STATEMENT_NAMES.length} statements, captured ${captured.length}`)
  }
  return captured
}

/**
 * Runs the least D1 work of a durable, audited rotation: one batch that writes the new hash by
 * primary key and inserts one audit row, with no authorization check, grace period or replay.
 */
function durableFloor(db: D1Database, clientId: string, userId: string) {
  const now = new Date().toISOString()
  return db.batch([
    db
      .prepare('UPDATE clients SET secret_hash = ?1, updated_at = ?2 WHERE id = ?3')
      .bind(`bench$k1$${crypto.randomUUID()}`, now, clientId),
    db
      .prepare(
        `INSERT INTO client_secret_events (id, seq, client_id, actor_user_id, event, outcome,
  request_id, occurred_at)
VALUES (?1, ${NEXT_AUDIT_SEQ}, ?2, ?3, 'secret_rotated', 'rotated', ?4, ?5)`,
      )
      .bind(crypto.randomUUID(), clientId, userId, crypto.randomUUID(), now),
  ])
}

async function runPart(db: D1Database, part: string, clientId: string, userId: string) {
  if (part === 'batch') return rotateClientSecret(db, rotationInput(clientId, userId))
  if (part === 'durable-floor') return durableFloor(db, clientId, userId)
  if (part === 'select-batch') {
    return db.batch(STATEMENT_NAMES.map(() => db.prepare('SELECT 1')))
  }
  if (part === 'select') return db.prepare('SELECT 1').first()

  const index = (STATEMENT_NAMES as readonly string[]).indexOf(part)
  if (index === -1) return undefined
  const statement = (await captureRotationBatch(clientId, userId))[index] as CapturedStatement
  return db
    .prepare(statement.sql)
    .bind(...statement.values)
    .all()
}

/** Returns SQLite's query plan of each statement of the rotation batch. */
async function queryPlans(db: D1Database, clientId: string, userId: string) {
  const statements = await captureRotationBatch(clientId, userId)
  const plans: Record<string, string[]> = {}
  for (const [index, name] of STATEMENT_NAMES.entries()) {
    const statement = statements[index] as CapturedStatement
    const { results } = await db
      .prepare(`EXPLAIN QUERY PLAN ${statement.sql}`)
      .bind(...statement.values)
      .all<{ detail: string }>()
    plans[name] = results.map((row) => row.detail)
  }
  return plans
}

/**
 * Serves `GET /__bench/d1/PART?client=ID&user=ID`, where PART is `batch`, a statement name,
 * `durable-floor`, `select-batch`, `select` or `plan`. Returns undefined for other paths.
 */
export async function serveD1Part(request: Request, db: D1Database): Promise<Response | undefined> {
  const url = new URL(request.url)
  const match = /^\/__bench\/d1\/([a-zA-Z-]+)$/.exec(url.pathname)
  if (match === null) return undefined

  const part = match[1] as string
  const clientId = url.searchParams.get('client') ?? ''
  const userId = url.searchParams.get('user') ?? ''
  if (part === 'plan') return Response.json(await queryPlans(db, clientId, userId))

  const result = await runPart(db, part, clientId, userId)
  if (result === undefined) return new Response(`unknown part ${part}`, { status: 404 })
  return new Response(null, { status: 204 })
}
