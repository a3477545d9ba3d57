/** A statement as the stub database received it: its SQL text and bound values. */
export interface CapturedStatement {
  sql: string
  values: unknown[]
}

const EMPTY_RESULT = { results: [], success: true, meta: {} }

function stubStatement(sql: string, values: unknown[]) {
  return {
    sql,
    values,
    bind: (...bound: unknown[]) => stubStatement(sql, bound),
    first: async () => null,
    all: async () => EMPTY_RESULT,
    run: async () => EMPTY_RESULT,
    raw: async () => [],
  }
}

/** Builds the rows of a rotation that every check allowed: no decision, then the updated client. */
function rotatedBatchResults(statements: CapturedStatement[]) {
  const now = new Date().toISOString()
  const decision = {
    decision: null,
    rate_reset_from: null,
    pepper_id: null,
    response_ciphertext: null,
    response_data: null,
  }
  const client = {
    id: '00000000-0000-4000-8000-000000000000',
    name: 'Clinic',
    redirect_uri: 'https://clinic.bench.test/callback',
    settings: '{"allowed_grant_types":["password","authorization_code"]}',
    is_blocked: 0,
    block_reason: null,
    user_id: '00000000-0000-4000-8000-000000000001',
    client_type_id: '00000000-0000-4000-8000-000000000002',
    inserted_at: now,
    updated_at: now,
    previous_secret_expires_at: null,
  }
  const rows: unknown[][] = statements.map(() => [])
  rows[0] = [decision]
  rows[1] = [client]
  return rows.slice(0, statements.length).map((results) => ({ ...EMPTY_RESULT, results }))
}

/**
 * Creates a D1-shaped binding without a database. Every batch returns the rows of an allowed
 * rotation, other calls return no rows, and `lastBatch` returns the statements of the most
 * recent batch. Code that runs on it does all its own work but none of D1's.
 */
export function createStubDatabase() {
  let lastBatch: CapturedStatement[] = []
  const db = {
    prepare: (sql: string) => stubStatement(sql, []),
    batch: async (statements: CapturedStatement[]) => {
      lastBatch = statements
      return rotatedBatchResults(statements)
    },
    exec: async () => ({ count: 0, duration: 0 }),
  }
  return { db: db as unknown as D1Database, lastBatch: () => lastBatch }
}
