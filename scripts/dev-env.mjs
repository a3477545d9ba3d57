// Local development environment shared by scripts/start.mjs, scripts/token.mjs and
// scripts/seed.mjs: file locations, the ES256 dev signing key, .dev.vars, dev tokens and wrangler.

import { spawn } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs, parseEnv } from 'node:util'
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, SignJWT } from 'jose'

/** The project directory: the parent of scripts/, where wrangler.toml and migrations/ are. */
export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

/**
 * The issuer and audience written to a new .dev.vars. The issuer is only a name, and nothing
 * serves it.
 */
export const DEV_ISSUER = 'https://dev-issuer.invalid'
export const DEV_AUDIENCE = 'refresh-secret'

/** The only algorithm of the dev signing key. */
export const DEV_ALGORITHM = 'ES256'

/** Lifetime of a dev token when none is given, in seconds. */
export const DEFAULT_TOKEN_TTL = 3600

const MIN_PEPPER_BYTES = 32

/** The command that creates the dev key and .dev.vars, for error messages. */
export const SETUP_HINT = 'Run `npm start` (or `node scripts/start.mjs --setup-only`) first.'

/** An error whose message is meant for the person running the script, shown without a stack. */
export class UsageError extends Error {
  /**
   * @param {string} message
   * @param {number} [exitCode]
   */
  constructor(message, exitCode = 1) {
    super(message)
    this.name = 'UsageError'
    this.exitCode = exitCode
  }
}

/**
 * Parses the command line with node:util parseArgs, adding `-h, --help`. Invalid arguments throw
 * a UsageError with exit code 2 that ends with the usage text.
 * @param {import('node:util').ParseArgsConfig['options']} options
 * @param {string} usage
 * @returns {Record<string, string | string[] | boolean | undefined>}
 */
export function parseCommandLine(options, usage) {
  try {
    return parseArgs({ options: { ...options, help: { type: 'boolean', short: 'h' } } }).values
  } catch (error) {
    throw new UsageError(`${error.message}\n\n${usage}`, 2)
  }
}

/**
 * Runs a script's main function. A UsageError prints its message alone and sets its exit code, and
 * any other error prints with its stack and sets exit code 1.
 * @param {() => Promise<void>} main
 */
export function runMain(main) {
  main().catch((error) => {
    if (error instanceof UsageError) {
      console.error(error.message)
      process.exitCode = error.exitCode
      return
    }
    console.error(error)
    process.exitCode = 1
  })
}

/**
 * Returns the locations of the dev files under a project directory.
 * @param {string} [root]
 */
export function devPaths(root = PROJECT_ROOT) {
  const devDir = path.join(root, '.dev')
  return {
    root,
    devDir,
    signingKey: path.join(devDir, 'signing-key.json'),
    devVars: path.join(root, '.dev.vars'),
    wranglerBin: path.join(root, 'node_modules', 'wrangler', 'bin', 'wrangler.js'),
  }
}

/** Returns a path relative to the working directory when that is shorter, for messages. */
export function displayPath(file) {
  const relative = path.relative(process.cwd(), file)
  return relative !== '' && !relative.startsWith('..') ? relative : file
}

/**
 * Writes a file readable by its owner only. The content goes to a temporary file that is then
 * renamed, so a reader never sees half a file.
 * @param {string} file
 * @param {string} content
 */
export async function writePrivateFile(file, content) {
  await mkdir(path.dirname(file), { recursive: true })
  const temporary = `${file}.${process.pid}.tmp`
  await writeFile(temporary, content, { mode: 0o600 })
  await chmod(temporary, 0o600)
  await rename(temporary, file)
}

/** @param {unknown} jwk */
function isDevPrivateJwk(jwk) {
  if (typeof jwk !== 'object' || jwk === null) return false

  const { kty, crv, x, y, d, kid } = /** @type {Record<string, unknown>} */ (jwk)
  return (
    kty === 'EC' &&
    crv === 'P-256' &&
    [x, y, d, kid].every((value) => typeof value === 'string' && value !== '')
  )
}

/**
 * Reads the dev signing key: a private P-256 JWK with a `kid`.
 * @param {string} file
 * @returns {Promise<Record<string, string>>}
 */
export async function readSigningKeyJwk(file) {
  let text
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    if (error?.code === 'ENOENT') {
      throw new UsageError(`No dev signing key at ${displayPath(file)}. ${SETUP_HINT}`)
    }
    throw error
  }

  let jwk
  try {
    jwk = JSON.parse(text)
  } catch {
    jwk = undefined
  }
  if (!isDevPrivateJwk(jwk)) {
    throw new UsageError(
      `${displayPath(file)} is not a private ES256 (P-256) JWK with a kid. ` +
        'Delete it and run `npm start` to create a new key.',
    )
  }
  return jwk
}

/**
 * Returns the dev signing key, creating it on first use. The `kid` is the key's RFC 7638
 * thumbprint, so the same key always has the same id.
 * @param {string} file
 * @returns {Promise<{ jwk: Record<string, string>, created: boolean }>}
 */
export async function ensureSigningKey(file) {
  if (existsSync(file)) return { jwk: await readSigningKeyJwk(file), created: false }

  const { privateKey } = await generateKeyPair(DEV_ALGORITHM, { extractable: true })
  const exported = await exportJWK(privateKey)
  const kid = await calculateJwkThumbprint(exported)
  const jwk = { ...exported, kid, alg: DEV_ALGORITHM, use: 'sig' }

  await writePrivateFile(file, `${JSON.stringify(jwk, null, 2)}\n`)
  return { jwk, created: true }
}

/**
 * Returns the public key set of a private JWK, as the Worker's JWKS setting expects it.
 * @param {Record<string, string>} privateJwk
 */
export function publicKeySet(privateJwk) {
  const { kty, crv, x, y, kid, alg, use } = privateJwk
  return { keys: [{ kty, crv, x, y, kid, alg, use }] }
}

/**
 * Reads a dotenv-style file such as .dev.vars. Returns an empty object when it does not exist.
 * @param {string} file
 * @returns {Promise<Record<string, string>>}
 */
export async function readDevVars(file) {
  try {
    return parseEnv(await readFile(file, 'utf8'))
  } catch (error) {
    if (error?.code === 'ENOENT') return {}
    throw error
  }
}

/** Base64url of 32 random bytes: a new SECRET_PEPPER. */
export function generatePepper() {
  return randomBytes(MIN_PEPPER_BYTES).toString('base64url')
}

/**
 * Decodes a SECRET_PEPPER value with the Worker's rules: Base64url without padding, at least
 * 32 bytes. The error names the setting, never the value.
 * @param {string} encoded
 * @param {string} [setting]
 */
export function decodePepper(encoded, setting = 'SECRET_PEPPER') {
  if (!/^[A-Za-z0-9_-]+$/.test(encoded)) {
    throw new UsageError(`${setting} must be Base64url without padding.`)
  }

  const key = new Uint8Array(Buffer.from(encoded, 'base64url'))
  if (key.length < MIN_PEPPER_BYTES) {
    throw new UsageError(`${setting} must decode to at least ${MIN_PEPPER_BYTES} bytes.`)
  }
  return key
}

/**
 * Formats one dotenv line. JSON and other values with special characters are single-quoted,
 * which dotenv (and so wrangler) reads literally.
 * @param {string} name
 * @param {string} value
 */
function dotenvLine(name, value) {
  if (/^[A-Za-z0-9_.:/@+,-]*$/.test(value)) return `${name}=${value}`
  if (/['\r\n]/.test(value)) {
    throw new UsageError(`${name} cannot be written to .dev.vars: it has a quote or a newline.`)
  }
  return `${name}='${value}'`
}

const DOTENV_NAME = /^\s*(?:export\s+)?([\w.-]+)\s*=/

/**
 * Sets variables in a dotenv file. Lines of other variables and comments stay as they are, and a
 * variable that is not in the file yet is appended. Returns whether the file changed.
 * @param {string} file
 * @param {Record<string, string>} values
 */
export async function updateDevVars(file, values) {
  let before = ''
  try {
    before = await readFile(file, 'utf8')
  } catch (error) {
    if (error?.code !== 'ENOENT') throw error
  }

  const pending = new Map(Object.entries(values))
  const lines = before === '' ? [] : before.replace(/\n$/, '').split('\n')
  const kept = []
  for (const line of lines) {
    const name = DOTENV_NAME.exec(line)?.[1]
    if (name === undefined || !(name in values)) {
      kept.push(line)
    } else if (pending.has(name)) {
      kept.push(dotenvLine(name, pending.get(name) ?? ''))
      pending.delete(name)
    }
    // A repeated line of a variable set here is dropped, so the file keeps one value.
  }
  if (lines.length === 0) {
    kept.push(
      '# Local settings for `wrangler dev`, written by scripts/start.mjs. Never commit this file.',
    )
  }
  for (const [name, value] of pending) kept.push(dotenvLine(name, value))

  const after = `${kept.join('\n')}\n`
  if (after === before) return false

  await writePrivateFile(file, after)
  return true
}

/**
 * Signs a dev access token in the RFC 9068 JWT profile (`typ` at+jwt).
 * @param {object} options
 * @param {Record<string, string>} options.jwk the private signing JWK
 * @param {string} options.issuer
 * @param {string} options.audience
 * @param {string} options.subject the user id
 * @param {string} options.clientId
 * @param {string} [options.clientIdClaim] `client_id`, `azp` or `cid`
 * @param {string} [options.scope] space-delimited; an empty scope leaves the claim out
 * @param {number} [options.ttl] seconds until `exp`
 */
export async function mintToken({
  jwk,
  issuer,
  audience,
  subject,
  clientId,
  clientIdClaim = 'client_id',
  scope = '',
  ttl = DEFAULT_TOKEN_TTL,
}) {
  const key = await importJWK(jwk, DEV_ALGORITHM)
  const claims = { [clientIdClaim]: clientId }
  if (scope.trim() !== '') claims.scope = scope.trim()

  const now = Math.floor(Date.now() / 1000)
  return new SignJWT(claims)
    .setProtectedHeader({ alg: DEV_ALGORITHM, kid: jwk.kid, typ: 'at+jwt' })
    .setIssuer(issuer)
    .setAudience(audience)
    .setSubject(subject)
    .setJti(randomUUID())
    .setIssuedAt(now)
    .setExpirationTime(now + ttl)
    .sign(key)
}

/**
 * Returns the environment for wrangler, which then contacts no host beyond loopback: no usage
 * metrics, no banner (its update check queries the npm registry), and no download of the
 * `Request.cf` object from workers.cloudflare.com, which the Worker does not read. A value that
 * the caller set wins.
 */
export function wranglerEnv() {
  return {
    ...process.env,
    WRANGLER_SEND_METRICS: process.env.WRANGLER_SEND_METRICS ?? 'false',
    WRANGLER_HIDE_BANNER: process.env.WRANGLER_HIDE_BANNER ?? 'true',
    CLOUDFLARE_CF_FETCH_ENABLED: process.env.CLOUDFLARE_CF_FETCH_ENABLED ?? 'false',
  }
}

/**
 * Runs a wrangler command to completion with stdin closed, so wrangler shows no prompt and
 * takes the default. Returns the collected output, or rejects with it on a non-zero exit.
 * @param {string} root the project directory
 * @param {string[]} args
 * @returns {Promise<string>}
 */
export function runWrangler(root, args) {
  const { wranglerBin } = devPaths(root)
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [wranglerBin, ...args], {
      cwd: root,
      env: wranglerEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    })

    let output = ''
    child.stdout.on('data', (chunk) => {
      output += chunk
    })
    child.stderr.on('data', (chunk) => {
      output += chunk
    })
    child.on('error', reject)
    child.on('close', (code, signal) => {
      if (code === 0) {
        resolve(output)
        return
      }
      const status = signal === null ? `exit code ${code}` : `signal ${signal}`
      reject(new Error(`wrangler ${args.slice(0, 3).join(' ')} failed (${status}):\n${output}`))
    })
  })
}
