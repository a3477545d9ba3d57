// The static files served beside the Worker: the OpenAPI document, the reference page and the
// `_headers` rules that give both their response headers. Workers Static Assets serves them from
// public/ without running the Worker, so the Worker's bundle carries neither. `npm run assets`
// writes them, and a test fails while public/ differs from what this module renders.

import { docsPageContentSecurityPolicy, renderDocsPage } from './docs-page.ts'
import { serializeOpenApiDocument } from './openapi.ts'

/** The assets directory, relative to the project root; `[assets] directory` in wrangler.toml. */
export const ASSETS_DIRECTORY = 'public'

/** One file of the assets directory and the URL path that serves it. */
export interface StaticAsset {
  /** The path of the request that returns this file. */
  urlPath: string
  /** The file name inside the assets directory. */
  file: string
  body: string
  headers: Record<string, string>
}

// Both files change only with a deployment, so caches may keep them for five minutes. The asset
// server rejects other methods with 405 and these same headers, so `Allow` lists GET and HEAD.
const COMMON_HEADERS = {
  'Cache-Control': 'public, max-age=300',
  'X-Content-Type-Options': 'nosniff',
  Allow: 'GET, HEAD',
}

/** Renders the OpenAPI document and the reference page with the headers each is served with. */
export async function renderStaticAssets(): Promise<StaticAsset[]> {
  return [
    {
      urlPath: '/openapi.json',
      file: 'openapi.json',
      body: serializeOpenApiDocument(),
      headers: { 'Content-Type': 'application/json; charset=utf-8', ...COMMON_HEADERS },
    },
    {
      // Static Assets serves docs.html at /docs, the path without the extension.
      urlPath: '/docs',
      file: 'docs.html',
      body: renderDocsPage(),
      headers: {
        'Content-Type': 'text/html; charset=utf-8',
        ...COMMON_HEADERS,
        'Content-Security-Policy': await docsPageContentSecurityPolicy(),
        'Referrer-Policy': 'no-referrer',
      },
    },
  ]
}

/** Renders the `_headers` file: one rule per asset, naming every header it is served with. */
export function renderHeadersFile(assets: readonly StaticAsset[]): string {
  const rules = assets.map(({ urlPath, headers }) => {
    const lines = Object.entries(headers).map(([name, value]) => `  ${name}: ${value}`)
    return [urlPath, ...lines].join('\n')
  })
  return `${rules.join('\n\n')}\n`
}
