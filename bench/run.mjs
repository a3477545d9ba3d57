// Benchmarks the refresh-secret Worker in workerd through Miniflare, loaded by autocannon from a
// second process on loopback. `npm run bench` is the short mode; `npm run bench -- --full` is the
// mode whose results docs/BENCHMARKS.md records. Results go to bench/results/latest.json.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { analyzeBundle } from './bundle.mjs'
import { createIssuer, createPepper, startKeySetServer } from './identity.mjs'
import {
  buildWorkloads,
  MALFORMED_TOKEN,
  measureColdStarts,
  measureKeySetAfterEarlyFailure,
  measureRoundTrips,
  measureSharedKeySet,
  Problems,
  routeOf,
  runLoad,
  startLoadProcess,
} from './measure.mjs'
import { printResults } from './print.mjs'
import { ratio, readLoad, readMachine, summarize } from './report.mjs'
import {
  applyMigrations,
  BUILD_DIR,
  buildWorkers,
  findWorkerdPid,
  gzipBytes,
  ROOT,
  readWranglerConfig,
  startMiniflare,
  workerOptions,
} from './runtime.mjs'
import {
  benchId,
  clearAuditTrail,
  countRows,
  seedAuditRows,
  seedClients,
  seedFixtures,
  seedRoles,
} from './seed.mjs'
import { evaluateTargets } from './targets.mjs'

const FULL = process.argv.includes('--full')

const MODES = {
  short: {
    repeats: 1,
    durationSeconds: 3,
    warmupSeconds: 1,
    connections: [1, 8, 32],
    cpuRequests: 2_000,
    delaySeconds: 3,
    scaleSizes: [1_000, 10_000],
    auditRows: [0, 10_000],
    auditRequests: 500,
    tokenPool: 1_000,
    coldStarts: 5,
    roundTripRequests: 3,
  },
  full: {
    repeats: 3,
    durationSeconds: 10,
    warmupSeconds: 3,
    connections: [1, 8, 32],
    cpuRequests: 4_000,
    delaySeconds: 5,
    scaleSizes: [1_000, 100_000, 1_000_000],
    auditRows: [0, 10_000, 100_000],
    auditRequests: 1_000,
    tokenPool: 1_000,
    coldStarts: 11,
    roundTripRequests: 5,
  },
}

/** A simulated distance to D1: every round trip waits this long before it reaches D1. */
const D1_DELAY_MS = 20
const SCALE_CONNECTIONS = 8
const KEY_PATHS = {
  main: '/main/keys.json',
  probe: '/probe/keys.json',
  floor: '/floor/keys.json',
  cold: '/cold/keys.json',
}
/** The statements measured again with audit rows in the rate window. */
const AUDIT_PARTS = ['readDecision', 'rotate', 'audit']
/** Parts of the rotation's D1 work that the probe Worker runs alone, cheapest first. */
const D1_PARTS = [
  'select',
  'select-batch',
  'readDecision',
  'rotate',
  'audit',
  'remember',
  'prune',
  'durable-floor',
  'batch',
]

function log(message) {
  console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`)
}

/**
 * Groups fetch times into refreshes: fetches less than a second apart belong to one refresh.
 * Returns each refresh's start, in seconds after the first fetch, and its number of fetches.
 */
function groupFetches(times) {
  const refreshes = []
  for (const time of times) {
    const last = refreshes[refreshes.length - 1]
    if (last !== undefined && time - last.lastMs < 1_000) {
      last.fetches++
      last.lastMs = time
    } else {
      refreshes.push({ atSeconds: (time - (times[0] ?? time)) / 1000, fetches: 1, lastMs: time })
    }
  }
  return refreshes.map(({ atSeconds, fetches }) => ({ atSeconds, fetches }))
}

/** Picks `count` distinct client numbers from 1 to `size`, spread at random. */
function sampleClients(size, count) {
  if (count >= size) return Array.from({ length: size }, (_, i) => i + 1)
  const picked = new Set()
  while (picked.size < count) picked.add(1 + Math.floor(Math.random() * size))
  return [...picked]
}

async function main() {
  const mode = FULL ? MODES.full : MODES.short
  const results = {
    mode: FULL ? 'full' : 'short',
    startedAt: new Date().toISOString(),
    parameters: { ...mode, d1DelayMs: D1_DELAY_MS, scaleConnections: SCALE_CONNECTIONS },
    machine: readMachine(),
    loadAtStart: readLoad(),
  }
  const problems = new Problems()
  log(`mode ${results.mode}; ${results.loadAtStart.uptime}`)

  const { compatibilityDate, vars } = readWranglerConfig()
  let started = performance.now()
  const scripts = await buildWorkers({ compatibilityDate })
  results.buildMs = performance.now() - started
  results.bundle = {
    workerGzipBytes: gzipBytes(scripts.worker),
    floorGzipBytes: gzipBytes(scripts.floor),
    workerMinifiedGzipBytes: gzipBytes(scripts.workerMinified),
    floorMinifiedGzipBytes: gzipBytes(scripts.floorMinified),
  }
  results.bundle.ratio = ratio(results.bundle.workerGzipBytes, results.bundle.floorGzipBytes)
  results.bundle.minifiedRatio = ratio(
    results.bundle.workerMinifiedGzipBytes,
    results.bundle.floorMinifiedGzipBytes,
  )
  results.bundle.analysis = await analyzeBundle()
  log(`built in ${(results.buildMs / 1000).toFixed(1)} s`)

  const issuer = await createIssuer()
  const stranger = await createIssuer()
  const keyServer = await startKeySetServer(issuer.jwks)
  const load = startLoadProcess()

  const bindings = {
    ...vars,
    JWT_ISSUER: 'https://issuer.bench.test',
    JWT_AUDIENCE: 'refresh-secret',
    SECRET_PEPPER: createPepper(),
    ROTATION_RATE_LIMIT: '0',
  }
  const logCounts = { error: 0, warn: 0, other: 0 }
  const mf = startMiniflare(
    [
      workerOptions({
        name: 'refresh-secret',
        scriptPath: scripts.worker,
        compatibilityDate,
        bindings: { ...bindings, JWKS_URL: keyServer.url(KEY_PATHS.main) },
      }),
      // The probe keeps the default rate limit so that the 429 outcome can be counted.
      workerOptions({
        name: 'probe',
        scriptPath: scripts.probe,
        compatibilityDate,
        bindings: {
          ...bindings,
          ROTATION_RATE_LIMIT: '5',
          JWKS_URL: keyServer.url(KEY_PATHS.probe),
        },
      }),
      workerOptions({
        name: 'probe-delay',
        scriptPath: scripts.probe,
        compatibilityDate,
        bindings: {
          ...bindings,
          D1_DELAY_MS: String(D1_DELAY_MS),
          JWKS_URL: keyServer.url(KEY_PATHS.probe),
        },
      }),
      workerOptions({
        name: 'probe-stub',
        scriptPath: scripts.probe,
        compatibilityDate,
        bindings: { ...bindings, D1_STUB: '1', JWKS_URL: keyServer.url(KEY_PATHS.probe) },
      }),
      workerOptions({
        name: 'floor',
        scriptPath: scripts.floor,
        compatibilityDate,
        bindings: { ...bindings, JWKS_URL: keyServer.url(KEY_PATHS.floor) },
        d1: false,
      }),
    ],
    logCounts,
  )

  try {
    const urls = {
      main: (await mf.unsafeGetDirectURL('refresh-secret')).href,
      probe: (await mf.unsafeGetDirectURL('probe')).href,
      delay: (await mf.unsafeGetDirectURL('probe-delay')).href,
      stub: (await mf.unsafeGetDirectURL('probe-stub')).href,
      floor: (await mf.unsafeGetDirectURL('floor')).href,
    }
    const pid = findWorkerdPid()
    const db = await mf.getD1Database('DB', 'refresh-secret')

    started = performance.now()
    await applyMigrations(db)
    await seedRoles(db)
    const baseSize = mode.scaleSizes[0]
    await seedClients(db, 1, baseSize)
    await seedFixtures(db)
    results.baseSeedMs = performance.now() - started
    results.baseRows = await countRows(db)
    log(`seeded ${JSON.stringify(results.baseRows)} in ${(results.baseSeedMs / 1000).toFixed(1)} s`)

    log('counting D1 round trips per outcome')
    results.roundTrips = await measureRoundTrips(
      urls.probe,
      issuer,
      stranger,
      problems,
      mode.roundTripRequests,
    )

    const workloads = await buildWorkloads(
      issuer,
      sampleClients(baseSize, Math.min(baseSize, mode.tokenPool)),
    )
    // The same valid tokens against the floor Worker: what Hono and jwtVerify alone cost.
    workloads.floorVerify = {
      label: 'floor Worker, valid token',
      method: 'PATCH',
      expect: 200,
      worker: 'floor',
      requests: workloads.rotation.requests,
    }
    // The rotation with D1 replaced by a stub: the Worker's own work on the 200 path.
    const cpuWorkloads = {
      ...workloads,
      rotationWithoutD1: {
        ...workloads.rotation,
        label: '200 rotation, D1 stubbed',
        verifiesToken: false,
        worker: 'stub',
      },
    }
    const urlOf = (workload) => urls[workload.worker ?? 'main']
    // Every measurement starts from an empty audit trail; see clearAuditTrail.
    const measure = async (url, workload, options) => {
      await clearAuditTrail(db)
      return runLoad(load, problems, url, workload, { pid, ...options })
    }
    let verifiedRequests = 0
    const countVerified = (workload, result) => {
      if (workload.verifiesToken) verifiedRequests += result.completed
    }

    log('warming up')
    for (const workload of Object.values(workloads)) {
      const result = await measure(urlOf(workload), workload, {
        connections: 8,
        durationSeconds: mode.warmupSeconds,
      })
      countVerified(workload, result)
    }

    results.throughput = {}
    for (const [name, workload] of Object.entries(workloads)) {
      results.throughput[name] = { label: workload.label, byConnections: {} }
      for (const connections of mode.connections) {
        results.throughput[name].byConnections[connections] = []
      }
    }
    for (let repeat = 0; repeat < mode.repeats; repeat++) {
      for (const [name, workload] of Object.entries(workloads)) {
        for (const connections of mode.connections) {
          log(`throughput ${workload.label}, ${connections} connections, run ${repeat + 1}`)
          const result = await measure(urlOf(workload), workload, {
            connections,
            durationSeconds: mode.durationSeconds,
          })
          countVerified(workload, result)
          results.throughput[name].byConnections[connections].push(result)
        }
      }
    }

    results.cpu = {}
    results.cpuLabels = {}
    for (const [name, workload] of Object.entries(cpuWorkloads)) {
      results.cpu[name] = []
      results.cpuLabels[name] = workload.label
    }
    for (let repeat = 0; repeat < mode.repeats; repeat++) {
      for (const [name, workload] of Object.entries(cpuWorkloads)) {
        log(`CPU time ${workload.label}, run ${repeat + 1}`)
        const result = await measure(urlOf(workload), workload, {
          connections: 8,
          amount: mode.cpuRequests,
        })
        verifiedRequests += workload.verifiesToken ? result.completed : 0
        results.cpu[name].push(result)
      }
    }

    const partClients = sampleClients(baseSize, Math.min(baseSize, mode.tokenPool))
    const partQuery = (n) => `client=${benchId('client', n)}&user=${benchId('user', n)}`
    const plans = await fetch(new URL(`/__bench/d1/plan?${partQuery(1)}`, urls.probe))
    results.queryPlans = await plans.json()
    results.d1Parts = {}
    const partWorkload = (part) => ({
      label: `D1 part ${part}`,
      method: 'GET',
      expect: 204,
      requests: partClients.map((n) => ({ path: `/__bench/d1/${part}?${partQuery(n)}` })),
    })
    for (const part of D1_PARTS) results.d1Parts[part] = []
    for (let repeat = 0; repeat < mode.repeats; repeat++) {
      for (const part of D1_PARTS) {
        log(`CPU time of D1 part ${part}, run ${repeat + 1}`)
        const workload = partWorkload(part)
        results.d1Parts[part].push(
          await measure(urls.probe, workload, { connections: 8, amount: mode.cpuRequests }),
        )
      }
    }

    // The 200 path and the statements that read the audit trail, with a trail of each size.
    results.auditGrowth = []
    for (const rows of mode.auditRows) {
      const runs = []
      const parts = Object.fromEntries(AUDIT_PARTS.map((part) => [part, []]))
      let seedMs = 0
      for (let repeat = 0; repeat < mode.repeats; repeat++) {
        log(`200 rotation with ${rows} audit rows in the rate window, run ${repeat + 1}`)
        await clearAuditTrail(db)
        seedMs = await seedAuditRows(db, rows, baseSize)
        const options = { connections: 8, amount: mode.auditRequests, pid }
        runs.push(await runLoad(load, problems, urls.main, workloads.rotation, options))
        for (const part of AUDIT_PARTS) {
          parts[part].push(await runLoad(load, problems, urls.probe, partWorkload(part), options))
        }
      }
      results.auditGrowth.push({ rows, seedMs, runs, parts })
    }

    results.d1Delay = { delayMs: D1_DELAY_MS, byWorkload: {} }
    for (const name of ['malformedToken', 'missingScope', 'rotation']) {
      const workload = workloads[name]
      results.d1Delay.byWorkload[name] = { label: workload.label, byConnections: {} }
      for (const connections of [1, 8]) {
        const runs = []
        for (let repeat = 0; repeat < mode.repeats; repeat++) {
          log(`D1 ${D1_DELAY_MS} ms away: ${workload.label}, ${connections} connections`)
          runs.push(
            await measure(urls.delay, workload, {
              connections,
              durationSeconds: mode.delaySeconds,
            }),
          )
        }
        results.d1Delay.byWorkload[name].byConnections[connections] = runs
      }
    }

    const maxAge = await (await fetch(new URL('/__bench/jwks-max-age', urls.probe))).json()
    results.jwks = {
      fetchesByMainWorker: keyServer.hits(KEY_PATHS.main),
      verifiedRequests,
      maxAgeMs: maxAge.ms,
      // From the first fetch to the end of the load.
      elapsedMs: Date.now() - (keyServer.times(KEY_PATHS.main)[0] ?? Date.now()),
      refreshes: groupFetches(keyServer.times(KEY_PATHS.main)),
    }
    results.jwks.fetchesPer10000 = (results.jwks.fetchesByMainWorker / verifiedRequests) * 10_000

    results.scale = []
    let seeded = baseSize
    for (const size of mode.scaleSizes) {
      let seedMs = 0
      if (size > seeded) {
        log(`seeding clients ${seeded + 1} to ${size}`)
        seedMs = await seedClients(db, seeded + 1, size)
        seeded = size
      }
      const rows = await countRows(db)
      const workload = (await buildWorkloads(issuer, sampleClients(size, mode.tokenPool))).rotation
      const runs = []
      for (let repeat = 0; repeat < mode.repeats; repeat++) {
        log(`200 rotation with ${size} clients, run ${repeat + 1}`)
        runs.push(
          await measure(urls.main, workload, {
            connections: SCALE_CONNECTIONS,
            durationSeconds: mode.durationSeconds,
          }),
        )
      }
      results.scale.push({ clients: size, rows, seedMs, runs })
    }
    results.workerLogs = logCounts
  } finally {
    await mf.dispose()
  }

  log('timing fresh instances')
  const coldRequest = {
    path: routeOf(benchId('client', 1)),
    init: { method: 'PATCH', headers: { authorization: `Bearer ${MALFORMED_TOKEN}` } },
  }
  const coldBindings = {
    ...vars,
    JWT_ISSUER: 'https://issuer.bench.test',
    JWT_AUDIENCE: 'refresh-secret',
    SECRET_PEPPER: createPepper(),
    JWKS_URL: keyServer.url(KEY_PATHS.cold),
  }
  // Every fresh instance gets the D1 binding, so that only the script differs between them.
  const cold = (name, scriptPath) => ({
    name,
    scriptPath,
    compatibilityDate,
    bindings: coldBindings,
  })
  results.coldStart = {
    empty: await measureColdStarts(cold('empty', scripts.empty), coldRequest, mode.coldStarts),
    floor: await measureColdStarts(cold('floor', scripts.floor), coldRequest, mode.coldStarts),
    worker: await measureColdStarts(
      cold('refresh-secret', scripts.worker),
      coldRequest,
      mode.coldStarts,
    ),
  }

  // A request that verifies its token but needs no D1: a missing scope with a path id that is no UUID.
  const scopeToken = await issuer.sign({
    sub: benchId('user', 1),
    client_id: benchId('client', 1),
    scope: 'legal_entity:read',
  })
  results.sharedKeySet = await measureSharedKeySet(
    cold('refresh-secret', scripts.worker),
    {
      path: routeOf('not-a-uuid'),
      init: { method: 'PATCH', headers: { authorization: `Bearer ${scopeToken}` } },
    },
    keyServer,
    KEY_PATHS.cold,
    join(BUILD_DIR, 'persist'),
  )

  results.keySetAfterEarlyFailure = await measureKeySetAfterEarlyFailure(
    cold('refresh-secret', scripts.worker),
    coldRequest,
    {
      path: routeOf('not-a-uuid'),
      init: { method: 'PATCH', headers: { authorization: `Bearer ${scopeToken}` } },
    },
  )
  load.close()
  await keyServer.close()
  results.loadAtEnd = readLoad()
  results.finishedAt = new Date().toISOString()
  results.problems = problems.list
  results.summary = summarizeResults(results)
  results.targets = evaluateTargets(results)

  const directory = join(ROOT, 'bench', 'results')
  mkdirSync(directory, { recursive: true })
  const text = `${JSON.stringify(results, null, 2)}\n`
  writeFileSync(join(directory, 'latest.json'), text)
  writeFileSync(join(directory, `${results.mode}.json`), text)
  printResults(results)
  log(`results written to bench/results/latest.json and bench/results/${results.mode}.json`)

  if (problems.list.length > 0) {
    console.error(`${problems.list.length} measurements had unexpected responses; see "problems"`)
    process.exitCode = 1
  }
}

/** Medians, spreads and the ratios that the targets are stated in. */
function summarizeResults(results) {
  const throughput = {}
  for (const [name, entry] of Object.entries(results.throughput)) {
    throughput[name] = {}
    for (const [connections, runs] of Object.entries(entry.byConnections)) {
      throughput[name][connections] = {
        requestsPerSecond: summarize(runs.map((run) => run.requestsPerSecond)),
        p50Ms: summarize(runs.map((run) => run.p50Ms)),
        p99Ms: summarize(runs.map((run) => run.p99Ms)),
        cpuMsPerRequest: summarize(runs.map((run) => run.cpuMsPerRequest)),
      }
    }
  }
  for (const [name, byConnections] of Object.entries(throughput)) {
    for (const [connections, entry] of Object.entries(byConnections)) {
      entry.throughputToFloor = ratio(
        entry.requestsPerSecond.median,
        throughput.floor[connections].requestsPerSecond.median,
      )
      entry.p50ToFloor = ratio(entry.p50Ms.median, throughput.floor[connections].p50Ms.median)
      throughput[name][connections] = entry
    }
  }

  const cpu = {}
  for (const [name, runs] of Object.entries(results.cpu)) {
    cpu[name] = { msPerRequest: summarize(runs.map((run) => run.cpuMsPerRequest)) }
  }
  for (const entry of Object.values(cpu)) {
    entry.toFloor = ratio(entry.msPerRequest.median, cpu.floor.msPerRequest.median)
  }

  const d1Parts = {}
  for (const [part, runs] of Object.entries(results.d1Parts)) {
    d1Parts[part] = { msPerRequest: summarize(runs.map((run) => run.cpuMsPerRequest)) }
    d1Parts[part].toFloor = ratio(d1Parts[part].msPerRequest.median, cpu.floor.msPerRequest.median)
  }

  const d1Delay = {}
  for (const [name, entry] of Object.entries(results.d1Delay.byWorkload)) {
    d1Delay[name] = {}
    for (const [connections, runs] of Object.entries(entry.byConnections)) {
      d1Delay[name][connections] = {
        requestsPerSecond: summarize(runs.map((run) => run.requestsPerSecond)),
        p50Ms: summarize(runs.map((run) => run.p50Ms)),
        p99Ms: summarize(runs.map((run) => run.p99Ms)),
      }
    }
  }

  const describeRuns = (runs) => ({
    requestsPerSecond: summarize(runs.map((run) => run.requestsPerSecond)),
    p50Ms: summarize(runs.map((run) => run.p50Ms)),
    p99Ms: summarize(runs.map((run) => run.p99Ms)),
    cpuMsPerRequest: summarize(runs.map((run) => run.cpuMsPerRequest)),
  })
  const scale = results.scale.map((step) => ({
    clients: step.clients,
    seedMs: step.seedMs,
    ...describeRuns(step.runs),
  }))
  const auditGrowth = results.auditGrowth.map((step) => ({
    rows: step.rows,
    seedMs: step.seedMs,
    ...describeRuns(step.runs),
    partsCpuMsPerRequest: Object.fromEntries(
      Object.entries(step.parts).map(([part, runs]) => [
        part,
        summarize(runs.map((run) => run.cpuMsPerRequest)),
      ]),
    ),
  }))
  const smallest = scale[0]
  const largest = scale[scale.length - 1]
  const scaleGrowth = {
    fromClients: smallest.clients,
    toClients: largest.clients,
    // Time per request grows as throughput falls, so growth is the inverse throughput ratio.
    timePerRequest: ratio(smallest.requestsPerSecond.median, largest.requestsPerSecond.median),
    p50: ratio(largest.p50Ms.median, smallest.p50Ms.median),
  }

  const coldStart = {}
  for (const [name, entry] of Object.entries(results.coldStart)) {
    coldStart[name] = {
      firstResponseMs: entry.firstResponseMs.median,
      firstRequestMs: entry.firstRequestMs.median,
      readyMs: entry.readyMs.median,
    }
  }

  return { throughput, cpu, d1Parts, auditGrowth, d1Delay, scale, scaleGrowth, coldStart }
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
