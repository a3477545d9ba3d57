// Attributes the Worker's bundle size to its inputs, with esbuild's metafile.
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'
import { ROOT, WORKERD_BUILD_OPTIONS } from './runtime.mjs'

/** Modules that serve the API description rather than the method: GET /openapi.json and /docs. */
const DESCRIPTION_MODULES = /src\/(openapi|docs-page)\.ts$/
const DESCRIPTION_STUB = `export const serveOpenApiDocument = () => new Response(null, { status: 404 })
export const serveDocsPage = () => new Response(null, { status: 404 })`

/** Groups an input path by package, or keeps our own source path. */
function groupOf(path) {
  const parts = path.split('/')
  const modules = parts.lastIndexOf('node_modules')
  if (modules === -1) return path
  const scoped = parts[modules + 1]?.startsWith('@')
  return parts.slice(modules, modules + (scoped ? 3 : 2)).join('/')
}

async function bundle({ entry = join(ROOT, 'src', 'index.ts'), minify, withoutDescription }) {
  const plugins = withoutDescription
    ? [
        {
          name: 'stub-api-description',
          setup(builder) {
            builder.onLoad({ filter: DESCRIPTION_MODULES }, () => ({
              contents: DESCRIPTION_STUB,
              loader: 'ts',
            }))
          },
        },
      ]
    : []
  return build({
    ...WORKERD_BUILD_OPTIONS,
    entryPoints: [entry],
    outfile: join(ROOT, 'bench', '.build', 'analysis.js'),
    write: false,
    metafile: true,
    minify,
    plugins,
  })
}

const FLOOR_ENTRY = join(ROOT, 'bench', 'floor-worker.ts')
const gzipOf = (result) => gzipSync(result.outputFiles[0].contents, { level: 9 }).length

/**
 * Returns the bytes each package or source file adds to the unminified bundle, and the gzip
 * sizes of the bundle with and without the modules that serve the API description, next to
 * the floor Worker's built the same way.
 */
export async function analyzeBundle() {
  const full = await bundle({ minify: false, withoutDescription: false })
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
    withoutDescriptionGzipBytes: gzipOf(await bundle({ minify: false, withoutDescription: true })),
    minifiedGzipBytes: gzipOf(await bundle({ minify: true, withoutDescription: false })),
    minifiedWithoutDescriptionGzipBytes: gzipOf(
      await bundle({ minify: true, withoutDescription: true }),
    ),
    floorGzipBytes: gzipOf(await bundle({ entry: FLOOR_ENTRY, minify: false })),
    floorMinifiedGzipBytes: gzipOf(await bundle({ entry: FLOOR_ENTRY, minify: true })),
  }
}
