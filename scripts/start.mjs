#!/usr/bin/env node
// `npm start`: prepares a local environment on first run (dev signing key, .dev.vars, local D1
// migrations, demo data), then serves the Worker with `wrangler dev` and prints ready curl
// commands. Later runs keep the key and the pepper, and skip rows that exist.

import { spawn } from 'node:child_process'
import { rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { constants } from 'node:os'
import path from 'node:path'
import { buildSeedSql, DEMO } from './demo-data.mjs'
import {
  DEV_AUDIENCE,
  DEV_ISSUER,
  decodePepper,
  devPaths,
  displayPath,
  ensureSigningKey,
  generatePepper,
  mintToken,
  parseCommandLine,
  publicKeySet,
  readDevVars,
  runMain,
  runWrangler,
  UsageError,
  updateDevVars,
  wranglerEnv,
  writePrivateFile,
} from './dev-env.mjs'

const DEFAULT_PORT = 8787
const HOST = '127.0.0.1'
const READY_TIMEOUT_MS = 90_000

const USAGE = `Usage: npm start -- [--port PORT] [--var NAME:VALUE]... [--setup-only]

Creates the dev signing key (.dev/signing-key.json) and .dev.vars when they are missing,
applies the local D1 migrations, inserts the demo data, then runs \`wrangler dev\` on
${HOST} and prints curl commands with fresh tokens. Ctrl-C stops the server.

Options:
  --port PORT         port to listen on (default: $PORT, else ${DEFAULT_PORT})
  --var NAME:VALUE    a Worker setting for this run only, such as ROTATION_RATE_LIMIT:0.
                      It overrides .dev.vars and can be repeated.
  --setup-only        prepare everything, but do not start the server
  -h, --help          show this help`

function parseOptions() {
  const values = parseCommandLine(
    {
      port: { type: 'string' },
      var: { type: 'string', multiple: true },
      'setup-only': { type: 'boolean' },
    },
    USAGE,
  )

  const rawPort = values.port ?? process.env.PORT ?? String(DEFAULT_PORT)
  const port = Number(rawPort)
  if (!/^\d+$/.test(rawPort) || port < 1 || port > 65_535) {
    throw new UsageError(`The port "${rawPort}" is invalid: use a number from 1 to 65535.`, 2)
  }
  return {
    port,
    vars: parseVars(values.var ?? []),
    setupOnly: values['setup-only'] === true,
    help: values.help === true,
  }
}

/**
 * Parses `--var NAME:VALUE` options as wrangler does, splitting at the first colon.
 * @param {string[]} options
 * @returns {Record<string, string>}
 */
function parseVars(options) {
  const vars = {}
  for (const option of options) {
    const separator = option.indexOf(':')
    const name = option.slice(0, separator)
    if (separator < 1 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      throw new UsageError(
        `--var "${option}" is invalid: use NAME:VALUE, such as ROTATION_RATE_LIMIT:0.`,
        2,
      )
    }
    vars[name] = option.slice(separator + 1)
  }
  return vars
}

/**
 * Writes .dev.vars: the public key set of the dev key, and the issuer, audience and pepper that
 * the file already has, or new ones. The pepper is kept because the seeded hash depends on it.
 */
async function prepareDevVars(file, jwk) {
  const existing = await readDevVars(file)
  if (existing.JWKS_URL) {
    throw new UsageError(
      `${displayPath(file)} sets JWKS_URL, but npm start signs tokens with the dev key, which ` +
        'the Worker reads from JWKS. Remove the JWKS_URL line and run npm start again.',
    )
  }

  const pepper = existing.SECRET_PEPPER || generatePepper()
  try {
    decodePepper(pepper)
  } catch (error) {
    throw new UsageError(
      `${error.message} Fix SECRET_PEPPER in ${displayPath(file)}, or delete the line to get ` +
        'a new one.',
    )
  }

  const settings = {
    JWKS: JSON.stringify(publicKeySet(jwk)),
    JWT_ISSUER: existing.JWT_ISSUER || DEV_ISSUER,
    JWT_AUDIENCE: existing.JWT_AUDIENCE || DEV_AUDIENCE,
    SECRET_PEPPER: pepper,
  }
  const changed = await updateDevVars(file, settings)
  return {
    changed,
    issuer: settings.JWT_ISSUER,
    audience: settings.JWT_AUDIENCE,
    pepper: { id: existing.SECRET_PEPPER_ID || 'k1', key: decodePepper(pepper) },
    clientIdClaim: existing.CLIENT_ID_CLAIM || 'client_id',
  }
}

/**
 * Inserts the demo rows. The SQL file contains a secret hash, so it is private and deleted after
 * use.
 */
async function seedDemoData(paths, pepper) {
  const file = path.join(paths.devDir, `seed-${process.pid}.sql`)
  await writePrivateFile(file, await buildSeedSql(pepper))
  try {
    await runWrangler(paths.root, ['d1', 'execute', 'DB', '--local', '--file', file])
  } finally {
    await rm(file, { force: true })
  }
}

/** Prepares the key, .dev.vars and the local database. Safe to run any number of times. */
async function setup(paths = devPaths()) {
  const key = await ensureSigningKey(paths.signingKey)
  const action = key.created ? 'Created' : 'Using'
  console.log(
    `${action} the dev signing key ${displayPath(paths.signingKey)} (kid ${key.jwk.kid}).`,
  )

  const vars = await prepareDevVars(paths.devVars, key.jwk)
  console.log(`${vars.changed ? 'Wrote' : 'Kept'} ${displayPath(paths.devVars)}.`)

  await runWrangler(paths.root, ['d1', 'migrations', 'apply', 'DB', '--local'])
  console.log('Applied the local D1 migrations.')

  await seedDemoData(paths, vars.pepper)
  console.log(
    `The demo client ${DEMO.clientId} and its owner ${DEMO.ownerId} are in the database; existing rows were kept.`,
  )

  return { jwk: key.jwk, ...vars }
}

/** Rejects when another server listens on the port, because the readiness probe would reach it. */
function assertPortFree(port) {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', (error) => {
      const reason = error.code === 'EADDRINUSE' ? 'is in use' : `cannot be opened (${error.code})`
      reject(
        new UsageError(
          `Port ${port} on ${HOST} ${reason}. Pass another one: npm start -- --port 8788`,
        ),
      )
    })
    server.listen(port, HOST, () => server.close(resolve))
  })
}

/** Polls the server until it returns any HTTP response. */
async function waitUntilReady(child, port) {
  const deadline = Date.now() + READY_TIMEOUT_MS
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error('wrangler dev exited before the server was ready; its output is above.')
    }
    try {
      await fetch(`http://${HOST}:${port}/`, { signal: AbortSignal.timeout(2_000) })
      return
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
  }
  throw new Error(
    `wrangler dev did not respond on ${HOST}:${port} within ${READY_TIMEOUT_MS / 1000} s.`,
  )
}

async function printInstructions(port, env) {
  const url = `http://${HOST}:${port}/admin/clients/${DEMO.clientId}/refresh_secret`
  const common = {
    jwk: env.jwk,
    issuer: env.issuer,
    audience: env.audience,
    subject: DEMO.ownerId,
    clientId: DEMO.clientId,
    clientIdClaim: env.clientIdClaim,
  }
  const ownerToken = await mintToken({ ...common, scope: 'secret:refresh' })
  const readOnlyToken = await mintToken({ ...common, scope: 'client:read' })

  console.log(`
Ready on http://${HOST}:${port}. The tokens below are valid for 1 hour.

Rotate the demo client's secret as its owner (200 with a new secret each time, up to the
rotation rate limit):
  curl -i -X PATCH ${url} -H 'Authorization: Bearer ${ownerToken}'

The same call with a token that lacks the secret:refresh scope (403):
  curl -i -X PATCH ${url} -H 'Authorization: Bearer ${readOnlyToken}'

Mint more tokens, e.g. for the second demo user, who holds no role for the client (403):
  npm run token -- --sub ${DEMO.otherUserId} --client-id ${DEMO.clientId} --scope secret:refresh

Press Ctrl-C to stop the server.
`)
}

/**
 * Runs wrangler dev in the foreground until it exits, forwarding stop signals to it. `vars` go
 * to wrangler as `--var`, and the printed tokens follow their issuer, audience and client id claim.
 */
async function serve(port, vars, env) {
  await assertPortFree(port)

  const { root, wranglerBin } = devPaths()
  const varArgs = Object.entries(vars).flatMap(([name, value]) => ['--var', `${name}:${value}`])
  const child = spawn(
    process.execPath,
    [wranglerBin, 'dev', '--ip', HOST, '--port', String(port), ...varArgs],
    { cwd: root, env: wranglerEnv(), stdio: 'inherit' },
  )
  const tokenSettings = {
    ...env,
    issuer: vars.JWT_ISSUER || env.issuer,
    audience: vars.JWT_AUDIENCE || env.audience,
    clientIdClaim: vars.CLIENT_ID_CLAIM || env.clientIdClaim,
  }
  const exited = new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (code, signal) => resolve(code ?? 128 + (constants.signals[signal] ?? 0)))
  })

  // A terminal sends Ctrl-C to wrangler as well. Forwarding covers a `kill` of this process alone.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
    })
  }

  try {
    await Promise.race([waitUntilReady(child, port), exited])
    if (child.exitCode === null && child.signalCode === null) {
      await printInstructions(port, tokenSettings)
    }
  } catch (error) {
    child.kill('SIGTERM')
    throw error
  }
  process.exitCode = await exited
}

async function main() {
  const options = parseOptions()
  if (options.help) {
    console.log(USAGE)
    return
  }

  const env = await setup()
  if (options.setupOnly) return

  await serve(options.port, options.vars, env)
}

runMain(main)
