import { env } from 'cloudflare:workers'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import { expect, it } from 'vitest'
import worker from '../../src/index'
import { hashSecret } from '../../src/secret'

it('rotates', async () => {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true })
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k', alg: 'ES256' }
  const pepper = 'a'.repeat(43)
  const testEnv = {
    ...env,
    JWKS: JSON.stringify({ keys: [jwk] }),
    JWT_ISSUER: 'https://issuer.test',
    JWT_AUDIENCE: 'refresh-secret',
    SECRET_PEPPER: pepper,
  }
  const clientId = '11111111-1111-4111-8111-111111111111'
  const userId = '22222222-2222-4222-8222-222222222222'
  const hash = await hashSecret(clientId, 'old', { id: 'k1', key: new Uint8Array(32) })
  await env.DB.batch([
    env.DB.prepare("INSERT INTO users (id, email) VALUES (?1, 'o@x')").bind(userId),
    env.DB.prepare("INSERT INTO client_types (id, name) VALUES ('t', 'MSP')"),
    env.DB.prepare("INSERT INTO clients (id, name, secret_hash, client_type_id, user_id, settings) VALUES (?1, 'c', ?2, 't', ?3, '{}')").bind(clientId, hash, userId),
    env.DB.prepare("INSERT INTO roles (id, name, scope) VALUES ('r', 'OWNER', 'secret:refresh')"),
    env.DB.prepare("INSERT INTO user_roles (id, user_id, role_id, client_id) VALUES ('ur', ?1, 'r', ?2)").bind(userId, clientId),
  ])
  const token = await new SignJWT({ scope: 'secret:refresh', client_id: clientId })
    .setProtectedHeader({ alg: 'ES256', kid: 'k' })
    .setIssuer('https://issuer.test').setAudience('refresh-secret').setSubject(userId)
    .setIssuedAt().setExpirationTime('5m').sign(privateKey)
  const res = await worker.fetch(new Request(`https://x.test/admin/clients/${clientId}/refresh_secret`, { method: 'PATCH', headers: { authorization: `Bearer ${token}` } }), testEnv, {} as ExecutionContext)
  const body = await res.json()
  console.log(res.status, JSON.stringify(body), [...res.headers])
  expect(res.status).toBe(200)
})
