// Claims of a correctly signed token with wrong types, values far in the future, near-miss
// audiences, issuers and scopes. The outcome of each row is the whole endpoint's response: 401 for
// an invalid token, 403 for a valid token that does not grant the rotation, 200 otherwise.

import { beforeAll, describe, expect, it } from 'vitest'
import type { Env } from '../../src/config'
import {
  AUDIENCE,
  callWorker,
  createEnv,
  createSigningKey,
  expectErrorResponse,
  type Fixture,
  ISSUER,
  listRotations,
  nowSeconds,
  readClient,
  refreshRequest,
  type SigningKey,
  seedClient,
  signCompact,
  validClaims,
} from './helpers'

let key: SigningKey
let workerEnv: Env

beforeAll(async () => {
  key = await createSigningKey('ES256')
  workerEnv = createEnv([key], { ROTATION_RATE_LIMIT: '0' })
})

/** JSON numbers that JavaScript parses as infinities; JSON.stringify cannot write them. */
const INFINITY = '1e400'
const NEGATIVE_INFINITY = '-1e400'
const YEAR_3000 = 32_503_680_000

/** A change to the owner's valid claims: a value per claim, undefined to drop it. */
type Change = (fixture: Fixture) => Record<string, unknown>

/** A claim whose value is written as raw JSON text, such as a number out of double range. */
interface RawClaim {
  claim: string
  json: string
}

interface Row {
  name: string
  change: Change | RawClaim
  status: 200 | 401 | 403
}

const set =
  (claims: Record<string, unknown>): Change =>
  () =>
    claims

function row(name: string, change: Change | RawClaim, status: Row['status']): Row {
  return { name, change, status }
}

/** Builds the payload text: the valid claims with the row's change applied. */
function payloadOf(fixture: Fixture, change: Change | RawClaim): string {
  const claims = validClaims(fixture.ownerId, fixture.clientId)
  if (typeof change === 'function') {
    const changed: Record<string, unknown> = { ...claims, ...change(fixture) }
    for (const [name, value] of Object.entries(changed)) {
      if (value === undefined) delete changed[name]
    }
    return JSON.stringify(changed)
  }

  const placeholder = `raw-${crypto.randomUUID()}`
  return JSON.stringify({ ...claims, [change.claim]: placeholder }).replace(
    `"${placeholder}"`,
    change.json,
  )
}

async function expectRow(fixture: Fixture, response: Response, status: Row['status']) {
  if (status === 200) {
    await response.body?.cancel()
    expect(response.status).toBe(200)
    expect(await listRotations(fixture.clientId)).toHaveLength(1)
    return
  }

  await expectErrorResponse(response, status, status === 401 ? 'access_denied' : 'forbidden')
  expect(await readClient(fixture.clientId)).toEqual(fixture.row)
  expect(await listRotations(fixture.clientId)).toEqual([])
}

function runTable(rows: Row[]) {
  it.each(rows)('$name returns $status', async ({ change, status }) => {
    const fixture = await seedClient()
    const header = { alg: 'ES256', kid: key.kid, typ: 'at+jwt' }
    const token = await signCompact(key, header, payloadOf(fixture, change))

    const response = await callWorker(refreshRequest(fixture.clientId, { token }), workerEnv)

    await expectRow(fixture, response, status)
  })
}

describe('time claims', () => {
  const now = nowSeconds()

  runTable([
    row('exp as a numeric string', set({ exp: String(now + 300) }), 401),
    row('exp true', set({ exp: true }), 401),
    row('exp null', set({ exp: null }), 401),
    row('exp as an array', set({ exp: [now + 300] }), 401),
    row('exp as an object', set({ exp: { seconds: now + 300 } }), 401),
    row('exp 0', set({ exp: 0 }), 401),
    row('exp negative', set({ exp: -1 }), 401),
    row('exp with a fraction', set({ exp: now + 300.5 }), 200),
    row('exp in the year 3000', set({ exp: YEAR_3000 }), 200),
    row('exp infinite', { claim: 'exp', json: INFINITY }, 401),
    row('exp negative infinite', { claim: 'exp', json: NEGATIVE_INFINITY }, 401),
    row('nbf as a numeric string', set({ nbf: String(now) }), 401),
    row('nbf null', set({ nbf: null }), 401),
    row('nbf as an array', set({ nbf: [now] }), 401),
    row('nbf now', set({ nbf: now }), 200),
    row('nbf 0', set({ nbf: 0 }), 200),
    row('nbf an hour ahead', set({ nbf: now + 3600 }), 401),
    row('nbf in the year 3000', set({ nbf: YEAR_3000 }), 401),
    row('nbf infinite', { claim: 'nbf', json: INFINITY }, 401),
    row('nbf negative infinite', { claim: 'nbf', json: NEGATIVE_INFINITY }, 401),
    row('iat as a numeric string', set({ iat: String(now) }), 401),
    row('iat null', set({ iat: null }), 401),
    row('iat true', set({ iat: true }), 401),
    row('iat missing', set({ iat: undefined }), 200),
    row('iat 0', set({ iat: 0 }), 200),
    row('iat an hour ahead', set({ iat: now + 3600 }), 401),
    row('iat in the year 3000', set({ iat: YEAR_3000 }), 401),
    row('iat infinite', { claim: 'iat', json: INFINITY }, 401),
    row('iat negative infinite', { claim: 'iat', json: NEGATIVE_INFINITY }, 401),
  ])
})

describe('aud', () => {
  runTable([
    row('aud as our string', set({ aud: AUDIENCE }), 200),
    row('aud as a list of ours', set({ aud: [AUDIENCE] }), 200),
    row('aud as a list with ours second', set({ aud: ['other-api', AUDIENCE] }), 200),
    row('aud as a list with ours and a number', set({ aud: [AUDIENCE, 5] }), 200),
    row('aud as an empty list', set({ aud: [] }), 401),
    row('aud in upper case', set({ aud: AUDIENCE.toUpperCase() }), 401),
    row('aud with a trailing space', set({ aud: `${AUDIENCE} ` }), 401),
    row('aud as a prefix of ours', set({ aud: AUDIENCE.slice(0, -1) }), 401),
    row('aud with ours as a prefix', set({ aud: `${AUDIENCE}-admin` }), 401),
    row('aud as a nested list', set({ aud: [[AUDIENCE]] }), 401),
    row('aud as an object', set({ aud: { [AUDIENCE]: true } }), 401),
    row('aud as a number', set({ aud: 5 }), 401),
    row('aud null', set({ aud: null }), 401),
  ])
})

describe('iss', () => {
  runTable([
    row('iss missing', set({ iss: undefined }), 401),
    row('iss of another issuer', set({ iss: 'https://other-issuer.test' }), 401),
    row('iss with the scheme in upper case', set({ iss: ISSUER.replace('https', 'HTTPS') }), 401),
    row('iss with a suffix', set({ iss: `${ISSUER}.attacker.test` }), 401),
    row('iss as a list', set({ iss: [ISSUER] }), 401),
    row('iss null', set({ iss: null }), 401),
  ])
})

describe('sub', () => {
  runTable([
    row('sub missing', set({ sub: undefined }), 401),
    row('sub empty', set({ sub: '' }), 401),
    row('sub of spaces', set({ sub: '   ' }), 401),
    row('sub as a number', set({ sub: 42 }), 401),
    row('sub null', set({ sub: null }), 401),
    row('sub true', set({ sub: true }), 401),
    row('sub as a list', (f) => ({ sub: [f.ownerId] }), 401),
    row('sub as an object', (f) => ({ sub: { id: f.ownerId } }), 401),
    row('sub in upper case', (f) => ({ sub: f.ownerId.toUpperCase() }), 401),
    row('sub with a trailing space', (f) => ({ sub: `${f.ownerId} ` }), 401),
    row('sub of a user without the role', (f) => ({ sub: f.nonOwnerId }), 403),
  ])
})

describe('client_id', () => {
  runTable([
    row('client_id missing', set({ client_id: undefined }), 401),
    row('client_id empty', set({ client_id: '' }), 401),
    row('client_id as a number', set({ client_id: 42 }), 401),
    row('client_id null', set({ client_id: null }), 401),
    row('client_id true', set({ client_id: true }), 401),
    row('client_id as a list', (f) => ({ client_id: [f.clientId] }), 401),
    row('client_id as an object', (f) => ({ client_id: { id: f.clientId } }), 401),
    row('client_id in upper case', (f) => ({ client_id: f.clientId.toUpperCase() }), 200),
    row('client_id with a trailing space', (f) => ({ client_id: `${f.clientId} ` }), 403),
    row('client_id of another client', set({ client_id: crypto.randomUUID() }), 403),
    row('client_id only in azp', (f) => ({ client_id: undefined, azp: f.clientId }), 401),
  ])
})

describe('scope and scp', () => {
  runTable([
    row('scope with the word alone', set({ scope: 'secret:refresh' }), 200),
    row('scope among others', set({ scope: 'openid secret:refresh email' }), 200),
    row('scope with spaces around', set({ scope: '  secret:refresh  ' }), 200),
    row('scope empty', set({ scope: '' }), 403),
    row('scope missing', set({ scope: undefined }), 403),
    row('scope with a suffix', set({ scope: 'secret:refresh_all' }), 403),
    row('scope with a sub-scope', set({ scope: 'secret:refresh:all' }), 403),
    row('scope with a prefix', set({ scope: 'xsecret:refresh' }), 403),
    row('scope in another case', set({ scope: 'Secret:Refresh' }), 403),
    row('scope split by a space', set({ scope: 'secret: refresh' }), 403),
    row('scope separated by a tab', set({ scope: 'openid\tsecret:refresh' }), 403),
    row('scope separated by a comma', set({ scope: 'openid,secret:refresh' }), 403),
    row('scope separated by a newline', set({ scope: 'openid\nsecret:refresh' }), 403),
    row('scope with a NUL', set({ scope: 'secret:refresh\u0000' }), 403),
    row('scope with a Cyrillic e', set({ scope: 'secr\u0435t:refresh' }), 403),
    row('scope in quotes', set({ scope: '"secret:refresh"' }), 403),
    row('scope as a list', set({ scope: ['secret:refresh'] }), 401),
    row('scope as a number', set({ scope: 7 }), 401),
    row('scope null', set({ scope: null }), 401),
    row('scope true', set({ scope: true }), 401),
    row('scope as an object', set({ scope: { 'secret:refresh': true } }), 401),
    row('scp with the word', set({ scope: undefined, scp: ['secret:refresh'] }), 200),
    row('scp with a near miss', set({ scope: undefined, scp: ['secret:refresh_all'] }), 403),
    row('scp as a string', set({ scope: undefined, scp: 'secret:refresh' }), 401),
    row('scp with a number', set({ scope: undefined, scp: ['secret:refresh', 7] }), 401),
    row('scp with a nested list', set({ scope: undefined, scp: [['secret:refresh']] }), 401),
    row(
      'scope without the word over scp with it',
      set({ scope: 'openid', scp: ['secret:refresh'] }),
      403,
    ),
    row('scope with the word over an empty scp', set({ scope: 'secret:refresh', scp: [] }), 200),
  ])
})
