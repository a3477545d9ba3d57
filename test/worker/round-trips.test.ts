import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test'
import { env } from 'cloudflare:workers'
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import type { Env } from '../../src/config'
import { JWKS_CACHE_NAME, JWKS_MAX_AGE_MS } from '../../src/jwks'
import { RoundTripCounter } from './d1-counter'
import {
  BASE_URL,
  callWorker,
  captureConsole,
  createEnv,
  createSigningKey,
  type Fixture,
  keySetJson,
  listEvents,
  type RefreshOptions,
  refreshRequest,
  type Settings,
  type SigningKey,
  seedClient,
  signToken,
} from './helpers'

let key: SigningKey
let stranger: SigningKey

beforeAll(async () => {
  key = await createSigningKey('ES256')
  stranger = await createSigningKey('ES256')
})

beforeEach(() => {
  captureConsole()
})

afterEach(() => {
  vi.restoreAllMocks()
})

/** Builds a Worker env whose D1 binding counts round trips, with a configuration of its own. */
function countingEnv(settings: Settings = {}): { workerEnv: Env; counter: RoundTripCounter } {
  const counter = new RoundTripCounter()
  const workerEnv = { ...createEnv([key], settings), DB: counter.wrap(env.DB) }
  return { workerEnv, counter }
}

function ownerToken(fixture: Fixture, claims: Record<string, unknown> = {}): Promise<string> {
  return signToken(key, { sub: fixture.ownerId, client_id: fixture.clientId, ...claims })
}

async function send(
  workerEnv: Env,
  clientId: string,
  options: RefreshOptions,
): Promise<{ status: number; replayed: string | null }> {
  const response = await callWorker(refreshRequest(clientId, options), workerEnv)
  await response.arrayBuffer()
  return { status: response.status, replayed: response.headers.get('Idempotent-Replayed') }
}

const ONE_BATCH = [{ kind: 'batch', statements: 5 }]
const ONE_WRITE = [{ kind: 'run', statements: 1 }]

describe('D1 round trips of a rotation', () => {
  it('rotation is one batch', async () => {
    const { workerEnv, counter } = countingEnv()
    const fixture = await seedClient()

    const result = await send(workerEnv, fixture.clientId, { token: await ownerToken(fixture) })

    expect(result.status).toBe(200)
    expect(counter.trips).toEqual(ONE_BATCH)
  })

  it('rotation with Idempotency-Key is one batch', async () => {
    const { workerEnv, counter } = countingEnv()
    const fixture = await seedClient()

    const result = await send(workerEnv, fixture.clientId, {
      token: await ownerToken(fixture),
      headers: { 'Idempotency-Key': crypto.randomUUID() },
    })

    expect(result.status).toBe(200)
    expect(counter.trips).toEqual(ONE_BATCH)
  })

  it('idempotent replay is one batch', async () => {
    const { workerEnv, counter } = countingEnv()
    const fixture = await seedClient()
    const options = {
      token: await ownerToken(fixture),
      headers: { 'Idempotency-Key': crypto.randomUUID() },
    }
    expect((await send(workerEnv, fixture.clientId, options)).status).toBe(200)
    counter.reset()

    const replay = await send(workerEnv, fixture.clientId, options)

    expect(replay.status).toBe(200)
    expect(replay.replayed).toBe('true')
    expect(counter.trips).toEqual(ONE_BATCH)
  })
})

describe('D1 round trips of denials decided in D1', () => {
  it('unknown client (404) is one batch', async () => {
    const { workerEnv, counter } = countingEnv()
    const fixture = await seedClient()
    const clientId = crypto.randomUUID()
    const token = await signToken(key, { sub: fixture.ownerId, client_id: clientId })

    const result = await send(workerEnv, clientId, { token })

    expect(result.status).toBe(404)
    expect(counter.trips).toEqual(ONE_BATCH)
  })

  it.each([
    ['blocked user', 401, (fixture: Fixture) => fixture.blockedUserId],
    ['unknown user', 401, () => crypto.randomUUID()],
    ['user without the role', 403, (fixture: Fixture) => fixture.nonOwnerId],
  ] as const)('%s (%i) is one audited batch', async (_name, status, userOf) => {
    const { workerEnv, counter } = countingEnv()
    const fixture = await seedClient()
    const token = await signToken(key, { sub: userOf(fixture), client_id: fixture.clientId })

    const result = await send(workerEnv, fixture.clientId, { token })

    expect(result.status).toBe(status)
    expect(counter.trips).toEqual(ONE_BATCH)
    expect(await listEvents(fixture.clientId)).toHaveLength(1)
  })

  it('blocked client (403) is one audited batch', async () => {
    const { workerEnv, counter } = countingEnv()
    const fixture = await seedClient({ clientBlocked: true })

    const result = await send(workerEnv, fixture.clientId, { token: await ownerToken(fixture) })

    expect(result.status).toBe(403)
    expect(counter.trips).toEqual(ONE_BATCH)
    expect(await listEvents(fixture.clientId)).toHaveLength(1)
  })

  it('rate limit (429) is one batch', async () => {
    const { workerEnv, counter } = countingEnv({ ROTATION_RATE_LIMIT: '1' })
    const fixture = await seedClient()
    const token = await ownerToken(fixture)
    expect((await send(workerEnv, fixture.clientId, { token })).status).toBe(200)
    counter.reset()

    const result = await send(workerEnv, fixture.clientId, { token })

    expect(result.status).toBe(429)
    expect(counter.trips).toEqual(ONE_BATCH)
  })

  it('reused Idempotency-Key (422) is one batch', async () => {
    const { workerEnv, counter } = countingEnv()
    const fixture = await seedClient()
    const token = await ownerToken(fixture)
    const idempotencyKey = crypto.randomUUID()
    const first = await send(workerEnv, fixture.clientId, {
      token,
      headers: { 'Idempotency-Key': idempotencyKey },
    })
    expect(first.status).toBe(200)
    counter.reset()

    const result = await send(workerEnv, fixture.clientId, {
      token,
      headers: { 'Idempotency-Key': idempotencyKey, 'Content-Type': 'application/json' },
      body: JSON.stringify({ previous_secret_expires_in: 60 }),
    })

    expect(result.status).toBe(422)
    expect(counter.trips).toEqual(ONE_BATCH)
  })
})

describe('D1 round trips of denials before D1', () => {
  type RequestCase = (fixture: Fixture) => Promise<{ clientId: string; options: RefreshOptions }>

  const json = { 'Content-Type': 'application/json' }
  const owner = async (fixture: Fixture, options: Omit<RefreshOptions, 'token'> = {}) => ({
    clientId: fixture.clientId,
    options: { ...options, token: await ownerToken(fixture) },
  })

  it.each([
    [
      'missing Authorization',
      401,
      async (fixture) => ({ clientId: fixture.clientId, options: {} }),
    ],
    [
      'malformed token',
      401,
      async (fixture) => ({ clientId: fixture.clientId, options: { token: 'not-a-jwt' } }),
    ],
    [
      'token signed by an unknown key',
      401,
      async (fixture) => ({
        clientId: fixture.clientId,
        options: {
          token: await signToken(stranger, { sub: fixture.ownerId, client_id: fixture.clientId }),
        },
      }),
    ],
    [
      'expired token',
      401,
      async (fixture) => ({
        clientId: fixture.clientId,
        options: { token: await ownerToken(fixture, { exp: Math.floor(Date.now() / 1000) - 600 }) },
      }),
    ],
    [
      'missing scope with a path id that is no UUID',
      403,
      async (fixture) => ({
        clientId: 'not-a-uuid',
        options: { token: await ownerToken(fixture, { scope: 'legal_entity:read' }) },
      }),
    ],
    [
      'path id that is no UUID',
      422,
      async (fixture) => ({
        clientId: 'not-a-uuid',
        options: { token: await ownerToken(fixture) },
      }),
    ],
    [
      'malformed Idempotency-Key',
      422,
      (fixture) => owner(fixture, { headers: { 'Idempotency-Key': 'has space' } }),
    ],
    ['invalid JSON body', 400, (fixture) => owner(fixture, { headers: json, body: '{' })],
    [
      'body over the size limit',
      413,
      (fixture) => owner(fixture, { headers: json, body: `{"a":"${'x'.repeat(20_000)}"}` }),
    ],
    [
      'body that is not JSON',
      415,
      (fixture) => owner(fixture, { headers: { 'Content-Type': 'text/plain' }, body: 'rotate' }),
    ],
    [
      'unknown body field',
      422,
      (fixture) => owner(fixture, { headers: json, body: '{"extra":1}' }),
    ],
    [
      'grace period out of range',
      422,
      (fixture) => owner(fixture, { headers: json, body: '{"previous_secret_expires_in":-1}' }),
    ],
    ['method other than PATCH', 405, (fixture) => owner(fixture, { method: 'POST' })],
  ] as [string, number, RequestCase][])(
    '%s (%i) makes no round trip',
    async (_name, status, build) => {
      const { workerEnv, counter } = countingEnv()
      const fixture = await seedClient()
      const { clientId, options } = await build(fixture)

      const result = await send(workerEnv, clientId, options)

      expect(result.status).toBe(status)
      expect(counter.trips).toEqual([])
      expect(await listEvents(fixture.clientId)).toEqual([])
    },
  )

  it('unknown route (404) makes no round trip', async () => {
    const { workerEnv, counter } = countingEnv()

    const response = await callWorker(new Request(`${BASE_URL}/no/such/route`), workerEnv)

    expect(response.status).toBe(404)
    expect(counter.trips).toEqual([])
  })

  it('missing scope with a client UUID is one audit write', async () => {
    const { workerEnv, counter } = countingEnv()
    const fixture = await seedClient()
    const token = await ownerToken(fixture, { scope: 'legal_entity:read' })

    const result = await send(workerEnv, fixture.clientId, { token })
    const events = await listEvents(fixture.clientId)

    expect(result.status).toBe(403)
    expect(counter.trips).toEqual(ONE_WRITE)
    expect(events).toHaveLength(1)
    expect(events[0]?.reason).toBe('scope_missing')
  })

  it('token of another client is one audit write', async () => {
    const { workerEnv, counter } = countingEnv()
    const fixture = await seedClient()
    const token = await ownerToken(fixture, { client_id: crypto.randomUUID() })

    const result = await send(workerEnv, fixture.clientId, { token })
    const events = await listEvents(fixture.clientId)

    expect(result.status).toBe(403)
    expect(counter.trips).toEqual(ONE_WRITE)
    expect(events).toHaveLength(1)
    expect(events[0]?.reason).toBe('client_mismatch')
  })

  it('missing scope, unknown client: one write, no row', async () => {
    const { workerEnv, counter } = countingEnv()
    const fixture = await seedClient()
    const clientId = crypto.randomUUID()
    const token = await ownerToken(fixture, { client_id: clientId, scope: 'legal_entity:read' })

    const result = await send(workerEnv, clientId, { token })

    expect(result.status).toBe(403)
    expect(counter.trips).toEqual(ONE_WRITE)
    expect(await listEvents(clientId)).toEqual([])
  })
})

/**
 * Serves fetches of `url` with the test key set and blocks every other URL, so no test reaches
 * the network. Returns the list of fetched URLs, which grows with each fetch.
 */
function serveKeySet(url: string): string[] {
  const fetched: string[] = []
  vi.spyOn(globalThis, 'fetch').mockImplementation(async (input) => {
    const href = input instanceof Request ? input.url : String(input)
    if (href !== url) throw new TypeError(`the test blocks a fetch of ${href}`)

    fetched.push(href)
    return new Response(keySetJson([key]), { headers: { 'content-type': 'application/json' } })
  })
  return fetched
}

/** Returns a URL that no other test uses, because an isolate caches key sets by URL. */
function uniqueKeySetUrl(scenario: string): string {
  return `https://jwks.test/round-trips/${scenario}/${crypto.randomUUID()}/keys`
}

function remoteEnv(url: string): Env {
  return createEnv([key], { JWKS: undefined, JWKS_URL: url })
}

/** Stores a key set under `url` in the Cache API, as an isolate that fetched it `ageMs` ago does. */
async function shareKeySet(url: string, ageMs: number): Promise<void> {
  const cache = await caches.open(JWKS_CACHE_NAME)
  const entry = { uat: Date.now() - ageMs, jwks: JSON.parse(keySetJson([key])) }
  await cache.put(
    url,
    new Response(JSON.stringify(entry), {
      headers: { 'Content-Type': 'application/json', 'Cache-Control': 'max-age=600' },
    }),
  )
}

type FetchHandler = (request: Request, env: Env, ctx: ExecutionContext) => Promise<Response>

/** Imports the Worker as a new isolate does: a fresh module instance with empty module state. */
async function importFreshWorker(): Promise<FetchHandler> {
  vi.resetModules()
  const module = await import('../../src/index')
  return module.default.fetch as FetchHandler
}

async function callFresh(fetchHandler: FetchHandler, url: string): Promise<number> {
  const fixture = await seedClient()
  const ctx = createExecutionContext()
  const request = refreshRequest(fixture.clientId, { token: await ownerToken(fixture) })
  const response = await fetchHandler(request, remoteEnv(url), ctx)
  await waitOnExecutionContext(ctx)
  await response.arrayBuffer()
  return response.status
}

describe('JWKS fetches', () => {
  it('warm isolate fetches the key set once', async () => {
    const url = uniqueKeySetUrl('warm')
    const fetched = serveKeySet(url)
    const workerEnv = remoteEnv(url)

    const statuses: number[] = []
    for (let i = 0; i < 12; i++) {
      const fixture = await seedClient()
      const token = await ownerToken(fixture, i % 2 === 0 ? {} : { scope: 'legal_entity:read' })
      statuses.push((await send(workerEnv, fixture.clientId, { token })).status)
    }

    expect(statuses).toEqual([200, 403, 200, 403, 200, 403, 200, 403, 200, 403, 200, 403])
    expect(fetched).toHaveLength(1)
  })

  it('fresh isolate reuses a key set fetched by another', async () => {
    const url = uniqueKeySetUrl('shared')
    const fetched = serveKeySet(url)
    expect(await callFresh(await importFreshWorker(), url)).toBe(200)
    expect(fetched).toHaveLength(1)

    const status = await callFresh(await importFreshWorker(), url)

    expect(status).toBe(200)
    expect(fetched).toHaveLength(1)
  })

  it('fresh isolate fetches when no isolate shared the key set', async () => {
    const url = uniqueKeySetUrl('unshared')
    const fetched = serveKeySet(url)
    expect(await callFresh(await importFreshWorker(), url)).toBe(200)
    await (await caches.open(JWKS_CACHE_NAME)).delete(url)

    const status = await callFresh(await importFreshWorker(), url)

    expect(status).toBe(200)
    expect(fetched).toHaveLength(2)
  })

  it('cold isolate fetches once for concurrent first requests', async () => {
    const url = uniqueKeySetUrl('cold-burst')
    const fetched = serveKeySet(url)
    const fetchHandler = await importFreshWorker()

    const statuses = await Promise.all(
      Array.from({ length: 8 }, () => callFresh(fetchHandler, url)),
    )

    expect(statuses).toEqual(Array(8).fill(200))
    expect(fetched).toHaveLength(1)
  })

  it('failed first fetch: waiters get 503, next request refetches', async () => {
    const url = uniqueKeySetUrl('cold-failure')
    const fetched: string[] = []
    let failing = true
    vi.spyOn(globalThis, 'fetch').mockImplementation(async (input) => {
      const href = input instanceof Request ? input.url : String(input)
      if (href !== url) throw new TypeError(`the test blocks a fetch of ${href}`)
      fetched.push(href)
      if (failing) return new Response('unavailable', { status: 503 })
      return new Response(keySetJson([key]), { headers: { 'content-type': 'application/json' } })
    })
    const fetchHandler = await importFreshWorker()

    const statuses = await Promise.all(
      Array.from({ length: 4 }, () => callFresh(fetchHandler, url)),
    )
    expect(statuses).toEqual([503, 503, 503, 503])
    expect(fetched).toHaveLength(1)

    failing = false
    expect(await callFresh(fetchHandler, url)).toBe(200)
    expect(fetched).toHaveLength(2)
  })

  it('isolate reuses a key set stored in the Cache API', async () => {
    const url = uniqueKeySetUrl('stored')
    const fetched = serveKeySet(url)
    await shareKeySet(url, 60_000)

    const fixture = await seedClient()
    const result = await send(remoteEnv(url), fixture.clientId, {
      token: await ownerToken(fixture),
    })

    expect(result.status).toBe(200)
    expect(fetched).toEqual([])
  })

  it('isolate refetches a stored key set past its maximum age', async () => {
    const url = uniqueKeySetUrl('stale')
    const fetched = serveKeySet(url)
    await shareKeySet(url, JWKS_MAX_AGE_MS + 60_000)

    const fixture = await seedClient()
    const result = await send(remoteEnv(url), fixture.clientId, {
      token: await ownerToken(fixture),
    })

    expect(result.status).toBe(200)
    expect(fetched).toHaveLength(1)
  })
})
