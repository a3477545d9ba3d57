import { ApiError, invalidToken, validationFailed } from './errors.ts'
import type { DenialReason, RotationOutcome } from './store.ts'
import type { SecretTarget } from './targets.ts'

export function insufficientScope(scope: string): ApiError {
  return new ApiError(403, 'forbidden', `The access token lacks the scope ${scope}.`, {
    // RFC 6750 section 3.1: name the scope that the resource requires.
    headers: { 'WWW-Authenticate': `Bearer error="insufficient_scope", scope="${scope}"` },
    reason: 'scope_missing',
  })
}

export function invalidPathId(parameter: string): ApiError {
  return validationFailed(`The path parameter ${parameter} must be a UUID.`, [
    {
      entry_type: 'path_parameter',
      entry: `$.${parameter}`,
      rules: [{ rule: 'format', params: ['uuid'], description: 'expected a UUID' }],
    },
  ])
}

/** Returns the 403 for a token issued to another client than the one in the path. */
export function clientMismatch(): ApiError {
  return new ApiError(403, 'forbidden', 'The access token was not issued to this client.', {
    reason: 'client_mismatch',
  })
}

/** Maps a denial decided in the rotation transaction to its error. */
export function deniedError(
  target: SecretTarget,
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
      return new ApiError(
        429,
        'too_many_requests',
        `Too many secret rotations for this ${target.name}.`,
        {
          headers: { 'Retry-After': String(seconds) },
          reason,
        },
      )
    }
  }
}
