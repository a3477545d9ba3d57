import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import type { Env } from '../../src/config'
import {
  callWorker,
  captureConsole,
  createEnv,
  createSigningKey,
  type Fixture,
  keySetJson,
  listEvents,
  readClient,
  readError,
  refreshRequest,
  type SigningKey,
  seedClient,
  signToken,
} from './helpers'

let key: SigningKey

beforeAll(async () => {
  key = await createSigningKey('ES256')
})

beforeEach(() => {
  captureConsole()
})

afterEach(() => {
  vi.restoreAllMocks()
})

type Answer = (signal: AbortSignal | undefined) => Promise<Response>

/**
 * Serves fetches of `url` with `answer` and rejects every other URL, so no test reaches the
 * network. The remote key set is cached per URL for the whole isolate, so each scenario passes
 * its own URL. Returns the URLs fetched so far.
 */
function serveKeySet(url: string, answer: Answer): string[] {
  const fetched: string[] = []
  vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
    const href = input instanceof Request ? input.url : String(input)
    if (href !== url) throw new TypeError(`the test blocks a fetch of ${href}`)

    fetched.push(href)
    return answer(init?.signal ?? undefined)
  })
  return fetched
}

function keySetResponse(): Promise<Response> {
  return Promise.resolve(
    new Response(keySetJson([key]), { headers: { 'content-type': 'application/json' } }),
  )
}

function remoteEnv(url: string): Env {
  return createEnv([key], { JWKS: undefined, JWKS_URL: url })
}

async function rotate(workerEnv: Env, fixture: Fixture): Promise<Response> {
  const token = await signToken(key, { sub: fixture.ownerId, client_id: fixture.clientId })
  return callWorker(refreshRequest(fixture.clientId, { token }), workerEnv)
}

describe('remote key set', () => {
  it('is fetched once for many requests', async () => {
    const url = 'https://jwks.test/cached/keys'
    const fetched = serveKeySet(url, keySetResponse)
    const workerEnv = remoteEnv(url)

    const statuses: number[] = []
    for (let i = 0; i < 5; i++) {
      statuses.push((await rotate(workerEnv, await seedClient())).status)
    }

    expect(statuses).toEqual([200, 200, 200, 200, 200])
    expect(fetched).toHaveLength(1)
  })

  it('is shared by env objects with the same URL', async () => {
    const url = 'https://jwks.test/shared/keys'
    const fetched = serveKeySet(url, keySetResponse)

    const first = await rotate(remoteEnv(url), await seedClient())
    const second = await rotate(remoteEnv(url), await seedClient())

    expect(first.status).toBe(200)
    expect(second.status).toBe(200)
    expect(fetched).toHaveLength(1)
  })

  it('rejects an unknown kid without fetching again during the cooldown', async () => {
    const url = 'https://jwks.test/cooldown/keys'
    const fetched = serveKeySet(url, keySetResponse)
    const workerEnv = remoteEnv(url)
    const fixture = await seedClient()
    await rotate(workerEnv, await seedClient())

    const token = await signToken(
      key,
      { sub: fixture.ownerId, client_id: fixture.clientId },
      { kid: 'rotated-away' },
    )
    const response = await callWorker(refreshRequest(fixture.clientId, { token }), workerEnv)

    expect(response.status).toBe(401)
    expect((await readError(response)).error.type).toBe('access_denied')
    expect(fetched).toHaveLength(1)
  })

  it('is fetched again after a failed fetch', async () => {
    const url = 'https://jwks.test/recovers/keys'
    let fail = true
    const fetched = serveKeySet(url, () =>
      fail ? Promise.resolve(new Response('unavailable', { status: 503 })) : keySetResponse(),
    )
    const workerEnv = remoteEnv(url)

    const failed = await rotate(workerEnv, await seedClient())
    fail = false
    const recovered = await rotate(workerEnv, await seedClient())

    expect(failed.status).toBe(503)
    expect(recovered.status).toBe(200)
    expect(fetched).toHaveLength(2)
  })
})

describe('unavailable key set', () => {
  const never: Answer = (signal) =>
    new Promise((_resolve, reject) => {
      signal?.addEventListener('abort', () => reject(signal.reason))
    })

  it.each([
    ['unreachable', () => Promise.reject(new TypeError('Network connection lost.'))],
    ['answering 500', () => Promise.resolve(new Response('oops', { status: 500 }))],
    ['answering 404', () => Promise.resolve(new Response('missing', { status: 404 }))],
    ['redirecting', () => Promise.resolve(Response.redirect('https://jwks.test/elsewhere', 302))],
    ['answering invalid JSON', () => Promise.resolve(new Response('{"keys": [', { status: 200 }))],
    ['answering JSON that is no key set', () => Promise.resolve(Response.json({ keys: 'none' }))],
    ['timing out', never],
  ] as [string, Answer][])(
    'gives 503 with Retry-After and writes nothing when %s',
    async (name, answer) => {
      const url = `https://jwks.test/${name.replace(/ /g, '-')}/keys`
      const fetched = serveKeySet(url, answer)
      const fixture = await seedClient()

      const response = await rotate(remoteEnv(url), fixture)
      const body = await readError(response)

      expect(fetched).toHaveLength(1)
      expect(response.status).toBe(503)
      expect(body.error.type).toBe('service_unavailable')
      expect(response.headers.get('Retry-After')).toMatch(/^[1-9]\d*$/)
      expect(response.headers.has('WWW-Authenticate')).toBe(false)
      expect(await readClient(fixture.clientId)).toEqual(fixture.row)
      expect(await listEvents(fixture.clientId)).toEqual([])
    },
    15_000,
  )
})

describe('expired remote key set', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('is refreshed by one request of a burst', async () => {
    const url = 'https://jwks.test/expired-burst/keys'
    const fetched = serveKeySet(url, keySetResponse)
    const workerEnv = remoteEnv(url)
    expect((await rotate(workerEnv, await seedClient())).status).toBe(200)
    expect(fetched).toHaveLength(1)

    // Past the maximum age of ten minutes, every request of a burst needs the key set.
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(Date.now() + 11 * 60_000)
    const fixtures = await Promise.all([1, 2, 3, 4, 5].map(() => seedClient()))
    const responses = await Promise.all(fixtures.map((fixture) => rotate(workerEnv, fixture)))

    expect(responses.map((response) => response.status)).toEqual([200, 200, 200, 200, 200])
    expect(fetched).toHaveLength(2)
  })
})
