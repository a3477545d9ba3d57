// The load generator: a child process that runs autocannon jobs sent by bench/run.mjs over IPC,
// so the load does not share an event loop with Miniflare.
import autocannon from 'autocannon'

/** The value at quantile `q` of sorted numbers, by the nearest-rank method. */
function quantile(sorted, q) {
  if (sorted.length === 0) return null
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[rank]
}

/**
 * Runs one job: `requests` is a list of { path, token } that the connections take in turn.
 * Latencies come from autocannon's `response` events, which carry sub-millisecond times;
 * its own histogram keeps whole milliseconds only.
 */
function runJob(job) {
  let next = 0
  const latencies = []
  const statuses = {}

  const instance = autocannon({
    url: job.url,
    connections: job.connections,
    ...(job.amount === undefined ? { duration: job.durationSeconds } : { amount: job.amount }),
    requests: [
      {
        method: job.method,
        setupRequest: (request) => {
          const item = job.requests[next++ % job.requests.length]
          const headers = { ...job.headers }
          if (item.token !== undefined) headers.authorization = `Bearer ${item.token}`
          return { ...request, path: item.path, headers }
        },
      },
    ],
  })
  instance.on('response', (_client, statusCode, _bytes, responseTime) => {
    latencies.push(responseTime)
    statuses[statusCode] = (statuses[statusCode] ?? 0) + 1
  })

  return new Promise((resolve, reject) => {
    instance.on('done', (result) => {
      latencies.sort((a, b) => a - b)
      const completed = latencies.length
      resolve({
        completed,
        seconds: result.duration,
        requestsPerSecond: completed / result.duration,
        p50Ms: quantile(latencies, 0.5),
        p99Ms: quantile(latencies, 0.99),
        statuses,
        errors: result.errors,
        timeouts: result.timeouts,
      })
    })
    instance.on('error', reject)
  })
}

process.on('message', async (message) => {
  try {
    process.send({ id: message.id, result: await runJob(message.job) })
  } catch (error) {
    process.send({ id: message.id, error: String(error?.stack ?? error) })
  }
})
