// Runs `wrangler d1 execute` for the import: JSON lookups with --command, and writes with --file
// from a private temporary directory that is removed afterwards.

import { spawn } from 'node:child_process'
import { rmSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { stripVTControlCharacters } from 'node:util'
import { devPaths, wranglerEnv, writePrivateFile } from '../dev-env.mjs'

const HASH_PATTERN = /hmac-sha256\$[A-Za-z0-9_-]*\$[A-Za-z0-9_-]+/g

/**
 * @typedef {object} D1Target
 * @property {string} root the project directory, where wrangler finds its configuration
 * @property {string} database the binding or database name
 * @property {'local' | 'remote'} mode
 * @property {string} [persistTo] the local persistence directory
 * @property {string[]} secrets plain secrets to remove from any wrangler output shown
 */

/** A failed wrangler command; the message is wrangler's output without secrets or hashes. */
export class D1Error extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message)
    this.name = 'D1Error'
  }
}

/**
 * Removes secret hashes, the given plain secrets and terminal colours from wrangler output.
 * @param {string} text
 * @param {readonly string[]} secrets
 */
export function redact(text, secrets) {
  let clean = stripVTControlCharacters(text).replace(HASH_PATTERN, '[secret hash]')
  for (const secret of secrets) {
    if (secret !== '') clean = clean.replaceAll(secret, '[secret]')
  }
  return clean.trim()
}

/** @param {D1Target} target */
function executeArgs(target) {
  const args = ['d1', 'execute', target.database, `--${target.mode}`]
  if (target.persistTo !== undefined) args.push('--persist-to', target.persistTo)
  return args
}

/**
 * Runs wrangler with stdin closed, so it shows no prompt, and returns its exit code and output.
 * @param {string} root
 * @param {string[]} args
 * @param {(child: import('node:child_process').ChildProcess) => void} [onSpawn]
 * @returns {Promise<{ code: number | null, stdout: string, stderr: string }>}
 */
function runWrangler(root, args, onSpawn) {
  const { wranglerBin } = devPaths(root)
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [wranglerBin, ...args], {
      cwd: root,
      env: wranglerEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    onSpawn?.(child)
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk) => {
      stdout += chunk
    })
    child.stderr.on('data', (chunk) => {
      stderr += chunk
    })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

/**
 * Runs SQL statements with `--command --json` and returns the rows of each statement.
 * @param {D1Target} target
 * @param {string} sql
 * @returns {Promise<Record<string, unknown>[][]>}
 */
export async function queryD1(target, sql) {
  const result = await runWrangler(target.root, [
    ...executeArgs(target),
    '--json',
    '--command',
    sql,
  ])

  let parsed
  try {
    parsed = JSON.parse(result.stdout)
  } catch {
    parsed = undefined
  }
  if (result.code !== 0 || !Array.isArray(parsed)) {
    const text = parsed?.error?.text ?? `${result.stdout}\n${result.stderr}`
    throw new D1Error(`wrangler d1 execute failed: ${redact(String(text), target.secrets)}`)
  }
  return parsed.map((statement) => statement.results ?? [])
}

/**
 * Runs an SQL file with `wrangler d1 execute --file`. The file is written readable by its owner
 * only, in a new temporary directory that is removed when wrangler exits, on error, and on
 * SIGINT or SIGTERM, which also stop wrangler. Wrangler 4.164 runs a local file as one D1 batch,
 * which is one transaction. It sends a remote file to D1's import API, which restores the
 * database when the import fails. So either every statement of the file is applied or none is.
 * @param {D1Target} target
 * @param {string} sql
 */
export async function executeD1File(target, sql) {
  const dir = await mkdtemp(path.join(tmpdir(), 'mithril-import-'))
  /** @type {import('node:child_process').ChildProcess | undefined} */
  let wrangler
  const removeNow = () => rmSync(dir, { recursive: true, force: true })
  const removeAndExit = (/** @type {NodeJS.Signals} */ signal) => {
    wrangler?.kill(signal)
    removeNow()
    process.exit(signal === 'SIGINT' ? 130 : 143)
  }
  process.once('exit', removeNow)
  process.once('SIGINT', removeAndExit)
  process.once('SIGTERM', removeAndExit)

  try {
    const file = path.join(dir, 'import.sql')
    await writePrivateFile(file, sql)
    const args = [...executeArgs(target), '--file', file]
    const result = await runWrangler(target.root, args, (child) => {
      wrangler = child
    })
    if (result.code !== 0) {
      const output = redact(`${result.stdout}\n${result.stderr}`, target.secrets)
      throw new D1Error(`wrangler d1 execute --file failed:\n${output}`)
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
    process.removeListener('exit', removeNow)
    process.removeListener('SIGINT', removeAndExit)
    process.removeListener('SIGTERM', removeAndExit)
  }
}
