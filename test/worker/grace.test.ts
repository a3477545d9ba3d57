import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { parseConfig } from '../../src/config.ts'
import { verifyClientSecret } from '../../src/secret.ts'
import {
  callWorker,
  createEnv,
  createPepper,
  createSigningKey,
  listRotations,
  PEPPER_KEY,
  readData,
  readError,
  refreshRequest,
  type SigningKey,
  toBase64url,
} from './helpers.ts'
import {
  configErrorOf,
  expectedHash,
  expectInvalid,
  isoAt,
  type RotationSetup,
  readSlots,
  rotate,
  setUpRotation,
} from './safety-helpers.ts'

const NOW = Date.parse('2026-06-01T12:00:00.000Z')
const WEEK = 7 * 24 * 3600
const clientId = 'a3f1c2d4-5b6e-4f70-8a91-b2c3d4e5f607'

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] })
  vi.setSystemTime(NOW)
})

afterEach(() => {
  vi.useRealTimers()
})

function newSecret(): string {
  return toBase64url(crypto.getRandomValues(new Uint8Array(32)))
}

/** Verifies `secret` against the client's stored slots at `at` (milliseconds since the epoch). */
async function verifyStored(setup: RotationSetup, secret: string, at = NOW) {
  const slots = await readSlots(setup.fixture.clientId)
  return verifyClientSecret(setup.fixture.clientId, secret, slots, [PEPPER_KEY], at)
}

async function rotateOk(setup: RotationSetup, body?: unknown) {
  const response = await rotate(setup, { body })
  expect(response.status).toBe(200)
  return (await readData(response)).data
}

describe('verifyClientSecret', () => {
  const current = newSecret()
  const previous = newSecret()
  const expiresAt = isoAt(NOW, 3600)
  let stored: {
    secret_hash: string
    previous_secret_hash: string | null
    previous_secret_expires_at: string | null
  }

  beforeAll(async () => {
    stored = {
      secret_hash: await expectedHash(clientId, current),
      previous_secret_hash: await expectedHash(clientId, previous),
      previous_secret_expires_at: expiresAt,
    }
  })

  it('matches the current secret', async () => {
    const match = await verifyClientSecret(clientId, current, stored, [PEPPER_KEY], NOW)

    expect(match).toEqual({ valid: true, slot: 'current', previousExpiresAt: null })
  })

  it('matches the previous secret before expiry', async () => {
    const match = await verifyClientSecret(clientId, previous, stored, [PEPPER_KEY], NOW)

    expect(match).toEqual({ valid: true, slot: 'previous', previousExpiresAt: expiresAt })
  })

  it('matches the previous secret 1 ms before expiry', async () => {
    const at = Date.parse(expiresAt) - 1
    const match = await verifyClientSecret(clientId, previous, stored, [PEPPER_KEY], at)

    expect(match.valid).toBe(true)
    expect(match.slot).toBe('previous')
  })

  it('rejects the previous secret at the expiry instant', async () => {
    const at = Date.parse(expiresAt)
    const match = await verifyClientSecret(clientId, previous, stored, [PEPPER_KEY], at)

    expect(match).toEqual({ valid: false, slot: null, previousExpiresAt: null })
  })

  it('rejects the previous secret after expiry', async () => {
    const at = Date.parse(expiresAt) + 1000
    const match = await verifyClientSecret(clientId, previous, stored, [PEPPER_KEY], at)

    expect(match.valid).toBe(false)
  })

  it('still matches the current secret after the previous expired', async () => {
    const at = Date.parse(expiresAt) + 1000
    const match = await verifyClientSecret(clientId, current, stored, [PEPPER_KEY], at)

    expect(match.slot).toBe('current')
  })

  it('rejects a previous hash without an expiry time', async () => {
    const slots = { ...stored, previous_secret_expires_at: null }
    const match = await verifyClientSecret(clientId, previous, slots, [PEPPER_KEY], NOW)

    expect(match.valid).toBe(false)
  })

  it('rejects an expiry time without a previous hash', async () => {
    const slots = { ...stored, previous_secret_hash: null }
    const match = await verifyClientSecret(clientId, previous, slots, [PEPPER_KEY], NOW)

    expect(match.valid).toBe(false)
  })

  it('rejects an unparseable expiry time', async () => {
    const slots = { ...stored, previous_secret_expires_at: 'next week' }
    const match = await verifyClientSecret(clientId, previous, slots, [PEPPER_KEY], NOW)

    expect(match.valid).toBe(false)
  })

  it('rejects a wrong secret', async () => {
    const match = await verifyClientSecret(clientId, newSecret(), stored, [PEPPER_KEY], NOW)

    expect(match).toEqual({ valid: false, slot: null, previousExpiresAt: null })
  })

  it('rejects both secrets for another client', async () => {
    const otherClient = 'b3f1c2d4-5b6e-4f70-8a91-b2c3d4e5f607'

    for (const secret of [current, previous]) {
      const match = await verifyClientSecret(otherClient, secret, stored, [PEPPER_KEY], NOW)
      expect(match.valid).toBe(false)
    }
  })

  it('matches a previous hash under a retired pepper', async () => {
    const retired = createPepper('k0').key
    const slots = {
      ...stored,
      previous_secret_hash: await expectedHash(clientId, previous, retired),
    }
    const match = await verifyClientSecret(clientId, previous, slots, [PEPPER_KEY, retired], NOW)

    expect(match.slot).toBe('previous')
  })

  it('rejects a previous hash under a pepper no longer listed', async () => {
    const retired = createPepper('k0').key
    const slots = {
      ...stored,
      previous_secret_hash: await expectedHash(clientId, previous, retired),
    }
    const match = await verifyClientSecret(clientId, previous, slots, [PEPPER_KEY], NOW)

    expect(match.valid).toBe(false)
  })
})

describe('previous_secret_expires_in', () => {
  it('retires the old secret at once by default', async () => {
    const setup = await setUpRotation()
    const data = await rotateOk(setup)
    const slots = await readSlots(setup.fixture.clientId)

    expect(data.previous_secret_expires_at).toBeNull()
    expect(slots.previous_secret_hash).toBeNull()
    expect(slots.previous_secret_expires_at).toBeNull()
    expect((await verifyStored(setup, setup.fixture.oldSecret)).valid).toBe(false)
    expect((await verifyStored(setup, data.secret)).slot).toBe('current')
  })

  it('keeps the old secret for the requested seconds', async () => {
    const setup = await setUpRotation()
    const data = await rotateOk(setup, { previous_secret_expires_in: 3600 })
    const slots = await readSlots(setup.fixture.clientId)
    const expiresAt = isoAt(NOW, 3600)

    expect(data.previous_secret_expires_at).toBe(expiresAt)
    expect(slots.previous_secret_expires_at).toBe(expiresAt)
    expect(slots.previous_secret_hash).toBe(setup.fixture.row.secret_hash)
    expect(slots.secret_hash).toBe(await expectedHash(setup.fixture.clientId, data.secret))
  })

  it('verifies the old secret until the expiry instant', async () => {
    const setup = await setUpRotation()
    const data = await rotateOk(setup, { previous_secret_expires_in: 3600 })
    const old = setup.fixture.oldSecret
    const expiry = NOW + 3600 * 1000

    expect(await verifyStored(setup, old)).toEqual({
      valid: true,
      slot: 'previous',
      previousExpiresAt: isoAt(NOW, 3600),
    })
    expect((await verifyStored(setup, old, expiry - 1)).slot).toBe('previous')
    expect((await verifyStored(setup, old, expiry)).valid).toBe(false)
    expect((await verifyStored(setup, data.secret, expiry)).slot).toBe('current')
  })

  it('applies GRACE_PERIOD_DEFAULT when absent', async () => {
    const setup = await setUpRotation({ GRACE_PERIOD_DEFAULT: '600' })
    const data = await rotateOk(setup)

    expect(data.previous_secret_expires_at).toBe(isoAt(NOW, 600))
    expect((await verifyStored(setup, setup.fixture.oldSecret)).slot).toBe('previous')
  })

  it('applies GRACE_PERIOD_DEFAULT to an empty object', async () => {
    const setup = await setUpRotation({ GRACE_PERIOD_DEFAULT: '600' })
    const data = await rotateOk(setup, {})

    expect(data.previous_secret_expires_at).toBe(isoAt(NOW, 600))
  })

  it('lets 0 override GRACE_PERIOD_DEFAULT', async () => {
    const setup = await setUpRotation({ GRACE_PERIOD_DEFAULT: '600' })
    const data = await rotateOk(setup, { previous_secret_expires_in: 0 })

    expect(data.previous_secret_expires_at).toBeNull()
    expect((await verifyStored(setup, setup.fixture.oldSecret)).valid).toBe(false)
  })

  it('accepts the default maximum of one week', async () => {
    const setup = await setUpRotation()
    const data = await rotateOk(setup, { previous_secret_expires_in: WEEK })

    expect(data.previous_secret_expires_at).toBe(isoAt(NOW, WEEK))
  })

  it('accepts exactly GRACE_PERIOD_MAX', async () => {
    const setup = await setUpRotation({ GRACE_PERIOD_MAX: '120' })
    const data = await rotateOk(setup, { previous_secret_expires_in: 120 })

    expect(data.previous_secret_expires_at).toBe(isoAt(NOW, 120))
  })

  it('rejects GRACE_PERIOD_MAX plus one', async () => {
    const setup = await setUpRotation({ GRACE_PERIOD_MAX: '120' })
    const response = await rotate(setup, { body: { previous_secret_expires_in: 121 } })

    await expectInvalid(response, 'json_data_property', '$.previous_secret_expires_in')
  })

  it('rejects any grace period when GRACE_PERIOD_MAX is 0', async () => {
    const setup = await setUpRotation({ GRACE_PERIOD_MAX: '0' })
    const response = await rotate(setup, { body: { previous_secret_expires_in: 1 } })

    await expectInvalid(response, 'json_data_property', '$.previous_secret_expires_in')
  })

  it.each([
    ['negative', -1],
    ['fractional', 1.5],
    ['a numeric string', '60'],
    ['one week plus one second', WEEK + 1],
    ['far above the maximum', 1e20],
    ['null', null],
    ['true', true],
    ['false', false],
    ['an array', [60]],
    ['an object', { seconds: 60 }],
  ])('rejects %s without rotating', async (_name, value) => {
    const setup = await setUpRotation()
    const response = await rotate(setup, { body: { previous_secret_expires_in: value } })

    await expectInvalid(response, 'json_data_property', '$.previous_secret_expires_in')
    expect((await readSlots(setup.fixture.clientId)).secret_hash).toBe(
      setup.fixture.row.secret_hash,
    )
    expect(await listRotations(setup.fixture.clientId)).toHaveLength(0)
  })

  it('rejects a number too large for a double', async () => {
    const setup = await setUpRotation()
    const response = await rotate(setup, { body: '{"previous_secret_expires_in": 1e400}' })

    await expectInvalid(response, 'json_data_property', '$.previous_secret_expires_in')
  })
})

describe('later rotations', () => {
  it('replace the previous secret with the then-current one', async () => {
    const setup = await setUpRotation()
    const first = await rotateOk(setup, { previous_secret_expires_in: 3600 })
    vi.setSystemTime(NOW + 60_000)
    const second = await rotateOk(setup, { previous_secret_expires_in: 3600 })
    const at = NOW + 60_000
    const slots = await readSlots(setup.fixture.clientId)

    expect(second.previous_secret_expires_at).toBe(isoAt(at, 3600))
    expect(slots.previous_secret_hash).toBe(
      await expectedHash(setup.fixture.clientId, first.secret),
    )
    expect((await verifyStored(setup, setup.fixture.oldSecret, at)).valid).toBe(false)
    expect((await verifyStored(setup, first.secret, at)).slot).toBe('previous')
    expect((await verifyStored(setup, second.secret, at)).slot).toBe('current')
  })

  it('with grace 0 retire the previous secret too', async () => {
    const setup = await setUpRotation()
    const first = await rotateOk(setup, { previous_secret_expires_in: 3600 })
    const second = await rotateOk(setup, { previous_secret_expires_in: 0 })
    const slots = await readSlots(setup.fixture.clientId)

    expect(second.previous_secret_expires_at).toBeNull()
    expect(slots.previous_secret_hash).toBeNull()
    expect(slots.previous_secret_expires_at).toBeNull()
    expect((await verifyStored(setup, setup.fixture.oldSecret)).valid).toBe(false)
    expect((await verifyStored(setup, first.secret)).valid).toBe(false)
    expect((await verifyStored(setup, second.secret)).slot).toBe('current')
  })

  it('keep a secret from an expired grace period retired', async () => {
    const setup = await setUpRotation()
    await rotateOk(setup, { previous_secret_expires_in: 60 })
    vi.setSystemTime(NOW + 120_000)
    const second = await rotateOk(setup, { previous_secret_expires_in: 60 })

    const at = NOW + 120_000
    expect((await verifyStored(setup, setup.fixture.oldSecret, at)).valid).toBe(false)
    expect(second.previous_secret_expires_at).toBe(isoAt(at, 60))
  })
})

describe('revoke_previous', () => {
  it('retires the old secret despite GRACE_PERIOD_DEFAULT', async () => {
    const setup = await setUpRotation({ GRACE_PERIOD_DEFAULT: '3600' })
    const data = await rotateOk(setup, { revoke_previous: true })
    const slots = await readSlots(setup.fixture.clientId)

    expect(data.previous_secret_expires_at).toBeNull()
    expect(slots.previous_secret_hash).toBeNull()
    expect((await verifyStored(setup, setup.fixture.oldSecret)).valid).toBe(false)
    expect((await verifyStored(setup, data.secret)).slot).toBe('current')
  })

  it('also retires a secret still in its grace period', async () => {
    const setup = await setUpRotation()
    const first = await rotateOk(setup, { previous_secret_expires_in: 3600 })
    await rotateOk(setup, { revoke_previous: true })

    expect((await verifyStored(setup, setup.fixture.oldSecret)).valid).toBe(false)
    expect((await verifyStored(setup, first.secret)).valid).toBe(false)
  })

  it('accepts an explicit grace period of 0', async () => {
    const setup = await setUpRotation({ GRACE_PERIOD_DEFAULT: '3600' })
    const data = await rotateOk(setup, { revoke_previous: true, previous_secret_expires_in: 0 })

    expect(data.previous_secret_expires_at).toBeNull()
  })

  it('as false leaves GRACE_PERIOD_DEFAULT in force', async () => {
    const setup = await setUpRotation({ GRACE_PERIOD_DEFAULT: '3600' })
    const data = await rotateOk(setup, { revoke_previous: false })

    expect(data.previous_secret_expires_at).toBe(isoAt(NOW, 3600))
  })

  it('as false leaves a requested grace period in force', async () => {
    const setup = await setUpRotation()
    const data = await rotateOk(setup, { revoke_previous: false, previous_secret_expires_in: 60 })

    expect(data.previous_secret_expires_at).toBe(isoAt(NOW, 60))
  })

  it('rejects a non-zero grace period alongside', async () => {
    const setup = await setUpRotation()
    const response = await rotate(setup, {
      body: { revoke_previous: true, previous_secret_expires_in: 60 },
    })
    const body = await readError(response)
    const entries = (body.error.invalid ?? []).map((entry) => entry.entry)
    // Either field may be named, since the conflict is between the two.
    const namesAField = entries.some((entry) =>
      ['$.revoke_previous', '$.previous_secret_expires_in'].includes(entry),
    )

    expect(response.status).toBe(422)
    expect(body.error.type).toBe('validation_failed')
    expect(namesAField).toBe(true)
    expect((await readSlots(setup.fixture.clientId)).secret_hash).toBe(
      setup.fixture.row.secret_hash,
    )
  })

  it.each([
    ['a string', 'true'],
    ['1', 1],
    ['0', 0],
    ['null', null],
    ['an array', [true]],
    ['an object', {}],
  ])('rejects %s without rotating', async (_name, value) => {
    const setup = await setUpRotation()
    const response = await rotate(setup, { body: { revoke_previous: value } })

    await expectInvalid(response, 'json_data_property', '$.revoke_previous')
    expect(await listRotations(setup.fixture.clientId)).toHaveLength(0)
  })
})

describe('grace period settings', () => {
  let key: SigningKey

  beforeAll(async () => {
    key = await createSigningKey()
  })

  it('default to a maximum of one week and no grace', () => {
    const config = parseConfig(createEnv([key]))

    expect(config.gracePeriod).toEqual({ max: WEEK, default: 0 })
  })

  it('read both values', () => {
    const config = parseConfig(
      createEnv([key], { GRACE_PERIOD_MAX: '86400', GRACE_PERIOD_DEFAULT: '3600' }),
    )

    expect(config.gracePeriod).toEqual({ max: 86400, default: 3600 })
  })

  it('allow a default equal to the maximum', () => {
    const config = parseConfig(
      createEnv([key], { GRACE_PERIOD_MAX: '600', GRACE_PERIOD_DEFAULT: '600' }),
    )

    expect(config.gracePeriod.default).toBe(600)
  })

  it('reject a default above the maximum', () => {
    const error = configErrorOf(
      createEnv([key], { GRACE_PERIOD_MAX: '600', GRACE_PERIOD_DEFAULT: '601' }),
    )

    expect(error.setting).toBe('GRACE_PERIOD_DEFAULT')
  })

  it('reject a default above the default maximum', () => {
    const error = configErrorOf(createEnv([key], { GRACE_PERIOD_DEFAULT: String(WEEK + 1) }))

    expect(error.setting).toBe('GRACE_PERIOD_DEFAULT')
  })

  it.each(['GRACE_PERIOD_MAX', 'GRACE_PERIOD_DEFAULT'] as const)(
    'reject malformed values of %s',
    (setting) => {
      for (const value of ['-1', '1.5', 'ten', '1e3', '0x10', String(2 ** 53)]) {
        const error = configErrorOf(createEnv([key], { [setting]: value }))
        expect(error.setting, `${setting}=${value}`).toBe(setting)
      }
    },
  )

  it('fail every request closed on an invalid setting', async () => {
    const setup = await setUpRotation({ GRACE_PERIOD_MAX: '60', GRACE_PERIOD_DEFAULT: '61' })
    const request = refreshRequest(setup.fixture.clientId, { token: setup.token })
    const response = await callWorker(request, setup.workerEnv)

    expect(response.status).toBe(500)
    expect((await readError(response)).error.type).toBe('internal_error')
    expect((await readSlots(setup.fixture.clientId)).secret_hash).toBe(
      setup.fixture.row.secret_hash,
    )
  })
})
