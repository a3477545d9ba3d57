/// <reference types="node" />
// Validates the OpenAPI document with the OpenAPI 3.1 schema, and compiles every JSON Schema in it
// with Ajv's JSON Schema 2020-12 dialect in strict mode. Ajv generates code with `new Function`,
// which workerd forbids, so this runs in Node.

import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { Validator } from '@seriousme/openapi-schema-validator'
import { Ajv2020 } from 'ajv/dist/2020.js'
import { describe, expect, it } from 'vitest'
import { OPENAPI_DOCUMENT, serializeOpenApiDocument } from '../../src/openapi'
import { PROJECT_ROOT } from './wrangler'

/** Collects every value of `key` in `node`, with its JSON pointer. */
function collect(node: unknown, key: string, pointer = ''): { pointer: string; value: unknown }[] {
  if (typeof node !== 'object' || node === null) return []

  const found: { pointer: string; value: unknown }[] = []
  for (const [name, child] of Object.entries(node)) {
    const childPointer = `${pointer}/${name.replace(/~/g, '~0').replace(/\//g, '~1')}`
    if (name === key) found.push({ pointer: childPointer, value: child })
    found.push(...collect(child, key, childPointer))
  }
  return found
}

function resolvePointer(document: unknown, pointer: string): unknown {
  let node = document
  for (const token of pointer.split('/').slice(1)) {
    const key = decodeURIComponent(token).replace(/~1/g, '/').replace(/~0/g, '~')
    if (typeof node !== 'object' || node === null || !Object.hasOwn(node, key)) return undefined
    node = (node as Record<string, unknown>)[key]
  }
  return node
}

/**
 * Creates an Ajv instance that resolves the document's named schemas as `components#/$defs/NAME`,
 * and a copy of the document whose references point there.
 */
function createAjv() {
  const rewritten = JSON.parse(
    JSON.stringify(OPENAPI_DOCUMENT).replaceAll('"#/components/schemas/', '"components#/$defs/'),
  ) as typeof OPENAPI_DOCUMENT

  const ajv = new Ajv2020({ strict: true, strictTypes: false, allowUnionTypes: true })
  // The formats that the document uses. Only their names are checked here, not the values.
  for (const format of ['uuid', 'uri', 'date-time']) ajv.addFormat(format, true)
  ajv.addSchema({ $id: 'components', $defs: rewritten.components.schemas })
  return { ajv, rewritten }
}

describe('OpenAPI document', () => {
  it('is valid OpenAPI 3.1', async () => {
    const validator = new Validator()
    const result = await validator.validate(JSON.parse(serializeOpenApiDocument()))

    expect(result.errors).toBeUndefined()
    expect(result.valid).toBe(true)
    expect(validator.version).toBe('3.1')
  })

  it('resolves every reference', () => {
    const references = collect(OPENAPI_DOCUMENT, '$ref')

    expect(references.length).toBeGreaterThan(20)
    for (const { pointer, value } of references) {
      expect(typeof value, pointer).toBe('string')
      expect((value as string).startsWith('#/'), `${pointer}: ${value}`).toBe(true)
      expect(resolvePointer(OPENAPI_DOCUMENT, (value as string).slice(1)), pointer).toBeDefined()
    }
  })

  it('compiles every schema in strict JSON Schema 2020-12', () => {
    const { ajv, rewritten } = createAjv()
    const schemas = collect(rewritten, 'schema')

    expect(schemas.length).toBeGreaterThan(20)
    for (const name of Object.keys(rewritten.components.schemas)) {
      expect(() => ajv.compile({ $ref: `components#/$defs/${name}` }), name).not.toThrow()
    }
    for (const { pointer, value } of schemas) {
      expect(() => ajv.compile(value as object), pointer).not.toThrow()
    }
  })

  it('has examples that match their schemas', () => {
    const { ajv, rewritten } = createAjv()
    let checked = 0

    for (const { pointer, value } of collect(rewritten, 'examples')) {
      const owner = resolvePointer(rewritten, pointer.slice(0, pointer.lastIndexOf('/'))) as {
        schema?: object
      }
      // Media Type Objects keep named examples beside their schema, and schemas keep a list.
      const schema = owner.schema ?? owner
      const examples = Array.isArray(value)
        ? value
        : Object.values(value as Record<string, { value: unknown }>).map((example) => example.value)
      const validate = ajv.compile(schema)
      for (const example of examples) {
        expect(validate(example), `${pointer}: ${ajv.errorsText(validate.errors)}`).toBe(true)
        checked++
      }
    }
    expect(checked).toBeGreaterThanOrEqual(4)
  })

  it('has unique operation ids', () => {
    const ids = collect(OPENAPI_DOCUMENT.paths, 'operationId').map(({ value }) => value)

    expect(ids).toEqual(['refreshClientSecret', 'refreshConnectionSecret'])
  })

  it('carries the package version', async () => {
    const manifest = JSON.parse(await readFile(path.join(PROJECT_ROOT, 'package.json'), 'utf8'))

    expect(OPENAPI_DOCUMENT.info.version).toBe(manifest.version)
  })
})
