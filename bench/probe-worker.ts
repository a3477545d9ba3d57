/**
 * A bench-only Worker around the refresh-secret Worker. It passes every request to the Worker
 * with `env.DB` wrapped in a round-trip counter. D1_DELAY_MS delays each round trip by that many
 * milliseconds to simulate a distant database, and D1_STUB=1 replaces D1 with a stub.
 *
 * Bench routes:
 * - `GET /__bench/round-trips` returns the round trips and statements counted since the
 *   previous call, and resets both.
 * - `GET /__bench/d1/...` runs parts of the rotation's D1 work on the unwrapped binding.
 * - `GET /__bench/jwks-max-age` returns how long the Worker uses a fetched key set.
 */
import type { Env } from '../src/config.ts'
import worker from '../src/index.ts'
import { JWKS_MAX_AGE_MS } from '../src/jwks.ts'
import { RoundTripCounter } from '../test/worker/d1-counter.ts'
import { serveD1Part } from './d1-parts.ts'
import { createStubDatabase } from './stub-database.ts'

interface ProbeEnv extends Env {
  D1_DELAY_MS?: string
  /** `1` replaces D1 with a stub that returns an allowed rotation, to measure the Worker alone. */
  D1_STUB?: string
}

// One wrapped env per isolate: the Worker caches its parsed configuration per env object.
let counter: RoundTripCounter | undefined
let wrappedEnv: Env | undefined

export default {
  async fetch(request: Request, env: ProbeEnv, ctx: ExecutionContext): Promise<Response> {
    if (counter === undefined || wrappedEnv === undefined) {
      counter = new RoundTripCounter({ delayMs: Number(env.D1_DELAY_MS ?? '0') })
      const db = env.D1_STUB === '1' ? createStubDatabase().db : env.DB
      wrappedEnv = { ...env, DB: counter.wrap(db) }
    }

    const { pathname } = new URL(request.url)
    if (pathname === '/__bench/jwks-max-age') return Response.json({ ms: JWKS_MAX_AGE_MS })
    if (pathname === '/__bench/round-trips') {
      const statements = counter.trips.reduce((sum, trip) => sum + trip.statements, 0)
      const body = { round_trips: counter.count, statements }
      counter.reset()
      return Response.json(body)
    }
    return (await serveD1Part(request, env.DB)) ?? worker.fetch(request, wrappedEnv, ctx)
  },
}
