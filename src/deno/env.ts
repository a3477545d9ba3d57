import { readFile } from 'node:fs/promises'
import { parseEnv } from 'node:util'
import type { Env } from '../config.ts'

export type SettingName = Exclude<keyof Env, 'DB'>
export type Settings = Partial<Record<SettingName, string>>

/** The Worker's settings, which the Deno entry reads from wrangler.toml, .dev.vars and the environment. */
export const SETTING_NAMES = [
  'JWKS_URL',
  'JWKS',
  'JWT_ISSUER',
  'JWT_AUDIENCE',
  'JWT_ALGORITHMS',
  'JWT_CLOCK_TOLERANCE',
  'JWT_TYP',
  'CLIENT_ID_CLAIM',
  'SECRET_PEPPER',
  'SECRET_PEPPER_ID',
  'SECRET_PEPPERS_RETIRED',
  'DEPRECATION_DATE',
  'SUNSET_DATE',
  'DEPRECATION_LINK',
  'SUCCESSOR_LINK',
  'CORS_ORIGINS',
  'GRACE_PERIOD_MAX',
  'GRACE_PERIOD_DEFAULT',
  'IDEMPOTENCY_TTL',
  'ROTATION_RATE_LIMIT',
  'ROTATION_RATE_WINDOW',
] as const satisfies readonly SettingName[]

// Type-checks that every setting of Env is listed above; the error names a missing one.
type Unlisted = Exclude<SettingName, (typeof SETTING_NAMES)[number]>
const everySettingListed: [Unlisted] extends [never] ? true : Unlisted = true
void everySettingListed

function isSettingName(name: string): name is SettingName {
  return (SETTING_NAMES as readonly string[]).includes(name)
}

/** Keeps the Worker's settings of a name-value map and drops every other name. */
export function pickSettings(values: Record<string, string | undefined>): Settings {
  const settings: Settings = {}
  for (const [name, value] of Object.entries(values)) {
    if (isSettingName(name) && value !== undefined) settings[name] = value
  }
  return settings
}

/** Decodes a TOML basic ("...") or literal ('...') string. */
function parseTomlString(text: string): string | undefined {
  if (text.startsWith("'") && text.endsWith("'") && text.length >= 2) return text.slice(1, -1)
  if (!text.startsWith('"') || !text.endsWith('"') || text.length < 2) return undefined

  try {
    // TOML basic strings use the JSON escapes, plus \e and \UXXXXXXXX, which vars do not need.
    return JSON.parse(text) as string
  } catch {
    return undefined
  }
}

/**
 * Reads the top-level `[vars]` table of a wrangler.toml. Only `NAME = "string"` entries are
 * accepted, which is what wrangler passes to a Worker as text; any other line in the table throws.
 */
export function parseWranglerVars(toml: string): Record<string, string> {
  const vars: Record<string, string> = {}
  let inVars = false

  for (const [index, rawLine] of toml.split('\n').entries()) {
    const line = rawLine.trim()
    if (line === '' || line.startsWith('#')) continue
    if (line.startsWith('[')) {
      inVars = line === '[vars]'
      continue
    }
    if (!inVars) continue

    const match = /^([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(.+?)\s*(?:#[^"']*)?$/.exec(line)
    const value = match?.[2] === undefined ? undefined : parseTomlString(match[2])
    if (match?.[1] === undefined || value === undefined) {
      throw new Error(
        `wrangler.toml line ${index + 1}: the Deno entry reads only NAME = "text" entries in [vars]. Quote the value, or set it in .dev.vars.`,
      )
    }
    vars[match[1]] = value
  }
  return vars
}

async function readOptionalFile(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8')
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOENT') return undefined
    throw error
  }
}

export interface SettingSources {
  /** wrangler.toml, whose `[vars]` give the defaults. */
  wranglerToml: string
  /** A dotenv file such as .dev.vars, which overrides `[vars]` as it does for `wrangler dev`. */
  devVars: string
  /** Environment variables, which override both files. */
  environment: Record<string, string | undefined>
}

/**
 * Reads the Worker's settings: `[vars]` of wrangler.toml, then the dotenv file, then environment
 * variables, each overriding the one before. Missing files count as empty.
 */
export async function loadSettings(sources: SettingSources): Promise<Settings> {
  const toml = (await readOptionalFile(sources.wranglerToml)) ?? ''
  const dotenv = (await readOptionalFile(sources.devVars)) ?? ''

  return {
    ...pickSettings(parseWranglerVars(toml)),
    ...pickSettings(parseEnv(dotenv)),
    ...pickSettings(sources.environment),
  }
}
