import type { Config } from './config.ts'
import { type InvalidEntry, validationFailed } from './errors.ts'

/** The rotation options that the request body sets. */
export interface RotationOptions {
  /** Seconds that the previous secret keeps verifying; 0 retires it at once. */
  gracePeriod: number
}

function invalidField(
  field: string,
  rule: string,
  params: unknown[],
  description: string,
): InvalidEntry {
  return {
    entry_type: 'json_data_property',
    entry: `$.${field}`,
    rules: [{ rule, params, description }],
  }
}

/**
 * Reads `previous_secret_expires_in` (whole seconds, 0 to the configured maximum) and
 * `revoke_previous` (a boolean that retires the old secret at once, for a leaked secret).
 */
export function parseRotationOptions(
  body: Record<string, unknown>,
  limits: Config['gracePeriod'],
): RotationOptions {
  const expiresIn = body.previous_secret_expires_in
  const revoke = body.revoke_previous

  if (revoke !== undefined && typeof revoke !== 'boolean') {
    throw validationFailed('revoke_previous must be a boolean.', [
      invalidField('revoke_previous', 'cast', ['boolean'], 'type mismatch'),
    ])
  }

  if (expiresIn !== undefined) {
    if (typeof expiresIn !== 'number' || !Number.isInteger(expiresIn)) {
      throw validationFailed('previous_secret_expires_in must be a whole number of seconds.', [
        invalidField('previous_secret_expires_in', 'cast', ['integer'], 'type mismatch'),
      ])
    }
    if (expiresIn < 0 || expiresIn > limits.max) {
      throw validationFailed(
        `previous_secret_expires_in must be from 0 to ${limits.max} seconds.`,
        [
          invalidField(
            'previous_secret_expires_in',
            'number',
            [{ greater_than_or_equal_to: 0, less_than_or_equal_to: limits.max }],
            `expected a value from 0 to ${limits.max}`,
          ),
        ],
      )
    }
  }

  if (revoke === true) {
    if (expiresIn !== undefined && expiresIn !== 0) {
      throw validationFailed('revoke_previous cannot be combined with a grace period.', [
        invalidField(
          'revoke_previous',
          'exclusion',
          ['previous_secret_expires_in'],
          'revoke_previous: true requires previous_secret_expires_in to be absent or 0',
        ),
      ])
    }
    return { gracePeriod: 0 }
  }

  return { gracePeriod: (expiresIn as number | undefined) ?? limits.default }
}
