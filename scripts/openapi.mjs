// Writes docs/openapi.json, the checked-in copy of the OpenAPI document that GET /openapi.json
// serves. `npm run openapi` runs this and then formats the file with Biome. A test fails while
// the copy differs from the served document, so run it after every change to src/openapi.ts.

import { writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { serializeOpenApiDocument } from '../src/openapi.ts'

const target = fileURLToPath(new URL('../docs/openapi.json', import.meta.url))
await writeFile(target, serializeOpenApiDocument())
console.log(`Wrote ${target}`)
