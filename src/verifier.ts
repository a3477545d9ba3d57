import type { Config } from './config.ts'
import { type SecretMatch, verifyClientSecret } from './secret.ts'
import { readSecretSlots } from './store.ts'
import { CLIENT_TARGET, CONNECTION_TARGET, type SecretTarget } from './targets.ts'
import { canonicalUuid } from './uuid.ts'

/** The result of checking a client's secret, for a token endpoint. */
export interface ClientSecretCheck extends SecretMatch {
  /**
   * True when the secret matched the previous slot during its grace period, so the token
   * endpoint can warn the caller, for example with a `Deprecation` header.
   */
  deprecated: boolean
}

const INVALID: ClientSecretCheck = {
  valid: false,
  slot: null,
  previousExpiresAt: null,
  deprecated: false,
}

async function checkSecret(
  db: D1Database,
  config: Config,
  target: SecretTarget,
  id: unknown,
  secret: unknown,
): Promise<ClientSecretCheck> {
  if (typeof id !== 'string' || typeof secret !== 'string') return INVALID

  const canonicalId = canonicalUuid(id)
  if (canonicalId === undefined || secret.length === 0 || secret.length > 512) return INVALID

  const slots = await readSecretSlots(db, target, canonicalId)
  if (slots === null || slots.is_blocked !== 0) return INVALID

  const match = await verifyClientSecret(canonicalId, secret, slots, [
    config.pepper,
    ...config.retiredPeppers,
  ])
  return { ...match, deprecated: match.slot === 'previous' }
}

/**
 * Checks a presented client secret against D1. A blocked client, an unknown client and a
 * malformed id all return `valid: false`, so the caller learns nothing beyond the outcome.
 */
export function checkClientSecret(
  db: D1Database,
  config: Config,
  clientId: unknown,
  secret: unknown,
): Promise<ClientSecretCheck> {
  return checkSecret(db, config, CLIENT_TARGET, clientId, secret)
}

/** Checks a presented connection secret; a connection of a blocked client never verifies. */
export function checkConnectionSecret(
  db: D1Database,
  config: Config,
  connectionId: unknown,
  secret: unknown,
): Promise<ClientSecretCheck> {
  return checkSecret(db, config, CONNECTION_TARGET, connectionId, secret)
}
