/// <reference types="node" />
// Serves /docs and /openapi.json from a real `wrangler dev` and loads the reference page in
// Debian's headless Chromium through playwright-core. The screenshot goes to test-artifacts/.

import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { exportJWK, generateKeyPair, type JWK } from 'jose'
import { chromium } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startWorkerDev } from './worker-dev'
import { type DevServer, PROJECT_ROOT } from './wrangler'

const CHROMIUM = '/usr/bin/chromium'
const SCREENSHOT = path.join(PROJECT_ROOT, 'test-artifacts', 'docs-page.png')
// Flags that switch off Chromium's background services, such as component updates and sync, so
// that it has no reason to contact a host other than the test server.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

let workDir: string
let server: DevServer | undefined

beforeAll(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'refresh-secret-docs-'))
  const { publicKey } = await generateKeyPair('ES256', { extractable: true })
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'docs', alg: 'ES256', use: 'sig' }

  server = await startWorkerDev(
    {
      keys: [jwk],
      issuer: 'https://issuer.docs.test',
      audience: 'refresh-secret-docs',
      pepper: randomBytes(32).toString('base64url'),
    },
    { workDir, persistDir: path.join(workDir, 'state'), logDir: path.join(workDir, 'logs') },
  )
})

afterAll(async () => {
  await server?.stop()
  if (workDir !== undefined) await rm(workDir, { recursive: true, force: true })
})

function origin(): string {
  if (server === undefined) throw new Error('wrangler dev did not start')
  return server.origin
}

describe('API reference under wrangler dev', () => {
  it('serves public/openapi.json as /openapi.json', async () => {
    const response = await fetch(`${origin()}/openapi.json`)

    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8')
    expect(response.headers.get('cache-control')).toBe('public, max-age=300')
    expect(response.headers.get('x-content-type-options')).toBe('nosniff')
    expect(await response.text()).toBe(
      await readFile(path.join(PROJECT_ROOT, 'public', 'openapi.json'), 'utf8'),
    )
  })

  it('serves /docs with a strict policy', async () => {
    const response = await fetch(`${origin()}/docs`)
    const policy = response.headers.get('content-security-policy') ?? ''

    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8')
    expect(response.headers.get('referrer-policy')).toBe('no-referrer')
    expect(policy).toContain("default-src 'none'")
    expect(policy).toMatch(/style-src 'sha256-[A-Za-z0-9+/]{43}='/)
    expect(await response.text()).toBe(
      await readFile(path.join(PROJECT_ROOT, 'public', 'docs.html'), 'utf8'),
    )
  })

  it('answers other methods on the asset paths with 405', async () => {
    for (const path of ['/openapi.json', '/docs']) {
      const response = await fetch(`${origin()}${path}`, { method: 'POST' })

      expect(response.status, path).toBe(405)
      expect(response.headers.get('allow'), path).toBe('GET, HEAD')
    }
  })

  it('leaves other paths to the Worker', async () => {
    const response = await fetch(`${origin()}/_headers`)

    expect(response.status).toBe(404)
    expect(((await response.json()) as { error: { type: string } }).error.type).toBe('not_found')
  })

  it('renders /docs in Chromium', async (context) => {
    context.skip(
      !existsSync(CHROMIUM),
      `${CHROMIUM} is absent: install Debian's chromium (apt-get install -y chromium) to run this test`,
    )

    const userDataDir = path.join(workDir, 'chromium-profile')
    const browser = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 900 },
    })
    try {
      const consoleErrors: string[] = []
      const requested: string[] = []
      browser.on('console', (message) => {
        if (message.type() === 'error') consoleErrors.push(message.text())
      })
      browser.on('weberror', (error) => consoleErrors.push(error.error().message))
      browser.on('request', (request) => requested.push(request.url()))

      const page = browser.pages()[0] ?? (await browser.newPage())
      const response = await page.goto(`${origin()}/docs`, { waitUntil: 'load' })

      expect(response?.status()).toBe(200)
      expect(await page.title()).toBe('Client secret rotation API 0.1.0')
      const headings = await page.locator('section.operation h2').allTextContents()
      expect(headings).toEqual([
        'PATCH/admin/clients/{id}/refresh_secretDeprecated',
        'PATCH/api/clients/{id}/connections/{connection_id}/actions/refresh_secret',
      ])
      const clientFacts = await page.locator('#refreshClientSecret dl.facts dd').allTextContents()
      const connectionFacts = await page
        .locator('#refreshConnectionSecret dl.facts dd')
        .allTextContents()
      expect(clientFacts[0]).toBe('secret:refresh')
      expect(connectionFacts[0]).toBe('connection:refresh_secret')
      const badge = page.locator('#refreshClientSecret .badge.deprecated')
      expect(await badge.isVisible()).toBe(true)
      expect(await page.locator('#refreshConnectionSecret .badge.deprecated').count()).toBe(0)
      const summary = await page.locator('table.methods tbody tr').allTextContents()
      expect(summary).toHaveLength(2)
      expect(summary[0]).toContain('secret:refresh')
      expect(summary[1]).toContain('connection:refresh_secret')

      await mkdir(path.dirname(SCREENSHOT), { recursive: true })
      await page.screenshot({ path: SCREENSHOT, fullPage: false })

      expect(consoleErrors).toEqual([])
      expect(requested).toEqual([`${origin()}/docs`])
    } finally {
      await browser.close()
    }
  })
})
