/**
 * The floor Worker of the benchmark: Hono routing plus jose's jwtVerify and nothing else. Its
 * bundle size and startup time are what any Worker that verifies a bearer token on this route
 * pays, so the benchmark compares the refresh-secret Worker against it.
 */
import { Hono } from 'hono'
import { createLocalJWKSet, createRemoteJWKSet, type JWTVerifyGetKey, jwtVerify } from 'jose'

interface FloorEnv {
  JWKS_URL?: string
  JWKS?: string
  JWT_ISSUER: string
  JWT_AUDIENCE: string
}

let keySet: JWTVerifyGetKey | undefined

function getKeySet(env: FloorEnv): JWTVerifyGetKey {
  if (keySet === undefined) {
    keySet = env.JWKS_URL
      ? createRemoteJWKSet(new URL(env.JWKS_URL))
      : createLocalJWKSet(JSON.parse(env.JWKS ?? '{"keys":[]}'))
  }
  return keySet
}

const app = new Hono<{ Bindings: FloorEnv }>()

app.patch('/admin/clients/:id/refresh_secret', async (c) => {
  const token = /^Bearer +(\S+)$/i.exec(c.req.header('authorization') ?? '')?.[1]
  if (token === undefined) return c.json({ error: 'access_denied' }, 401)

  try {
    const { payload } = await jwtVerify(token, getKeySet(c.env), {
      issuer: c.env.JWT_ISSUER,
      audience: c.env.JWT_AUDIENCE,
      algorithms: ['ES256'],
    })
    return c.json({ data: { id: c.req.param('id'), sub: payload.sub } })
  } catch {
    return c.json({ error: 'access_denied' }, 401)
  }
})

export default app
