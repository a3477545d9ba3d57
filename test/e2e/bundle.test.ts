/// <reference types="node" />
// Keeps the Worker's gzip bundle from growing against the floor Worker's: Hono and jose's jwtVerify
// on the same route and nothing else. Both are built with esbuild as `wrangler deploy` builds them,
// so the sizes are the same on every run and a module that adds bytes fails here, not in a
// benchmark. The target is 1.5 times the floor, and docs/BENCHMARKS.md records 1.501. The bound
// below is that figure rounded up, so lower it as the bundle shrinks.

import { beforeAll, describe, expect, it } from 'vitest'
import { analyzeBundle } from '../../bench/bundle.mjs'

const MAX_RATIO_TO_FLOOR = 1.51

let sizes: Awaited<ReturnType<typeof analyzeBundle>>

beforeAll(async () => {
  sizes = await analyzeBundle()
})

describe('bundle size', () => {
  it('stays within 1.51 times the floor Worker, gzip', () => {
    const ratio = sizes.gzipBytes / sizes.floorGzipBytes

    expect(sizes.floorGzipBytes).toBeGreaterThan(10_000)
    expect(ratio, `${sizes.gzipBytes} B against ${sizes.floorGzipBytes} B`).toBeLessThanOrEqual(
      MAX_RATIO_TO_FLOOR,
    )
  })

  it('leaves the API description to static assets', () => {
    const { bytesByInput } = sizes

    expect(Object.keys(bytesByInput)).toContain('src/rotate.ts')
    expect(Object.keys(bytesByInput)).not.toContain('src/openapi.ts')
    expect(Object.keys(bytesByInput)).not.toContain('src/docs-page.ts')
  })
})
