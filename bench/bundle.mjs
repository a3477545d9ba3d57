// Attributes the Worker's bundle size to its inputs, with esbuild's metafile.
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'
import { ROOT, WORKERD_BUILD_OPTIONS } from './runtime.mjs'

// The floor Worker imports Hono's default preset, and the Worker imports `hono/tiny`, whose router
// is smaller. Building the floor with the same preset shows how much of the ratio that choice makes.
const TINY_HONO = {
  name: 'floor-on-hono-tiny',
  setup(builder) {
    builder.onResolve({ filter: /^hono$/ }, (args) =>
      builder.resolve('hono/tiny', { kind: args.kind, resolveDir: args.resolveDir }),
    )
  },
}

/** Groups an input path by package, or keeps our own source path. */
function groupOf(path) {
  const parts = path.split('/')
  const modules = parts.lastIndexOf('node_modules')
  if (modules === -1) return path
  const scoped = parts[modules + 1]?.startsWith('@')
  return parts.slice(modules, modules + (scoped ? 3 : 2)).join('/')
}

async function bundle({ entry = join(ROOT, 'src', 'index.ts'), minify, tinyHono = false }) {
  return build({
    ...WORKERD_BUILD_OPTIONS,
    entryPoints: [entry],
    outfile: join(ROOT, 'bench', '.build', 'analysis.js'),
    write: false,
    metafile: true,
    minify,
    // wrangler deploy keeps function and class names (keep_names), which adds a call per name.
    keepNames: true,
    plugins: tinyHono ? [TINY_HONO] : [],
  })
}

const FLOOR_ENTRY = join(ROOT, 'bench', 'floor-worker.ts')
const gzipOf = (result) => gzipSync(result.outputFiles[0].contents, { level: 9 }).length

/**
 * Returns the bytes each package or source file adds to the unminified bundle, and the gzip
 * sizes of the bundle and of the floor Worker built the same way, with Hono's default preset
 * and with `hono/tiny`.
 */
export async function analyzeBundle() {
  const full = await bundle({ minify: false })
  const output = Object.values(full.metafile.outputs)[0]
  const bytesByInput = {}
  for (const [path, input] of Object.entries(output.inputs)) {
    const group = groupOf(path)
    bytesByInput[group] = (bytesByInput[group] ?? 0) + input.bytesInOutput
  }

  const sorted = Object.entries(bytesByInput).sort((a, b) => b[1] - a[1])
  return {
    bytesByInput: Object.fromEntries(sorted),
    gzipBytes: gzipOf(full),
    minifiedGzipBytes: gzipOf(await bundle({ minify: true })),
    floorGzipBytes: gzipOf(await bundle({ entry: FLOOR_ENTRY, minify: false })),
    floorMinifiedGzipBytes: gzipOf(await bundle({ entry: FLOOR_ENTRY, minify: true })),
    tinyFloorGzipBytes: gzipOf(await bundle({ entry: FLOOR_ENTRY, minify: false, tinyHono: true })),
    tinyFloorMinifiedGzipBytes: gzipOf(
      await bundle({ entry: FLOOR_ENTRY, minify: true, tinyHono: true }),
    ),
  }
}
