// Renders the API reference page at /docs from the OpenAPI document: plain HTML with one inline
// style sheet and no scripts, fonts or other resources, so it works without network access.

import {
  type HeaderObject,
  OPENAPI_DOCUMENT,
  type OpenApiDocument,
  type OperationObject,
  type ParameterObject,
  type ReferenceObject,
  type RequestBodyObject,
  type SchemaObject,
} from './openapi.ts'

const STYLE = `
:root { color-scheme: light; --ink: #1b1f24; --muted: #57606a; --line: #d0d7de; --soft: #f6f8fa;
  --accent: #0b5cad; --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans",
  "DejaVu Sans", sans-serif; color: var(--ink); background: #fff; }
header { background: #0d2640; color: #fff; padding: 28px 32px 22px; }
header h1 { margin: 0 0 6px; font-size: 28px; }
header p { margin: 0; color: #d6e4f2; }
header a { color: #fff; }
.layout { display: grid; grid-template-columns: 260px minmax(0, 1fr); max-width: 1280px; margin: 0 auto; }
nav { padding: 24px 20px; border-right: 1px solid var(--line); font-size: 14px; }
nav ul { list-style: none; margin: 0; padding: 0; }
nav li { margin: 0 0 12px; }
nav a { color: var(--accent); text-decoration: none; }
nav small { display: block; color: var(--muted); overflow-wrap: anywhere; }
main { padding: 8px 36px 48px; min-width: 0; }
h2 { font-size: 22px; margin: 36px 0 12px; padding-top: 8px; border-top: 1px solid var(--line); }
main > section:first-child h2 { border-top: 0; }
h3 { font-size: 17px; margin: 24px 0 8px; }
h4 { font-size: 15px; margin: 18px 0 6px; }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace;
  font-size: 0.88em; }
code { background: var(--soft); border: 1px solid #eaeef2; border-radius: 4px; padding: 0 4px; }
pre { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: 12px;
  overflow-x: auto; }
pre code { background: none; border: 0; padding: 0; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 16px; font-size: 14px; }
th, td { border: 1px solid var(--line); padding: 6px 10px; text-align: left; vertical-align: top;
  overflow-wrap: break-word; }
td:first-child { white-space: nowrap; }
td:last-child code, table.methods td:first-child code { overflow-wrap: anywhere; }
table.methods td:first-child { white-space: normal; }
th { background: var(--soft); font-weight: 600; }
td p { margin: 0 0 6px; }
td p:last-child { margin-bottom: 0; }
.operation h2 { display: flex; flex-wrap: wrap; align-items: center; gap: 10px; }
.operation h2 code { font-size: 17px; background: none; border: 0; word-break: break-all; }
.method { background: var(--accent); color: #fff; border-radius: 4px; padding: 2px 10px;
  font-size: 14px; letter-spacing: 0.04em; }
.badge { border-radius: 999px; padding: 1px 10px; font-size: 13px; font-weight: 600; }
.deprecated { background: #fff1e5; color: #8a3c00; border: 1px solid #f0b27a; }
.summary { font-size: 18px; margin: 4px 0 12px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0 0 12px;
  padding: 12px 16px; background: var(--soft); border: 1px solid var(--line); border-radius: 6px; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; }
.status { font-weight: 700; }
.s2 { color: var(--ok); }
.s4 { color: var(--warn); }
.s5 { color: var(--bad); }
.muted { color: var(--muted); }
details { margin: 8px 0; }
summary { cursor: pointer; color: var(--accent); }
`

/** Escapes text for HTML element content and double-quoted attribute values. */
export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;')
}

/** Renders the inline part of CommonMark that the document uses: text and `code` spans. */
function renderInline(text: string): string {
  return escapeHtml(text).replace(/`([^`]+)`/g, '<code>$1</code>')
}

/**
 * Renders the CommonMark subset that the document's descriptions use: paragraphs, ordered and
 * bulleted lists and code spans. Anything else shows as plain, escaped text.
 */
export function renderMarkdown(text: string): string {
  return text
    .split(/\n{2,}/)
    .map((block) => {
      const lines = block.split('\n')
      if (lines.every((line) => /^\d+\. /.test(line))) {
        const items = lines.map((line) => `<li>${renderInline(line.replace(/^\d+\. /, ''))}</li>`)
        return `<ol>${items.join('')}</ol>`
      }
      if (lines.every((line) => line.startsWith('- '))) {
        const items = lines.map((line) => `<li>${renderInline(line.slice(2))}</li>`)
        return `<ul>${items.join('')}</ul>`
      }
      return `<p>${renderInline(block)}</p>`
    })
    .join('\n')
}

/** Follows a local `$ref` such as `#/components/schemas/Meta` to the object it names. */
export function resolveReference<T>(document: OpenApiDocument, reference: string): T {
  if (!reference.startsWith('#/')) throw new Error(`not a local reference: ${reference}`)

  let node: unknown = document
  for (const token of reference.slice(2).split('/')) {
    const key = decodeURIComponent(token).replace(/~1/g, '/').replace(/~0/g, '~')
    if (typeof node !== 'object' || node === null || !(key in node)) {
      throw new Error(`unresolved reference: ${reference}`)
    }
    node = (node as Record<string, unknown>)[key]
  }
  return node as T
}

function isReference(value: object): value is ReferenceObject {
  return '$ref' in value && Object.keys(value).length === 1
}

function resolved<T extends object>(document: OpenApiDocument, value: T | ReferenceObject): T {
  return isReference(value) ? resolveReference<T>(document, value.$ref) : value
}

function schemaName(reference: string): string {
  return reference.slice(reference.lastIndexOf('/') + 1)
}

function schemaLink(reference: string): string {
  const name = schemaName(reference)
  return `<a href="#schema-${escapeHtml(name)}">${escapeHtml(name)}</a>`
}

/** Shows a fixed value: a string as it is sent, anything else as JSON. */
function valueCode(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value)
  return `<code>${escapeHtml(text)}</code>`
}

/** Lists the fixed values and requirements that a schema places on nested properties. */
function nestedConstraints(schema: SchemaObject, prefix = ''): string[] {
  const constraints: string[] = []
  for (const name of schema.required ?? []) {
    constraints.push(`<code>${escapeHtml(prefix + name)}</code> is required`)
  }
  for (const [name, property] of Object.entries(schema.properties ?? {})) {
    const path = prefix + name
    if (property.const !== undefined) {
      constraints.push(`<code>${escapeHtml(path)}</code> is ${valueCode(property.const)}`)
    }
    constraints.push(...nestedConstraints(property, `${path}.`))
  }
  return constraints
}

/** Describes a schema's type in a few words, with links to named schemas. */
function describeType(schema: SchemaObject): string {
  if (schema.$ref !== undefined) {
    const constraints = nestedConstraints(schema)
    const link = schemaLink(schema.$ref)
    return constraints.length === 0 ? link : `${link} where ${constraints.join(', ')}`
  }
  if (schema.const !== undefined) return valueCode(schema.const)
  if (schema.enum !== undefined) return `one of ${schema.enum.map(valueCode).join(', ')}`

  const types = schema.type === undefined ? [] : [schema.type].flat()
  if (types.length === 0) return 'any JSON value'

  return types
    .map((type) => {
      if (type === 'array' && schema.items !== undefined) {
        return `array of ${describeType(schema.items)}`
      }
      return type === 'string' && schema.format !== undefined ? `string (${schema.format})` : type
    })
    .join(' or ')
}

/** Describes a schema's value limits: pattern, lengths, range and item count. */
function describeLimits(schema: SchemaObject): string[] {
  const limits: string[] = []
  if (schema.pattern !== undefined)
    limits.push(`pattern <code>${escapeHtml(schema.pattern)}</code>`)
  if (schema.minLength !== undefined) limits.push(`at least ${schema.minLength} characters`)
  if (schema.maxLength !== undefined) limits.push(`at most ${schema.maxLength} characters`)
  if (schema.minimum !== undefined) limits.push(`minimum ${schema.minimum}`)
  if (schema.maximum !== undefined) limits.push(`maximum ${schema.maximum}`)
  if (schema.minItems !== undefined) limits.push(`at least ${schema.minItems} item`)
  return limits
}

function describeSchema(schema: SchemaObject): string {
  const limits = describeLimits(schema)
  return limits.length === 0
    ? describeType(schema)
    : `${describeType(schema)}; ${limits.join('; ')}`
}

function renderPropertyTable(schema: SchemaObject): string {
  const required = new Set(schema.required ?? [])
  const rows = Object.entries(schema.properties ?? {}).map(
    ([name, property]) => `<tr>
  <td><code>${escapeHtml(name)}</code></td>
  <td>${describeSchema(property)}</td>
  <td>${required.has(name) ? 'yes' : 'no'}</td>
  <td>${renderMarkdown(property.description ?? '')}</td>
</tr>`,
  )
  return `<table>
<thead><tr><th>Property</th><th>Type</th><th>Required</th><th>Description</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>`
}

function renderParameters(document: OpenApiDocument, operation: OperationObject): string {
  const rows = operation.parameters.map((item) => {
    const parameter = resolved<ParameterObject>(document, item)
    return `<tr>
  <td><code>${escapeHtml(parameter.name)}</code></td>
  <td>${parameter.in}</td>
  <td>${parameter.required === true ? 'yes' : 'no'}</td>
  <td>${describeSchema(parameter.schema)}</td>
  <td>${renderMarkdown(parameter.description)}</td>
</tr>`
  })
  return `<h3>Parameters</h3>
<table>
<thead><tr><th>Name</th><th>In</th><th>Required</th><th>Type</th><th>Description</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>`
}

function renderRequestBody(document: OpenApiDocument, operation: OperationObject): string {
  const body = resolved<RequestBodyObject>(document, operation.requestBody)
  const sections = Object.entries(body.content).map(([mediaType, content]) => {
    const schema = resolved<SchemaObject>(document, content.schema)
    const examples = (schema.examples ?? [])
      .map((example) => `<pre><code>${escapeHtml(JSON.stringify(example))}</code></pre>`)
      .join('\n')
    return `<p>Content type <code>${escapeHtml(mediaType)}</code>, schema ${describeType(content.schema)}.</p>
${renderPropertyTable(schema)}
${examples === '' ? '' : `<h4>Examples</h4>\n${examples}`}`
  })
  return `<h3>Request body${body.required ? '' : ' <span class="muted">(optional)</span>'}</h3>
${renderMarkdown(body.description)}
${sections.join('\n')}`
}

/** Returns the eHealth `error.type` that a response schema fixes, if any. */
function errorTypeOf(document: OpenApiDocument, schema: SchemaObject): string | undefined {
  const named =
    schema.$ref === undefined ? schema : resolveReference<SchemaObject>(document, schema.$ref)
  const type = named.properties?.error?.properties?.type?.const
  return typeof type === 'string' ? type : undefined
}

function statusClass(status: string): string {
  return `status s${status.charAt(0)}`
}

/** Returns the names of the headers that every response of the operation declares. */
function commonHeaderNames(operation: OperationObject): string[] {
  const lists = Object.values(operation.responses).map((response) =>
    Object.keys(response.headers ?? {}),
  )
  return (lists[0] ?? []).filter((name) => lists.every((list) => list.includes(name)))
}

function codeList(names: string[]): string {
  return names.map((name) => `<code>${escapeHtml(name)}</code>`).join(', ')
}

function renderResponses(document: OpenApiDocument, operation: OperationObject): string {
  const common = commonHeaderNames(operation)
  const rows = Object.entries(operation.responses).map(([status, response]) => {
    const content = Object.entries(response.content ?? {})
    const body = content
      .map(
        ([mediaType, media]) =>
          `<code>${escapeHtml(mediaType)}</code> ${describeType(media.schema)}`,
      )
      .join('<br>')
    const errorType = content
      .map(([, media]) => errorTypeOf(document, media.schema))
      .find((type) => type !== undefined)
    const headers = codeList(
      Object.keys(response.headers ?? {}).filter((name) => !common.includes(name)),
    )
    return `<tr>
  <td class="${statusClass(status)}">${escapeHtml(status)}</td>
  <td>${errorType === undefined ? '<span class="muted">none</span>' : `<code>${escapeHtml(errorType)}</code>`}</td>
  <td>${headers}</td>
  <td>${renderMarkdown(response.description)}<p class="muted">Body: ${body}</p></td>
</tr>`
  })
  return `<h3>Responses</h3>
<p>Every response declares the headers ${codeList(common)}. The third column lists the others.</p>
<table>
<thead><tr><th>Status</th><th><code>error.type</code></th><th>Other headers</th><th>Description</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>`
}

/** Names a set of statuses briefly: `all`, `all but 500`, or the list. */
function describeStatuses(statuses: string[], all: string[]): string {
  const missing = all.filter((status) => !statuses.includes(status))
  if (missing.length === 0) return 'all'
  if (missing.length <= 2) return `all but ${missing.join(', ')}`
  return statuses.join(', ')
}

/** Lists each response header of an operation once per distinct definition, with its statuses. */
function renderResponseHeaders(document: OpenApiDocument, operation: OperationObject): string {
  const definitions = new Map<string, { name: string; header: HeaderObject; statuses: string[] }>()
  for (const [status, response] of Object.entries(operation.responses)) {
    for (const [name, item] of Object.entries(response.headers ?? {})) {
      const key = `${name} ${JSON.stringify(item)}`
      const entry = definitions.get(key) ?? {
        name,
        header: resolved<HeaderObject>(document, item),
        statuses: [],
      }
      entry.statuses.push(status)
      definitions.set(key, entry)
    }
  }

  const allStatuses = Object.keys(operation.responses)
  const rows = [...definitions.values()].map(
    ({ name, header, statuses }) => `<tr>
  <td><code>${escapeHtml(name)}</code></td>
  <td>${describeStatuses(statuses, allStatuses)}</td>
  <td>${header.required === true ? 'always' : 'sometimes'}</td>
  <td>${describeSchema(header.schema)}</td>
  <td>${renderMarkdown(header.description)}</td>
</tr>`,
  )
  return `<h3>Response headers</h3>
<table>
<thead><tr><th>Header</th><th>Statuses</th><th>Sent</th><th>Value</th><th>Description</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>`
}

function renderExamples(operation: OperationObject): string {
  const blocks: string[] = []
  for (const [status, response] of Object.entries(operation.responses)) {
    for (const media of Object.values(response.content ?? {})) {
      for (const example of Object.values(media.examples ?? {})) {
        blocks.push(`<details>
<summary>${escapeHtml(status)}: ${escapeHtml(example.summary)}</summary>
<pre><code>${escapeHtml(JSON.stringify(example.value, null, 2))}</code></pre>
</details>`)
      }
    }
  }
  return blocks.length === 0 ? '' : `<h3>Response examples</h3>\n${blocks.join('\n')}`
}

function requiredScopes(operation: OperationObject): string[] {
  return operation.security.flatMap((requirement) => Object.values(requirement).flat())
}

function renderOperation(
  document: OpenApiDocument,
  method: string,
  path: string,
  operation: OperationObject,
): string {
  const schemes = operation.security.flatMap((requirement) => Object.keys(requirement))
  return `<section class="operation" id="${escapeHtml(operation.operationId)}">
<h2><span class="method">${method.toUpperCase()}</span><code>${escapeHtml(path)}</code>${operation.deprecated === true ? '<span class="badge deprecated">Deprecated</span>' : ''}</h2>
<p class="summary">${escapeHtml(operation.summary)}</p>
<dl class="facts">
<dt>Required scope</dt><dd>${codeList(requiredScopes(operation))}</dd>
<dt>Authentication</dt><dd>${schemes.map((scheme) => `<a href="#auth-${escapeHtml(scheme)}">${escapeHtml(scheme)}</a>`).join(', ')}</dd>
<dt>Operation id</dt><dd><code>${escapeHtml(operation.operationId)}</code></dd>
</dl>
${renderMarkdown(operation.description)}
${renderParameters(document, operation)}
${renderRequestBody(document, operation)}
${renderResponses(document, operation)}
${renderResponseHeaders(document, operation)}
${renderExamples(operation)}
</section>`
}

function renderSchema(name: string, schema: SchemaObject): string {
  const parts = [`<h3 id="schema-${escapeHtml(name)}">${escapeHtml(name)}</h3>`]
  if (schema.description !== undefined) parts.push(renderMarkdown(schema.description))

  if (schema.$ref !== undefined || schema.type !== 'object') {
    parts.push(`<p>Type: ${describeSchema(schema)}.</p>`)
  } else {
    const closed = schema.additionalProperties === false ? ' No other properties are sent.' : ''
    parts.push(`<p>An object.${closed}</p>`, renderPropertyTable(schema))
  }
  return `<div class="schema">\n${parts.join('\n')}\n</div>`
}

function operationsOf(document: OpenApiDocument) {
  return Object.entries(document.paths).flatMap(([path, item]) =>
    Object.entries(item).map(([method, operation]) => ({ method, path, operation })),
  )
}

/** Renders the reference page of `document` as a complete HTML document. */
export function renderDocsPage(document: OpenApiDocument = OPENAPI_DOCUMENT): string {
  const operations = operationsOf(document)
  const navigation = operations.map(
    ({ method, path, operation }) =>
      `<li><a href="#${escapeHtml(operation.operationId)}">${escapeHtml(operation.summary)}</a><small>${method.toUpperCase()} ${escapeHtml(path)}</small></li>`,
  )
  const summaryRows = operations.map(
    ({ method, path, operation }) => `<tr>
  <td><a href="#${escapeHtml(operation.operationId)}">${method.toUpperCase()} <code>${escapeHtml(path)}</code></a></td>
  <td>${codeList(requiredScopes(operation))}</td>
  <td>${escapeHtml(operation.summary)}${operation.deprecated === true ? ' <span class="badge deprecated">Deprecated</span>' : ''}</td>
</tr>`,
  )
  const schemes = Object.entries(document.components.securitySchemes).map(
    ([name, scheme]) => `<h3 id="auth-${escapeHtml(name)}">${escapeHtml(name)}</h3>
<p>HTTP <code>${escapeHtml(scheme.scheme)}</code>, format ${escapeHtml(scheme.bearerFormat)}.</p>
${renderMarkdown(scheme.description)}`,
  )
  const schemas = Object.entries(document.components.schemas).map(([name, schema]) =>
    renderSchema(name, schema),
  )

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>${escapeHtml(document.info.title)} ${escapeHtml(document.info.version)}</title>
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>${escapeHtml(document.info.title)}</h1>
<p>${escapeHtml(document.info.summary)} Version ${escapeHtml(document.info.version)}, OpenAPI ${escapeHtml(document.openapi)}: <a href="/openapi.json">openapi.json</a>.</p>
</header>
<div class="layout">
<nav aria-label="Contents">
<ul>
<li><a href="#overview">Overview</a></li>
<li><a href="#authentication">Authentication</a></li>
${navigation.join('\n')}
<li><a href="#schemas">Schemas</a></li>
</ul>
</nav>
<main>
<section id="overview">
<h2>Overview</h2>
${renderMarkdown(document.info.description)}
<table class="methods">
<thead><tr><th>Method</th><th>Required scope</th><th>Summary</th></tr></thead>
<tbody>
${summaryRows.join('\n')}
</tbody>
</table>
</section>
<section id="authentication">
<h2>Authentication</h2>
${schemes.join('\n')}
</section>
${operations.map(({ method, path, operation }) => renderOperation(document, method, path, operation)).join('\n')}
<section id="schemas">
<h2>Schemas</h2>
${schemas.join('\n')}
</section>
</main>
</div>
</body>
</html>
`
}

async function sha256Base64(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text))
  let binary = ''
  for (const byte of new Uint8Array(digest)) binary += String.fromCharCode(byte)
  return btoa(binary)
}

/**
 * Returns the Content-Security-Policy of the page: nothing may load or run except the one inline
 * style sheet, allowed by its hash, and the empty `data:` icon that stops a /favicon.ico request.
 */
export async function docsPageContentSecurityPolicy(): Promise<string> {
  const styleHash = await sha256Base64(STYLE)
  return [
    "default-src 'none'",
    `style-src 'sha256-${styleHash}'`,
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ')
}
