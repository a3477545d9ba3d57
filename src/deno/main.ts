import { mkdir } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import type { DatabaseSync } from 'node:sqlite'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { renderStaticAssets, type StaticAsset } from '../assets.ts'
import type { Env } from '../config.ts'
import worker from '../index.ts'
import { describeError, log } from '../log.ts'
import { openSqlite, SqliteD1Database } from './d1.ts'
import { loadSettings, SETTING_NAMES, type Settings } from './env.ts'
import { applyMigrations } from './migrations.ts'

/** The project directory, where wrangler.toml, .dev.vars and migrations/ are. */
export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** The database file of the entry, unless `--database` names another. */
export const DEFAULT_DATABASE = join(PROJECT_ROOT, '.dev', 'deno', 'd1.sqlite')

/** The port of `wrangler dev`, so URLs and curl commands work with either runtime. */
export const DEFAULT_PORT = 8787

export interface WorkerEnvOptions {
  /** A SQLite file, or `:memory:`. */
  database: string
  /** Settings that override those of wrangler.toml, .dev.vars and the environment. */
  settings?: Settings
  /** Reads no file and no environment variable: the Worker gets `settings` only. */
  isolated?: boolean
}

export interface WorkerEnv {
  env: Env
  connection: DatabaseSync
  /** The migrations that this call applied. */
  migrated: string[]
}

/** Reads the Worker's settings as `wrangler dev` does, with environment variables on top. */
export function readSettings(): Promise<Settings> {
  const environment: Record<string, string | undefined> = {}
  for (const name of SETTING_NAMES) environment[name] = Deno.env.get(name)

  return loadSettings({
    wranglerToml: join(PROJECT_ROOT, 'wrangler.toml'),
    devVars: join(PROJECT_ROOT, '.dev.vars'),
    environment,
  })
}

/**
 * Opens the database, applies the migrations it lacks and builds the env of the Worker: `DB` is
 * the D1 adapter and every other binding a setting. The Worker parses the env once, so the same
 * object must serve every request.
 */
export async function createWorkerEnv(options: WorkerEnvOptions): Promise<WorkerEnv> {
  if (options.database !== ':memory:') {
    await mkdir(dirname(resolve(options.database)), { recursive: true })
  }

  const connection = openSqlite(options.database)
  try {
    const migrated = await applyMigrations(connection, join(PROJECT_ROOT, 'migrations'))
    const settings = options.isolated === true ? {} : await readSettings()
    const env: Env = { ...settings, ...options.settings, DB: new SqliteD1Database(connection) }
    return { env, connection, migrated }
  } catch (error) {
    connection.close()
    throw error
  }
}

/** Creates the ExecutionContext of one request. Failures of waitUntil tasks are logged. */
function createExecutionContext(): ExecutionContext {
  return {
    waitUntil(promise) {
      promise.catch((error: unknown) => {
        log('error', 'waitUntil task failed', describeError(error))
      })
    },
    passThroughOnException() {},
    props: {},
  }
}

/**
 * Passes the caller's address as `cf-connecting-ip`, which the Cloudflare edge sets and the
 * Worker records in its audit rows. A value sent by the client is dropped, as the edge drops it.
 */
function withClientAddress(request: Request, info: Deno.ServeHandlerInfo): Request {
  const headers = new Headers(request.headers)
  headers.delete('cf-connecting-ip')
  if (info.remoteAddr.transport === 'tcp') headers.set('cf-connecting-ip', info.remoteAddr.hostname)

  // The copy is built from parts: copying the Request itself would read request.signal, which
  // makes Deno 2.9 warn about its legacy abort behaviour on every request.
  return new Request(request.url, { method: request.method, headers, body: request.body })
}

export interface ServeOptions {
  port: number
  /** The address to listen on: 127.0.0.1 unless set, because the entry serves plain HTTP. */
  hostname?: string
  signal?: AbortSignal
  onListen?: (address: Deno.NetAddr) => void
}

/**
 * Serves a request for an asset's path as Workers Static Assets does, before the Worker runs.
 * GET and HEAD get the file, and other methods get 405 with an empty body. Returns undefined for
 * every other path.
 */
export function serveStaticAsset(
  request: Request,
  assets: readonly StaticAsset[],
): Response | undefined {
  const { pathname } = new URL(request.url)
  const asset = assets.find((candidate) => candidate.urlPath === pathname)
  if (asset === undefined) return undefined

  if (request.method === 'GET') return new Response(asset.body, { headers: asset.headers })
  if (request.method === 'HEAD') return new Response(null, { headers: asset.headers })
  return new Response(null, { status: 405, headers: asset.headers })
}

/**
 * Serves the Worker's fetch handler with Deno.serve, and the static assets (the OpenAPI document
 * and the reference page) with the headers that public/_headers gives them on Workers.
 */
export function serveWorker(env: Env, options: ServeOptions): Deno.HttpServer<Deno.NetAddr> {
  const assets = renderStaticAssets()
  return Deno.serve(
    {
      hostname: options.hostname ?? '127.0.0.1',
      port: options.port,
      signal: options.signal,
      onListen: options.onListen ?? (() => {}),
    },
    async (request, info) =>
      serveStaticAsset(request, await assets) ??
      worker.fetch(withClientAddress(request, info), env, createExecutionContext()),
  )
}

export interface CommandLine {
  port: number
  database: string
}

/** Parses `--port` and `--database`; throws with the usage on anything else. */
export function parseCommandLine(args: string[]): CommandLine {
  const usage = 'Usage: deno task start [--port 8787] [--database .dev/deno/d1.sqlite]'
  let values: { port?: string; database?: string }
  try {
    values = parseArgs({
      args,
      options: { port: { type: 'string' }, database: { type: 'string' } },
    }).values
  } catch (error) {
    throw new Error(`${(error as Error).message}\n${usage}`)
  }

  const port = values.port === undefined ? DEFAULT_PORT : Number(values.port)
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new Error(`--port must be a whole number from 0 to 65535.\n${usage}`)
  }
  return { port, database: values.database ?? DEFAULT_DATABASE }
}

/** Stops the server and closes the database on Ctrl-C or SIGTERM. */
export function stopOnSignals(server: Deno.HttpServer, connection: DatabaseSync): void {
  const stop = async () => {
    await server.shutdown()
    connection.close()
    Deno.exit(0)
  }
  Deno.addSignalListener('SIGINT', stop)
  Deno.addSignalListener('SIGTERM', stop)
}

async function main(): Promise<void> {
  const commandLine = parseCommandLine(Deno.args)
  const { env, connection, migrated } = await createWorkerEnv({ database: commandLine.database })
  if (migrated.length > 0) console.log(`Applied migrations: ${migrated.join(', ')}`)

  const server = serveWorker(env, {
    port: commandLine.port,
    onListen: ({ hostname, port }) => console.log(`Listening on http://${hostname}:${port}`),
  })
  stopOnSignals(server, connection)
}

if (import.meta.main) await main()
