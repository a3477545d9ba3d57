// The leak guard that runs after every test file (leak-guard.ts): what it finds, what it records.

import { beforeAll, describe, expect, it } from 'vitest'
import {
  callWorker,
  createEnv,
  createPepper,
  createSigningKey,
  findLeaks,
  leakGuardCounts,
  PEPPER,
  readData,
  refreshRequest,
  type SigningKey,
  seedClient,
  signToken,
} from './helpers'

let key: SigningKey

beforeAll(async () => {
  key = await createSigningKey('ES256')
})

describe('findLeaks', () => {
  it('finds each kind of registered value', async () => {
    const fixture = await seedClient()
    const token = await signToken(key, { sub: fixture.ownerId })
    const pepper = createPepper('k9').encoded
    const texts = [
      `token ${token}`,
      `pepper=${pepper}`,
      `secret ${fixture.oldSecret}`,
      `runtime pepper ${PEPPER}`,
    ]

    const found = findLeaks(texts.map((text) => ({ source: 'test', text }))).map(
      (leak) => leak.found,
    )

    expect(found).toContain('access token from signToken')
    expect(found).toContain('pepper k9 from createPepper')
    expect(found).toContain('client secret from seedClient')
    expect(found).toContain('pepper k1 from createPepper')
  })

  it('finds tokens and hashes that nobody registered', () => {
    const texts = [
      'Authorization: Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln',
      'stored hmac-sha256$k1$AAAA',
    ]

    const found = findLeaks(texts.map((text) => ({ source: 'test', text }))).map(
      (leak) => leak.found,
    )

    expect(found).toEqual(['a JWT (eyJ...eyJ...)', 'a stored hash (hmac-sha256$)'])
  })

  it('redacts what it reports', async () => {
    const fixture = await seedClient()

    const [leak] = findLeaks([{ source: 'test', text: `oops ${fixture.oldSecret}` }])

    expect(leak?.redacted).toBe('oops [client secret from seedClient]')
  })

  it('passes text without sensitive values', () => {
    const text = '{"level":"info","message":"request","status":200,"client_id":"c0ffee"}'

    expect(findLeaks([{ source: 'test', text }])).toEqual([])
  })
})

describe('recording', () => {
  it('registers the secret that readData returns and records the response', async () => {
    const fixture = await seedClient()
    const token = await signToken(key, { sub: fixture.ownerId, client_id: fixture.clientId })
    const before = leakGuardCounts()

    const response = await callWorker(refreshRequest(fixture.clientId, { token }), createEnv([key]))
    const { data } = await readData(response)
    const after = leakGuardCounts()

    expect(after.outputs).toBeGreaterThan(before.outputs)
    expect(findLeaks([{ source: 'test', text: data.secret }])[0]?.found).toBe(
      'client secret from readData',
    )
  })
})
