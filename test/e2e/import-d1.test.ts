/// <reference types="node" />
// How the Mithril import hands SQL to wrangler: the private temporary file, its removal, and the
// redaction of wrangler's output. A stand-in wrangler.js in a temporary project records what it
// receives, so these tests need no workerd.

import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { D1Error, executeD1File, queryD1 } from '../../scripts/mithril/d1.mjs'

const HASH = 'hmac-sha256$k1$MddbhoyuP_a6VrHqsOhFRBR37I7nP3Knu9cHGh3mzJ4'
const SECRET = 'N0FINVdUTk0rQ3FHWHZqcFlKWEt5Zz09'

// Records its arguments, and the mode, directory mode and text of a --file. It fails when the SQL
// contains the word fail.
const STAND_IN = `
const fs = require('node:fs')
const path = require('node:path')
const args = process.argv.slice(2)
const record = { args }
const fileIndex = args.indexOf('--file')
if (fileIndex >= 0) {
  const file = args[fileIndex + 1]
  record.file = file
  record.mode = fs.statSync(file).mode & 0o777
  record.dirMode = fs.statSync(path.dirname(file)).mode & 0o777
  record.text = fs.readFileSync(file, 'utf8')
}
fs.writeFileSync(process.env.STAND_IN_RECORD, JSON.stringify(record))
if (args.includes('--json')) {
  const fail = args.some((arg) => arg.includes('fail'))
  process.stdout.write(fail ? '{"error": {"text": "no such table: fail near ' + ${JSON.stringify(SECRET)} + '"}}' : '[{"results": [{"id": "a"}]}, {"results": []}]')
  process.exit(fail ? 1 : 0)
}
if (record.text.includes('fail')) {
  process.stderr.write('UNIQUE constraint failed near ' + ${JSON.stringify(HASH)})
  process.exit(1)
}
`

let root: string
let scratch: string
let recordFile: string
const savedEnv = { ...process.env }

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'mithril-d1-'))
  scratch = path.join(root, 'tmp')
  recordFile = path.join(root, 'record.json')
  await mkdir(path.join(root, 'node_modules', 'wrangler', 'bin'), { recursive: true })
  await mkdir(scratch)
  await writeFile(path.join(root, 'node_modules', 'wrangler', 'bin', 'wrangler.js'), STAND_IN)
  process.env.STAND_IN_RECORD = recordFile
  process.env.TMPDIR = scratch
})

afterAll(async () => {
  process.env = savedEnv
  await rm(root, { recursive: true, force: true })
})

function target(persistTo?: string) {
  return { root, database: 'DB', mode: 'local' as const, persistTo, secrets: [SECRET] }
}

async function recorded(): Promise<{
  args: string[]
  file?: string
  mode?: number
  dirMode?: number
  text?: string
}> {
  return JSON.parse(await readFile(recordFile, 'utf8'))
}

describe('executeD1File', () => {
  it('passes a private file to wrangler', async () => {
    await executeD1File(target('/data/d1'), `INSERT INTO roles (id) VALUES ('${HASH}');\n`)
    const record = await recorded()

    expect(record.args.slice(0, 6)).toEqual([
      'd1',
      'execute',
      'DB',
      '--local',
      '--persist-to',
      '/data/d1',
    ])
    expect(record.mode).toBe(0o600)
    expect(record.dirMode).toBe(0o700)
    expect(record.text).toContain(HASH)
    expect(path.dirname(path.dirname(record.file ?? ''))).toBe(scratch)
  })

  it('removes the file after wrangler exits', async () => {
    await executeD1File(target(), 'SELECT 1;\n')
    expect(await readdir(scratch)).toEqual([])
  })

  it('removes the file when wrangler fails', async () => {
    const error = await executeD1File(target(), "SELECT 'fail';\n").catch((caught) => caught)
    expect(error).toBeInstanceOf(D1Error)
    expect(await readdir(scratch)).toEqual([])
  })

  it('reports a failure without the hash', async () => {
    const error = await executeD1File(target(), "SELECT 'fail';\n").catch((caught) => caught)
    expect(error.message).toContain('UNIQUE constraint failed near [secret hash]')
    expect(error.message).not.toContain(HASH)
  })
})

describe('queryD1', () => {
  it('returns the rows of each statement', async () => {
    const results = await queryD1(target(), 'SELECT 1; SELECT 2;')
    expect(results).toEqual([[{ id: 'a' }], []])
    expect((await recorded()).args).toEqual([
      'd1',
      'execute',
      'DB',
      '--local',
      '--json',
      '--command',
      'SELECT 1; SELECT 2;',
    ])
  })

  it('reports wrangler errors without secrets', async () => {
    const error = await queryD1(target(), 'SELECT fail').catch((caught) => caught)
    expect(error).toBeInstanceOf(D1Error)
    expect(error.message).toBe('wrangler d1 execute failed: no such table: fail near [secret]')
  })
})
