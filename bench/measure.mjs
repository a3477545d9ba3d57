// The measurements of the benchmark. Each takes the running Workers and returns plain data.
import { fork } from 'node:child_process'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { readLoad, summarize } from './report.mjs'
import { ROOT, readCpuMs, startMiniflare, workerOptions } from './runtime.mjs'
import { benchId, FIXTURES } from './seed.mjs'

export function routeOf(clientId) {
  return `/admin/clients/${clientId}/refresh_secret`
}

/** A token that fails verification before any key lookup: three segments, none valid. */
export const MALFORMED_TOKEN = 'not.a.jwt'

/** Starts the load generator process; `run` sends it one job and resolves with its result. */
export function startLoadProcess() {
  const child = fork(join(ROOT, 'bench', 'load.mjs'), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const pending = new Map()
  let nextId = 0

  child.on('message', (message) => {
    const callbacks = pending.get(message.id)
    pending.delete(message.id)
    if (message.error) callbacks?.reject(new Error(message.error))
    else callbacks?.resolve(message.result)
  })
  child.on('exit', (code) => {
    for (const callbacks of pending.values()) {
      callbacks.reject(new Error(`the load process exited with code ${code}`))
    }
  })

  return {
    run: (job) =>
      new Promise((resolve, reject) => {
        const id = nextId++
        pending.set(id, { resolve, reject })
        child.send({ id, job })
      }),
    close: () => child.kill(),
  }
}

/**
 * Builds the request mixes of the load tests. `requests` lists { path, token } pairs that the
 * connections take in turn; a rotation pair is one client and a token of its owner.
 */
export async function buildWorkloads(issuer, clientNumbers) {
  const rotation = []
  const missingScope = []
  for (const n of clientNumbers) {
    const clientId = benchId('client', n)
    const owner = { sub: benchId('user', n), client_id: clientId }
    rotation.push({ path: routeOf(clientId), token: await issuer.sign(owner) })
    missingScope.push({
      path: routeOf(clientId),
      token: await issuer.sign({ ...owner, scope: 'legal_entity:read' }),
    })
  }
  const firstClient = routeOf(benchId('client', clientNumbers[0]))

  return {
    floor: { label: '404 unknown route', method: 'GET', expect: 404, requests: [{ path: '/' }] },
    malformedToken: {
      label: '401 malformed token',
      method: 'PATCH',
      expect: 401,
      requests: [{ path: firstClient, token: MALFORMED_TOKEN }],
    },
    missingScope: {
      label: '403 missing scope',
      method: 'PATCH',
      expect: 403,
      verifiesToken: true,
      requests: missingScope,
    },
    rotation: {
      label: '200 rotation',
      method: 'PATCH',
      expect: 200,
      verifiesToken: true,
      requests: rotation,
    },
  }
}

/** Tracks responses with an unexpected status, so the run can fail after writing its results. */
export class Problems {
  list = []

  check(label, result, expected) {
    const unexpected = Object.entries(result.statuses).filter(
      ([status]) => Number(status) !== expected,
    )
    if (unexpected.length > 0 || result.errors > 0 || result.timeouts > 0) {
      const message = `${label}: expected only ${expected}, got ${JSON.stringify(result.statuses)}, ${result.errors} errors, ${result.timeouts} timeouts`
      this.list.push(message)
      console.warn(`WARNING ${message}`)
    }
  }
}

/**
 * Runs one workload against `url` and checks that every response had the expected status.
 * With `options.pid`, also returns the CPU time of that process per completed request.
 */
export async function runLoad(load, problems, url, workload, options) {
  const cpuBefore = options.pid === undefined ? undefined : readCpuMs(options.pid)
  const result = await load.run({
    url,
    method: workload.method,
    headers: workload.headers ?? {},
    requests: workload.requests,
    connections: options.connections,
    durationSeconds: options.durationSeconds,
    amount: options.amount,
  })
  const cpuMsPerRequest =
    cpuBefore === undefined ? undefined : (readCpuMs(options.pid) - cpuBefore) / result.completed
  problems.check(`${workload.label} at ${options.connections} connections`, result, workload.expect)
  return { ...result, cpuMsPerRequest, load1: readLoad().one }
}

/**
 * D1 round trips that each kind of outcome may take: one batch decides and writes every
 * outcome that needs D1, an audited early denial is one write, and the rest need none.
 */
export const EXPECTED_ROUND_TRIPS = {
  rotation: 1,
  'decided-in-d1': 1,
  audited: 1,
  'token-rejected': 0,
  'before-d1': 0,
}

async function readRoundTrips(probeUrl) {
  const response = await fetch(new URL('/__bench/round-trips', probeUrl))
  return response.json()
}

/**
 * Counts D1 round trips per request for each outcome through the probe Worker, whose D1
 * binding is wrapped in a counter. Requests run one at a time, so the counts are exact.
 */
export async function measureRoundTrips(probeUrl, issuer, stranger, problems, repeat) {
  const client = (n) => benchId('client', n)
  const user = (n) => benchId('user', n)
  const owner = (n) => issuer.sign({ sub: user(n), client_id: client(n) })
  const json = { 'content-type': 'application/json' }
  const replayKey = `bench-replay-${crypto.randomUUID()}`
  const reusedKey = `bench-reuse-${crypto.randomUUID()}`
  const unknownClient = crypto.randomUUID()

  // The probe keeps the default rate limit, so the rotation cases use clients of their own.
  const cases = [
    {
      name: '200 rotation',
      kind: 'rotation',
      status: 200,
      request: async (i) => ({ n: 1 + i, token: await owner(1 + i) }),
    },
    {
      name: '200 Idempotency-Key replay',
      kind: 'rotation',
      status: 200,
      setup: [{ n: 30, token: () => owner(30), headers: { 'idempotency-key': replayKey } }],
      request: async () => ({
        n: 30,
        token: await owner(30),
        headers: { 'idempotency-key': replayKey },
      }),
    },
    {
      name: '404 unknown client',
      kind: 'decided-in-d1',
      status: 404,
      request: async () => ({
        clientId: unknownClient,
        token: await issuer.sign({ sub: user(1), client_id: unknownClient }),
      }),
    },
    {
      name: '401 blocked user',
      kind: 'decided-in-d1',
      status: 401,
      request: async () => ({
        n: 1,
        token: await issuer.sign({ sub: FIXTURES.blockedUser, client_id: client(1) }),
      }),
    },
    {
      name: '403 user without the role',
      kind: 'decided-in-d1',
      status: 403,
      request: async () => ({
        n: 1,
        token: await issuer.sign({ sub: FIXTURES.plainUser, client_id: client(1) }),
      }),
    },
    {
      name: '403 blocked client',
      kind: 'decided-in-d1',
      status: 403,
      request: async () => ({
        clientId: FIXTURES.blockedClient,
        token: await issuer.sign({
          sub: FIXTURES.blockedClientOwner,
          client_id: FIXTURES.blockedClient,
        }),
      }),
    },
    {
      name: '429 rate limited',
      kind: 'decided-in-d1',
      status: 429,
      setup: Array.from({ length: 5 }, () => ({ n: 31, token: () => owner(31) })),
      request: async () => ({ n: 31, token: await owner(31) }),
    },
    {
      name: '422 Idempotency-Key reused',
      kind: 'decided-in-d1',
      status: 422,
      setup: [{ n: 32, token: () => owner(32), headers: { 'idempotency-key': reusedKey } }],
      request: async () => ({
        n: 32,
        token: await owner(32),
        headers: { 'idempotency-key': reusedKey, ...json },
        body: '{"previous_secret_expires_in":60}',
      }),
    },
    {
      name: '401 malformed token',
      kind: 'token-rejected',
      status: 401,
      request: async () => ({ n: 1, token: MALFORMED_TOKEN }),
    },
    {
      name: '401 unknown signing key',
      kind: 'token-rejected',
      status: 401,
      request: async () => ({
        n: 1,
        token: await stranger.sign({ sub: user(1), client_id: client(1) }),
      }),
    },
    {
      name: '403 missing scope (audited)',
      kind: 'audited',
      status: 403,
      request: async () => ({
        n: 1,
        token: await issuer.sign({
          sub: user(1),
          client_id: client(1),
          scope: 'legal_entity:read',
        }),
      }),
    },
    {
      name: '403 token of another client (audited)',
      kind: 'audited',
      status: 403,
      request: async () => ({
        n: 1,
        token: await issuer.sign({ sub: user(1), client_id: client(2) }),
      }),
    },
    {
      name: '422 client id not a UUID',
      kind: 'before-d1',
      status: 422,
      request: async () => ({ clientId: 'not-a-uuid', token: await owner(1) }),
    },
    {
      name: '415 body not JSON',
      kind: 'before-d1',
      status: 415,
      request: async () => ({
        n: 1,
        token: await owner(1),
        headers: { 'content-type': 'text/plain' },
        body: 'rotate',
      }),
    },
    {
      name: '422 unknown body field',
      kind: 'before-d1',
      status: 422,
      request: async () => ({ n: 1, token: await owner(1), headers: json, body: '{"extra":1}' }),
    },
  ]

  const send = async ({ n, clientId, token, headers = {}, body }) => {
    const id = clientId ?? client(n)
    const response = await fetch(new URL(routeOf(id), probeUrl), {
      method: 'PATCH',
      headers: {
        ...headers,
        authorization: `Bearer ${typeof token === 'function' ? await token() : token}`,
      },
      body,
    })
    await response.arrayBuffer()
    return response.status
  }

  const results = []
  for (const testCase of cases) {
    for (const step of testCase.setup ?? []) await send(step)
    await readRoundTrips(probeUrl)

    const statuses = []
    for (let i = 0; i < repeat; i++) statuses.push(await send(await testCase.request(i)))
    const counted = await readRoundTrips(probeUrl)

    const result = {
      outcome: testCase.name,
      kind: testCase.kind,
      expectedRoundTrips: EXPECTED_ROUND_TRIPS[testCase.kind],
      statuses,
      roundTripsPerRequest: counted.round_trips / repeat,
      statementsPerRequest: counted.statements / repeat,
    }
    problems.check(
      `round trips of ${testCase.name}`,
      { statuses: countStatuses(statuses), errors: 0, timeouts: 0 },
      testCase.status,
    )
    results.push(result)
  }

  const unknownRoute = await fetch(new URL('/no/such/route', probeUrl))
  await unknownRoute.arrayBuffer()
  const counted = await readRoundTrips(probeUrl)
  results.push({
    outcome: '404 unknown route',
    kind: 'before-d1',
    expectedRoundTrips: EXPECTED_ROUND_TRIPS['before-d1'],
    statuses: [unknownRoute.status],
    roundTripsPerRequest: counted.round_trips,
    statementsPerRequest: counted.statements,
  })
  return results
}

function countStatuses(statuses) {
  const counts = {}
  for (const status of statuses) counts[status] = (counts[status] ?? 0) + 1
  return counts
}

/**
 * Starts a fresh Miniflare instance, so a fresh workerd process and isolate, sends `requests`
 * one after another and times the start and the first response, in milliseconds from the
 * constructor call. Returns every status.
 */
export async function timeColdStart(options, requests, persistPath) {
  const started = performance.now()
  const mf = startMiniflare([workerOptions(options)], undefined, persistPath)
  try {
    const url = await mf.unsafeGetDirectURL(options.name)
    const ready = performance.now()
    const statuses = []
    let answered = ready
    for (const request of requests) {
      const response = await fetch(new URL(request.path, url), request.init)
      await response.arrayBuffer()
      if (statuses.length === 0) answered = performance.now()
      statuses.push(response.status)
    }
    return {
      statuses,
      readyMs: ready - started,
      firstResponseMs: answered - started,
      firstRequestMs: answered - ready,
    }
  } finally {
    await mf.dispose()
  }
}

/** Runs `timeColdStart` with one request `runs` times and summarizes each timing. */
export async function measureColdStarts(options, request, runs) {
  const samples = []
  for (let i = 0; i < runs; i++) samples.push(await timeColdStart(options, [request]))
  return {
    statuses: samples.map((sample) => sample.statuses[0]),
    readyMs: summarize(samples.map((sample) => sample.readyMs)),
    firstResponseMs: summarize(samples.map((sample) => sample.firstResponseMs)),
    firstRequestMs: summarize(samples.map((sample) => sample.firstRequestMs)),
  }
}

/**
 * Starts two fresh instances one after the other on one persisted Cache API, as two isolates
 * of one Worker in one location, and counts the key-set fetches each first request causes.
 */
export async function measureSharedKeySet(options, request, keyServer, keyPath, persistPath) {
  rmSync(persistPath, { recursive: true, force: true })
  const fetches = []
  for (let i = 0; i < 2; i++) {
    const before = keyServer.hits(keyPath)
    const sample = await timeColdStart(options, [request], persistPath)
    fetches.push({ status: sample.statuses[0], keySetFetches: keyServer.hits(keyPath) - before })
  }
  rmSync(persistPath, { recursive: true, force: true })
  return fetches
}

/**
 * Sends a fresh isolate a token that fails before any key lookup, then tokens that verify, and
 * returns the statuses. A Worker that keeps an isolate's key set healthy returns 401 and then
 * the statuses of the valid tokens.
 */
export async function measureKeySetAfterEarlyFailure(options, malformed, valid) {
  const sample = await timeColdStart(options, [malformed, valid, valid])
  return { statuses: sample.statuses, expected: [401, 403, 403] }
}
