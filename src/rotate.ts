import type { Context } from 'hono'
import { readRequestBody } from './body'
import type { AppEnv } from './context'
import { sendData } from './envelope'
import { ApiError, invalidToken, serviceUnavailable, validationFailed } from './errors'
import { hasScope, REFRESH_SCOPE } from './scope'
import { generateSecret, hashSecret } from './secret'
import { type RotationOutcome, rotateClientSecret } from './store'
import { readBearerToken, verifyAccessToken } from './token'

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const MAX_USER_AGENT_LENGTH = 512

function insufficientScope(): ApiError {
  return new ApiError(403, 'forbidden', `The access token lacks the scope ${REFRESH_SCOPE}.`, {
    // RFC 6750 section 3.1: name the scope the resource needs.
    headers: {
      'WWW-Authenticate': `Bearer error="insufficient_scope", scope="${REFRESH_SCOPE}"`,
    },
    reason: 'scope_missing',
  })
}

function invalidClientId(): ApiError {
  return validationFailed('The client id in the path must be a UUID.', [
    {
      entry_type: 'path_parameter',
      entry: '$.id',
      rules: [{ rule: 'format', params: ['uuid'], description: 'expected a UUID' }],
    },
  ])
}

/** Maps an outcome of the rotation batch that wrote nothing to its error. */
function deniedError(outcome: Exclude<RotationOutcome, { kind: 'rotated' }>): ApiError {
  switch (outcome.kind) {
    case 'client_not_found':
      return new ApiError(404, 'not_found', 'The client was not found.', { reason: outcome.kind })
    case 'user_invalid':
      return invalidToken('user_missing_or_blocked')
    case 'role_missing':
      return new ApiError(
        403,
        'forbidden',
        'The user holds no role that may refresh this client secret.',
        {
          reason: outcome.kind,
        },
      )
    case 'client_blocked':
      return new ApiError(403, 'forbidden', 'The client is blocked.', { reason: outcome.kind })
  }
}

/** Handles PATCH /admin/clients/{id}/refresh_secret, checking in the contract's order. */
export async function refreshSecret(c: Context<AppEnv>): Promise<Response> {
  const config = c.get('config')
  const logFields = c.get('logFields')

  const token = readBearerToken(c.req.header('authorization') ?? null)
  const caller = await verifyAccessToken(token, config)
  logFields.user_id = caller.userId

  if (!hasScope(caller.scopes, REFRESH_SCOPE)) throw insufficientScope()

  const rawId = c.req.param('id') ?? ''
  if (!UUID_PATTERN.test(rawId)) throw invalidClientId()
  const clientId = rawId.toLowerCase()
  logFields.client_id = clientId

  // The token's client must be the legal entity whose secret is rotated.
  if (caller.clientId.toLowerCase() !== clientId) {
    throw new ApiError(403, 'forbidden', 'The access token was not issued to this client.', {
      reason: 'client_mismatch',
    })
  }

  await readRequestBody(c.req.raw)

  const secret = generateSecret()
  const secretHash = await hashSecret(clientId, secret, config.pepper)
  let outcome: RotationOutcome
  try {
    outcome = await rotateClientSecret(c.env.DB, {
      clientId,
      userId: caller.userId,
      secretHash,
      requestId: c.get('requestId'),
      ip: c.req.header('cf-connecting-ip') ?? null,
      userAgent: c.req.header('user-agent')?.slice(0, MAX_USER_AGENT_LENGTH) ?? null,
      now: new Date().toISOString(),
    })
  } catch (error) {
    throw serviceUnavailable('database_unavailable', error)
  }

  if (outcome.kind !== 'rotated') throw deniedError(outcome)

  logFields.outcome = 'rotated'
  return sendData(c, { ...outcome.client, secret })
}
