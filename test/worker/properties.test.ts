// Properties over generated ids, headers, claims and bodies: the Worker never returns 500, the
// client row changes only with a 200, and a 200 happens only when the input is valid.

import fc from 'fast-check'
import { beforeAll, describe, expect, it } from 'vitest'
import type { Env } from '../../src/config'
import {
  AUDIENCE,
  BASE_URL,
  type ClientRow,
  callWorker,
  createEnv,
  createSigningKey,
  type Fixture,
  ISSUER,
  nowSeconds,
  readClient,
  type SigningKey,
  seedClient,
  signCompact,
  signToken,
  validClaims,
} from './helpers'

const RUNS = 150

let key: SigningKey
let workerEnv: Env

beforeAll(async () => {
  key = await createSigningKey('ES256')
  workerEnv = createEnv([key], { ROTATION_RATE_LIMIT: '0' })
})

/**
 * Tracks one client across many requests: after each response, the row must equal the last
 * one seen unless the status was 200, and after a 200 it must carry a new secret hash.
 */
class ClientWatch {
  private row: ClientRow | null = null
  /** Every status seen, so a test can tell that both a rotation and a rejection happened. */
  readonly statuses = new Set<number>()

  constructor(readonly fixture: Fixture) {}

  async start(): Promise<void> {
    this.row = await readClient(this.fixture.clientId)
  }

  async check(status: number): Promise<void> {
    this.statuses.add(status)
    const now = await readClient(this.fixture.clientId)
    if (status === 200) {
      expect(now?.secret_hash).not.toBe(this.row?.secret_hash)
      this.row = now
    } else {
      expect(now).toEqual(this.row)
    }
  }
}

function expectBothOutcomes(watch: ClientWatch): void {
  expect(watch.statuses).toContain(200)
  expect([...watch.statuses].some((status) => status >= 400)).toBe(true)
}

async function statusOf(request: Request): Promise<number> {
  const response = await callWorker(request, workerEnv)
  await response.body?.cancel()
  expect(response.status).toBeLessThan(500)
  return response.status
}

/** Builds a Request, or returns undefined when the runtime refuses its header values. */
function tryRequest(url: string, init: RequestInit): Request | undefined {
  try {
    return new Request(url, init)
  } catch {
    return undefined
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

describe('path ids', () => {
  it('rotate only the named client', async () => {
    const fixture = await seedClient()
    const watch = new ClientWatch(fixture)
    await watch.start()
    const token = await signToken(key, { sub: fixture.ownerId, client_id: fixture.clientId })

    const ids = fc.oneof(
      fc.constant(fixture.clientId),
      fc.constant(fixture.clientId.toUpperCase()),
      fc.uuid(),
      fc.string({ unit: 'grapheme', maxLength: 80 }),
      fc.string({ unit: 'binary', maxLength: 80 }),
      fc
        .tuple(fc.nat(35), fc.string({ maxLength: 3 }))
        .map(([at, text]) => fixture.clientId.slice(0, at) + text + fixture.clientId.slice(at + 1)),
      fc.constantFrom("' OR 1=1 --", '%ZZ', '%', '..', '.', '%2F', '%00', '%C0%AF'),
    )

    await fc.assert(
      fc.asyncProperty(ids, fc.boolean(), async (id, encode) => {
        const path = encode ? encodeURIComponent(id) : id
        const request = tryRequest(`${BASE_URL}/admin/clients/${path}/refresh_secret`, {
          method: 'PATCH',
          headers: { authorization: `Bearer ${token}` },
        })
        if (request === undefined) return

        const status = await statusOf(request)
        await watch.check(status)
        if (status === 200) {
          const routed = decodeURIComponent(new URL(request.url).pathname.split('/')[3] ?? '')
          expect(UUID.test(routed) && routed.toLowerCase() === fixture.clientId).toBe(true)
        }
      }),
      { numRuns: RUNS },
    )
    expectBothOutcomes(watch)
  })
})

describe('headers', () => {
  it('rotate only with the valid token', async () => {
    const fixture = await seedClient()
    const watch = new ClientWatch(fixture)
    await watch.start()
    const token = await signToken(key, { sub: fixture.ownerId, client_id: fixture.clientId })

    const headerText = fc.string({ unit: 'binary-ascii', maxLength: 120 })
    const authorization = fc.oneof(
      fc.constant(`Bearer ${token}`),
      headerText,
      fc
        .tuple(
          fc.nat(token.length - 1),
          fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 1 }),
        )
        .map(([at, char]) => {
          return `Bearer ${token.slice(0, at)}${char}${token.slice(at + 1)}`
        }),
      fc.tuple(headerText, headerText).map(([scheme, value]) => `${scheme} ${value}`),
    )
    const optional = (arbitrary: fc.Arbitrary<string>) => fc.option(arbitrary, { nil: undefined })
    const headers = fc.record({
      authorization: optional(authorization),
      'content-type': optional(fc.oneof(fc.constant('application/json'), headerText)),
      'content-length': optional(fc.oneof(fc.nat().map(String), headerText)),
      'x-request-id': optional(headerText),
      'idempotency-key': optional(headerText),
      origin: optional(headerText),
    })

    await fc.assert(
      fc.asyncProperty(headers, async (values) => {
        const defined = Object.entries(values).filter(([, value]) => value !== undefined)
        const request = tryRequest(`${BASE_URL}/admin/clients/${fixture.clientId}/refresh_secret`, {
          method: 'PATCH',
          headers: defined as [string, string][],
        })
        if (request === undefined) return

        const status = await statusOf(request)
        await watch.check(status)
        if (status === 200) {
          const sent = request.headers.get('authorization') ?? ''
          expect(/^bearer +(\S+)$/i.exec(sent)?.[1]).toBe(token)
        }
      }),
      { numRuns: RUNS },
    )
    expectBothOutcomes(watch)
  })
})

describe('claims', () => {
  it('rotate only for valid owner tokens', async () => {
    const fixture = await seedClient()
    const watch = new ClientWatch(fixture)
    await watch.start()
    const valid = validClaims(fixture.ownerId, fixture.clientId)
    const now = nowSeconds()

    const anything = fc.jsonValue({ maxDepth: 2 })
    const time = fc.oneof(
      fc.integer({ min: now - 600, max: now + 600 }),
      fc.double({ noNaN: true }),
      anything,
    )
    const claim = <T>(good: T, bad: fc.Arbitrary<unknown>) =>
      fc.oneof({ weight: 3, arbitrary: fc.constant(good) }, { weight: 1, arbitrary: bad })
    const claims = fc.record(
      {
        iss: claim(
          ISSUER,
          fc.oneof(anything, fc.constantFrom(`${ISSUER}/`, 'HTTPS://issuer.test')),
        ),
        aud: claim(AUDIENCE, fc.oneof(anything, fc.array(fc.constantFrom(AUDIENCE, 'other')))),
        sub: claim(
          fixture.ownerId,
          fc.oneof(anything, fc.constantFrom(fixture.nonOwnerId, fixture.blockedUserId)),
        ),
        client_id: claim(
          fixture.clientId,
          fc.oneof(anything, fc.constant(fixture.clientId.toUpperCase())),
        ),
        scope: claim(
          valid.scope,
          fc.oneof(anything, fc.constantFrom('secret:refresh_all', 'openid secret:refresh', '')),
        ),
        scp: fc.option(fc.oneof(anything, fc.array(fc.constantFrom('secret:refresh', 'x'))), {
          nil: undefined,
        }),
        exp: claim(valid.exp, time),
        nbf: fc.option(time, { nil: undefined }),
        iat: claim(valid.iat, time),
      },
      { requiredKeys: [] },
    )

    await fc.assert(
      fc.asyncProperty(claims, async (payload) => {
        const token = await signCompact(key, { alg: 'ES256', kid: key.kid, typ: 'at+jwt' }, payload)
        const request = new Request(
          `${BASE_URL}/admin/clients/${fixture.clientId}/refresh_secret`,
          { method: 'PATCH', headers: { authorization: `Bearer ${token}` } },
        )

        const status = await statusOf(request)
        await watch.check(status)
        if (status === 200) expect(grantsRotation(payload, fixture)).toBe(true)
      }),
      { numRuns: RUNS },
    )
    expectBothOutcomes(watch)
  })

  /** Decides from the token rules, independently of the code under test, whether a token may rotate. */
  function grantsRotation(payload: Record<string, unknown>, fixture: Fixture): boolean {
    const now = nowSeconds()
    const tolerance = 30
    const { iss, aud, sub, client_id: clientId, scope, scp, exp, nbf, iat } = payload
    const isTime = (value: unknown) => typeof value === 'number' && Number.isFinite(value)
    const scopes =
      scope !== undefined
        ? typeof scope === 'string'
          ? scope.split(' ')
          : []
        : Array.isArray(scp) && scp.every((item) => typeof item === 'string')
          ? scp
          : []

    return (
      iss === ISSUER &&
      (aud === AUDIENCE || (Array.isArray(aud) && aud.includes(AUDIENCE))) &&
      sub === fixture.ownerId &&
      typeof clientId === 'string' &&
      clientId.toLowerCase() === fixture.clientId &&
      scopes.includes('secret:refresh') &&
      isTime(exp) &&
      (exp as number) > now - tolerance &&
      (nbf === undefined || (isTime(nbf) && (nbf as number) <= now + tolerance)) &&
      (iat === undefined || (isTime(iat) && (iat as number) <= now + tolerance))
    )
  }
})

describe('bodies', () => {
  it('rotate only for valid bodies', async () => {
    const fixture = await seedClient()
    const watch = new ClientWatch(fixture)
    await watch.start()
    const token = await signToken(key, { sub: fixture.ownerId, client_id: fixture.clientId })

    const options = fc.record(
      {
        previous_secret_expires_in: fc.oneof(
          fc.integer({ min: -10, max: 700_000 }),
          fc.jsonValue(),
        ),
        revoke_previous: fc.oneof(fc.boolean(), fc.jsonValue()),
        extra: fc.jsonValue(),
      },
      { requiredKeys: [] },
    )
    const bodies = fc.oneof(
      options.map((value) => JSON.stringify(value)),
      fc.jsonValue().map((value) => JSON.stringify(value)),
      fc.string({ unit: 'binary', maxLength: 200 }),
    )
    const contentTypes = fc.constantFrom(
      'application/json',
      'application/merge-patch+json',
      'text/plain',
      'application/x-www-form-urlencoded',
    )

    await fc.assert(
      fc.asyncProperty(bodies, contentTypes, async (body, contentType) => {
        const request = new Request(
          `${BASE_URL}/admin/clients/${fixture.clientId}/refresh_secret`,
          {
            method: 'PATCH',
            headers: { authorization: `Bearer ${token}`, 'content-type': contentType },
            body,
          },
        )

        const status = await statusOf(request)
        await watch.check(status)
        if (status === 200) expect(isAcceptedBody(body, contentType)).toBe(true)
      }),
      { numRuns: RUNS },
    )
    expectBothOutcomes(watch)
  })

  /** Decides whether a body is empty or a JSON object of known, well-typed options. */
  function isAcceptedBody(body: string, contentType: string): boolean {
    if (body.trim() === '') return true
    if (!contentType.includes('json')) return false

    let parsed: unknown
    try {
      parsed = JSON.parse(body)
    } catch {
      return false
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return false

    const {
      previous_secret_expires_in: expiresIn,
      revoke_previous: revoke,
      ...rest
    } = parsed as Record<string, unknown>
    const validExpiry =
      expiresIn === undefined ||
      (Number.isInteger(expiresIn) &&
        (expiresIn as number) >= 0 &&
        (expiresIn as number) <= 604_800)
    const validRevoke = revoke === undefined || typeof revoke === 'boolean'
    const noConflict = revoke !== true || expiresIn === undefined || expiresIn === 0
    return Object.keys(rest).length === 0 && validExpiry && validRevoke && noConflict
  }
})
