// A remote key set that misbehaves, rotates or is probed with unknown key ids. A failing key set
// gives 503 with Retry-After and writes nothing. An unknown kid gives 401 and triggers at most
// one refetch per cooldown, however many requests carry it and however fast they come.

import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import type { Env } from '../../src/config'
import { JWKS_COOLDOWN_MS, JWKS_MAX_AGE_MS } from '../../src/jwks'
import {
  callWorker,
  createEnv,
  createSigningKey,
  expectErrorResponse,
  type FetchAnswer,
  type Fixture,
  interceptFetch,
  keySetJson,
  listEvents,
  readClient,
  refreshRequest,
  type SigningKey,
  seedClient,
  signToken,
} from './helpers'

let key: SigningKey
let nextKey: SigningKey

beforeAll(async () => {
  key = await createSigningKey('ES256')
  nextKey = await createSigningKey('ES256')
})

afterEach(() => {
  vi.useRealTimers()
  vi.restoreAllMocks()
})

/** Returns a new key set URL, because the Worker caches a key set per URL per isolate. */
function keySetUrl(name: string): string {
  return `https://jwks.test/${name.replace(/\W+/g, '-')}/${crypto.randomUUID()}/keys`
}

function remoteEnv(url: string): Env {
  return createEnv([key], { JWKS: undefined, JWKS_URL: url, ROTATION_RATE_LIMIT: '0' })
}

function keySetAnswer(keys: () => readonly SigningKey[], delayMs = 0): FetchAnswer {
  return async () => {
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs))
    return new Response(keySetJson(keys()), { headers: { 'content-type': 'application/json' } })
  }
}

async function rotateWith(
  workerEnv: Env,
  fixture: Fixture,
  signingKey: SigningKey = key,
  header: Record<string, unknown> = {},
): Promise<Response> {
  const token = await signToken(
    signingKey,
    { sub: fixture.ownerId, client_id: fixture.clientId },
    header,
  )
  return callWorker(refreshRequest(fixture.clientId, { token }), workerEnv)
}

/** Fakes Date only, so timers and the key set fetch still run in real time. */
function startClock(): { advance: (ms: number) => void } {
  let now = Date.now()
  vi.useFakeTimers({ toFake: ['Date'] })
  vi.setSystemTime(now)
  return {
    advance(ms) {
      now += ms
      vi.setSystemTime(now)
    },
  }
}

async function statusOf(response: Promise<Response>): Promise<number> {
  const settled = await response
  await settled.body?.cancel()
  return settled.status
}

/** A key set endpoint that served its first key set to one successful rotation. */
interface Scenario {
  workerEnv: Env
  fixture: Fixture
  /** Every URL the Worker fetched, the first key set fetch included. */
  fetched: string[]
  clock: { advance: (ms: number) => void }
  /** Changes the keys that the endpoint serves from the next fetch on. */
  publish: (keys: readonly SigningKey[]) => void
}

async function startScenario(name: string, delayMs = 0): Promise<Scenario> {
  const url = keySetUrl(name)
  let published: readonly SigningKey[] = [key]
  const fetched = interceptFetch({ [url]: keySetAnswer(() => published, delayMs) })
  const scenario: Scenario = {
    workerEnv: remoteEnv(url),
    fixture: await seedClient(),
    fetched,
    clock: startClock(),
    publish: (keys) => {
      published = keys
    },
  }

  expect(await statusOf(rotateWith(scenario.workerEnv, scenario.fixture))).toBe(200)
  return scenario
}

describe('key set endpoint', () => {
  const json =
    (body: unknown, init: ResponseInit = {}) =>
    () =>
      Response.json(body, init)
  const text =
    (body: string, init: ResponseInit = {}) =>
    () =>
      new Response(body, init)
  const privateJwk = async () => {
    const { publicJwk, privateKey } = key
    const exported = (await crypto.subtle.exportKey('jwk', privateKey)) as JsonWebKey
    return { ...publicJwk, d: exported.d }
  }

  const answers: [
    name: string,
    answer: () => FetchAnswer | Promise<FetchAnswer>,
    status: number,
  ][] = [
    ['responding within the timeout', () => keySetAnswer(() => [key], 300), 200],
    [
      'sending the key set as text/html',
      () => text(keySetJson([key]), { headers: { 'content-type': 'text/html' } }),
      200,
    ],
    ['serving no key for the token', () => keySetAnswer(() => [nextKey]), 401],
    ['serving an HTML page', () => text('<!doctype html><h1>Maintenance</h1>'), 503],
    ['serving an empty key set', () => json({ keys: [] }), 503],
    ['serving an empty body', () => text(''), 503],
    ['serving JSON null', () => json(null), 503],
    ['serving keys that are not objects', () => json({ keys: ['key'] }), 503],
    ['serving private keys', async () => json({ keys: [await privateJwk()] }), 503],
    ['returning 204', () => () => new Response(null, { status: 204 }), 503],
    ['returning 401', () => text('unauthorized', { status: 401 }), 503],
    ['returning 403', () => text('forbidden', { status: 403 }), 503],
    ['returning 429', () => text('slow down', { status: 429 }), 503],
    ['returning 502', () => text('bad gateway', { status: 502 }), 503],
    ['returning 200 with an error object', () => json({ error: 'server_error' }), 503],
  ]

  it.each(answers.map(([name, answer, status]) => ({ name, answer, status })))(
    '$name gives $status',
    async ({ name, answer, status }) => {
      const url = keySetUrl(name)
      const fetched = interceptFetch({ [url]: await answer() })
      const fixture = await seedClient()

      const response = await rotateWith(remoteEnv(url), fixture)
      expect(fetched).toEqual([url])

      if (status === 200) {
        expect(await statusOf(Promise.resolve(response))).toBe(200)
        return
      }
      const type = status === 401 ? 'access_denied' : 'service_unavailable'
      const body = await expectErrorResponse(response, status, type)
      expect(await readClient(fixture.clientId)).toEqual(fixture.row)
      expect(await listEvents(fixture.clientId)).toEqual([])
      if (status === 503) {
        expect(response.headers.get('Retry-After')).toMatch(/^[1-9]\d*$/)
        expect(response.headers.has('WWW-Authenticate')).toBe(false)
        expect(JSON.stringify(body)).not.toMatch(/jwks\.test|JSON Web Key|Expected 200|fetch/i)
      }
    },
  )

  it.each([301, 302, 303, 307, 308])('redirecting with %i is not followed', async (status) => {
    const url = keySetUrl(`redirect-${status}`)
    const target = keySetUrl(`redirect-target-${status}`)
    const fetched = interceptFetch({
      [url]: () => new Response(null, { status, headers: { location: target } }),
      [target]: keySetAnswer(() => [key]),
    })
    const fixture = await seedClient()

    const response = await rotateWith(remoteEnv(url), fixture)
    await expectErrorResponse(response, 503, 'service_unavailable')

    expect(fetched).toEqual([url])
    expect(await readClient(fixture.clientId)).toEqual(fixture.row)
  })
})

describe('key rotation at the issuer', () => {
  it('accepts a new kid after one refetch once the cooldown has passed', async () => {
    const { workerEnv, fixture, fetched, clock, publish } = await startScenario('rotation')

    publish([key, nextKey])
    clock.advance(JWKS_COOLDOWN_MS + 1_000)

    expect(await statusOf(rotateWith(workerEnv, fixture, nextKey))).toBe(200)
    expect(await statusOf(rotateWith(workerEnv, fixture, nextKey))).toBe(200)
    expect(fetched).toHaveLength(2)
  })

  it('accepts a kid that appears within the cooldown once it has passed', async () => {
    const { workerEnv, fixture, fetched, clock, publish } = await startScenario('rotation-early')

    publish([key, nextKey])
    clock.advance(JWKS_COOLDOWN_MS / 3)
    const early = await statusOf(rotateWith(workerEnv, fixture, nextKey))
    const fetchedEarly = fetched.length
    clock.advance(JWKS_COOLDOWN_MS)
    const later = await statusOf(rotateWith(workerEnv, fixture, nextKey))

    expect(early).toBe(401)
    expect(fetchedEarly).toBe(1)
    expect(later).toBe(200)
    expect(fetched).toHaveLength(2)
  })

  it('keeps a removed key until the cached set reaches its maximum age', async () => {
    const { workerEnv, fixture, fetched, clock, publish } = await startScenario('removal')

    publish([nextKey])
    clock.advance(JWKS_MAX_AGE_MS - 1_000)
    const beforeMaxAge = await statusOf(rotateWith(workerEnv, fixture))
    clock.advance(2_000)
    const afterMaxAge = await statusOf(rotateWith(workerEnv, fixture))

    expect(beforeMaxAge).toBe(200)
    expect(afterMaxAge).toBe(401)
    expect(fetched).toHaveLength(2)
  })
})

describe('flood of unknown kids', () => {
  function randomKidToken(fixture: Fixture): Promise<string> {
    return signToken(
      key,
      { sub: fixture.ownerId, client_id: fixture.clientId },
      { kid: crypto.randomUUID() },
    )
  }

  it('refetches at most once per cooldown when sequential', async () => {
    const { workerEnv, fixture, fetched, clock } = await startScenario('flood-sequential')
    const seconds = 120

    const statuses = new Set<number>()
    for (let second = 0; second < seconds; second++) {
      clock.advance(1_000)
      const token = await randomKidToken(fixture)
      statuses.add(
        await statusOf(callWorker(refreshRequest(fixture.clientId, { token }), workerEnv)),
      )
    }

    expect([...statuses]).toEqual([401])
    expect(fetched.length).toBeLessThanOrEqual(1 + Math.ceil((seconds * 1000) / JWKS_COOLDOWN_MS))
  })

  it('starts one refetch for a concurrent burst after the cooldown', async () => {
    const { workerEnv, fixture, fetched, clock } = await startScenario('flood-burst', 20)

    clock.advance(JWKS_COOLDOWN_MS + 1_000)
    const tokens = await Promise.all(Array.from({ length: 40 }, () => randomKidToken(fixture)))
    const statuses = await Promise.all(
      tokens.map((token) =>
        statusOf(callWorker(refreshRequest(fixture.clientId, { token }), workerEnv)),
      ),
    )

    expect(new Set(statuses)).toEqual(new Set([401]))
    expect(fetched).toHaveLength(2)
  })

  it('leaves tokens with a known kid working during a burst', async () => {
    const { workerEnv, fixture, fetched, clock } = await startScenario('flood-mixed', 20)

    clock.advance(JWKS_COOLDOWN_MS + 1_000)
    const requests = Array.from({ length: 30 }, async (_, index) => {
      const token =
        index % 3 === 0
          ? await signToken(key, { sub: fixture.ownerId, client_id: fixture.clientId })
          : await randomKidToken(fixture)
      const status = await statusOf(
        callWorker(refreshRequest(fixture.clientId, { token }), workerEnv),
      )
      return { known: index % 3 === 0, status }
    })
    const results = await Promise.all(requests)

    expect(results.filter((result) => result.known).map((result) => result.status)).toEqual(
      Array(10).fill(200),
    )
    expect(new Set(results.filter((r) => !r.known).map((r) => r.status))).toEqual(new Set([401]))
    expect(fetched).toHaveLength(2)
  })
})
