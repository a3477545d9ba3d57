/// <reference types="node" />
// Where the Mithril import takes the pepper and its key id from.

import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { UsageError } from '../../scripts/dev-env.mjs'
import { loadPepper } from '../../scripts/mithril/pepper.mjs'

let root: string
const pepper = randomBytes(32).toString('base64url')
const filePepper = randomBytes(32).toString('base64url')

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'mithril-pepper-'))
})

afterEach(async () => {
  await rm(root, { recursive: true, force: true })
})

function load(env: NodeJS.ProcessEnv, local = true, envName = 'SECRET_PEPPER') {
  return loadPepper({ envName, local, root, env })
}

async function loadError(env: NodeJS.ProcessEnv, local = true, envName = 'SECRET_PEPPER') {
  const error = await load(env, local, envName).catch((caught) => caught)
  expect(error).toBeInstanceOf(UsageError)
  return error as UsageError
}

describe('loadPepper', () => {
  it('reads the environment variable with key id k1', async () => {
    const loaded = await load({ SECRET_PEPPER: pepper })
    expect(loaded.pepper.id).toBe('k1')
    expect(Buffer.from(loaded.pepper.key).toString('base64url')).toBe(pepper)
    expect(loaded.source).toBe('SECRET_PEPPER from the environment')
  })

  it('reads the key id from VAR_ID', async () => {
    const loaded = await load(
      { MITHRIL_PEPPER: pepper, MITHRIL_PEPPER_ID: 'k7' },
      false,
      'MITHRIL_PEPPER',
    )
    expect(loaded.pepper.id).toBe('k7')
  })

  it('prefers the environment to .dev.vars', async () => {
    await writeFile(path.join(root, '.dev.vars'), `SECRET_PEPPER=${filePepper}\n`)
    const loaded = await load({ SECRET_PEPPER: pepper })
    expect(Buffer.from(loaded.pepper.key).toString('base64url')).toBe(pepper)
  })

  it('reads .dev.vars for --local', async () => {
    await writeFile(
      path.join(root, '.dev.vars'),
      `SECRET_PEPPER=${filePepper}\nSECRET_PEPPER_ID=k2\n`,
    )
    const loaded = await load({})
    expect(Buffer.from(loaded.pepper.key).toString('base64url')).toBe(filePepper)
    expect(loaded.pepper.id).toBe('k2')
    expect(loaded.source).toBe('SECRET_PEPPER from .dev.vars')
  })

  it('reads .env and .env.local without .dev.vars', async () => {
    await writeFile(path.join(root, '.env'), `SECRET_PEPPER=${pepper}\nSECRET_PEPPER_ID=k3\n`)
    await writeFile(path.join(root, '.env.local'), `SECRET_PEPPER=${filePepper}\n`)
    const loaded = await load({})
    expect(Buffer.from(loaded.pepper.key).toString('base64url')).toBe(filePepper)
    expect(loaded.pepper.id).toBe('k3')
  })

  it('takes the key id from wrangler.toml vars', async () => {
    await writeFile(
      path.join(root, 'wrangler.toml'),
      'name = "x"\nmain = "src/index.ts"\n\n[vars]\nSECRET_PEPPER_ID = "k9"\n',
    )
    const loaded = await load({ SECRET_PEPPER: pepper }, false)
    expect(loaded.pepper.id).toBe('k9')
  })

  it('ignores .dev.vars for --remote', async () => {
    await writeFile(path.join(root, '.dev.vars'), `SECRET_PEPPER=${filePepper}\n`)
    const error = await loadError({}, false)
    expect(error.message).toContain('SECRET_PEPPER is not set')
  })

  it('rejects a missing pepper for --local', async () => {
    const error = await loadError({})
    expect(error.message).toContain('SECRET_PEPPER is not in .dev.vars')
  })

  it('rejects a short pepper without showing it', async () => {
    const short = randomBytes(16).toString('base64url')
    const error = await loadError({ SECRET_PEPPER: short })
    expect(error.message).toContain('at least 32 bytes')
    expect(error.message).not.toContain(short)
  })

  it('rejects an invalid key id', async () => {
    const error = await loadError({ SECRET_PEPPER: pepper, SECRET_PEPPER_ID: 'k 1' })
    expect(error.message).toContain('SECRET_PEPPER_ID must be')
  })
})
