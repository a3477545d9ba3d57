// The benchmark's token issuer: an ES256 key pair, its JWKS on a loopback server, and tokens.
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:http'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'

export const ISSUER = 'https://issuer.bench.test'
export const AUDIENCE = 'refresh-secret'
const KEY_ID = 'bench-es256'
const TOKEN_LIFETIME_SECONDS = 4 * 3600

/** Creates a pepper for one run: 32 random bytes as Base64url. */
export function createPepper() {
  return randomBytes(32).toString('base64url')
}

export async function createIssuer() {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true })
  const publicJwk = { ...(await exportJWK(publicKey)), kid: KEY_ID, alg: 'ES256', use: 'sig' }

  /** Signs an access token; `claims` override the defaults, and undefined removes a claim. */
  async function sign(claims) {
    const now = Math.floor(Date.now() / 1000)
    const payload = {
      iss: ISSUER,
      aud: AUDIENCE,
      iat: now,
      exp: now + TOKEN_LIFETIME_SECONDS,
      scope: 'secret:refresh',
      ...claims,
    }
    for (const [name, value] of Object.entries(payload)) {
      if (value === undefined) delete payload[name]
    }
    return new SignJWT(payload)
      .setProtectedHeader({ alg: 'ES256', kid: KEY_ID, typ: 'at+jwt' })
      .sign(privateKey)
  }

  return { jwks: { keys: [publicJwk] }, sign }
}

/**
 * Serves the key set on 127.0.0.1 at any path and records the time of each fetch per path, so
 * each Worker under test can have its own key-set URL and its own count.
 */
export async function startKeySetServer(jwks) {
  const hits = new Map()
  const times = new Map()
  const body = JSON.stringify(jwks)
  const server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://127.0.0.1').pathname
    hits.set(path, (hits.get(path) ?? 0) + 1)
    times.set(path, [...(times.get(path) ?? []), Date.now()])
    response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=600' })
    response.end(body)
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()

  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    hits: (path) => hits.get(path) ?? 0,
    /** Milliseconds since the epoch of each fetch of `path`. */
    times: (path) => times.get(path) ?? [],
    close: () => new Promise((resolve) => server.close(resolve)),
  }
}
