// Runs before every test file of the workers project. It records every console line while still
// printing it, and after the file checks that no recorded line, response header, error body or
// database row contains a token, secret, hash or pepper that the helpers created.

import { env } from 'cloudflare:workers'
import { afterAll, expect } from 'vitest'
import { findLeaks, recordOutput, registerSensitive } from './helpers.ts'

const CONSOLE_METHODS = ['debug', 'info', 'log', 'warn', 'error'] as const

/** Columns that hold stored hashes on purpose; every other column is searched. */
const HASH_COLUMNS = new Set(['secret_hash', 'previous_secret_hash'])

function formatArgument(argument: unknown): string {
  if (typeof argument === 'string') return argument
  if (argument instanceof Error) return `${argument.name}: ${argument.message}\n${argument.stack}`
  try {
    return JSON.stringify(argument) ?? String(argument)
  } catch {
    return String(argument)
  }
}

for (const method of CONSOLE_METHODS) {
  const print = console[method].bind(console)
  console[method] = (...args: unknown[]) => {
    recordOutput(`console.${method}`, args.map(formatArgument).join(' '))
    print(...args)
  }
}

// The runtime's own pepper, which the SecretVerifier entrypoint uses.
if (env.SECRET_PEPPER !== undefined) registerSensitive('SECRET_PEPPER binding', env.SECRET_PEPPER)

/** Records every row of every application table, leaving out the columns meant for hashes. */
async function recordDatabase(db: D1Database): Promise<void> {
  const { results: tables } = await db
    .prepare(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND name NOT LIKE 'd1_%'",
    )
    .all<{ name: string }>()

  for (const { name } of tables) {
    const { results } = await db.prepare(`SELECT * FROM "${name}"`).all<Record<string, unknown>>()
    for (const row of results) {
      const searched = Object.entries(row).filter(([column]) => !HASH_COLUMNS.has(column))
      recordOutput(`row of ${name}`, JSON.stringify(Object.fromEntries(searched)))
    }
  }
}

afterAll(async () => {
  await recordDatabase(env.DB)

  const leaks = findLeaks().map(
    (leak) => `${leak.found} in ${leak.source}: ${leak.redacted.slice(0, 600)}`,
  )
  expect(leaks, 'sensitive values in logs, headers, error bodies or rows').toEqual([])
})
