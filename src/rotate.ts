import type { Context } from 'hono'
import { readRequestBody } from './body.ts'
import type { Config, PepperKey } from './config.ts'
import type { AppEnv } from './context.ts'
import { sendData } from './envelope.ts'
import { ApiError, invalidToken, serviceUnavailable, validationFailed } from './errors.ts'
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
import { hasScope } from './scope.ts'
import { generateSecret, hashSecret } from './secret.ts'
import {
  type DenialReason,
  type IdempotencyInput,
  type RotationOutcome,
  recordDenial,
  rotateSecret,
  type StoredReplay,
  toClientRecord,
  toConnectionRecord,
} from './store.ts'
import { CLIENT_TARGET, CONNECTION_TARGET, type SecretTarget } from './targets.ts'
import { type Caller, readBearerToken, verifyAccessToken } from './token.ts'

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const MAX_USER_AGENT_LENGTH = 512

/** Request facts recorded in the audit trail. */
interface RequestFacts {
  requestId: string
  ip: string | null
  userAgent: string | null
}

/** The secret a request rotates: which kind, of which client, and which connection. */
interface RotationSubject {
  target: SecretTarget
  clientId: string
  connectionId: string | undefined
}

function insufficientScope(scope: string): ApiError {
  return new ApiError(403, 'forbidden', `The access token lacks the scope ${scope}.`, {
    // RFC 6750 section 3.1: name the scope that the resource requires.
    headers: { 'WWW-Authenticate': `Bearer error="insufficient_scope", scope="${scope}"` },
    reason: 'scope_missing',
  })
}

function invalidPathId(parameter: string): ApiError {
  return validationFailed(`The path parameter ${parameter} must be a UUID.`, [
    {
      entry_type: 'path_parameter',
      entry: `$.${parameter}`,
      rules: [{ rule: 'format', params: ['uuid'], description: 'expected a UUID' }],
    },
  ])
}

/** Returns the canonical lowercase UUID, or undefined when the value is not a UUID. */
function canonicalUuid(value: string | undefined): string | undefined {
  return value !== undefined && UUID_PATTERN.test(value) ? value.toLowerCase() : undefined
}

/** Maps a denial decided in the rotation transaction to its error. */
function deniedError(
  outcome: Extract<RotationOutcome, { kind: 'denied' }>,
  now: number,
  rateWindowSeconds: number,
): ApiError {
  const reason: DenialReason = outcome.reason
  switch (outcome.reason) {
    case 'client_not_found':
      return new ApiError(404, 'not_found', 'The client was not found.', { reason })
    case 'connection_not_found':
      return new ApiError(404, 'not_found', 'The connection was not found for this client.', {
        reason,
      })
    case 'user_invalid':
      return invalidToken('user_missing_or_blocked')
    case 'role_missing':
      return new ApiError(
        403,
        'forbidden',
        'The user holds no role that may refresh this secret.',
        {
          reason,
        },
      )
    case 'client_blocked':
      return new ApiError(403, 'forbidden', 'The client is blocked.', { reason })
    case 'idempotency_key_reused':
      return validationFailed('This Idempotency-Key was used with a different request body.', [
        {
          entry_type: 'header',
          entry: 'Idempotency-Key',
          rules: [
            {
              rule: 'idempotency',
              params: [],
              description: 'the key was already used with a different body; use a new key',
            },
          ],
        },
      ])
    case 'rate_limited': {
      // The oldest rotation that keeps the count at the limit leaves the window this much later.
      const freedAt = Date.parse(outcome.oldestCounted) + rateWindowSeconds * 1000
      const seconds = Math.max(1, Math.ceil((freedAt - now) / 1000))
      return new ApiError(429, 'too_many_requests', 'Too many secret rotations for this client.', {
        headers: { 'Retry-After': String(seconds) },
        reason,
      })
    }
  }
}

function readRequestFacts(c: Context<AppEnv>): RequestFacts {
  return {
    requestId: c.get('requestId'),
    ip: c.req.header('cf-connecting-ip') ?? null,
    userAgent: c.req.header('user-agent')?.slice(0, MAX_USER_AGENT_LENGTH) ?? null,
  }
}

/**
 * Records a denial that happened before the rotation batch. A failed write is logged and the
 * original denial still returned, so an audit outage never turns a 403 into something else.
 */
async function auditEarlyDenial(
  c: Context<AppEnv>,
  caller: Caller,
  subject: { clientId: string; connectionId: string | undefined },
  reason: string,
): Promise<void> {
  const { clientId, connectionId } = subject
  try {
    await recordDenial(c.env.DB, {
      ...readRequestFacts(c),
      clientId,
      connectionId: connectionId ?? null,
      userId: caller.userId,
      reason,
      now: new Date().toISOString(),
    })
  } catch (error) {
    log('error', 'audit write failed', {
      request_id: c.get('requestId'),
      client_id: clientId,
      reason,
      ...describeError(error),
    })
  }
}

/** Checks the token's scope and client against the path, in the documented order. */
async function authorizeCaller(
  c: Context<AppEnv>,
  caller: Caller,
  target: SecretTarget,
): Promise<RotationSubject> {
  const clientId = canonicalUuid(c.req.param('id'))
  const rawConnectionId = target.name === 'connection' ? c.req.param('connection_id') : undefined
  const connectionId = canonicalUuid(rawConnectionId)
  if (clientId !== undefined) c.get('logFields').client_id = clientId
  if (connectionId !== undefined) c.get('logFields').connection_id = connectionId

  if (!hasScope(caller.scopes, target.scope)) {
    if (clientId !== undefined) {
      await auditEarlyDenial(c, caller, { clientId, connectionId }, 'scope_missing')
    }
    throw insufficientScope(target.scope)
  }
  if (clientId === undefined) throw invalidPathId('id')
  if (target.name === 'connection' && connectionId === undefined) {
    throw invalidPathId('connection_id')
  }

  // The token's client must be the legal entity whose secret is rotated.
  if (caller.clientId.toLowerCase() !== clientId) {
    await auditEarlyDenial(c, caller, { clientId, connectionId }, 'client_mismatch')
    throw new ApiError(403, 'forbidden', 'The access token was not issued to this client.', {
      reason: 'client_mismatch',
    })
  }
  return { target, clientId, connectionId }
}

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

    let outcome: RotationOutcome
    try {
      outcome = await rotateSecret(c.env.DB, target, {
        ...readRequestFacts(c),
        clientId,
        connectionId: connectionId ?? null,
        userId: caller.userId,
        // A connection's hash is bound to the connection id, a client's to the client id.
        secretHash: await hashSecret(connectionId ?? clientId, secret, config.pepper),
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
      throw serviceUnavailable('database_unavailable', error)
    }

    if (outcome.kind === 'denied') throw deniedError(outcome, now, config.rateLimit.window)

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
