#!/usr/bin/env node
// `npm run soak`: a bounded load and fault run against the Worker under `wrangler dev` on
// loopback. It seeds a fresh local D1 and sends thousands of valid and hostile requests at high
// concurrency, with the rotation rate limit off so that every valid request rotates. Then it
// checks that the Worker returned no 5xx and every hostile request its expected status, that
// the audit trail has one `secret_rotated` row per 200, that the stored hash is the hash of the
// secret returned by the last committed rotation, and that the server output contains no token,
// secret, hash or pepper. It stops wrangler and removes its files before it exits.

import { randomBytes, randomUUID, webcrypto } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import { startDev, wrangler } from '../test/e2e/wrangler.ts'
import { buildSeedSql, DEMO, hashClientSecret } from './demo-data.mjs'

const ISSUER = 'https://issuer.soak.test'
const AUDIENCE = 'refresh-secret-soak'
const KID = 'soak'
const ROUTE = `/admin/clients/${DEMO.clientId}/refresh_secret`
const REQUEST_TIMEOUT_MS = 30_000
const MAX_REQUESTS = 50_000

const USAGE = `Usage: npm run soak -- [--requests N] [--concurrency N] [--max-seconds N] [--output FILE]

Starts wrangler dev on 127.0.0.1 with a fresh local database, sends a fixed mix of valid and
hostile requests, checks the responses, the audit trail, the stored hash and the server output,
and stops wrangler. It exits with 1 when a check fails.

Options:
  --requests N      requests to send, 1 to ${MAX_REQUESTS} (default 3000)
  --concurrency N   requests in flight at once, 1 to 256 (default 48)
  --max-seconds N   stop sending after this many seconds, 10 to 1800 (default 300)
  --output FILE     also write what wrangler and the Worker printed to FILE
  -h, --help        show this help`

function readOptions() {
  const { values } = parseArgs({
    options: {
      requests: { type: 'string', default: '3000' },
      concurrency: { type: 'string', default: '48' },
      'max-seconds': { type: 'string', default: '300' },
      output: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) {
    console.log(USAGE)
    process.exit(0)
  }

  const whole = (name, min, max) => {
    const text = values[name]
    const number = Number(text)
    if (!/^\d+$/.test(text) || number < min || number > max) {
      console.error(`--${name} "${text}" is invalid: use a whole number from ${min} to ${max}.`)
      process.exit(2)
    }
    return number
  }
  return {
    requests: whole('requests', 1, MAX_REQUESTS),
    concurrency: whole('concurrency', 1, 256),
    maxSeconds: whole('max-seconds', 10, 1800),
    outputFile: values.output,
  }
}

/** Keys and settings of one run: a signing key the Worker trusts, one it does not, a pepper. */
async function createCredentials() {
  const trusted = await generateKeyPair('ES256', { extractable: true })
  const stranger = await generateKeyPair('ES256')
  const jwk = { ...(await exportJWK(trusted.publicKey)), kid: KID, alg: 'ES256', use: 'sig' }
  const pepper = randomBytes(32)
  return { trusted, stranger, jwk, pepper }
}

/** Signs an access token; `claims` and `header` override the valid defaults. */
function signer(credentials) {
  return async ({ claims = {}, header = {}, key = credentials.trusted.privateKey } = {}) => {
    const now = Math.floor(Date.now() / 1000)
    const payload = {
      iss: ISSUER,
      aud: AUDIENCE,
      sub: DEMO.ownerId,
      client_id: DEMO.clientId,
      scope: 'secret:refresh',
      iat: now,
      exp: now + 600,
      jti: randomUUID(),
      ...claims,
    }
    return new SignJWT(payload)
      .setProtectedHeader({ alg: 'ES256', kid: KID, typ: 'at+jwt', ...header })
      .sign(key)
  }
}

function base64url(value) {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString(
    'base64url',
  )
}

/**
 * The request kinds: how to build each request, its weight in the mix and the status it must
 * get. Every hostile kind targets the demo client or its route, so a mistake would show there.
 */
function requestKinds(sign, credentials) {
  const bearer = (token) => ({ authorization: `Bearer ${token}` })

  /**
   * Returns a `build` function whose every call signs a new token with `sign(token)` for the
   * Authorization header. `contentType` sets the Content-Type header, and `path`, `method` and
   * `body` pass through unchanged, so each must be a value that can be sent more than once.
   */
  const signed =
    ({ token, contentType, ...request } = {}) =>
    async () => {
      const headers = bearer(await sign(token))
      if (contentType !== undefined) headers['content-type'] = contentType
      return { ...request, headers }
    }

  const rawX = credentials.jwk.x
  const hmacToken = async () => {
    const input = `${base64url({ alg: 'HS256', kid: KID })}.${base64url({ sub: DEMO.ownerId })}`
    const key = await webcrypto.subtle.importKey(
      'raw',
      Buffer.from(JSON.stringify(credentials.jwk)),
      { name: 'HMAC', hash: 'SHA-256' },
      false,
      ['sign'],
    )
    const mac = await webcrypto.subtle.sign('HMAC', key, Buffer.from(input))
    return `${input}.${Buffer.from(mac).toString('base64url')}`
  }
  const stream = (bytes) =>
    new ReadableStream({
      start(controller) {
        for (let offset = 0; offset < bytes.length; offset += 4096) {
          controller.enqueue(bytes.subarray(offset, offset + 4096))
        }
        controller.close()
      },
    })

  return [
    {
      name: 'rotate',
      weight: 24,
      status: 200,
      build: signed(),
    },
    {
      name: 'rotate with a JSON body',
      weight: 6,
      status: 200,
      build: signed({ contentType: 'application/json', body: '{"revoke_previous":true}' }),
    },
    { name: 'no Authorization', weight: 4, status: 401, build: async () => ({}) },
    {
      name: 'Basic credentials',
      weight: 2,
      status: 401,
      build: async () => ({ headers: { authorization: 'Basic b3duZXI6c2VjcmV0' } }),
    },
    {
      name: 'garbage token',
      weight: 3,
      status: 401,
      build: async () => ({ headers: bearer(randomBytes(96).toString('base64url')) }),
    },
    {
      name: 'token of an untrusted key',
      weight: 4,
      status: 401,
      build: signed({ token: { key: credentials.stranger.privateKey } }),
    },
    {
      name: 'expired token',
      weight: 3,
      status: 401,
      build: signed({ token: { claims: { iat: 1, exp: 2 } } }),
    },
    {
      name: 'alg none',
      weight: 2,
      status: 401,
      build: async () => ({
        headers: bearer(`${base64url({ alg: 'none' })}.${base64url({ sub: DEMO.ownerId })}.`),
      }),
    },
    {
      name: 'HS256 with the public key',
      weight: 2,
      status: 401,
      build: async () => ({ headers: bearer(await hmacToken()) }),
    },
    {
      name: 'unknown kid',
      weight: 4,
      status: 401,
      build: async () => ({ headers: bearer(await sign({ header: { kid: randomUUID() } })) }),
    },
    {
      name: 'oversized token',
      weight: 2,
      status: 401,
      build: signed({ token: { claims: { pad: rawX.repeat(250) } } }),
    },
    {
      name: 'token without the scope',
      weight: 3,
      status: 403,
      build: signed({ token: { claims: { scope: 'secret:refresh_all' } } }),
    },
    {
      name: 'token of another client',
      weight: 3,
      status: 403,
      build: async () => ({ headers: bearer(await sign({ claims: { client_id: randomUUID() } })) }),
    },
    {
      name: 'user without the role',
      weight: 3,
      status: 403,
      build: signed({ token: { claims: { sub: DEMO.otherUserId } } }),
    },
    {
      name: 'unknown client',
      weight: 2,
      status: 404,
      build: async () => {
        const clientId = randomUUID()
        return {
          path: `/admin/clients/${clientId}/refresh_secret`,
          headers: bearer(await sign({ claims: { client_id: clientId } })),
        }
      },
    },
    {
      name: 'SQL in the id',
      weight: 2,
      status: 422,
      build: signed({
        path: `/admin/clients/${encodeURIComponent("' OR '1'='1' --")}/refresh_secret`,
      }),
    },
    {
      name: 'invalid percent-encoding',
      weight: 1,
      status: 422,
      build: signed({ path: '/admin/clients/%E0%A4%A/refresh_secret' }),
    },
    {
      name: 'id of 2000 characters',
      weight: 1,
      status: 422,
      build: signed({ path: `/admin/clients/${'a'.repeat(2000)}/refresh_secret` }),
    },
    {
      name: 'trailing slash',
      weight: 1,
      status: 404,
      build: signed({ path: `${ROUTE}/` }),
    },
    {
      name: 'doubled slash',
      weight: 1,
      status: 404,
      build: signed({ path: ROUTE.replace('/clients/', '/clients//') }),
    },
    ...['GET', 'PUT', 'DELETE', 'OPTIONS', 'HEAD'].map((method) => ({
      name: `method ${method}`,
      weight: 1,
      status: 405,
      build: signed({ method }),
    })),
    {
      name: 'malformed JSON',
      weight: 2,
      status: 400,
      build: signed({ contentType: 'application/json', body: '{"revoke_previous":' }),
    },
    {
      name: 'form body',
      weight: 1,
      status: 415,
      build: signed({
        contentType: 'application/x-www-form-urlencoded',
        body: 'revoke_previous=true',
      }),
    },
    {
      name: 'unknown body field',
      weight: 1,
      status: 422,
      build: signed({ contentType: 'application/json', body: '{"secret":"mine"}' }),
    },
    {
      name: 'body of 20 KiB',
      weight: 2,
      status: 413,
      build: signed({ contentType: 'application/json', body: `{}${' '.repeat(20 * 1024)}` }),
    },
    {
      name: 'chunked body of 24 KiB',
      weight: 2,
      status: 413,
      build: async () => ({
        headers: { ...bearer(await sign()), 'content-type': 'application/json' },
        // Small enough to be sent in full before the early 413 closes the connection.
        body: stream(Buffer.alloc(24 * 1024, 0x20)),
      }),
    },
    {
      name: 'short Content-Length over raw TCP',
      weight: 1,
      status: 401,
      raw: () => ({
        head: `PATCH ${ROUTE} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n`,
        body: `{}${' '.repeat(20 * 1024)}`,
      }),
    },
  ]
}

/** Picks kinds by weight with a fixed cycle, so every run sends the same mix. */
function planRequests(kinds, count) {
  const cycle = kinds.flatMap((kind) => Array(kind.weight).fill(kind))
  return Array.from({ length: count }, (_, index) => cycle[(index * 7919) % cycle.length])
}

/** Sends one raw HTTP/1.1 request and returns the status of the first response line. */
function sendRaw(origin, requestId, { head, body }) {
  const { hostname, port } = new URL(origin)
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) })
    let received = ''
    const timer = setTimeout(
      () => socket.destroy(new Error('raw request timed out')),
      REQUEST_TIMEOUT_MS,
    )
    socket.on('connect', () => {
      socket.end(`${head}x-request-id: ${requestId}\r\nConnection: close\r\n\r\n${body}`)
    })
    socket.on('data', (chunk) => {
      received += chunk
    })
    socket.on('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
    socket.on('close', () => {
      clearTimeout(timer)
      const match = /^HTTP\/1\.1 (\d{3})/.exec(received)
      const echoed = /\r\nx-request-id: *([^\r\n]*)/i.exec(received)?.[1] ?? null
      if (match === null) reject(new Error('no HTTP status line in the raw response'))
      else resolve({ status: Number(match[1]), text: received, echoedId: echoed })
    })
  })
}

async function sendOne(origin, kind, requestId) {
  if (kind.raw !== undefined) return sendRaw(origin, requestId, kind.raw())

  const built = await kind.build()
  const headers = { ...built.headers, 'x-request-id': requestId }
  const init = {
    method: built.method ?? 'PATCH',
    headers,
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  }
  if (built.body !== undefined) {
    init.body = built.body
    if (built.body instanceof ReadableStream) init.duplex = 'half'
  }

  const response = await fetch(`${origin}${built.path ?? ROUTE}`, init)
  const text = await response.text()
  return { status: response.status, text, echoedId: response.headers.get('x-request-id') }
}

/** Sends the planned requests with `concurrency` in flight until done or past the deadline. */
async function runLoad(origin, plan, concurrency, deadline) {
  const results = []
  let next = 0

  async function worker() {
    while (next < plan.length && Date.now() < deadline) {
      const index = next++
      const kind = plan[index]
      const requestId = `soak-${index}`
      const started = performance.now()
      try {
        const response = await sendOne(origin, kind, requestId)
        results.push({ kind, requestId, ms: performance.now() - started, ...response })
      } catch (error) {
        results.push({
          kind,
          requestId,
          ms: performance.now() - started,
          status: 0,
          error: String(error),
        })
      }
    }
  }

  await Promise.all(Array.from({ length: concurrency }, worker))
  return results
}

async function queryRows(persistDir, sql) {
  const args = [
    'd1',
    'execute',
    'DB',
    '--local',
    '--persist-to',
    persistDir,
    '--json',
    '--command',
    sql,
  ]
  const [result] = JSON.parse(await wrangler(args))
  return result.results
}

function percentile(sorted, fraction) {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))]
}

/** Counts by a key, as an object sorted by key. */
function tally(items, keyOf) {
  const counts = {}
  for (const item of items) {
    const key = keyOf(item)
    counts[key] = (counts[key] ?? 0) + 1
  }
  return Object.fromEntries(
    Object.entries(counts).sort(([a], [b]) => String(a).localeCompare(String(b))),
  )
}

/**
 * Splits the results into responses of the Worker, which echo the request's x-request-id, and
 * requests that never reached it: under load, wrangler's local proxy returns 500 for some
 * requests ("Error inside ProxyWorker"), and a client may see a reset.
 */
function splitDelivered(results) {
  const delivered = []
  const undelivered = []
  for (const result of results) {
    if (result.echoedId === result.requestId) delivered.push(result)
    else undelivered.push(result)
  }
  return { delivered, undelivered }
}

/** Returns the checks that failed, each as a sentence. */
async function checkResults(all, persistDir, output, credentials) {
  const failures = []
  const { delivered: results, undelivered } = splitDelivered(all)

  const serverErrors = results.filter((result) => result.status >= 500)
  if (serverErrors.length > 0) {
    const examples = serverErrors
      .slice(0, 10)
      .map(
        (result) =>
          `${result.requestId} (${result.kind.name}) ${result.status} ${result.text.slice(0, 120)}`,
      )
    failures.push(
      `the Worker answered ${serverErrors.length} requests with 5xx:\n  ${examples.join('\n  ')}`,
    )
  }
  // More than 1% lost in the dev server would make the other figures meaningless.
  if (undelivered.length > all.length / 100) {
    failures.push(`${undelivered.length} of ${all.length} requests never reached the Worker`)
  }
  if (undelivered.length > 0) {
    const ids = undelivered.map((result) => `'${result.requestId}'`).join(', ')
    const written = await queryRows(
      persistDir,
      `SELECT request_id FROM client_secret_events WHERE request_id IN (${ids}) AND event = 'secret_rotated'`,
    )
    if (written.length > 0) {
      failures.push(
        `${written.length} requests without a response rotated the secret: ${written.map((row) => row.request_id).join(', ')}`,
      )
    }
  }

  const unexpected = results.filter((result) => result.status !== result.kind.status)
  for (const [name, count] of Object.entries(
    tally(unexpected, (result) => `${result.kind.name} got ${result.status}`),
  )) {
    failures.push(`${count} x ${name}`)
  }

  const secrets = new Map()
  for (const result of results.filter((item) => item.status === 200)) {
    secrets.set(result.requestId, JSON.parse(result.text).data.secret)
  }
  const audited = await queryRows(
    persistDir,
    `SELECT count(*) AS count FROM client_secret_events WHERE client_id = '${DEMO.clientId}' AND event = 'secret_rotated'`,
  )
  const auditCount = audited[0].count
  if (auditCount !== secrets.size) {
    failures.push(`${auditCount} secret_rotated audit rows for ${secrets.size} responses with 200`)
  }

  const [last] = await queryRows(
    persistDir,
    `SELECT request_id FROM client_secret_events WHERE client_id = '${DEMO.clientId}' AND event = 'secret_rotated' ORDER BY seq DESC LIMIT 1`,
  )
  const [client] = await queryRows(
    persistDir,
    `SELECT secret_hash FROM clients WHERE id = '${DEMO.clientId}'`,
  )
  const lastSecret = secrets.get(last?.request_id)
  const expected =
    lastSecret &&
    (await hashClientSecret(DEMO.clientId, lastSecret, { id: 'k1', key: credentials.pepper }))
  if (expected === undefined || client?.secret_hash !== expected) {
    failures.push(`the stored hash is not the hash of the secret returned to ${last?.request_id}`)
  }

  // The scan below means nothing unless the Worker's own log lines reached the output.
  if (!output.includes('"message":"request"')) {
    failures.push('the server output has no request log lines, so the leak scan saw nothing')
  }
  const leaks = []
  if (/eyJ[A-Za-z0-9_-]*\.eyJ/.test(output)) leaks.push('a JWT')
  if (output.includes('hmac-sha256$')) leaks.push('a stored hash')
  if (output.includes(credentials.pepper.toString('base64url'))) leaks.push('the pepper')
  const words = new Set(output.match(/[A-Za-z0-9_-]{43}/g) ?? [])
  if ([...secrets.values()].some((secret) => words.has(secret))) leaks.push('a returned secret')
  if (leaks.length > 0) failures.push(`the server output contains ${leaks.join(', ')}`)

  return {
    failures,
    auditCount,
    rotations: secrets.size,
    lastRequestId: last?.request_id,
    undelivered: undelivered.map(
      (result) => `${result.requestId} (${result.kind.name}) ${result.status || result.error}`,
    ),
  }
}

function summarize(results, seconds, checked, output) {
  const latencies = results.map((result) => result.ms).sort((a, b) => a - b)
  return {
    requests: results.length,
    seconds: Number(seconds.toFixed(1)),
    requests_per_second: Number((results.length / seconds).toFixed(1)),
    latency_ms: {
      p50: Number(percentile(latencies, 0.5).toFixed(1)),
      p95: Number(percentile(latencies, 0.95).toFixed(1)),
      p99: Number(percentile(latencies, 0.99).toFixed(1)),
      max: Number((latencies.at(-1) ?? 0).toFixed(1)),
    },
    statuses: tally(results, (result) => result.status),
    rotations: checked.rotations,
    secret_rotated_rows: checked.auditCount,
    last_rotation: checked.lastRequestId,
    not_delivered_by_wrangler: checked.undelivered,
    server_output_lines: output.split('\n').length,
  }
}

async function main() {
  const options = readOptions()
  const workDir = await mkdtemp(path.join(tmpdir(), 'refresh-secret-soak-'))
  const persistDir = path.join(workDir, 'state')
  let server

  try {
    const credentials = await createCredentials()
    const seedFile = path.join(workDir, 'seed.sql')
    await writeFile(seedFile, await buildSeedSql({ id: 'k1', key: credentials.pepper }))
    await wrangler(['d1', 'migrations', 'apply', 'DB', '--local', '--persist-to', persistDir])
    await wrangler([
      'd1',
      'execute',
      'DB',
      '--local',
      '--persist-to',
      persistDir,
      '--file',
      seedFile,
    ])

    // An empty --env-file keeps a developer's .dev.vars out of the run.
    const emptyEnvFile = path.join(workDir, 'empty.env')
    await writeFile(emptyEnvFile, '')
    const vars = {
      JWKS: JSON.stringify({ keys: [credentials.jwk] }),
      JWT_ISSUER: ISSUER,
      JWT_AUDIENCE: AUDIENCE,
      SECRET_PEPPER: credentials.pepper.toString('base64url'),
      ROTATION_RATE_LIMIT: '0',
    }
    server = await startDev([
      '--persist-to',
      persistDir,
      '--env-file',
      emptyEnvFile,
      '--show-interactive-dev-session=false',
      ...Object.entries(vars).flatMap(([name, value]) => ['--var', `${name}:${value}`]),
    ])

    const kinds = requestKinds(signer(credentials), credentials)
    const plan = planRequests(kinds, options.requests)
    console.log(
      `Sending ${plan.length} requests, ${options.concurrency} at a time, to ${server.origin}.`,
    )
    const started = performance.now()
    const results = await runLoad(
      server.origin,
      plan,
      options.concurrency,
      Date.now() + options.maxSeconds * 1000,
    )
    const seconds = (performance.now() - started) / 1000

    const output = server.output()
    if (options.outputFile !== undefined) await writeFile(options.outputFile, output)
    const checked = await checkResults(results, persistDir, output, credentials)
    console.log(JSON.stringify(summarize(results, seconds, checked, output), null, 2))
    if (results.length < plan.length) {
      console.log(
        `Stopped after ${options.maxSeconds} seconds with ${plan.length - results.length} requests unsent.`,
      )
    }
    if (checked.failures.length > 0) {
      console.error(`Soak failed:\n- ${checked.failures.join('\n- ')}`)
      process.exitCode = 1
    } else {
      console.log(
        'Soak passed: no 5xx from the Worker, every status as expected, one audit row per rotation, the last secret stored, no leaks.',
      )
    }
  } finally {
    await server?.stop()
    await rm(workDir, { recursive: true, force: true })
  }
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error)
  process.exitCode = 1
})
