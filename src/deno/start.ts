// `deno task start`: the bootstrap of `npm start` on Deno. It uses the same dev signing key and
// .dev.vars, seeds the same demo rows into the local SQLite file, serves the Worker and prints a
// curl command with a fresh token. Tokens minted for one runtime work with the other.

import { buildSeedSql, DEMO } from '../../scripts/demo-data.mjs'
import {
  DEV_AUDIENCE,
  DEV_ISSUER,
  devPaths,
  displayPath,
  ensureSigningKey,
  generatePepper,
  mintToken,
  publicKeySet,
  readDevVars,
  UsageError,
  updateDevVars,
} from '../../scripts/dev-env.mjs'
import { type Config, ConfigError, type Env, parseConfig } from '../config.ts'
import { runScript } from './d1.ts'
import { createWorkerEnv, parseCommandLine, serveWorker, stopOnSignals } from './main.ts'

type SigningJwk = Record<string, string>

/**
 * Writes the dev key's public key set to .dev.vars, keeping the issuer, audience and pepper that
 * the file has, or adding new ones, as `npm start` does. The pepper is kept because the seeded
 * hash depends on it.
 */
async function prepareDevVars(file: string, jwk: SigningJwk): Promise<boolean> {
  const existing = await readDevVars(file)
  if (existing.JWKS_URL) {
    throw new UsageError(
      `${displayPath(file)} sets JWKS_URL, but deno task start signs tokens with the dev key, ` +
        'which the Worker reads from JWKS. Remove the JWKS_URL line and run it again.',
    )
  }

  return updateDevVars(file, {
    JWKS: JSON.stringify(publicKeySet(jwk)),
    JWT_ISSUER: existing.JWT_ISSUER || DEV_ISSUER,
    JWT_AUDIENCE: existing.JWT_AUDIENCE || DEV_AUDIENCE,
    SECRET_PEPPER: existing.SECRET_PEPPER || generatePepper(),
  })
}

/**
 * Validates the settings in effect (.dev.vars may be overridden by environment variables) and
 * fails when the Worker would reject tokens of the dev key.
 */
function readDevConfig(env: Env, jwk: SigningJwk): Config {
  let config: Config
  try {
    config = parseConfig(env)
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(`Invalid setting ${error.message}`)
    throw error
  }

  const keys = config.jwks.kind === 'local' ? config.jwks.keySet.keys : []
  if (!keys.some((candidate) => candidate.kid === jwk.kid)) {
    throw new UsageError(
      `The key set in effect lacks the dev signing key (kid ${jwk.kid}). Unset JWKS and ` +
        'JWKS_URL in the environment, or delete the JWKS line of .dev.vars and run again.',
    )
  }
  return config
}

async function printInstructions(port: number, config: Config, jwk: SigningJwk): Promise<void> {
  const url = `http://127.0.0.1:${port}/admin/clients/${DEMO.clientId}/refresh_secret`
  const token = await mintToken({
    jwk,
    issuer: config.issuer,
    audience: config.audience,
    subject: DEMO.ownerId,
    clientId: DEMO.clientId,
    clientIdClaim: config.clientIdClaim,
    scope: 'secret:refresh',
  })

  console.log(`
Ready on http://127.0.0.1:${port}. The token below is valid for 1 hour.

Rotate the demo client's secret as its owner (200 with a new secret each time, up to the
rotation rate limit):
  curl -i -X PATCH ${url} -H 'Authorization: Bearer ${token}'

Mint more tokens with: npm run token -- --help
Press Ctrl-C to stop the server.
`)
}

function listen(env: Env, port: number): Deno.HttpServer<Deno.NetAddr> {
  try {
    return serveWorker(env, { port })
  } catch (error) {
    if (!(error instanceof Deno.errors.AddrInUse)) throw error
    throw new UsageError(
      `Port ${port} on 127.0.0.1 is in use. Pass another one: npx deno task start --port 8788`,
    )
  }
}

async function main(): Promise<void> {
  const commandLine = parseCommandLine(Deno.args)
  const paths = devPaths()

  const key = await ensureSigningKey(paths.signingKey)
  const action = key.created ? 'Created' : 'Using'
  console.log(
    `${action} the dev signing key ${displayPath(paths.signingKey)} (kid ${key.jwk.kid}).`,
  )
  const changed = await prepareDevVars(paths.devVars, key.jwk)
  console.log(`${changed ? 'Wrote' : 'Kept'} ${displayPath(paths.devVars)}.`)

  const { env, connection, migrated } = await createWorkerEnv({ database: commandLine.database })
  console.log(`Opened ${displayPath(commandLine.database)}; applied ${migrated.length} migrations.`)
  const config = readDevConfig(env, key.jwk)

  runScript(connection, await buildSeedSql(config.pepper))
  console.log(
    `The demo client ${DEMO.clientId} and its owner ${DEMO.ownerId} are in the database; existing rows were kept.`,
  )

  const server = listen(env, commandLine.port)
  stopOnSignals(server, connection)
  await printInstructions(server.addr.port, config, key.jwk)
}

try {
  await main()
} catch (error) {
  console.error(error instanceof UsageError ? error.message : error)
  Deno.exit(error instanceof UsageError ? error.exitCode : 1)
}
