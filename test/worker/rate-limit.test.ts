import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { parseConfig } from '../../src/config.ts'
import {
  createEnv,
  createSigningKey,
  listRotations,
  readError,
  type SigningKey,
} from './helpers.ts'
import {
  addOwner,
  configErrorOf,
  insertEvents,
  isoAt,
  type RotateOptions,
  type RotationSetup,
  readSlots,
  rotate,
  setUpRotation,
  tokenFor,
} from './safety-helpers.ts'

const NOW = Date.parse('2026-06-01T12:00:00.000Z')
const HOUR = 3600

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] })
  vi.setSystemTime(NOW)
})

afterEach(() => {
  vi.useRealTimers()
})

/** Moves the clock and returns a fresh owner token, since tokens carry the time they were issued. */
async function moveClock(setup: RotationSetup, time: number): Promise<RotationSetup> {
  vi.setSystemTime(time)
  return {
    ...setup,
    token: await tokenFor(setup.key, setup.fixture.ownerId, setup.fixture.clientId),
  }
}

async function rotateTimes(setup: RotationSetup, count: number, options: RotateOptions = {}) {
  const statuses: number[] = []
  for (let index = 0; index < count; index += 1) {
    statuses.push((await rotate(setup, options)).status)
  }
  return statuses
}

/** Inserts rotations `secondsAgo` before NOW for the set-up client. */
function insertRotationsAgo(setup: RotationSetup, secondsAgo: readonly number[]): Promise<void> {
  return insertEvents(
    setup.fixture.clientId,
    secondsAgo.map((seconds) => isoAt(NOW, -seconds)),
  )
}

describe('rotation rate limit', () => {
  it('allows five rotations per hour by default', async () => {
    const setup = await setUpRotation()

    expect(await rotateTimes(setup, 5)).toEqual([200, 200, 200, 200, 200])
    expect((await rotate(setup)).status).toBe(429)
  })

  it('answers 429 too_many_requests without rotating', async () => {
    const setup = await setUpRotation()
    await insertRotationsAgo(setup, [10, 20, 30, 40, 50])
    const response = await rotate(setup)
    const body = await readError(response)

    expect(response.status).toBe(429)
    expect(body.error.type).toBe('too_many_requests')
    expect(body.meta.code).toBe(429)
    expect(body.data).toBeUndefined()
    expect(response.headers.get('Retry-After')).toMatch(/^[1-9][0-9]*$/)
    expect((await readSlots(setup.fixture.clientId)).secret_hash).toBe(
      setup.fixture.row.secret_hash,
    )
    expect(await listRotations(setup.fixture.clientId)).toHaveLength(5)
  })

  it('sets Retry-After to when the oldest rotation leaves the window', async () => {
    const setup = await setUpRotation()
    await insertRotationsAgo(setup, [3500, 3000, 2000, 1000, 10])
    const response = await rotate(setup)

    expect(response.status).toBe(429)
    expect(response.headers.get('Retry-After')).toBe('100')
  })

  it('sets Retry-After to a whole window after a burst', async () => {
    const setup = await setUpRotation({ ROTATION_RATE_LIMIT: '2', ROTATION_RATE_WINDOW: '60' })
    expect(await rotateTimes(setup, 2)).toEqual([200, 200])
    const response = await rotate(setup)

    expect(response.status).toBe(429)
    expect(response.headers.get('Retry-After')).toBe('60')
  })

  it('rounds Retry-After up to whole seconds', async () => {
    const setup = await setUpRotation()
    await insertEvents(setup.fixture.clientId, [
      isoAt(NOW, -HOUR + 0.5),
      ...[10, 20, 30, 40].map((seconds) => isoAt(NOW, -seconds)),
    ])
    const response = await rotate(setup)

    expect(response.status).toBe(429)
    expect(response.headers.get('Retry-After')).toBe('1')
  })

  it('waits for enough rotations to leave when over the limit', async () => {
    // Five rotations counted against a limit of 3: three must leave before one more fits.
    const setup = await setUpRotation({ ROTATION_RATE_LIMIT: '3' })
    await insertRotationsAgo(setup, [3000, 2000, 1000, 500, 100])
    const response = await rotate(setup)

    expect(response.status).toBe(429)
    expect(response.headers.get('Retry-After')).toBe('2600')
  })

  it('no longer counts a rotation exactly one window old', async () => {
    const setup = await setUpRotation()
    await insertRotationsAgo(setup, [HOUR, 60, 50, 40, 30])

    expect((await rotate(setup)).status).toBe(200)
  })

  it('counts a rotation 1 ms inside the window', async () => {
    const setup = await setUpRotation()
    await insertEvents(setup.fixture.clientId, [
      isoAt(NOW, -HOUR + 0.001),
      ...[60, 50, 40, 30].map((seconds) => isoAt(NOW, -seconds)),
    ])

    expect((await rotate(setup)).status).toBe(429)
  })

  it('allows a rotation again once the window has passed', async () => {
    const setup = await setUpRotation()
    expect(await rotateTimes(setup, 5)).toEqual([200, 200, 200, 200, 200])

    const justBefore = await moveClock(setup, NOW + HOUR * 1000 - 1)
    expect((await rotate(justBefore)).status).toBe(429)

    const after = await moveClock(setup, NOW + HOUR * 1000)
    expect((await rotate(after)).status).toBe(200)
  })

  it('counts per client', async () => {
    const setup = await setUpRotation()
    const other = await setUpRotation()
    await insertRotationsAgo(other, [10, 20, 30, 40, 50])

    expect((await rotate(setup)).status).toBe(200)
    expect((await rotate(other)).status).toBe(429)
  })

  it('counts the rotations of every user of the client', async () => {
    const setup = await setUpRotation()
    const secondOwner = await addOwner(setup.fixture)
    const secondToken = await tokenFor(setup.key, secondOwner, setup.fixture.clientId)
    expect(await rotateTimes(setup, 3)).toEqual([200, 200, 200])
    expect(await rotateTimes(setup, 2, { token: secondToken })).toEqual([200, 200])

    expect((await rotate(setup, { token: secondToken })).status).toBe(429)
    expect((await rotate(setup)).status).toBe(429)
  })

  it('ignores denied and replayed attempts', async () => {
    const setup = await setUpRotation()
    const times = Array.from({ length: 10 }, (_, index) => isoAt(NOW, -10 - index))
    await insertEvents(setup.fixture.clientId, times, 'secret_rotation_denied')
    await insertEvents(setup.fixture.clientId, times, 'secret_rotation_replayed')
    await insertRotationsAgo(setup, [10, 20, 30, 40])

    expect((await rotate(setup)).status).toBe(200)
    expect((await rotate(setup)).status).toBe(429)
  })

  it('does not count denied attempts of its own', async () => {
    const setup = await setUpRotation({ ROTATION_RATE_LIMIT: '1' })
    expect((await rotate(setup)).status).toBe(200)
    expect(await rotateTimes(setup, 3)).toEqual([429, 429, 429])

    const after = await moveClock(setup, NOW + HOUR * 1000)
    expect((await rotate(after)).status).toBe(200)
  })

  it('does not count Idempotency-Key replays', async () => {
    const setup = await setUpRotation()
    const key = `retry-${crypto.randomUUID()}`
    const first = await rotate(setup, { idempotencyKey: key })
    const replays = await rotateTimes(setup, 4, { idempotencyKey: key })

    expect(first.status).toBe(200)
    expect(replays).toEqual([200, 200, 200, 200])
    expect(await rotateTimes(setup, 4)).toEqual([200, 200, 200, 200])
    expect((await rotate(setup)).status).toBe(429)
  })

  it('is off when ROTATION_RATE_LIMIT is 0', async () => {
    const setup = await setUpRotation({ ROTATION_RATE_LIMIT: '0' })
    await insertRotationsAgo(
      setup,
      Array.from({ length: 50 }, (_, index) => index + 1),
    )

    expect(await rotateTimes(setup, 3)).toEqual([200, 200, 200])
  })

  it('holds under concurrent requests', async () => {
    const setup = await setUpRotation()
    const responses = await Promise.all(Array.from({ length: 8 }, () => rotate(setup)))
    const statuses = responses.map((response) => response.status).sort()

    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429, 429])
    expect(await listRotations(setup.fixture.clientId)).toHaveLength(5)
  })
})

describe('rate limit settings', () => {
  let key: SigningKey

  beforeAll(async () => {
    key = await createSigningKey()
  })

  it('default to 5 rotations per 3600 seconds', () => {
    expect(parseConfig(createEnv([key])).rateLimit).toEqual({ limit: 5, window: 3600 })
  })

  it('read both values', () => {
    const config = parseConfig(
      createEnv([key], { ROTATION_RATE_LIMIT: '10', ROTATION_RATE_WINDOW: '86400' }),
    )

    expect(config.rateLimit).toEqual({ limit: 10, window: 86400 })
  })

  it('accept a limit of 0', () => {
    expect(parseConfig(createEnv([key], { ROTATION_RATE_LIMIT: '0' })).rateLimit.limit).toBe(0)
  })

  it.each(['-1', '1.5', 'five', '5/h', '1e2'])('reject ROTATION_RATE_LIMIT=%s', (value) => {
    const error = configErrorOf(createEnv([key], { ROTATION_RATE_LIMIT: value }))

    expect(error.setting).toBe('ROTATION_RATE_LIMIT')
  })

  it.each(['0', '-60', '1.5', '1h', String(2 ** 53)])('reject ROTATION_RATE_WINDOW=%s', (value) => {
    const error = configErrorOf(createEnv([key], { ROTATION_RATE_WINDOW: value }))

    expect(error.setting).toBe('ROTATION_RATE_WINDOW')
  })
})
