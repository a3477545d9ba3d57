// Checks the OpenAPI document in public/ against the Worker's real responses: every status, body and
// header that a request provokes must be declared, and every declared status must be provoked.
// Bodies and header values are validated with @cfworker/json-schema, which needs no eval.

import { env } from 'cloudflare:workers'
import { Validator } from '@cfworker/json-schema'
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import headersFile from '../../public/_headers?raw'
import docsHtml from '../../public/docs.html?raw'
import openApiJson from '../../public/openapi.json?raw'
import { DEFAULT_SUCCESSOR_LINK } from '../../src/app'
import { renderHeadersFile, renderStaticAssets } from '../../src/assets'
import type { Env } from '../../src/config'
import { escapeHtml } from '../../src/docs-page'
import type { OpenApiDocument } from '../../src/openapi'
import { hashSecret } from '../../src/secret'
import {
  BASE_URL,
  callWorker,
  captureConsole,
  createEnv,
  createSigningKey,
  type Fixture,
  PEPPER,
  PEPPER_KEY,
  type SigningKey,
  seedClient,
  signToken,
  toBase64url,
} from './helpers'

const DOCUMENT_URI = 'https://refresh-secret.test/openapi.json'
const CLIENT_PATH = '/admin/clients/{id}/refresh_secret'
const CONNECTION_PATH = '/api/clients/{id}/connections/{connection_id}/actions/refresh_secret'
const OWNER_SCOPE = 'legal_entity:read secret:refresh connection:refresh_secret'
// Nothing listens on the discard port of loopback, so fetching the key set fails at once.
const UNREACHABLE_JWKS_URL = 'http://127.0.0.1:9/jwks.json'

// The document as Static Assets serves it at /openapi.json.
const served = JSON.parse(openApiJson) as OpenApiDocument
let key: SigningKey

beforeAll(async () => {
  key = await createSigningKey('ES256')
})

beforeEach(() => {
  captureConsole()
})

afterEach(() => {
  vi.restoreAllMocks()
})

// ---- The document as a JSON Schema resource ----

function escapeToken(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1')
}

/** Encodes a JSON pointer as a URI fragment, as @cfworker/json-schema indexes subschemas. */
function toFragment(tokens: readonly string[]): string {
  return tokens.map((token) => `/${encodeURI(escapeToken(token)).replace(/#/g, '%23')}`).join('')
}

function resolvePointer(tokens: readonly string[]): unknown {
  let node: unknown = served
  for (const token of tokens) {
    if (typeof node !== 'object' || node === null || !Object.hasOwn(node, token)) {
      throw new Error(`the document has nothing at ${toFragment(tokens)}`)
    }
    node = (node as Record<string, unknown>)[token]
  }
  return node
}

/** Splits a local reference such as `#/components/headers/Allow` into pointer tokens. */
function referenceTokens(reference: string): string[] {
  return reference
    .slice(2)
    .split('/')
    .map((token) => decodeURIComponent(token).replace(/~1/g, '/').replace(/~0/g, '~'))
}

/** Follows Reference Objects from `tokens` and returns where the object really is. */
function dereference(tokens: string[]): string[] {
  let current = tokens
  for (let depth = 0; depth < 10; depth++) {
    const node = resolvePointer(current) as { $ref?: string }
    if (typeof node.$ref !== 'string' || Object.keys(node).length !== 1) return current
    current = referenceTokens(node.$ref)
  }
  throw new Error(`reference cycle at ${toFragment(tokens)}`)
}

const validators = new Map<string, Validator>()

/** Returns a validator for the schema at `tokens`, with the whole document loaded for `$ref`. */
function validatorAt(tokens: readonly string[]): Validator {
  const fragment = toFragment(tokens)
  let validator = validators.get(fragment)
  if (validator === undefined) {
    validator = new Validator({ $ref: `${DOCUMENT_URI}#${fragment}` }, '2020-12', false)
    // The library annotates the objects it indexes, so it gets a copy.
    validator.addSchema(structuredClone(served) as object, DOCUMENT_URI)
    validators.set(fragment, validator)
  }
  return validator
}

function describeErrors(validator: Validator, value: unknown): string {
  const result = validator.validate(value)
  return result.errors
    .map((error) => `${error.instanceLocation} ${error.keywordLocation}: ${error.error}`)
    .join('\n')
}

/** Converts a header value to the type its schema declares, as the `simple` style serializes it. */
function headerValue(schemaTokens: string[], raw: string): unknown {
  const schema = resolvePointer(dereference(schemaTokens)) as { type?: string }
  if (schema.type === 'integer' && /^-?[0-9]+$/.test(raw)) return Number(raw)
  return raw
}

// ---- The drift check ----

const observed = new Map<string, Set<string>>()

/**
 * Checks one response against the operation at `documentPath`: the status is declared, the body
 * matches its schema, every header sent is declared with a valid value, and every required
 * header is sent. Content-Type is checked against the declared media types.
 */
async function checkResponse(documentPath: string, response: Response): Promise<void> {
  const status = String(response.status)
  const operationTokens = ['paths', documentPath, 'patch']
  const responses = resolvePointer([...operationTokens, 'responses']) as Record<string, unknown>
  expect(Object.keys(responses), `status ${status} of ${documentPath} is not declared`).toContain(
    status,
  )
  const responseTokens = dereference([...operationTokens, 'responses', status])
  const declared = resolvePointer(responseTokens) as {
    headers?: Record<string, unknown>
    content?: Record<string, unknown>
  }

  const mediaType = response.headers.get('content-type')?.split(';')[0]?.trim() ?? ''
  expect(Object.keys(declared.content ?? {}), `media type of ${status}`).toContain(mediaType)
  const body: unknown = await response.json()
  const bodyValidator = validatorAt([...responseTokens, 'content', mediaType, 'schema'])
  expect(bodyValidator.validate(body).valid, describeErrors(bodyValidator, body)).toBe(true)

  const declaredHeaders = new Map(
    Object.keys(declared.headers ?? {}).map((name) => [name.toLowerCase(), name]),
  )
  for (const [name, raw] of response.headers) {
    if (name === 'content-type') continue

    const declaredName = declaredHeaders.get(name)
    expect(declaredName, `header ${name} of ${status} is not declared`).toBeDefined()
    const headerTokens = dereference([...responseTokens, 'headers', declaredName as string])
    const schemaTokens = [...headerTokens, 'schema']
    const value = headerValue(schemaTokens, raw)
    const headerValidator = validatorAt(schemaTokens)
    expect(
      headerValidator.validate(value).valid,
      `header ${name}: ${raw}\n${describeErrors(headerValidator, value)}`,
    ).toBe(true)
  }

  for (const declaredName of declaredHeaders.values()) {
    const header = resolvePointer(dereference([...responseTokens, 'headers', declaredName])) as {
      required?: boolean
    }
    if (header.required === true) {
      expect(response.headers.has(declaredName), `required header ${declaredName}`).toBe(true)
    }
  }
}

function recordStatus(documentPath: string, status: number): void {
  const statuses = observed.get(documentPath) ?? new Set<string>()
  statuses.add(String(status))
  observed.set(documentPath, statuses)
}

// ---- Requests to both methods ----

/** A client whose owner may rotate both kinds of secret, and one connection of that client. */
interface Subject {
  fixture: Fixture
  connectionId: string
}

async function seedSubject(options: { clientBlocked?: boolean } = {}): Promise<Subject> {
  const fixture = await seedClient({ ...options, ownerScope: OWNER_SCOPE })
  const consumer = await seedClient()
  const connectionId = crypto.randomUUID()
  const secret = toBase64url(crypto.getRandomValues(new Uint8Array(32)))
  await env.DB.prepare(
    `INSERT INTO connections (id, client_id, consumer_id, secret_hash, redirect_uri, inserted_at,
      updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)`,
  )
    .bind(
      connectionId,
      fixture.clientId,
      consumer.clientId,
      await hashSecret(connectionId, secret, PEPPER_KEY),
      'https://consumer.test/callback',
      '2025-03-01T10:00:00.000Z',
    )
    .run()
  return { fixture, connectionId }
}

interface Method {
  name: string
  documentPath: string
  scope: string
  url(clientId: string, connectionId: string): string
}

const CLIENT_METHOD: Method = {
  name: 'client secret method',
  documentPath: CLIENT_PATH,
  scope: 'secret:refresh',
  url: (clientId) => `${BASE_URL}/admin/clients/${clientId}/refresh_secret`,
}

const CONNECTION_METHOD: Method = {
  name: 'connection secret method',
  documentPath: CONNECTION_PATH,
  scope: 'connection:refresh_secret',
  url: (clientId, connectionId) =>
    `${BASE_URL}/api/clients/${clientId}/connections/${connectionId}/actions/refresh_secret`,
}

interface CallOptions {
  /** Claims of the token; the owner's valid token by default, none when `token` is false. */
  claims?: Record<string, unknown>
  token?: boolean
  httpMethod?: string
  headers?: Record<string, string>
  body?: string
  clientId?: string
  connectionId?: string
  env?: Env
}

async function call(method: Method, subject: Subject, options: CallOptions = {}) {
  const headers = new Headers(options.headers)
  if (options.token !== false) {
    const token = await signToken(key, {
      sub: subject.fixture.ownerId,
      client_id: options.clientId ?? subject.fixture.clientId,
      scope: method.scope,
      ...options.claims,
    })
    headers.set('authorization', `Bearer ${token}`)
  }
  const url = method.url(
    options.clientId ?? subject.fixture.clientId,
    options.connectionId ?? subject.connectionId,
  )
  const request = new Request(url, {
    method: options.httpMethod ?? 'PATCH',
    headers,
    body: options.body,
  })
  return callWorker(request, options.env ?? createEnv([key]))
}

const JSON_HEADERS = { 'content-type': 'application/json' }

interface Case {
  name: string
  status: number
  /** Only the connection method has this case. */
  connectionOnly?: boolean
  run(method: Method, subject: Subject): Promise<Response>
}

const CASES: Case[] = [
  { name: 'rotation', status: 200, run: (method, subject) => call(method, subject) },
  {
    name: 'rotation with options',
    status: 200,
    run: (method, subject) =>
      call(method, subject, {
        headers: JSON_HEADERS,
        body: JSON.stringify({ previous_secret_expires_in: 3600 }),
      }),
  },
  {
    name: 'replayed Idempotency-Key retry',
    status: 200,
    run: async (method, subject) => {
      const options = { headers: { ...JSON_HEADERS, 'idempotency-key': 'retry-1' }, body: '{}' }
      const first = await call(method, subject, options)
      expect(first.status).toBe(200)
      const retry = await call(method, subject, options)
      expect(retry.headers.get('idempotent-replayed')).toBe('true')
      return retry
    },
  },
  {
    name: 'configured sunset and deprecation link',
    status: 200,
    run: (method, subject) =>
      call(method, subject, {
        env: createEnv([key], {
          SUNSET_DATE: '2027-06-30T00:00:00Z',
          DEPRECATION_LINK: 'https://docs.test/migrate',
        }),
      }),
  },
  {
    name: 'malformed JSON',
    status: 400,
    run: (method, subject) => call(method, subject, { headers: JSON_HEADERS, body: '{' }),
  },
  {
    name: 'missing token',
    status: 401,
    run: (method, subject) => call(method, subject, { token: false }),
  },
  {
    name: 'blocked user',
    status: 401,
    run: (method, subject) =>
      call(method, subject, { claims: { sub: subject.fixture.blockedUserId } }),
  },
  {
    name: 'missing scope',
    status: 403,
    run: (method, subject) => call(method, subject, { claims: { scope: 'legal_entity:read' } }),
  },
  {
    name: 'token of another client',
    status: 403,
    run: (method, subject) => call(method, subject, { claims: { client_id: crypto.randomUUID() } }),
  },
  {
    name: 'user without a role',
    status: 403,
    run: (method, subject) =>
      call(method, subject, { claims: { sub: subject.fixture.nonOwnerId } }),
  },
  {
    name: 'blocked client',
    status: 403,
    run: async (method) => call(method, await seedSubject({ clientBlocked: true })),
  },
  {
    name: 'unknown client',
    status: 404,
    run: (method, subject) => call(method, subject, { clientId: crypto.randomUUID() }),
  },
  {
    name: 'unknown connection',
    status: 404,
    connectionOnly: true,
    run: (method, subject) => call(method, subject, { connectionId: crypto.randomUUID() }),
  },
  {
    name: 'GET',
    status: 405,
    run: (method, subject) => call(method, subject, { httpMethod: 'GET' }),
  },
  {
    name: 'retry after the key id changed',
    status: 409,
    run: async (method, subject) => {
      const options = { headers: { 'idempotency-key': 'retry-409' } }
      expect((await call(method, subject, options)).status).toBe(200)

      // The same pepper under a new id still finds the stored response, but the response was
      // encrypted under the id k1, which is no longer configured.
      const renamed = createEnv([key], { SECRET_PEPPER: PEPPER, SECRET_PEPPER_ID: 'k2' })
      return call(method, subject, { ...options, env: renamed })
    },
  },
  {
    name: 'body over 16 KiB',
    status: 413,
    run: (method, subject) =>
      call(method, subject, { headers: JSON_HEADERS, body: ' '.repeat(16 * 1024 + 1) }),
  },
  {
    name: 'form-encoded body',
    status: 415,
    run: (method, subject) =>
      call(method, subject, {
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'previous_secret_expires_in=60',
      }),
  },
  {
    name: 'client id not a UUID',
    status: 422,
    run: (method, subject) => call(method, subject, { clientId: 'not-a-uuid' }),
  },
  {
    name: 'connection id not a UUID',
    status: 422,
    connectionOnly: true,
    run: (method, subject) => call(method, subject, { connectionId: 'not-a-uuid' }),
  },
  {
    name: 'unknown body property',
    status: 422,
    run: (method, subject) =>
      call(method, subject, { headers: JSON_HEADERS, body: '{"colour":"blue"}' }),
  },
  {
    name: 'negative grace period',
    status: 422,
    run: (method, subject) =>
      call(method, subject, {
        headers: JSON_HEADERS,
        body: '{"previous_secret_expires_in":-1}',
      }),
  },
  {
    name: 'malformed Idempotency-Key',
    status: 422,
    run: (method, subject) =>
      call(method, subject, { headers: { 'idempotency-key': 'has spaces' } }),
  },
  {
    name: 'Idempotency-Key reused with another body',
    status: 422,
    run: async (method, subject) => {
      const headers = { ...JSON_HEADERS, 'idempotency-key': 'reused' }
      expect((await call(method, subject, { headers, body: '{}' })).status).toBe(200)
      return call(method, subject, { headers, body: '{"revoke_previous":true}' })
    },
  },
  {
    name: 'rate limit',
    status: 429,
    run: async (method, subject) => {
      const limited = createEnv([key], { ROTATION_RATE_LIMIT: '1' })
      expect((await call(method, subject, { env: limited })).status).toBe(200)
      return call(method, subject, { env: limited })
    },
  },
  {
    name: 'missing configuration',
    status: 500,
    run: (method, subject) =>
      call(method, subject, { env: createEnv([key], { SECRET_PEPPER: undefined }) }),
  },
  {
    // workerd logs the refused connection as an uncaught exception even though jose catches it.
    name: 'unreachable key set',
    status: 503,
    run: (method, subject) =>
      call(method, subject, {
        env: createEnv([key], { JWKS: undefined, JWKS_URL: UNREACHABLE_JWKS_URL }),
      }),
  },
  {
    name: 'database error',
    status: 503,
    run: async (method, subject) => {
      // A trigger makes D1 reject the audit insert of this client only, so the batch fails.
      const trigger = `reject_audit_${subject.fixture.clientId.replace(/-/g, '')}`
      await env.DB.prepare(
        `CREATE TRIGGER ${trigger} BEFORE INSERT ON client_secret_events
        WHEN NEW.client_id = '${subject.fixture.clientId}'
        BEGIN SELECT RAISE(ABORT, 'audit insert rejected by the test'); END`,
      ).run()
      try {
        return await call(method, subject)
      } finally {
        await env.DB.prepare(`DROP TRIGGER ${trigger}`).run()
      }
    },
  },
]

for (const method of [CLIENT_METHOD, CONNECTION_METHOD]) {
  describe(`${method.name} against the document`, () => {
    const cases = CASES.filter((item) => method === CONNECTION_METHOD || !item.connectionOnly)

    for (const item of cases) {
      it(`${item.status} for ${item.name}`, async () => {
        const response = await item.run(method, await seedSubject())

        expect(response.status).toBe(item.status)
        await checkResponse(method.documentPath, response)
        recordStatus(method.documentPath, response.status)
      })
    }

    it('provokes every declared status', () => {
      const declared = Object.keys(served.paths[method.documentPath]?.patch.responses ?? {})

      expect([...(observed.get(method.documentPath) ?? [])].sort()).toEqual(declared.sort())
    })
  })
}

describe('drift check', () => {
  async function rotation(): Promise<Response> {
    const response = await call(CLIENT_METHOD, await seedSubject())
    expect(response.status).toBe(200)
    return response
  }

  async function rebuilt(
    response: Response,
    change: { status?: number; body?: (body: Record<string, unknown>) => void; headers?: Headers },
  ): Promise<Response> {
    const body = (await response.json()) as Record<string, unknown>
    change.body?.(body)
    return new Response(JSON.stringify(body), {
      status: change.status ?? response.status,
      headers: change.headers ?? response.headers,
    })
  }

  it('accepts a real response unchanged', async () => {
    await expect(checkResponse(CLIENT_PATH, await rotation())).resolves.toBeUndefined()
  })

  it('fails on an undeclared status', async () => {
    const response = await rebuilt(await rotation(), { status: 418 })

    await expect(checkResponse(CLIENT_PATH, response)).rejects.toThrow('not declared')
  })

  it('fails on an undeclared body field', async () => {
    const response = await rebuilt(await rotation(), {
      body: (body) => {
        ;(body.data as Record<string, unknown>).priv_settings = { access_type: 'DIRECT' }
      },
    })

    await expect(checkResponse(CLIENT_PATH, response)).rejects.toThrow('additional')
  })

  it('fails on an undeclared header', async () => {
    const original = await rotation()
    const headers = new Headers(original.headers)
    headers.set('x-debug', '1')

    await expect(checkResponse(CLIENT_PATH, await rebuilt(original, { headers }))).rejects.toThrow(
      'x-debug',
    )
  })

  it('fails on a missing required header', async () => {
    const original = await rotation()
    const headers = new Headers(original.headers)
    headers.delete('x-request-id')

    await expect(checkResponse(CLIENT_PATH, await rebuilt(original, { headers }))).rejects.toThrow(
      'x-request-id',
    )
  })
})

describe('request body schema', () => {
  const bodies: unknown[] = [
    {},
    { previous_secret_expires_in: 0 },
    { previous_secret_expires_in: 3600 },
    { previous_secret_expires_in: 604800 },
    { revoke_previous: true },
    { revoke_previous: true, previous_secret_expires_in: 0 },
    { revoke_previous: false, previous_secret_expires_in: 60 },
    { colour: 'blue' },
    { previous_secret_expires_in: -1 },
    { previous_secret_expires_in: 1.5 },
    { previous_secret_expires_in: '60' },
    { revoke_previous: 'yes' },
    { revoke_previous: true, previous_secret_expires_in: 60 },
    [],
    null,
    'rotate',
    42,
  ]

  it.each(bodies.map((body) => [JSON.stringify(body), body]))(
    'agrees with the Worker on %s',
    async (text, body) => {
      const tokens = ['components', 'requestBodies', 'RotationOptions', 'content']
      const schema = validatorAt([...tokens, 'application/json', 'schema'])
      const unlimited = createEnv([key], { ROTATION_RATE_LIMIT: '0' })
      const response = await call(CLIENT_METHOD, await seedSubject(), {
        headers: JSON_HEADERS,
        body: text,
        env: unlimited,
      })

      expect(response.status).toBe(schema.validate(body).valid ? 200 : 422)
    },
  )
})

describe('successor-version link', () => {
  it('points to the connection method in the served document', async () => {
    const response = await call(CLIENT_METHOD, await seedSubject(), { token: false })
    const link = response.headers.get('link') ?? ''
    const target = /<([^>]+)>; rel="successor-version"/.exec(link)?.[1]

    expect(target).toBe(DEFAULT_SUCCESSOR_LINK)
    const url = new URL(target as string, BASE_URL)
    expect(url.pathname).toBe('/openapi.json')
    const pointer = decodeURIComponent(url.hash.slice(1))
    const tokens = pointer
      .split('/')
      .slice(1)
      .map((token) => token.replace(/~1/g, '/').replace(/~0/g, '~'))
    expect(resolvePointer(tokens)).toEqual(served.paths[CONNECTION_PATH]?.patch)
  })
})

describe('public/', () => {
  it('holds what src/assets.ts renders', async () => {
    // `npm run assets` rewrites public/ from src/openapi.ts and src/docs-page.ts.
    const assets = await renderStaticAssets()

    expect(assets.map((asset) => asset.file)).toEqual(['openapi.json', 'docs.html'])
    expect(openApiJson).toBe(assets[0]?.body)
    expect(docsHtml).toBe(assets[1]?.body)
    expect(headersFile).toBe(renderHeadersFile(assets))
  })

  it('gives each file its content type and a cache lifetime', () => {
    expect(headersFile).toContain(
      '/openapi.json\n  Content-Type: application/json; charset=utf-8\n  Cache-Control: public, max-age=300\n',
    )
    expect(headersFile).toContain(
      '/docs\n  Content-Type: text/html; charset=utf-8\n  Cache-Control: public, max-age=300\n',
    )
  })

  it('is not served by the Worker, which answers 404 for its paths', async () => {
    for (const path of ['/openapi.json', '/docs']) {
      const response = await callWorker(new Request(`${BASE_URL}${path}`), createEnv([key]))
      expect(response.status, path).toBe(404)
    }
  })
})

describe('the reference page', () => {
  const rule = headersFile.split('\n\n').find((block) => block.startsWith('/docs\n')) ?? ''
  const policy = /Content-Security-Policy: (.+)/.exec(rule)?.[1] ?? ''

  it('has a strict Content-Security-Policy', async () => {
    const style = /<style>([\s\S]*?)<\/style>/.exec(docsHtml)?.[1] ?? ''
    const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(style))
    const hash = btoa(String.fromCharCode(...new Uint8Array(digest)))

    expect(policy).toContain("default-src 'none'")
    expect(policy).toContain(`style-src 'sha256-${hash}'`)
    expect(policy).not.toContain('script-src')
    expect(docsHtml).not.toMatch(
      /<script|https?:\/\/(?!auth\.example|clinic\.example|consumer\.example)/,
    )
  })

  it('shows every operation, scope, status, error type and schema', () => {
    const html = docsHtml

    for (const [path, item] of Object.entries(served.paths)) {
      const operation = item.patch
      expect(html).toContain(escapeHtml(path))
      expect(html).toContain(`id="${operation.operationId}"`)
      for (const scope of operation.security.flatMap((entry) => Object.values(entry).flat())) {
        expect(html).toContain(`<code>${scope}</code>`)
      }
      for (const status of Object.keys(operation.responses)) {
        expect(html).toContain(`>${status}</td>`)
      }
    }
    for (const type of served.components.schemas.ErrorType?.enum ?? []) {
      expect(html).toContain(`<code>${type}</code>`)
    }
    for (const name of Object.keys(served.components.schemas)) {
      expect(html).toContain(`id="schema-${name}"`)
    }
  })
})
