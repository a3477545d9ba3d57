// Builds the Workers under test and serves them in workerd through Miniflare's API.
import { execFileSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'
import { convertV4MiniflareOptions, Miniflare } from 'miniflare'
import { unstable_readConfig } from 'wrangler'

export const ROOT = fileURLToPath(new URL('..', import.meta.url))
export const BUILD_DIR = join(ROOT, 'bench', '.build')
const WRANGLER = join(ROOT, 'node_modules', '.bin', 'wrangler')

/** esbuild options for a module Worker, with wrangler 4.164's default package conditions. */
export const WORKERD_BUILD_OPTIONS = {
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  target: 'es2022',
  conditions: ['workerd', 'worker', 'browser'],
  mainFields: ['module', 'main'],
  external: ['cloudflare:*'],
}

/** Reads the deployed Worker's configuration from wrangler.toml as `wrangler deploy` reads it. */
export function readWranglerConfig() {
  const config = unstable_readConfig({ config: join(ROOT, 'wrangler.toml') })
  return { compatibilityDate: config.compatibility_date, vars: config.vars ?? {} }
}

function wranglerDryRun(outdir, extraArgs) {
  rmSync(outdir, { recursive: true, force: true })
  execFileSync(WRANGLER, ['deploy', '--dry-run', '--outdir', outdir, ...extraArgs], {
    cwd: ROOT,
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false' },
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  const script = readdirSync(outdir).find((name) => /\.(m?js)$/.test(name))
  if (script === undefined) throw new Error(`wrangler wrote no script to ${outdir}`)
  return join(outdir, script)
}

/** Gzip size in bytes at level 9, of the bundle as uploaded (source maps excluded). */
export function gzipBytes(path) {
  return gzipSync(readFileSync(path), { level: 9 }).length
}

/**
 * Builds the refresh-secret Worker and the floor Worker with `wrangler deploy --dry-run`, as
 * deployed and minified, and the probe Worker with esbuild. Returns the script paths.
 */
export async function buildWorkers({ compatibilityDate }) {
  mkdirSync(BUILD_DIR, { recursive: true })
  const floorConfig = join(BUILD_DIR, 'floor.wrangler.toml')
  writeFileSync(
    floorConfig,
    [
      'name = "refresh-secret-floor"',
      `main = "${relative(BUILD_DIR, join(ROOT, 'bench', 'floor-worker.ts'))}"`,
      `compatibility_date = "${compatibilityDate}"`,
      '',
    ].join('\n'),
  )

  const worker = wranglerDryRun(join(BUILD_DIR, 'worker'), [])
  const workerMinified = wranglerDryRun(join(BUILD_DIR, 'worker-min'), ['--minify'])
  const floor = wranglerDryRun(join(BUILD_DIR, 'floor'), ['--config', floorConfig])
  const floorMinified = wranglerDryRun(join(BUILD_DIR, 'floor-min'), [
    '--config',
    floorConfig,
    '--minify',
  ])

  const probe = join(BUILD_DIR, 'probe', 'probe-worker.js')
  await build({
    ...WORKERD_BUILD_OPTIONS,
    entryPoints: [join(ROOT, 'bench', 'probe-worker.ts')],
    outfile: probe,
    logLevel: 'warning',
  })
  // The runtime's own start-up cost: a Worker that returns 401 without any code of ours.
  const empty = join(BUILD_DIR, 'empty', 'empty-worker.js')
  mkdirSync(join(BUILD_DIR, 'empty'), { recursive: true })
  writeFileSync(empty, 'export default { fetch: () => new Response(null, { status: 401 }) }\n')

  return { worker, workerMinified, floor, floorMinified, probe, empty }
}

/**
 * Creates a Miniflare instance from v4-style worker options. Worker logs are counted by level
 * and discarded. `persistPath` keeps storage, the Cache API included, on disk across instances.
 */
export function startMiniflare(workers, logCounts = { error: 0, warn: 0, other: 0 }, persistPath) {
  const shared = {
    ...(persistPath === undefined ? {} : { resourcePersistencePath: persistPath }),
    handleStructuredLogs: (log) => {
      if (process.env.BENCH_DEBUG) console.log(log.message)
      if (log.level === 'error') logCounts.error++
      else if (log.level === 'warn') logCounts.warn++
      else logCounts.other++
    },
  }
  return new Miniflare(convertV4MiniflareOptions({ ...shared, workers }))
}

/** Options of one Worker served on its own loopback socket, bypassing Miniflare's router. */
export function workerOptions({ name, scriptPath, compatibilityDate, bindings, d1 = true }) {
  return {
    name,
    modules: true,
    scriptPath,
    compatibilityDate,
    bindings,
    ...(d1 ? { d1Databases: { DB: 'refresh-secret-bench' } } : {}),
    unsafeDirectSockets: [{ host: '127.0.0.1', port: 0 }],
  }
}

/** Returns the pid of the workerd process that Miniflare spawned from this process. */
export function findWorkerdPid() {
  const pids = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const match = /^\d+ \((.*)\) \S+ (\d+)/.exec(stat)
      if (match?.[1] === 'workerd' && Number(match[2]) === process.pid) pids.push(Number(entry))
    } catch {
      // The process ended while the list was read.
    }
  }
  if (pids.length !== 1) throw new Error(`expected one workerd child, found ${pids.length}`)
  return pids[0]
}

const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim())

/** User plus system CPU time of a process in milliseconds, from /proc/PID/stat. */
export function readCpuMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // Fields after the command name, which may contain spaces, start at field 3 (state).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const utime = Number(fields[11])
  const stime = Number(fields[12])
  return ((utime + stime) * 1000) / CLOCK_TICKS
}

/** Splits a migration file into statements; the migrations contain no `;` inside literals. */
function splitStatements(sql) {
  return sql
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('--'))
    .join('\n')
    .split(';')
    .map((statement) => statement.trim())
    .filter((statement) => statement !== '')
}

/** Applies every file of migrations/ in name order, each as one batch. */
export async function applyMigrations(db) {
  const directory = join(ROOT, 'migrations')
  const files = readdirSync(directory)
    .filter((name) => name.endsWith('.sql'))
    .sort()
  for (const file of files) {
    const statements = splitStatements(readFileSync(join(directory, file), 'utf8'))
    await db.batch(statements.map((statement) => db.prepare(statement)))
  }
  return files
}
