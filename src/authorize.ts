import type { Context } from 'hono'
import type { AppEnv } from './context.ts'
import { clientMismatch, insufficientScope, invalidPathId } from './denials.ts'
import { describeError, log } from './log.ts'
import { hasScope } from './scope.ts'
import { recordDenial } from './store.ts'
import type { SecretTarget } from './targets.ts'
import type { Caller } from './token.ts'
import { canonicalUuid } from './uuid.ts'

const MAX_USER_AGENT_LENGTH = 512

/** Request facts recorded in the audit trail. */
export interface RequestFacts {
  requestId: string
  ip: string | null
  userAgent: string | null
}

/** The secret a request rotates: the client, and the connection for a connection secret. */
export interface RotationSubject {
  clientId: string
  connectionId: string | undefined
}

export function readRequestFacts(c: Context<AppEnv>): RequestFacts {
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
  try {
    await recordDenial(c.env.DB, {
      ...readRequestFacts(c),
      clientId: subject.clientId,
      connectionId: subject.connectionId ?? null,
      userId: caller.userId,
      reason,
      now: new Date().toISOString(),
    })
  } catch (error) {
    log('error', 'audit write failed', {
      request_id: c.get('requestId'),
      client_id: subject.clientId,
      reason,
      ...describeError(error),
    })
  }
}

/**
 * Checks the token's scope and client against the path, in the documented order: scope, path
 * ids, then the token's client. A denial against a well-formed client id is audited, so an
 * owner can see who tried.
 */
export async function authorizeCaller(
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
    throw clientMismatch()
  }
  return { clientId, connectionId }
}
