import type { Context } from 'hono'
import { authorizeCaller, readRequestFacts } from './authorize.ts'
import { readRequestBody } from './body.ts'
import type { Config, PepperKey } from './config.ts'
import type { AppEnv } from './context.ts'
import { deniedError } from './denials.ts'
import { sendData } from './envelope.ts'
import { ApiError, serviceUnavailable } from './errors.ts'
import {
  decryptReplay,
  encryptForReplay,
  fingerprintBody,
  hashIdempotencyKey,
  type ReplayScope,
  readIdempotencyKey,
} from './idempotency.ts'
import { describeError, log } from './log.ts'
import { parseRotationOptions } from './options.ts'
import { generateSecret, hashSecret } from './secret.ts'
import {
  findRotatedRow,
  type IdempotencyInput,
  type RotationOutcome,
  rotateSecret,
  type StoredReplay,
  toClientRecord,
  toConnectionRecord,
} from './store.ts'
import { CLIENT_TARGET, CONNECTION_TARGET, type SecretTarget } from './targets.ts'
import { readBearerToken, verifyAccessToken } from './token.ts'

async function prepareIdempotency(
  scope: ReplayScope,
  body: Record<string, unknown>,
  secret: string,
  config: Config,
  now: number,
): Promise<IdempotencyInput> {
  const peppers = [config.pepper, ...config.retiredPeppers]
  const lookupHashes = await Promise.all(peppers.map((pepper) => hashIdempotencyKey(scope, pepper)))
  return {
    keyHash: lookupHashes[0] as string,
    lookupHashes,
    fingerprint: await fingerprintBody(body),
    pepperId: config.pepper.id,
    ciphertext: await encryptForReplay(secret, scope, config.pepper),
    expiresAt: new Date(now + config.idempotencyTtl * 1000).toISOString(),
  }
}

async function openReplay(replay: StoredReplay, scope: ReplayScope, config: Config) {
  const peppers: PepperKey[] = [config.pepper, ...config.retiredPeppers]
  const pepper = peppers.find((candidate) => candidate.id === replay.pepperId)
  const secret = pepper && (await decryptReplay(replay.ciphertext, scope, pepper))
  if (!secret) {
    throw new ApiError(
      409,
      'request_conflict',
      'The response for this Idempotency-Key can no longer be replayed. Retry with a new key.',
      { reason: 'replay_unreadable' },
    )
  }
  return secret
}

function toRecord(target: SecretTarget, row: Record<string, unknown>): object {
  return target.name === 'client' ? toClientRecord(row) : toConnectionRecord(row)
}

/**
 * Decides the outcome of a rotation batch that failed. D1 may have committed the batch before
 * its reply was lost, and then the old secret no longer verifies, so the row is read back: if
 * it carries this request's hash, the rotation happened and its secret is returned. Otherwise,
 * or if the read fails too, the request gets 503. A retry with the same Idempotency-Key then
 * replays a rotation that did commit.
 */
async function recoverCommittedRotation(
  c: Context<AppEnv>,
  target: SecretTarget,
  subject: { clientId: string; connectionId: string | null; secretHash: string },
  error: unknown,
): Promise<RotationOutcome> {
  let row: Record<string, unknown> | null = null
  try {
    row = await findRotatedRow(c.env.DB, target, subject)
  } catch (readError) {
    log('warn', 'rotation read-back failed', {
      request_id: c.get('requestId'),
      client_id: subject.clientId,
      ...describeError(readError),
    })
  }
  if (row === null) throw serviceUnavailable('database_unavailable', error)

  log('warn', 'rotation committed although D1 reported an error', {
    request_id: c.get('requestId'),
    client_id: subject.clientId,
    ...describeError(error),
  })
  return { kind: 'rotated', row }
}

/** Creates the handler that rotates one kind of secret, checking in the documented order. */
function createRefreshHandler(target: SecretTarget) {
  return async (c: Context<AppEnv>): Promise<Response> => {
    const config = c.get('config')
    const logFields = c.get('logFields')

    const token = readBearerToken(c.req.header('authorization') ?? null)
    const caller = await verifyAccessToken(token, config)
    logFields.user_id = caller.userId

    const { clientId, connectionId } = await authorizeCaller(c, caller, target)

    const idempotencyKey = readIdempotencyKey(c.req.header('idempotency-key'))
    const body = await readRequestBody(c.req.raw)
    const { gracePeriod } = parseRotationOptions(body, config.gracePeriod)

    const now = Date.now()
    const secret = generateSecret()
    const scope: ReplayScope = {
      idempotencyKey: idempotencyKey ?? '',
      userId: caller.userId,
      clientId,
      connectionId,
    }
    const idempotency =
      idempotencyKey === undefined
        ? null
        : await prepareIdempotency(scope, body, secret, config, now)

    // A connection's hash is bound to the connection id, a client's to the client id.
    const secretHash = await hashSecret(connectionId ?? clientId, secret, config.pepper)
    const subject = { clientId, connectionId: connectionId ?? null, secretHash }

    let outcome: RotationOutcome
    try {
      outcome = await rotateSecret(c.env.DB, target, {
        ...readRequestFacts(c),
        ...subject,
        userId: caller.userId,
        previousExpiresAt:
          gracePeriod > 0 ? new Date(now + gracePeriod * 1000).toISOString() : null,
        gracePeriod,
        rateLimit: {
          limit: config.rateLimit.limit,
          windowStart: new Date(now - config.rateLimit.window * 1000).toISOString(),
        },
        idempotency,
        now: new Date(now).toISOString(),
      })
    } catch (error) {
      outcome = await recoverCommittedRotation(c, target, subject, error)
    }

    if (outcome.kind === 'denied') throw deniedError(target, outcome, now, config.rateLimit.window)

    if (outcome.kind === 'replayed') {
      const replayedSecret = await openReplay(outcome.replay, scope, config)
      logFields.outcome = 'replayed'
      return sendData(
        c,
        { ...toRecord(target, outcome.replay.row), secret: replayedSecret },
        { 'Idempotent-Replayed': 'true' },
      )
    }

    logFields.outcome = 'rotated'
    return sendData(c, { ...toRecord(target, outcome.row), secret })
  }
}

/** Handles PATCH /admin/clients/{id}/refresh_secret, the deprecated client-secret method. */
export const refreshClientSecret = createRefreshHandler(CLIENT_TARGET)

/** Handles PATCH /api/clients/{id}/connections/{connection_id}/actions/refresh_secret. */
export const refreshConnectionSecret = createRefreshHandler(CONNECTION_TARGET)
