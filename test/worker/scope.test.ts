import { describe, expect, it } from 'vitest'
import { hasScope, readScopes } from '../../src/scope'

describe('readScopes', () => {
  it('splits the scope string on spaces', () => {
    expect(readScopes({ scope: 'openid secret:refresh legal_entity:read' })).toEqual([
      'openid',
      'secret:refresh',
      'legal_entity:read',
    ])
  })

  it('ignores repeated spaces', () => {
    expect(readScopes({ scope: '  openid   secret:refresh ' })).toEqual([
      'openid',
      'secret:refresh',
    ])
  })

  it('reads the scp array', () => {
    expect(readScopes({ scp: ['openid', 'secret:refresh'] })).toEqual(['openid', 'secret:refresh'])
  })

  it('returns no scopes when neither claim is present', () => {
    expect(readScopes({ sub: 'user' })).toEqual([])
  })

  it('returns no scopes for an empty scope string', () => {
    expect(readScopes({ scope: '' })).toEqual([])
  })

  it.each([
    ['scope as an array', { scope: ['secret:refresh'] }],
    ['scope as a number', { scope: 1 }],
    ['scope as null', { scope: null }],
    ['scope as an object', { scope: { 'secret:refresh': true } }],
    ['scp as a string', { scp: 'secret:refresh' }],
    ['scp with a number', { scp: ['secret:refresh', 1] }],
    ['scp as null', { scp: null }],
  ])('rejects %s', (_name, payload: Record<string, unknown>) => {
    expect(readScopes(payload)).toBeUndefined()
  })
})

describe('hasScope', () => {
  it('finds the scope alone', () => {
    expect(hasScope(['secret:refresh'], 'secret:refresh')).toBe(true)
  })

  it('finds the scope among others', () => {
    expect(hasScope(['openid', 'secret:refresh', 'legal_entity:read'], 'secret:refresh')).toBe(true)
  })

  it('finds nothing in no scopes', () => {
    expect(hasScope([], 'secret:refresh')).toBe(false)
  })

  it.each([
    'secret:refresh_all',
    'secret:refreshx',
    'xsecret:refresh',
    'secret:refresh:own',
    'secret',
    'secret:',
    'SECRET:REFRESH',
    'Secret:Refresh',
    ' secret:refresh',
    'secret:refresh,openid',
    'openid,secret:refresh',
    'openid\tsecret:refresh',
  ])('matches whole words only, not %j', (near) => {
    expect(hasScope(['openid', near], 'secret:refresh')).toBe(false)
  })

  it.each([
    'openid secret:refresh_all',
    'secret:refresh_all secret:refreshing',
    'openid,secret:refresh',
    'SECRET:REFRESH',
  ])('finds no scope in the token scope %j', (scope) => {
    expect(hasScope(readScopes({ scope }) ?? [], 'secret:refresh')).toBe(false)
  })
})
