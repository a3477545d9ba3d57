// Many simultaneous refreshes of one client. D1 runs the rotation batches one after another, so
// every request gets a definite response, exactly one secret stays valid, and it is the secret of
// the rotation whose audit row was committed last.
//
// Requests that arrive together share one `occurred_at` (workerd's clock only moves on I/O), so
// "last" is the commit order of the audit rows: their `seq`.

import { env } from 'cloudflare:workers'
import { beforeAll, describe, expect, it } from 'vitest'
import type { Env } from '../../src/config'
import { verifySecret } from '../../src/secret'
import {
  callWorker,
  createEnv,
  createSigningKey,
  type Fixture,
  PEPPER_KEY,
  readClient,
  readData,
  refreshRequest,
  type SigningKey,
  seedClient,
  signToken,
} from './helpers'
import { expectedHash } from './safety-helpers'

const REQUESTS = 30

let key: SigningKey

beforeAll(async () => {
  key = await createSigningKey('ES256')
})

interface Outcome {
  requestId: string
  status: number
  secret?: string
  retryAfter: string | null
}

interface AuditRow {
  request_id: string
  event: string
  reason: string | null
  occurred_at: string
}

/** Sends every request at once, each with its own x-request-id, and reads every response. */
async function sendAtOnce(
  fixture: Fixture,
  workerEnv: Env,
  tokens: readonly string[],
): Promise<Outcome[]> {
  const responses = await Promise.all(
    tokens.map((token, index) =>
      callWorker(
        refreshRequest(fixture.clientId, {
          token,
          headers: { 'x-request-id': `concurrent-${index}` },
        }),
        workerEnv,
      ),
    ),
  )

  const outcomes: Outcome[] = []
  for (const [index, response] of responses.entries()) {
    const outcome: Outcome = {
      requestId: `concurrent-${index}`,
      status: response.status,
      retryAfter: response.headers.get('Retry-After'),
    }
    if (response.status === 200) outcome.secret = (await readData(response)).data.secret
    else await response.body?.cancel()
    outcomes.push(outcome)
  }
  return outcomes
}

/** Reads the audit rows of a client in commit order. */
async function auditInCommitOrder(clientId: string): Promise<AuditRow[]> {
  const { results } = await env.DB.prepare(
    `SELECT request_id, event, reason, occurred_at FROM client_secret_events
    WHERE client_id = ?1 ORDER BY seq`,
  )
    .bind(clientId)
    .all<AuditRow>()
  return results
}

/** Checks that the stored hash is the hash of the last committed rotation's secret, and only it. */
async function expectLastSecretStored(fixture: Fixture, outcomes: Outcome[], audit: AuditRow[]) {
  const rotations = audit.filter((row) => row.event === 'secret_rotated')
  const last = rotations.at(-1)
  const lastSecret = outcomes.find((outcome) => outcome.requestId === last?.request_id)?.secret
  const stored = await readClient(fixture.clientId)

  expect(lastSecret).toBeDefined()
  expect(stored?.secret_hash).toBe(await expectedHash(fixture.clientId, lastSecret as string))
  expect(stored?.updated_at).toBe(last?.occurred_at)

  const verifying: string[] = []
  for (const outcome of outcomes) {
    if (outcome.secret === undefined) continue
    const hash = stored?.secret_hash ?? ''
    if (await verifySecret(fixture.clientId, outcome.secret, hash, [PEPPER_KEY])) {
      verifying.push(outcome.requestId)
    }
  }
  expect(verifying).toEqual([last?.request_id])
}

function requestIdsWith(outcomes: Outcome[], status: number): string[] {
  return outcomes
    .filter((outcome) => outcome.status === status)
    .map((outcome) => outcome.requestId)
    .sort()
}

describe('simultaneous refreshes of one client', () => {
  it('all succeed without a rate limit, and the last committed secret is stored', async () => {
    const fixture = await seedClient()
    const workerEnv = createEnv([key], { ROTATION_RATE_LIMIT: '0' })
    const token = await signToken(key, { sub: fixture.ownerId, client_id: fixture.clientId })

    const outcomes = await sendAtOnce(fixture, workerEnv, Array(REQUESTS).fill(token))
    const audit = await auditInCommitOrder(fixture.clientId)
    const rotated = audit.filter((row) => row.event === 'secret_rotated')

    expect(outcomes.map((outcome) => outcome.status)).toEqual(Array(REQUESTS).fill(200))
    expect(new Set(outcomes.map((outcome) => outcome.secret)).size).toBe(REQUESTS)
    expect(audit).toHaveLength(REQUESTS)
    expect(rotated.map((row) => row.request_id).sort()).toEqual(requestIdsWith(outcomes, 200))
    await expectLastSecretStored(fixture, outcomes, audit)
  })

  it('let exactly the limit through and outcome 429 to the rest', async () => {
    const limit = 4
    const fixture = await seedClient()
    const workerEnv = createEnv([key], { ROTATION_RATE_LIMIT: String(limit) })
    const token = await signToken(key, { sub: fixture.ownerId, client_id: fixture.clientId })

    const outcomes = await sendAtOnce(fixture, workerEnv, Array(REQUESTS).fill(token))
    const audit = await auditInCommitOrder(fixture.clientId)
    const rotated = audit.filter((row) => row.event === 'secret_rotated')
    const limited = audit.filter((row) => row.reason === 'rate_limited')

    expect(requestIdsWith(outcomes, 200)).toHaveLength(limit)
    expect(requestIdsWith(outcomes, 429)).toHaveLength(REQUESTS - limit)
    for (const outcome of outcomes.filter((a) => a.status === 429)) {
      expect(outcome.retryAfter).toMatch(/^[1-9]\d*$/)
    }
    expect(rotated.map((row) => row.request_id).sort()).toEqual(requestIdsWith(outcomes, 200))
    expect(limited.map((row) => row.request_id).sort()).toEqual(requestIdsWith(outcomes, 429))
    await expectLastSecretStored(fixture, outcomes, audit)
  })

  it('outcome each kind of caller as if it were alone', async () => {
    const fixture = await seedClient()
    const workerEnv = createEnv([key], { ROTATION_RATE_LIMIT: '0' })
    const sign = (sub: string, clientId: string, claims: Record<string, unknown> = {}) =>
      signToken(key, { sub, client_id: clientId, ...claims })
    const callers: [kind: string, token: Promise<string>, status: number, reason: string | null][] =
      [
        ['owner', sign(fixture.ownerId, fixture.clientId), 200, null],
        ['user without the role', sign(fixture.nonOwnerId, fixture.clientId), 403, 'role_missing'],
        ['blocked user', sign(fixture.blockedUserId, fixture.clientId), 401, 'user_invalid'],
        [
          'token of another client',
          sign(fixture.ownerId, crypto.randomUUID()),
          403,
          'client_mismatch',
        ],
        [
          'token without the scope',
          sign(fixture.ownerId, fixture.clientId, { scope: 'openid' }),
          403,
          'scope_missing',
        ],
      ]
    const rounds = 6
    const kinds = Array.from({ length: rounds }, () => callers).flat()
    const tokens = await Promise.all(kinds.map(([, token]) => token))

    const outcomes = await sendAtOnce(fixture, workerEnv, tokens)
    const audit = await auditInCommitOrder(fixture.clientId)
    const byRequest = new Map(audit.map((row) => [row.request_id, row]))

    for (const [index, [kind, , status, reason]] of kinds.entries()) {
      const outcome = outcomes[index] as Outcome
      expect({ kind, status: outcome.status }).toEqual({ kind, status })
      expect({ kind, reason: byRequest.get(outcome.requestId)?.reason ?? null }).toEqual({
        kind,
        reason,
      })
    }
    expect(audit).toHaveLength(kinds.length)
    expect(audit.filter((row) => row.event === 'secret_rotated')).toHaveLength(rounds)
    await expectLastSecretStored(fixture, outcomes, audit)
  })
})
