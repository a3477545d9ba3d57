#!/usr/bin/env node
// Mints a dev access token with the key that `npm start` created, and prints only the token.

import { DEMO } from './demo-data.mjs'
import {
  DEFAULT_TOKEN_TTL,
  DEV_AUDIENCE,
  DEV_ISSUER,
  devPaths,
  mintToken,
  parseCommandLine,
  readDevVars,
  readSigningKeyJwk,
  runMain,
  UsageError,
} from './dev-env.mjs'

const MAX_TTL = 30 * 24 * 3600
const CLIENT_ID_CLAIMS = ['client_id', 'azp', 'cid']

const USAGE = `Usage: npm run token -- --sub USER_ID --client-id CLIENT_ID --scope SCOPES [options]

Prints an ES256 access token signed with .dev/signing-key.json, which \`npm start\` creates.

Required:
  --sub USER_ID        the user id (sub claim), e.g. the demo owner ${DEMO.ownerId}
  --client-id ID       the client id claim, e.g. the demo client ${DEMO.clientId}
  --scope SCOPES       space-delimited scopes, e.g. "secret:refresh"; "" leaves the claim out

Options:
  --ttl SECONDS        lifetime from now, 1 to ${MAX_TTL} (default ${DEFAULT_TOKEN_TTL})
  --aud AUDIENCE       aud claim (default: JWT_AUDIENCE in .dev.vars, else ${DEV_AUDIENCE})
  --iss ISSUER         iss claim (default: JWT_ISSUER in .dev.vars, else ${DEV_ISSUER})
  --client-id-claim C  claim that carries the client id: client_id, azp or cid
                       (default: CLIENT_ID_CLAIM in .dev.vars, else client_id)
  -h, --help           show this help`

const OPTIONS = {
  sub: { type: 'string' },
  'client-id': { type: 'string' },
  scope: { type: 'string' },
  ttl: { type: 'string' },
  aud: { type: 'string' },
  iss: { type: 'string' },
  'client-id-claim': { type: 'string' },
}

/** @param {string | undefined} value */
function parseTtl(value) {
  if (value === undefined) return DEFAULT_TOKEN_TTL

  const seconds = Number(value)
  if (!/^\d+$/.test(value) || seconds < 1 || seconds > MAX_TTL) {
    throw new UsageError(`--ttl must be a whole number of seconds from 1 to ${MAX_TTL}.`, 2)
  }
  return seconds
}

/** @param {Record<string, string | boolean | undefined>} values */
function requireOptions(values) {
  const missing = ['sub', 'client-id', 'scope'].filter((name) => values[name] === undefined)
  if (missing.length > 0) {
    const names = missing.map((name) => `--${name}`).join(', ')
    throw new UsageError(`Missing ${names}.\n\n${USAGE}`, 2)
  }
  for (const name of ['sub', 'client-id', 'aud', 'iss']) {
    if (values[name] === '') throw new UsageError(`--${name} must not be empty.`, 2)
  }
}

async function main() {
  const values = parseCommandLine(OPTIONS, USAGE)
  if (values.help) {
    console.log(USAGE)
    return
  }
  requireOptions(values)
  const ttl = parseTtl(values.ttl)

  const paths = devPaths()
  const jwk = await readSigningKeyJwk(paths.signingKey)
  const devVars = await readDevVars(paths.devVars)

  const clientIdClaim = values['client-id-claim'] ?? devVars.CLIENT_ID_CLAIM ?? 'client_id'
  if (!CLIENT_ID_CLAIMS.includes(clientIdClaim)) {
    throw new UsageError(`--client-id-claim must be one of ${CLIENT_ID_CLAIMS.join(', ')}.`, 2)
  }

  const token = await mintToken({
    jwk,
    issuer: values.iss ?? devVars.JWT_ISSUER ?? DEV_ISSUER,
    audience: values.aud ?? devVars.JWT_AUDIENCE ?? DEV_AUDIENCE,
    subject: values.sub,
    clientId: values['client-id'],
    clientIdClaim,
    scope: values.scope,
    ttl,
  })
  console.log(token)
}

runMain(main)
