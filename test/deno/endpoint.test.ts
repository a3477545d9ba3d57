// PATCH /admin/clients/{id}/refresh_secret served by the Deno entry over the SQLite D1 adapter:
// the authorization checks in their documented order, a rotation, and the eHealth envelope.

import assert from 'node:assert/strict'
import { verifySecret } from '../../src/index.ts'
import {
  createSigningKey,
  insertOwner,
  PEPPER_KEY,
  patchRefresh,
  type SigningKey,
  signToken,
  startServer,
  type TestServer,
} from './helpers.ts'

const key: SigningKey = await createSigningKey()

/** Runs `body` against a new server and database, and stops the server afterwards. */
async function withServer(
  body: (server: TestServer) => Promise<void>,
  settings: Parameters<typeof startServer>[1] = {},
): Promise<void> {
  const server = await startServer(key, settings)
  try {
    await body(server)
  } finally {
    await server.close()
  }
}

interface ErrorBody {
  meta: { url: string; type: string; code: number; request_id: string }
  error: { type: string; message: string; invalid?: { entry_type: string; entry: string }[] }
  data?: unknown
}

async function readError(response: Response, status: number, type: string): Promise<ErrorBody> {
  const body = (await response.json()) as ErrorBody
  assert.equal(response.status, status, `status of ${JSON.stringify(body.error)}`)
  assert.equal(body.error.type, type)
  assert.equal(body.meta.code, status)
  assert.equal('data' in body, false)
  return body
}

async function countEvents(server: TestServer, clientId: string, event: string): Promise<number> {
  const count = await server.db
    .prepare('SELECT count(*) AS n FROM client_secret_events WHERE client_id = ?1 AND event = ?2')
    .bind(clientId, event)
    .first<number>('n')
  return count ?? -1
}

async function storedHash(server: TestServer, clientId: string): Promise<string> {
  const hash = await server.db
    .prepare('SELECT secret_hash FROM clients WHERE id = ?1')
    .bind(clientId)
    .first<string>('secret_hash')
  assert.ok(hash !== null, 'the client row exists')
  return hash
}

Deno.test('missing token is 401 invalid_token', () =>
  withServer(async (server) => {
    const { clientId } = await insertOwner(server.db)
    const response = await patchRefresh(server, clientId)

    await readError(response, 401, 'access_denied')
    assert.equal(response.headers.get('www-authenticate'), 'Bearer error="invalid_token"')
  }))

Deno.test('invalid tokens are 401', () =>
  withServer(async (server) => {
    const { userId, clientId } = await insertOwner(server.db)
    const otherKey = await createSigningKey()
    const tokens = {
      'wrong key': await signToken(otherKey, { sub: userId, client_id: clientId }),
      'wrong issuer': await signToken(key, {
        sub: userId,
        client_id: clientId,
        iss: 'https://x.test',
      }),
      'wrong audience': await signToken(key, { sub: userId, client_id: clientId, aud: 'other' }),
      expired: await signToken(key, { sub: userId, client_id: clientId, expiresIn: -3600 }),
      'not a JWT': 'abc.def.ghi',
    }

    for (const [name, token] of Object.entries(tokens)) {
      const response = await patchRefresh(server, clientId, token)
      assert.equal(response.status, 401, name)
      assert.equal(response.headers.get('www-authenticate'), 'Bearer error="invalid_token"', name)
      await response.body?.cancel()
    }
    assert.equal((await storedHash(server, clientId)) !== '', true)
  }))

Deno.test('missing scope is 403 insufficient_scope', () =>
  withServer(async (server) => {
    const { userId, clientId } = await insertOwner(server.db)
    const token = await signToken(key, {
      sub: userId,
      client_id: clientId,
      scope: 'client:read secret:refresh_all',
    })
    const response = await patchRefresh(server, clientId, token)

    const body = await readError(response, 403, 'forbidden')
    assert.match(body.error.message, /secret:refresh/)
    assert.equal(
      response.headers.get('www-authenticate'),
      'Bearer error="insufficient_scope", scope="secret:refresh"',
    )
  }))

Deno.test('non-UUID id is 422 on the path', () =>
  withServer(async (server) => {
    const { userId } = await insertOwner(server.db)
    const token = await signToken(key, { sub: userId, client_id: 'not-a-uuid' })
    const response = await patchRefresh(server, 'not-a-uuid', token)

    const body = await readError(response, 422, 'validation_failed')
    assert.equal(body.error.invalid?.[0]?.entry_type, 'path_parameter')
    assert.equal(body.error.invalid?.[0]?.entry, '$.id')
  }))

Deno.test('token of another client is 403', () =>
  withServer(async (server) => {
    const { userId, clientId } = await insertOwner(server.db)
    const token = await signToken(key, { sub: userId, client_id: crypto.randomUUID() })
    const before = await storedHash(server, clientId)

    await readError(await patchRefresh(server, clientId, token), 403, 'forbidden')
    assert.equal(await storedHash(server, clientId), before)
  }))

Deno.test('unknown client is 404', () =>
  withServer(async (server) => {
    const { userId } = await insertOwner(server.db)
    const missing = crypto.randomUUID()
    const token = await signToken(key, { sub: userId, client_id: missing })

    await readError(await patchRefresh(server, missing, token), 404, 'not_found')
  }))

Deno.test('unknown or blocked user is 401', () =>
  withServer(async (server) => {
    const blocked = await insertOwner(server.db, { userBlocked: true })
    const blockedToken = await signToken(key, { sub: blocked.userId, client_id: blocked.clientId })
    await readError(
      await patchRefresh(server, blocked.clientId, blockedToken),
      401,
      'access_denied',
    )

    const owned = await insertOwner(server.db)
    const strangerToken = await signToken(key, {
      sub: crypto.randomUUID(),
      client_id: owned.clientId,
    })
    await readError(await patchRefresh(server, owned.clientId, strangerToken), 401, 'access_denied')
  }))

Deno.test('user without a granting role is 403', () =>
  withServer(async (server) => {
    for (const roleScope of [null, 'client:read', 'secret:refresh_all']) {
      const { userId, clientId } = await insertOwner(server.db, { roleScope })
      const token = await signToken(key, { sub: userId, client_id: clientId })
      const before = await storedHash(server, clientId)

      await readError(await patchRefresh(server, clientId, token), 403, 'forbidden')
      assert.equal(await storedHash(server, clientId), before, `role scope ${roleScope}`)
    }
  }))

Deno.test('blocked client is 403 blocked', () =>
  withServer(async (server) => {
    const { userId, clientId } = await insertOwner(server.db, { clientBlocked: true })
    const token = await signToken(key, { sub: userId, client_id: clientId })

    const body = await readError(await patchRefresh(server, clientId, token), 403, 'forbidden')
    assert.match(body.error.message, /blocked/)
    assert.equal(await countEvents(server, clientId, 'secret_rotated'), 0)
  }))

Deno.test('rotation stores a hash of the new secret', () =>
  withServer(async (server) => {
    const { userId, clientId, oldSecret } = await insertOwner(server.db)
    const token = await signToken(key, { sub: userId, client_id: clientId.toUpperCase() })
    const response = await patchRefresh(server, clientId.toUpperCase(), token)

    assert.equal(response.status, 200)
    const body = (await response.json()) as { data: Record<string, unknown> }
    const secret = body.data.secret as string
    assert.match(secret, /^[A-Za-z0-9_-]{43}$/)
    assert.equal(body.data.id, clientId)
    assert.equal(body.data.is_blocked, false)
    assert.deepEqual(body.data.settings, { a: 1 })
    assert.equal('priv_settings' in body.data, false)
    assert.equal('secret_hash' in body.data, false)

    const hash = await storedHash(server, clientId)
    assert.equal(await verifySecret(clientId, secret, hash, [PEPPER_KEY]), true)
    assert.equal(await verifySecret(clientId, oldSecret, hash, [PEPPER_KEY]), false)
    assert.equal(await countEvents(server, clientId, 'secret_rotated'), 1)
  }))

Deno.test('secret is stored nowhere in plain text', () =>
  withServer(async (server) => {
    const { userId, clientId } = await insertOwner(server.db)
    const token = await signToken(key, { sub: userId, client_id: clientId })
    const response = await patchRefresh(server, clientId, token)
    const secret = ((await response.json()) as { data: { secret: string } }).data.secret

    const tables = server.connection
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
      .all()
      .map((row) => String(row.name))
    for (const table of tables) {
      for (const row of server.connection.prepare(`SELECT * FROM "${table}"`).all()) {
        assert.equal(JSON.stringify(row).includes(secret), false, `table ${table}`)
      }
    }
    for (const [name, value] of response.headers) {
      assert.equal(value.includes(secret), false, `header ${name}`)
    }
  }))

Deno.test('success has envelope and no-store headers', () =>
  withServer(async (server) => {
    const { userId, clientId } = await insertOwner(server.db)
    const token = await signToken(key, { sub: userId, client_id: clientId })
    const response = await patchRefresh(server, clientId, token, {
      headers: { 'x-request-id': 'trace-42' },
    })

    assert.equal(response.status, 200)
    assert.equal(response.headers.get('cache-control'), 'no-store')
    assert.equal(response.headers.get('pragma'), 'no-cache')
    assert.equal(response.headers.get('content-type'), 'application/json; charset=utf-8')
    assert.equal(response.headers.get('x-request-id'), 'trace-42')
    assert.match(response.headers.get('deprecation') ?? '', /^@\d+$/)

    const body = (await response.json()) as { meta: Record<string, unknown>; error?: unknown }
    assert.deepEqual(body.meta, {
      url: `${server.url}/admin/clients/${clientId}/refresh_secret`,
      type: 'object',
      code: 200,
      request_id: 'trace-42',
    })
    assert.equal('error' in body, false)
  }))

Deno.test('errors carry envelope and headers', () =>
  withServer(async (server) => {
    const response = await patchRefresh(server, crypto.randomUUID(), undefined, {
      headers: { 'x-request-id': 'bad id with spaces' },
    })

    const body = await readError(response, 401, 'access_denied')
    assert.equal(response.headers.get('cache-control'), 'no-store')
    assert.equal(response.headers.get('content-type'), 'application/json; charset=utf-8')
    assert.notEqual(body.meta.request_id, 'bad id with spaces')
    assert.equal(response.headers.get('x-request-id'), body.meta.request_id)
    assert.equal(body.meta.type, 'object')
  }))

Deno.test('other methods are 405 with Allow', () =>
  withServer(async (server) => {
    const response = await fetch(
      `${server.url}/admin/clients/${crypto.randomUUID()}/refresh_secret`,
    )
    await readError(response, 405, 'method_not_allowed')
    assert.equal(response.headers.get('allow'), 'PATCH')
  }))

Deno.test('serves the files of public/ with the headers of public/_headers', () =>
  withServer(async (server) => {
    const headerRules = await Deno.readTextFile(new URL('../../public/_headers', import.meta.url))
    for (const [path, file] of [
      ['/openapi.json', 'openapi.json'],
      ['/docs', 'docs.html'],
    ] as const) {
      const response = await fetch(`${server.url}${path}`)
      assert.equal(response.status, 200, path)
      assert.equal(
        await response.text(),
        await Deno.readTextFile(new URL(`../../public/${file}`, import.meta.url)),
        path,
      )
      const rule = headerRules.split('\n\n').find((block) => block.startsWith(`${path}\n`))
      assert.ok(rule, `a _headers rule for ${path}`)
      for (const line of rule.trim().split('\n').slice(1)) {
        const [name, value] = line.trim().split(/: (.*)/, 2)
        assert.equal(response.headers.get(name ?? ''), value, `${path} ${name}`)
      }
    }

    const head = await fetch(`${server.url}/docs`, { method: 'HEAD' })
    assert.equal(head.status, 200)
    assert.equal(await head.text(), '')
    const post = await fetch(`${server.url}/docs`, { method: 'POST' })
    assert.equal(post.status, 405)
    assert.equal(post.headers.get('allow'), 'GET, HEAD')
    assert.equal(await post.text(), '')
  }))

Deno.test('database failure is 503 with Retry-After', () =>
  withServer(async (server) => {
    const { userId, clientId } = await insertOwner(server.db)
    const token = await signToken(key, { sub: userId, client_id: clientId })
    const before = await storedHash(server, clientId)
    server.connection.exec('DROP TABLE idempotency_records')

    const response = await patchRefresh(server, clientId, token)
    const body = await readError(response, 503, 'service_unavailable')
    assert.ok(response.headers.get('retry-after'))
    assert.doesNotMatch(body.error.message, /SQLITE|D1_|idempotency_records/)
    assert.equal(await storedHash(server, clientId), before)
  }))

Deno.test('missing configuration is 500', () =>
  withServer(
    async (server) => {
      const body = await readError(
        await patchRefresh(server, crypto.randomUUID()),
        500,
        'internal_error',
      )
      assert.doesNotMatch(body.error.message, /SECRET_PEPPER/)
    },
    { SECRET_PEPPER: '' },
  ))

Deno.test('audit row records the socket address', () =>
  withServer(async (server) => {
    const { userId, clientId } = await insertOwner(server.db)
    const token = await signToken(key, { sub: userId, client_id: clientId })
    const response = await patchRefresh(server, clientId, token, {
      headers: {
        'cf-connecting-ip': '203.0.113.9',
        'user-agent': 'deno-test/1',
        'x-request-id': 'audit-1',
      },
    })
    assert.equal(response.status, 200)
    await response.body?.cancel()

    const row = await server.db
      .prepare(
        'SELECT actor_user_id, ip, user_agent, request_id FROM client_secret_events WHERE client_id = ?1',
      )
      .bind(clientId)
      .first()
    assert.deepEqual(row, {
      actor_user_id: userId,
      ip: '127.0.0.1',
      user_agent: 'deno-test/1',
      request_id: 'audit-1',
    })
  }))
