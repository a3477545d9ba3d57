// Finds the key that the import hashes client secrets with: the Worker's SECRET_PEPPER and its
// key id. Values never appear in messages; only the names of the settings and files do.

import { existsSync } from 'node:fs'
import path from 'node:path'
import { decodePepper, readDevVars, UsageError } from '../dev-env.mjs'

const KEY_ID_PATTERN = /^[A-Za-z0-9_-]{1,32}$/
const DEFAULT_KEY_ID = 'k1'
const CONFIG_FILES = ['wrangler.json', 'wrangler.jsonc', 'wrangler.toml']

/**
 * @typedef {object} LoadedPepper
 * @property {{ id: string, key: Uint8Array }} pepper
 * @property {string} source where the key came from, for the summary
 */

/**
 * Reads the variables that `wrangler dev` gives a local Worker: .dev.vars when it exists, else
 * .env and then .env.local (wrangler 4 getVarsForDev). Returns the values and the files read.
 * @param {string} root the directory of the wrangler configuration
 */
export async function readLocalVars(root) {
  const devVars = path.join(root, '.dev.vars')
  if (existsSync(devVars)) return { values: await readDevVars(devVars), files: ['.dev.vars'] }
  if (process.env.CLOUDFLARE_LOAD_DEV_VARS_FROM_DOT_ENV === 'false')
    return { values: {}, files: [] }

  const files = ['.env', '.env.local'].filter((name) => existsSync(path.join(root, name)))
  /** @type {Record<string, string>} */
  const values = {}
  for (const name of files) Object.assign(values, await readDevVars(path.join(root, name)))
  return { values, files }
}

/**
 * Returns SECRET_PEPPER_ID from the [vars] of the wrangler configuration, which the deployed
 * Worker and `wrangler dev` both read, or undefined when it is not set there.
 * @param {string} root
 */
export async function readConfiguredKeyId(root) {
  const config = CONFIG_FILES.map((name) => path.join(root, name)).find((file) => existsSync(file))
  if (config === undefined) return undefined

  const { experimental_readRawConfig: readRawConfig } = await import('wrangler')
  const { rawConfig } = readRawConfig({ config })
  const value = rawConfig.vars?.SECRET_PEPPER_ID
  return typeof value === 'string' && value !== '' ? value : undefined
}

/**
 * @param {string} id
 * @param {string} setting
 */
function checkKeyId(id, setting) {
  if (!KEY_ID_PATTERN.test(id)) {
    throw new UsageError(`${setting} must be 1 to 32 characters of A-Z, a-z, 0-9, _ or -.`, 2)
  }
  return id
}

/**
 * Loads the pepper from the environment variable `envName` and its key id from `<envName>_ID`.
 * With `local` and no such variable, both come from SECRET_PEPPER and SECRET_PEPPER_ID in the
 * local variables files, as `wrangler dev` reads them. A key id that is set nowhere comes from
 * the wrangler configuration's [vars], else it is k1.
 * @param {{ envName: string, local: boolean, root: string, env?: NodeJS.ProcessEnv }} options
 * @returns {Promise<LoadedPepper>}
 */
export async function loadPepper({ envName, local, root, env = process.env }) {
  let encoded = env[envName]
  let idSetting = `${envName}_ID`
  let id = env[idSetting]
  let source = `${envName} from the environment`
  let setting = envName

  if (!encoded && local) {
    const { values, files } = await readLocalVars(root)
    encoded = values.SECRET_PEPPER
    idSetting = 'SECRET_PEPPER_ID'
    id = values.SECRET_PEPPER_ID
    source = `SECRET_PEPPER from ${files.join(' and ')}`
    setting = `SECRET_PEPPER in ${files.join(' and ')}`
  }
  if (!encoded) {
    const where = local ? ' and SECRET_PEPPER is not in .dev.vars' : ''
    throw new UsageError(
      `${envName} is not set${where}. Set it to the Worker's SECRET_PEPPER, the Base64url key ` +
        'that hashes client secrets.',
      2,
    )
  }

  let key
  try {
    key = decodePepper(encoded, setting)
  } catch (error) {
    if (error instanceof UsageError) throw new UsageError(error.message, 2)
    throw error
  }
  const keyId = id || (await readConfiguredKeyId(root)) || DEFAULT_KEY_ID
  return { pepper: { id: checkKeyId(keyId, idSetting), key }, source }
}
