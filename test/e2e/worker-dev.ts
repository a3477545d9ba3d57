/// <reference types="node" />
// Runs the Worker under `wrangler dev` with the settings of a test issuer, and signs that
// issuer's access tokens for calls over HTTP.

import { randomUUID } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { type JWK, SignJWT } from 'jose'
import { type DevServer, startDev } from './wrangler'

/** Directories of one `wrangler dev` run. */
export interface WorkerDevDirs {
  /** The folder for `empty.env`, the file that `--env-file` names. */
  workDir: string
  /** The local D1 state, which `--persist-to` names. */
  persistDir: string
  /** The folder for wrangler's debug log. */
  logDir: string
}

/** The Worker settings that `startWorkerDev` passes as `--var`. */
export interface WorkerSettings {
  /** The public keys of `JWKS`. */
  keys: JWK[]
  issuer: string
  audience: string
  /** The Base64url text of `SECRET_PEPPER`. */
  pepper: string
}

/**
 * Starts `wrangler dev` with `settings` as the Worker's vars. `--env-file` names an empty file in
 * place of .dev.vars, so a developer's .dev.vars cannot change what a test runs against.
 */
export async function startWorkerDev(
  settings: WorkerSettings,
  dirs: WorkerDevDirs,
): Promise<DevServer> {
  const emptyEnvFile = path.join(dirs.workDir, 'empty.env')
  await writeFile(emptyEnvFile, '')

  return startDev(
    [
      '--persist-to',
      dirs.persistDir,
      '--env-file',
      emptyEnvFile,
      '--show-interactive-dev-session=false',
      '--var',
      `JWKS:${JSON.stringify({ keys: settings.keys })}`,
      '--var',
      `JWT_ISSUER:${settings.issuer}`,
      '--var',
      `JWT_AUDIENCE:${settings.audience}`,
      '--var',
      `SECRET_PEPPER:${settings.pepper}`,
    ],
    dirs.logDir,
  )
}

/** The signing key, issuer and claims of one access token. */
export interface AccessTokenOptions {
  /** An ES256 private key. */
  key: CryptoKey
  kid: string
  issuer: string
  audience: string
  subject: string
  clientId: string
  scope: string
}

/** Signs an ES256 access token (`typ: at+jwt`) with a new `jti`, valid for 5 minutes from now. */
export function signAccessToken(options: AccessTokenOptions): Promise<string> {
  return new SignJWT({ client_id: options.clientId, scope: options.scope })
    .setProtectedHeader({ alg: 'ES256', kid: options.kid, typ: 'at+jwt' })
    .setIssuer(options.issuer)
    .setAudience(options.audience)
    .setSubject(options.subject)
    .setJti(randomUUID())
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(options.key)
}
