/** The scope a token and a role must grant to rotate a client secret. */
export const REFRESH_SCOPE = 'secret:refresh'

/**
 * Returns the scopes of a token: the space-delimited `scope` claim (RFC 9068 section 2.2.3), or
 * the `scp` array that some issuers use. Returns undefined when a present claim has the wrong type.
 */
export function readScopes(payload: Record<string, unknown>): string[] | undefined {
  const { scope, scp } = payload

  if (scope !== undefined) {
    if (typeof scope !== 'string') return undefined
    return scope.split(' ').filter((item) => item !== '')
  }
  if (scp !== undefined) {
    if (!Array.isArray(scp) || !scp.every((item) => typeof item === 'string')) return undefined
    return scp
  }
  return []
}

/** Checks for a scope as a whole word, so `secret:refresh_all` never grants `secret:refresh`. */
export function hasScope(scopes: readonly string[], wanted: string): boolean {
  return scopes.includes(wanted)
}
