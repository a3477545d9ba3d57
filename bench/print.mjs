// Prints the benchmark results as text tables.
import { format, formatSummary, printTable } from './report.mjs'

const kib = (bytes) => (bytes / 1024).toFixed(1)

export function printResults(results) {
  const { summary } = results
  const machine = results.machine
  console.log(
    `\nMachine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGiB} GiB; node ${machine.node}; ${machine.workerd}; miniflare ${machine.miniflare}`,
  )
  console.log(`Load at start: ${results.loadAtStart.uptime}`)
  console.log(`Load at end:   ${results.loadAtEnd.uptime}`)
  console.log(
    `Mode ${results.mode}: ${results.parameters.repeats} run(s) per figure; medians, ± half the range between runs in % of the median`,
  )

  const throughputRows = []
  for (const [name, byConnections] of Object.entries(summary.throughput)) {
    for (const [connections, entry] of Object.entries(byConnections)) {
      throughputRows.push([
        results.throughput[name].label,
        connections,
        formatSummary(entry.requestsPerSecond, 0),
        formatSummary(entry.p50Ms, 2),
        formatSummary(entry.p99Ms, 2),
        format(entry.throughputToFloor, 2),
        format(entry.p50ToFloor, 2),
        formatSummary(entry.cpuMsPerRequest, 3),
      ])
    }
  }
  printTable(
    'Throughput and latency (1,000 clients)',
    ['path', 'conn', 'req/s', 'p50 ms', 'p99 ms', 'req/s : floor', 'p50 : floor', 'CPU ms/req'],
    throughputRows,
  )

  printTable(
    'CPU time of the workerd process per request (8 connections)',
    ['path', 'CPU ms/request', 'ratio to floor'],
    Object.entries(summary.cpu).map(([name, entry]) => [
      results.cpuLabels[name],
      formatSummary(entry.msPerRequest, 3),
      format(entry.toFloor, 2),
    ]),
  )

  printTable(
    'CPU time of parts of the D1 work, each behind a bare route of the probe Worker',
    ['part', 'CPU ms/request', 'ratio to floor'],
    Object.entries(summary.d1Parts).map(([part, entry]) => [
      part,
      formatSummary(entry.msPerRequest, 3),
      format(entry.toFloor, 2),
    ]),
  )

  printTable(
    'D1 round trips per request',
    ['outcome', 'statuses', 'round trips', 'statements'],
    results.roundTrips.map((entry) => [
      entry.outcome,
      [...new Set(entry.statuses)].join(','),
      format(entry.roundTripsPerRequest, 2),
      format(entry.statementsPerRequest, 2),
    ]),
  )

  console.log(
    `\nJWKS fetches by the main Worker: ${results.jwks.fetchesByMainWorker} for ${results.jwks.verifiedRequests} requests that verified a token (${format(results.jwks.fetchesPer10000, 3)} per 10,000)`,
  )
  console.log(
    `Key-set refreshes (maximum age ${results.jwks.maxAgeMs / 1000} s): ${results.jwks.refreshes.map((refresh) => `${refresh.fetches} fetch(es) at ${refresh.atSeconds.toFixed(0)} s`).join(', ')}`,
  )
  console.log(
    `Fresh instances sharing one Cache API: key-set fetches ${results.sharedKeySet.map((entry) => `${entry.keySetFetches} (status ${entry.status})`).join(', then ')}`,
  )

  printTable(
    `200 rotation by number of clients (${results.parameters.scaleConnections} connections)`,
    ['clients', 'seed s', 'req/s', 'p50 ms', 'p99 ms', 'CPU ms/req'],
    summary.scale.map((step) => [
      step.clients,
      (step.seedMs / 1000).toFixed(1),
      formatSummary(step.requestsPerSecond, 0),
      formatSummary(step.p50Ms, 2),
      formatSummary(step.p99Ms, 2),
      formatSummary(step.cpuMsPerRequest, 3),
    ]),
  )
  const growth = summary.scaleGrowth
  console.log(
    `Growth from ${growth.fromClients} to ${growth.toClients} clients: time per request x${format(growth.timePerRequest, 3)}, p50 x${format(growth.p50, 3)}`,
  )

  printTable(
    '200 rotation by audit rows already in the rate window (8 connections)',
    [
      'audit rows',
      'seed s',
      'req/s',
      'p50 ms',
      'p99 ms',
      'CPU ms/req',
      ...Object.keys(summary.auditGrowth[0]?.partsCpuMsPerRequest ?? {}).map(
        (part) => `${part} CPU ms`,
      ),
    ],
    summary.auditGrowth.map((step) => [
      step.rows,
      (step.seedMs / 1000).toFixed(1),
      formatSummary(step.requestsPerSecond, 0),
      formatSummary(step.p50Ms, 2),
      formatSummary(step.p99Ms, 2),
      formatSummary(step.cpuMsPerRequest, 3),
      ...Object.values(step.partsCpuMsPerRequest).map((part) => formatSummary(part, 3)),
    ]),
  )

  const delayRows = []
  for (const [name, byConnections] of Object.entries(summary.d1Delay)) {
    for (const [connections, entry] of Object.entries(byConnections)) {
      delayRows.push([
        results.d1Delay.byWorkload[name].label,
        connections,
        formatSummary(entry.requestsPerSecond, 0),
        formatSummary(entry.p50Ms, 2),
        formatSummary(entry.p99Ms, 2),
      ])
    }
  }
  printTable(
    `D1 at a simulated ${results.d1Delay.delayMs} ms per round trip`,
    ['path', 'conn', 'req/s', 'p50 ms', 'p99 ms'],
    delayRows,
  )

  const bundle = results.bundle
  printTable(
    'Bundle, gzip level 9',
    ['build', 'Worker KiB', 'floor KiB', 'ratio'],
    [
      [
        'as deployed',
        kib(bundle.workerGzipBytes),
        kib(bundle.floorGzipBytes),
        format(bundle.ratio, 2),
      ],
      [
        'minified',
        kib(bundle.workerMinifiedGzipBytes),
        kib(bundle.floorMinifiedGzipBytes),
        format(bundle.minifiedRatio, 2),
      ],
    ],
  )

  const analysis = bundle.analysis
  console.log(
    `esbuild, gzip: Worker ${kib(analysis.gzipBytes)} KiB, floor ${kib(analysis.floorGzipBytes)} KiB (${kib(analysis.tinyFloorGzipBytes)} on hono/tiny); minified ${kib(analysis.minifiedGzipBytes)}, ${kib(analysis.floorMinifiedGzipBytes)} and ${kib(analysis.tinyFloorMinifiedGzipBytes)} KiB`,
  )
  const largest = Object.entries(analysis.bytesByInput).slice(0, 6)
  console.log(
    `Largest inputs, raw KiB: ${largest.map(([input, bytes]) => `${input} ${kib(bytes)}`).join(', ')}`,
  )

  printTable(
    'Fresh instance (new workerd process) to first response, medians',
    ['Worker', 'ready ms', 'first request ms', 'total ms'],
    Object.entries(summary.coldStart).map(([name, entry]) => [
      name,
      format(entry.readyMs, 0),
      format(entry.firstRequestMs, 1),
      format(entry.firstResponseMs, 0),
    ]),
  )

  printTable(
    'Targets',
    ['target', 'met', 'measured'],
    results.targets.map((entry) => [entry.target, entry.met ? 'yes' : 'NO', entry.measured]),
  )

  const logs = results.workerLogs
  console.log(`\nWorker log lines: ${logs.error} error, ${logs.warn} warn, ${logs.other} other`)
  if (results.problems.length > 0) console.log(`Problems:\n  ${results.problems.join('\n  ')}`)
}
