#!/usr/bin/env node
// Writes the demo seed as SQL for `wrangler d1 execute DB --local --file FILE`.
// The demo client's secret hash is computed with SECRET_PEPPER from the environment, or from
// .dev.vars when the environment has none.

import { buildSeedSql } from './demo-data.mjs'
import {
  decodePepper,
  devPaths,
  displayPath,
  parseCommandLine,
  readDevVars,
  runMain,
  UsageError,
  writePrivateFile,
} from './dev-env.mjs'

const USAGE = `Usage: node scripts/seed.mjs --out FILE [--pepper-id ID]

Writes SQL that inserts the demo users, client type, OWNER role, client and role grant,
skipping rows that exist. Apply it with:
  npx wrangler d1 execute DB --local --file FILE

The client's secret hash uses SECRET_PEPPER from the environment, or from .dev.vars.

Options:
  --out FILE       where to write the SQL (created readable by its owner only)
  --pepper-id ID   key id recorded in the hash (default: SECRET_PEPPER_ID, else k1)
  -h, --help       show this help`

async function main() {
  const values = parseCommandLine(
    { out: { type: 'string' }, 'pepper-id': { type: 'string' } },
    USAGE,
  )
  if (values.help) {
    console.log(USAGE)
    return
  }
  if (values.out === undefined || values.out === '') {
    throw new UsageError(`--out FILE is required.\n\n${USAGE}`, 2)
  }

  const { devVars } = devPaths()
  const fileVars = await readDevVars(devVars)
  const encoded = process.env.SECRET_PEPPER || fileVars.SECRET_PEPPER
  if (!encoded) {
    throw new UsageError(
      `SECRET_PEPPER is set neither in the environment nor in ${displayPath(devVars)}.`,
    )
  }
  const id =
    values['pepper-id'] || process.env.SECRET_PEPPER_ID || fileVars.SECRET_PEPPER_ID || 'k1'
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(id)) {
    throw new UsageError(
      `The pepper id "${id}" is invalid: use 1 to 32 of A-Z, a-z, 0-9, _ and -.`,
      2,
    )
  }

  await writePrivateFile(values.out, await buildSeedSql({ id, key: decodePepper(encoded) }))
  console.log(`Wrote the demo seed to ${displayPath(values.out)}.`)
}

runMain(main)
