/// <reference types="node" />
// Runs the wrangler CLI of this project for end-to-end tests: one-shot commands, and a
// `wrangler dev` server in its own process group so that stopping it also stops workerd.

import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const WRANGLER_BIN = path.join(PROJECT_ROOT, 'node_modules', 'wrangler', 'bin', 'wrangler.js')
const READY_TIMEOUT_MS = 60_000
const STOP_TIMEOUT_MS = 10_000

/**
 * Returns the environment of every child process, in which wrangler contacts no host beyond
 * loopback: no usage metrics, no banner with its npm update check, and no download of the
 * `Request.cf` object. `logDir` keeps wrangler's debug log there.
 */
export function childEnv(logDir?: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    WRANGLER_SEND_METRICS: 'false',
    WRANGLER_HIDE_BANNER: 'true',
    CLOUDFLARE_CF_FETCH_ENABLED: 'false',
    ...(logDir === undefined ? {} : { WRANGLER_LOG_PATH: logDir }),
  }
}

export interface RunResult {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs a command to completion with stdin closed, so no prompt waits for input. */
export async function run(
  command: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<RunResult> {
  const child = spawn(command, args, {
    cwd: options.cwd ?? PROJECT_ROOT,
    env: options.env ?? childEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk) => {
    stdout += chunk
  })
  child.stderr.on('data', (chunk) => {
    stderr += chunk
  })
  const [code] = (await once(child, 'close')) as [number | null]
  return { code, stdout, stderr }
}

/**
 * Runs `wrangler ARGS` in `cwd` (the project by default) and throws with its output when it
 * fails. `logDir` keeps wrangler's debug log there.
 */
export async function wrangler(
  args: string[],
  options: { cwd?: string; logDir?: string } = {},
): Promise<string> {
  const result = await run(process.execPath, [WRANGLER_BIN, ...args], {
    cwd: options.cwd ?? PROJECT_ROOT,
    env: childEnv(options.logDir),
  })
  if (result.code !== 0) {
    throw new Error(
      `wrangler ${args.join(' ')} exited with ${result.code}:\n${result.stdout}${result.stderr}`,
    )
  }
  return result.stdout
}

/** Returns a loopback port that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  server.close()
  if (address === null || typeof address === 'string') throw new Error('no TCP port assigned')
  return address.port
}

export interface DevServer {
  origin: string
  /** Everything wrangler and the Worker wrote to stdout and stderr so far. */
  output(): string
  stop(): Promise<void>
}

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null
}

/** Sends a signal to the whole process group. A group that has already exited is not an error. */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return
  try {
    process.kill(-child.pid, signal)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error
  }
}

async function stopGroup(child: ChildProcess): Promise<void> {
  if (!isRunning(child)) {
    signalGroup(child, 'SIGKILL')
    return
  }

  const exited = once(child, 'exit')
  signalGroup(child, 'SIGTERM')
  const timer = setTimeout(() => signalGroup(child, 'SIGKILL'), STOP_TIMEOUT_MS)
  await exited
  clearTimeout(timer)
  // workerd may outlive wrangler for a moment, so end whatever is left of the group.
  signalGroup(child, 'SIGKILL')
}

async function waitUntilReady(child: ChildProcess, origin: string, output: () => string) {
  const deadline = Date.now() + READY_TIMEOUT_MS
  while (Date.now() < deadline) {
    if (!isRunning(child)) throw new Error(`wrangler dev exited early:\n${output()}`)
    try {
      await fetch(`${origin}/`, { signal: AbortSignal.timeout(2_000) })
      return
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }
  throw new Error(`wrangler dev did not respond within ${READY_TIMEOUT_MS} ms:\n${output()}`)
}

/**
 * Starts `wrangler dev ARGS` on a free loopback port and waits until it serves HTTP. The server
 * runs in its own process group; `stop()` ends the group, and so does the exit of this process.
 */
export async function startDev(args: string[], logDir?: string): Promise<DevServer> {
  const port = await freePort()
  const origin = `http://127.0.0.1:${port}`
  const child = spawn(
    process.execPath,
    [WRANGLER_BIN, 'dev', '--ip', '127.0.0.1', '--port', String(port), ...args],
    {
      cwd: PROJECT_ROOT,
      env: childEnv(logDir),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )

  let output = ''
  child.stdout?.on('data', (chunk) => {
    output += chunk
  })
  child.stderr?.on('data', (chunk) => {
    output += chunk
  })
  const killOnExit = () => signalGroup(child, 'SIGKILL')
  process.once('exit', killOnExit)

  const server: DevServer = {
    origin,
    output: () => output,
    stop: async () => {
      process.removeListener('exit', killOnExit)
      await stopGroup(child)
    },
  }
  try {
    await waitUntilReady(child, origin, server.output)
  } catch (error) {
    await server.stop()
    throw error
  }
  return server
}
