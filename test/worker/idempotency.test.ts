import { env } from 'cloudflare:workers'
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { parseConfig } from '../../src/config.ts'
import {
  captureConsole,
  createEnv,
  createPepper,
  createSigningKey,
  dumpDatabase,
  listEvents,
  listRotations,
  PEPPER,
  PEPPER_KEY,
  readData,
  readError,
  type SigningKey,
} from './helpers.ts'
import {
  addOwner,
  configErrorOf,
  expectedHash,
  expectInvalid,
  grantOwner,
  listIdempotencyRecords,
  type RotateOptions,
  type RotationSetup,
  readSlots,
  rotate,
  setUpRotation,
  tokenFor,
} from './safety-helpers.ts'

afterEach(() => {
  vi.useRealTimers()
})

function newKey(): string {
  return `retry-${crypto.randomUUID()}`
}

async function rotateOk(setup: RotationSetup, options: RotateOptions = {}) {
  const response = await rotate(setup, options)
  expect(response.status).toBe(200)
  return { response, body: await readData(response) }
}

async function storedHash(setup: RotationSetup): Promise<string> {
  return (await readSlots(setup.fixture.clientId)).secret_hash
}

describe('Idempotency-Key replay', () => {
  it('returns the same data and secret', async () => {
    const setup = await setUpRotation()
    const key = newKey()
    const first = await rotateOk(setup, { idempotencyKey: key })
    const retry = await rotateOk(setup, { idempotencyKey: key })

    expect(retry.body.data).toEqual(first.body.data)
    expect(retry.body.data.secret).toBe(first.body.data.secret)
  })

  it('marks only the replay with Idempotent-Replayed', async () => {
    const setup = await setUpRotation()
    const key = newKey()
    const first = await rotateOk(setup, { idempotencyKey: key })
    const retry = await rotateOk(setup, { idempotencyKey: key })

    expect(first.response.headers.get('Idempotent-Replayed')).toBeNull()
    expect(retry.response.headers.get('Idempotent-Replayed')).toBe('true')
    expect(retry.response.headers.get('Cache-Control')).toBe('no-store')
  })

  it('does not rotate again', async () => {
    const setup = await setUpRotation()
    const key = newKey()
    const first = await rotateOk(setup, { idempotencyKey: key })
    const hashAfterFirst = await storedHash(setup)
    await rotateOk(setup, { idempotencyKey: key })
    await rotateOk(setup, { idempotencyKey: key })

    expect(await storedHash(setup)).toBe(hashAfterFirst)
    expect(hashAfterFirst).toBe(await expectedHash(setup.fixture.clientId, first.body.data.secret))
  })

  it('writes one rotation row and one row per replay', async () => {
    const setup = await setUpRotation()
    const key = newKey()
    await rotateOk(setup, { idempotencyKey: key })
    await rotateOk(setup, { idempotencyKey: key })

    const events = await listEvents(setup.fixture.clientId)
    const rotated = events.filter((event) => event.event === 'secret_rotated')
    const replayed = events.filter((event) => event.event === 'secret_rotation_replayed')
    expect(events).toHaveLength(2)
    expect(rotated).toHaveLength(1)
    expect(replayed).toHaveLength(1)
    expect(rotated[0]?.idempotency_replay).toBe(0)
    expect(replayed[0]?.idempotency_replay).toBe(1)
    expect(replayed[0]?.outcome).toBe('replayed')
  })

  it('keeps the previous secret of the first attempt', async () => {
    const setup = await setUpRotation()
    const key = newKey()
    const body = { previous_secret_expires_in: 3600 }
    const first = await rotateOk(setup, { idempotencyKey: key, body })
    const retry = await rotateOk(setup, { idempotencyKey: key, body })
    const slots = await readSlots(setup.fixture.clientId)

    expect(retry.body.data.previous_secret_expires_at).toBe(
      first.body.data.previous_secret_expires_at,
    )
    expect(slots.previous_secret_hash).toBe(setup.fixture.row.secret_hash)
  })

  it('treats an empty body and {} as the same body', async () => {
    const setup = await setUpRotation()
    const key = newKey()
    const first = await rotateOk(setup, { idempotencyKey: key })
    const retry = await rotateOk(setup, { idempotencyKey: key, body: '{}' })

    expect(retry.body.data.secret).toBe(first.body.data.secret)
  })

  it('ignores whitespace and key order in the body', async () => {
    const setup = await setUpRotation()
    const key = newKey()
    const first = await rotateOk(setup, {
      idempotencyKey: key,
      body: '{"previous_secret_expires_in":60,"revoke_previous":false}',
    })
    const retry = await rotateOk(setup, {
      idempotencyKey: key,
      body: '{\n  "revoke_previous" : false,\t"previous_secret_expires_in":  60\n}\n',
    })

    expect(retry.response.headers.get('Idempotent-Replayed')).toBe('true')
    expect(retry.body.data.secret).toBe(first.body.data.secret)
  })

  it('treats keys as case-sensitive', async () => {
    const setup = await setUpRotation()
    const key = `Retry-${crypto.randomUUID()}`
    const first = await rotateOk(setup, { idempotencyKey: key })
    const other = await rotateOk(setup, { idempotencyKey: key.toLowerCase() })

    expect(other.body.data.secret).not.toBe(first.body.data.secret)
    expect(await listRotations(setup.fixture.clientId)).toHaveLength(2)
  })

  it('replays when the rotation limit is reached', async () => {
    const setup = await setUpRotation({ ROTATION_RATE_LIMIT: '1' })
    const key = newKey()
    const first = await rotateOk(setup, { idempotencyKey: key })
    const retry = await rotateOk(setup, { idempotencyKey: key })

    expect(retry.body.data.secret).toBe(first.body.data.secret)
  })
})

describe('Idempotency-Key with a different body', () => {
  it('is rejected with 422 naming the header', async () => {
    const setup = await setUpRotation()
    const key = newKey()
    await rotateOk(setup, { idempotencyKey: key, body: { previous_secret_expires_in: 60 } })
    const response = await rotate(setup, {
      idempotencyKey: key,
      body: { previous_secret_expires_in: 120 },
    })

    await expectInvalid(response, 'header', 'Idempotency-Key')
  })

  it('does not rotate', async () => {
    const setup = await setUpRotation()
    const key = newKey()
    const first = await rotateOk(setup, { idempotencyKey: key })
    const response = await rotate(setup, { idempotencyKey: key, body: { revoke_previous: true } })

    expect(response.status).toBe(422)
    expect(await storedHash(setup)).toBe(
      await expectedHash(setup.fixture.clientId, first.body.data.secret),
    )
    expect(await listRotations(setup.fixture.clientId)).toHaveLength(1)
  })

  it('leaves the first response replayable', async () => {
    const setup = await setUpRotation()
    const key = newKey()
    const first = await rotateOk(setup, { idempotencyKey: key })
    await rotate(setup, { idempotencyKey: key, body: { previous_secret_expires_in: 5 } })
    const retry = await rotateOk(setup, { idempotencyKey: key })

    expect(retry.body.data.secret).toBe(first.body.data.secret)
  })
})

describe('Idempotency-Key scope', () => {
  it('is per user', async () => {
    const setup = await setUpRotation()
    const key = newKey()
    const secondOwner = await addOwner(setup.fixture)
    const first = await rotateOk(setup, { idempotencyKey: key })
    const other = await rotateOk(setup, {
      idempotencyKey: key,
      token: await tokenFor(setup.key, secondOwner, setup.fixture.clientId),
    })

    expect(other.response.headers.get('Idempotent-Replayed')).toBeNull()
    expect(other.body.data.secret).not.toBe(first.body.data.secret)
    expect(await listRotations(setup.fixture.clientId)).toHaveLength(2)
  })

  it('is per client', async () => {
    const setup = await setUpRotation()
    const otherSetup = await setUpRotation()
    const key = newKey()
    // The same user owns both clients, so only the client differs.
    await grantOwner(setup.fixture.ownerId, otherSetup.fixture)
    const first = await rotateOk(setup, { idempotencyKey: key })
    const other = await rotateOk(
      { ...otherSetup, workerEnv: setup.workerEnv },
      {
        idempotencyKey: key,
        token: await tokenFor(setup.key, setup.fixture.ownerId, otherSetup.fixture.clientId),
      },
    )

    expect(other.response.headers.get('Idempotent-Replayed')).toBeNull()
    expect(other.body.data.id).toBe(otherSetup.fixture.clientId)
    expect(await storedHash(otherSetup)).toBe(
      await expectedHash(otherSetup.fixture.clientId, other.body.data.secret),
    )
    expect(await storedHash(setup)).toBe(
      await expectedHash(setup.fixture.clientId, first.body.data.secret),
    )
  })
})

describe('Idempotency-Key expiry', () => {
  const start = Date.parse('2026-06-01T12:00:00.000Z')

  it('replays until IDEMPOTENCY_TTL has passed', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(start)
    const setup = await setUpRotation({ IDEMPOTENCY_TTL: '60' })
    const key = newKey()
    const first = await rotateOk(setup, { idempotencyKey: key })

    vi.setSystemTime(start + 60_000 - 1)
    const retry = await rotateOk(setup, {
      idempotencyKey: key,
      token: await tokenFor(setup.key, setup.fixture.ownerId, setup.fixture.clientId),
    })

    expect(retry.body.data.secret).toBe(first.body.data.secret)
  })

  it('rotates again once IDEMPOTENCY_TTL has passed', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(start)
    const setup = await setUpRotation({ IDEMPOTENCY_TTL: '60' })
    const key = newKey()
    const first = await rotateOk(setup, { idempotencyKey: key })

    vi.setSystemTime(start + 60_000)
    const later = await rotateOk(setup, {
      idempotencyKey: key,
      token: await tokenFor(setup.key, setup.fixture.ownerId, setup.fixture.clientId),
    })

    expect(later.response.headers.get('Idempotent-Replayed')).toBeNull()
    expect(later.body.data.secret).not.toBe(first.body.data.secret)
    expect(await storedHash(setup)).toBe(
      await expectedHash(setup.fixture.clientId, later.body.data.secret),
    )
  })

  it('replays the new rotation after the key was reused', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(start)
    const setup = await setUpRotation({ IDEMPOTENCY_TTL: '60' })
    const key = newKey()
    await rotateOk(setup, { idempotencyKey: key })

    vi.setSystemTime(start + 120_000)
    const token = await tokenFor(setup.key, setup.fixture.ownerId, setup.fixture.clientId)
    const later = await rotateOk(setup, { idempotencyKey: key, token })
    const retry = await rotateOk(setup, { idempotencyKey: key, token })

    expect(retry.body.data.secret).toBe(later.body.data.secret)
    expect(await listRotations(setup.fixture.clientId)).toHaveLength(2)
  })

  it('keeps a record for the default of 600 seconds', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(start)
    const setup = await setUpRotation()
    await rotateOk(setup, { idempotencyKey: newKey() })
    const [record] = await listIdempotencyRecords(setup.fixture.clientId)

    expect(record?.created_at).toBe(new Date(start).toISOString())
    expect(record?.expires_at).toBe(new Date(start + 600_000).toISOString())
  })
})

describe('Idempotency-Key header', () => {
  it('accepts 255 visible ASCII characters', async () => {
    const setup = await setUpRotation()
    const key = `!~${'a'.repeat(253)}`

    await rotateOk(setup, { idempotencyKey: key })
  })

  it.each([
    ['empty', ''],
    ['256 characters', 'k'.repeat(256)],
    ['with an inner space', 'retry 1'],
    ['with a tab', 'retry\t1'],
    ['with a Latin-1 letter', 'retry-\u00e9'],
    ['with DEL', 'retry\u007f'],
  ])('rejects a key %s without rotating', async (_name, key) => {
    const setup = await setUpRotation()
    const response = await rotate(setup, { idempotencyKey: key })

    await expectInvalid(response, 'header', 'Idempotency-Key')
    expect(await listRotations(setup.fixture.clientId)).toHaveLength(0)
    expect(await storedHash(setup)).toBe(setup.fixture.row.secret_hash)
  })
})

describe('idempotency_records', () => {
  it('stores neither the secret nor the raw key', async () => {
    const setup = await setUpRotation()
    const key = `raw-key-${crypto.randomUUID()}`
    const { body } = await rotateOk(setup, { idempotencyKey: key })
    await rotateOk(setup, { idempotencyKey: key })
    const dump = await dumpDatabase()
    const [record] = await listIdempotencyRecords(setup.fixture.clientId)

    expect(record).toBeDefined()
    expect(dump).not.toContain(body.data.secret)
    expect(dump).not.toContain(btoa(body.data.secret))
    expect(dump).not.toContain(key)
    expect(dump).not.toContain(key.slice('raw-key-'.length))
    expect(dump).not.toContain(PEPPER)
  })

  it('keys the stored key hash with the pepper', async () => {
    // Without the server key, the stored hash must not reveal which key a caller sent, even
    // when the key is guessable and the client and user ids are known.
    const setup = await setUpRotation()
    const key = 'retry-1'
    const next = createPepper('k2')
    const otherPepperEnv = createEnv([setup.key], {
      SECRET_PEPPER: next.encoded,
      SECRET_PEPPER_ID: 'k2',
    })
    await rotateOk(setup, { idempotencyKey: key })
    const [underFirst] = await listIdempotencyRecords(setup.fixture.clientId)
    await env.DB.prepare('DELETE FROM idempotency_records WHERE client_id = ?1')
      .bind(setup.fixture.clientId)
      .run()
    await rotateOk({ ...setup, workerEnv: otherPepperEnv }, { idempotencyKey: key })
    const [underSecond] = await listIdempotencyRecords(setup.fixture.clientId)

    expect(underFirst?.key_hash).toBeTruthy()
    expect(underSecond?.key_hash).toBeTruthy()
    expect(underSecond?.key_hash).not.toBe(underFirst?.key_hash)
  })

  it('keeps one record per key, user and client', async () => {
    const setup = await setUpRotation()
    const key = newKey()
    await rotateOk(setup, { idempotencyKey: key })
    await rotateOk(setup, { idempotencyKey: key })
    await rotateOk(setup, { idempotencyKey: newKey() })
    await rotateOk(setup)

    expect(await listIdempotencyRecords(setup.fixture.clientId)).toHaveLength(2)
  })

  it('returns 409 without rotating when a record no longer decrypts', async () => {
    const setup = await setUpRotation()
    const key = newKey()
    const first = await rotateOk(setup, { idempotencyKey: key })
    await env.DB.prepare(
      `UPDATE idempotency_records SET response_ciphertext =
        substr(response_ciphertext, 1, length(response_ciphertext) - 2) || 'AA'
      WHERE client_id = ?1`,
    )
      .bind(setup.fixture.clientId)
      .run()
    const response = await rotate(setup, { idempotencyKey: key })
    const body = await readError(response)

    expect(response.status).toBe(409)
    expect(body.error.type).toBe('request_conflict')
    expect(JSON.stringify(body)).not.toContain(first.body.data.secret)
    expect(await listRotations(setup.fixture.clientId)).toHaveLength(1)
  })

  it('replays after the pepper moves to SECRET_PEPPERS_RETIRED', async () => {
    const setup = await setUpRotation()
    const key = newKey()
    const first = await rotateOk(setup, { idempotencyKey: key })
    const next = createPepper('k2')
    const rotatedEnv = createEnv([setup.key], {
      SECRET_PEPPER: next.encoded,
      SECRET_PEPPER_ID: 'k2',
      SECRET_PEPPERS_RETIRED: `${PEPPER_KEY.id}:${PEPPER}`,
    })
    const retry = await rotateOk({ ...setup, workerEnv: rotatedEnv }, { idempotencyKey: key })

    expect(retry.body.data.secret).toBe(first.body.data.secret)
    expect(await listRotations(setup.fixture.clientId)).toHaveLength(1)
  })
})

describe('idempotency logging', () => {
  afterEach(() => {
    vi.restoreAllMocks()
  })

  it('logs neither the secret nor the key', async () => {
    const setup = await setUpRotation()
    const key = `log-probe-${crypto.randomUUID()}`
    const output = captureConsole()
    const first = await rotateOk(setup, { idempotencyKey: key })
    await rotateOk(setup, { idempotencyKey: key })
    await rotate(setup, { idempotencyKey: key, body: { revoke_previous: true } })
    const text = output.lines.join('\n')

    expect(output.lines.length).toBeGreaterThan(0)
    expect(text).not.toContain(first.body.data.secret)
    expect(text).not.toContain(key)
    expect(text).not.toContain(PEPPER)
  })
})

describe('concurrent retries', () => {
  it('rotate once and return one secret to all', async () => {
    const setup = await setUpRotation()
    const key = newKey()
    const responses = await Promise.all(
      Array.from({ length: 10 }, () => rotate(setup, { idempotencyKey: key })),
    )
    const statuses = responses.map((response) => response.status)
    const bodies = await Promise.all(responses.map((response) => readData(response)))
    const secrets = new Set(bodies.map((body) => body.data.secret))
    const [secret] = [...secrets]
    const replayed = responses.filter(
      (response) => response.headers.get('Idempotent-Replayed') === 'true',
    )

    expect(statuses).toEqual(Array(10).fill(200))
    expect(secrets.size).toBe(1)
    expect(replayed).toHaveLength(9)
    expect(await listRotations(setup.fixture.clientId)).toHaveLength(1)
    expect(await storedHash(setup)).toBe(await expectedHash(setup.fixture.clientId, secret ?? ''))
  })
})

describe('pruning', () => {
  /** Inserts records for the client that expired in 2000, the oldest in the table. */
  async function insertExpired(setup: RotationSetup, count: number): Promise<void> {
    const insert = env.DB.prepare(
      `INSERT INTO idempotency_records (client_id, user_id, key_hash, request_fingerprint,
        pepper_id, response_ciphertext, response_data, request_id, created_at, expires_at)
      VALUES (?1, ?2, ?3, 'fingerprint', 'k1', 'iv.ciphertext', '{}', 'req', ?4, ?4)`,
    )
    await env.DB.batch(
      Array.from({ length: count }, (_, index) =>
        insert.bind(
          setup.fixture.clientId,
          setup.fixture.ownerId,
          `expired-${index}`,
          new Date(Date.UTC(2000, 0, 1, 0, 0, index)).toISOString(),
        ),
      ),
    )
  }

  async function countExpired(setup: RotationSetup): Promise<number> {
    const records = await listIdempotencyRecords(setup.fixture.clientId)
    return records.filter((record) => record.key_hash.startsWith('expired-')).length
  }

  it('removes a bounded number of expired records per rotation', async () => {
    const setup = await setUpRotation()
    await insertExpired(setup, 25)
    await rotateOk(setup)
    const afterOne = await countExpired(setup)
    await rotateOk(setup)

    expect(afterOne).toBeGreaterThan(0)
    expect(afterOne).toBeLessThan(25)
    expect(await countExpired(setup)).toBe(0)
  })

  it('also prunes on a denied attempt', async () => {
    const setup = await setUpRotation()
    await insertExpired(setup, 3)
    const response = await rotate(setup, {
      token: await tokenFor(setup.key, setup.fixture.nonOwnerId, setup.fixture.clientId),
    })

    expect(response.status).toBe(403)
    expect(await countExpired(setup)).toBe(0)
  })

  it('keeps records that have not expired', async () => {
    const setup = await setUpRotation()
    const key = newKey()
    await rotateOk(setup, { idempotencyKey: key })
    await insertExpired(setup, 3)
    await rotateOk(setup)
    const records = await listIdempotencyRecords(setup.fixture.clientId)

    expect(records).toHaveLength(1)
    expect(
      (await rotateOk(setup, { idempotencyKey: key })).response.headers.get('Idempotent-Replayed'),
    ).toBe('true')
  })
})

describe('IDEMPOTENCY_TTL', () => {
  let key: SigningKey

  beforeAll(async () => {
    key = await createSigningKey()
  })

  it('defaults to 600 seconds', () => {
    expect(parseConfig(createEnv([key])).idempotencyTtl).toBe(600)
  })

  it('accepts 1 to 86400 seconds', () => {
    expect(parseConfig(createEnv([key], { IDEMPOTENCY_TTL: '1' })).idempotencyTtl).toBe(1)
    expect(parseConfig(createEnv([key], { IDEMPOTENCY_TTL: '86400' })).idempotencyTtl).toBe(86400)
  })

  it.each(['0', '86401', '-5', '1.5', '10m', '1e3'])('rejects %s', (value) => {
    const error = configErrorOf(createEnv([key], { IDEMPOTENCY_TTL: value }))

    expect(error.setting).toBe('IDEMPOTENCY_TTL')
  })
})
