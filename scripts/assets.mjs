// Writes public/, the files that Workers Static Assets serves beside the Worker: openapi.json,
// docs.html and their _headers rules, all rendered by src/assets.ts. A test fails while public/
// differs from what src renders, so run `npm run assets` after every change to src/openapi.ts
// or src/docs-page.ts.

import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ASSETS_DIRECTORY, renderHeadersFile, renderStaticAssets } from '../src/assets.ts'

const directory = fileURLToPath(new URL(`../${ASSETS_DIRECTORY}/`, import.meta.url))
await mkdir(directory, { recursive: true })

const assets = await renderStaticAssets()
for (const asset of assets) {
  await writeFile(join(directory, asset.file), asset.body)
}
await writeFile(join(directory, '_headers'), renderHeadersFile(assets))
console.log(
  `Wrote ${[...assets.map((asset) => asset.file), '_headers'].join(', ')} to ${directory}`,
)
