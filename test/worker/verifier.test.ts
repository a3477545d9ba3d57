import { env } from 'cloudflare:workers'
import { beforeAll, describe, expect, it } from 'vitest'
import type { PepperKey } from '../../src/config.ts'
import { createPepper, type Fixture, readData, toBase64url } from './helpers.ts'
import {
  expectedHash,
  type RotationSetup,
  rotate,
  runtimePepper,
  secretVerifier,
  setUpRotation,
} from './safety-helpers.ts'

const INVALID = { valid: false, slot: null, previousExpiresAt: null, deprecated: false }
const CURRENT = { valid: true, slot: 'current', previousExpiresAt: null, deprecated: false }
const HOUR_MS = 3600 * 1000

let pepper: PepperKey
let pepperText: string

beforeAll(() => {
  const runtime = runtimePepper()
  pepper = runtime.key
  pepperText = runtime.encoded
})

function newSecret(): string {
  return toBase64url(crypto.getRandomValues(new Uint8Array(32)))
}

/**
 * Seeds a client whose secrets are hashed with the runtime pepper, as the `SecretVerifier`
 * entrypoint reads them, and whose Worker env for HTTP requests uses the same pepper.
 */
async function setUpVerified(blocked = false): Promise<RotationSetup> {
  const setup = await setUpRotation(
    { SECRET_PEPPER: pepperText, SECRET_PEPPER_ID: pepper.id },
    { clientBlocked: blocked },
  )
  await setSlots(setup.fixture, {
    secret_hash: await expectedHash(setup.fixture.clientId, setup.fixture.oldSecret, pepper),
  })
  return setup
}

async function setSlots(
  fixture: Fixture,
  slots: {
    secret_hash?: string
    previous_secret_hash?: string | null
    previous_secret_expires_at?: string | null
  },
): Promise<void> {
  for (const [column, value] of Object.entries(slots)) {
    await env.DB.prepare(`UPDATE clients SET ${column} = ?1 WHERE id = ?2`)
      .bind(value, fixture.clientId)
      .run()
  }
}

/** Stores `previous` in the previous slot, expiring `offsetMs` from now. */
async function setPrevious(fixture: Fixture, previous: string, offsetMs: number): Promise<string> {
  const expiresAt = new Date(Date.now() + offsetMs).toISOString()
  await setSlots(fixture, {
    previous_secret_hash: await expectedHash(fixture.clientId, previous, pepper),
    previous_secret_expires_at: expiresAt,
  })
  return expiresAt
}

describe('SecretVerifier over RPC', () => {
  it('accepts the current secret', async () => {
    const { fixture } = await setUpVerified()
    const result = await secretVerifier().verifyClientSecret(fixture.clientId, fixture.oldSecret)

    expect(result).toEqual(CURRENT)
  })

  it('accepts the client id in upper case', async () => {
    const { fixture } = await setUpVerified()
    const result = await secretVerifier().verifyClientSecret(
      fixture.clientId.toUpperCase(),
      fixture.oldSecret,
    )

    expect(result.valid).toBe(true)
  })

  it('marks the previous secret deprecated in its grace period', async () => {
    const { fixture } = await setUpVerified()
    const previous = newSecret()
    const expiresAt = await setPrevious(fixture, previous, HOUR_MS)
    const result = await secretVerifier().verifyClientSecret(fixture.clientId, previous)

    expect(result).toEqual({
      valid: true,
      slot: 'previous',
      previousExpiresAt: expiresAt,
      deprecated: true,
    })
  })

  it('still reports the current secret as current during a grace period', async () => {
    const { fixture } = await setUpVerified()
    await setPrevious(fixture, newSecret(), HOUR_MS)
    const result = await secretVerifier().verifyClientSecret(fixture.clientId, fixture.oldSecret)

    expect(result).toEqual(CURRENT)
  })

  it('rejects the previous secret after its grace period', async () => {
    const { fixture } = await setUpVerified()
    const previous = newSecret()
    await setPrevious(fixture, previous, -1000)

    expect(await secretVerifier().verifyClientSecret(fixture.clientId, previous)).toEqual(INVALID)
  })

  it('rejects a wrong secret', async () => {
    const { fixture } = await setUpVerified()

    expect(await secretVerifier().verifyClientSecret(fixture.clientId, newSecret())).toEqual(
      INVALID,
    )
  })

  it('rejects the secret of another client', async () => {
    const first = await setUpVerified()
    const second = await setUpVerified()
    const result = await secretVerifier().verifyClientSecret(
      second.fixture.clientId,
      first.fixture.oldSecret,
    )

    expect(result).toEqual(INVALID)
  })

  it('rejects an unknown client', async () => {
    const { fixture } = await setUpVerified()
    const result = await secretVerifier().verifyClientSecret(crypto.randomUUID(), fixture.oldSecret)

    expect(result).toEqual(INVALID)
  })

  it('rejects both secrets of a blocked client', async () => {
    const { fixture } = await setUpVerified(true)
    const previous = newSecret()
    await setPrevious(fixture, previous, HOUR_MS)

    expect(await secretVerifier().verifyClientSecret(fixture.clientId, fixture.oldSecret)).toEqual(
      INVALID,
    )
    expect(await secretVerifier().verifyClientSecret(fixture.clientId, previous)).toEqual(INVALID)
  })

  it('rejects a hash under a pepper it does not hold', async () => {
    const { fixture } = await setUpVerified()
    await setSlots(fixture, {
      secret_hash: await expectedHash(fixture.clientId, fixture.oldSecret, createPepper('k9').key),
    })

    expect(await secretVerifier().verifyClientSecret(fixture.clientId, fixture.oldSecret)).toEqual(
      INVALID,
    )
  })

  it.each([
    ['not a UUID', 'not-a-uuid'],
    ['empty', ''],
    ['in braces', `{${crypto.randomUUID()}}`],
    ['with a trailing space', `${crypto.randomUUID()} `],
    ['with a SQL wildcard', '%'],
  ])('rejects a client id %s', async (_name, clientId) => {
    const { fixture } = await setUpVerified()

    expect(await secretVerifier().verifyClientSecret(clientId, fixture.oldSecret)).toEqual(INVALID)
  })

  it.each([
    ['empty', ''],
    ['of 513 characters', 'a'.repeat(513)],
  ])('rejects a secret %s', async (_name, secret) => {
    const { fixture } = await setUpVerified()

    expect(await secretVerifier().verifyClientSecret(fixture.clientId, secret)).toEqual(INVALID)
  })

  it('rejects non-string arguments', async () => {
    const { fixture } = await setUpVerified()
    const verifier = secretVerifier()
    const cases: [unknown, unknown][] = [
      [fixture.clientId, 12345],
      [fixture.clientId, null],
      [fixture.clientId, undefined],
      [fixture.clientId, [fixture.oldSecret]],
      [fixture.clientId, { secret: fixture.oldSecret }],
      [null, fixture.oldSecret],
      [42, fixture.oldSecret],
      [[fixture.clientId], fixture.oldSecret],
      [new TextEncoder().encode(fixture.clientId), new TextEncoder().encode(fixture.oldSecret)],
    ]

    for (const [clientId, secret] of cases) {
      expect(await verifier.verifyClientSecret(clientId, secret), JSON.stringify(clientId)).toEqual(
        INVALID,
      )
    }
  })
})

describe('SecretVerifier after a rotation', () => {
  it('accepts the new secret and flags the old one', async () => {
    const setup = await setUpVerified()
    const response = await rotate(setup, { body: { previous_secret_expires_in: 600 } })
    const { data } = await readData(response)
    const verifier = secretVerifier()

    expect(response.status).toBe(200)
    expect(await verifier.verifyClientSecret(setup.fixture.clientId, data.secret)).toEqual(CURRENT)
    expect(
      await verifier.verifyClientSecret(setup.fixture.clientId, setup.fixture.oldSecret),
    ).toEqual({
      valid: true,
      slot: 'previous',
      previousExpiresAt: data.previous_secret_expires_at,
      deprecated: true,
    })
  })

  it('rejects the old secret after revoke_previous', async () => {
    const setup = await setUpVerified()
    const response = await rotate(setup, { body: { revoke_previous: true } })
    const { data } = await readData(response)
    const verifier = secretVerifier()

    expect((await verifier.verifyClientSecret(setup.fixture.clientId, data.secret)).valid).toBe(
      true,
    )
    expect(
      await verifier.verifyClientSecret(setup.fixture.clientId, setup.fixture.oldSecret),
    ).toEqual(INVALID)
  })
})
