import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { cloudflareTest, readD1Migrations } from '@cloudflare/vitest-plugin'
import { defineConfig } from 'vitest/config'

const migrations = await readD1Migrations('./migrations')

// Wrangler's config loader also reads the .dev.vars beside the config file, which would make the
// tests depend on a developer's local settings. The tests use a copy of wrangler.toml in a folder
// that has no .dev.vars, with its paths made absolute.
const testConfigDir = resolve('node_modules/.cache/refresh-secret-test')
mkdirSync(testConfigDir, { recursive: true })
const testConfigPath = join(testConfigDir, 'wrangler.toml')
writeFileSync(
  testConfigPath,
  readFileSync('./wrangler.toml', 'utf8')
    .replace(/^main = "(.*)"$/m, (_line, path) => `main = ${JSON.stringify(resolve(path))}`)
    .replace(
      /^migrations_dir = "(.*)"$/m,
      (_line, path) => `migrations_dir = ${JSON.stringify(resolve(path))}`,
    )
    .replace(
      /^directory = "(.*)"$/m,
      (_line, path) => `directory = ${JSON.stringify(resolve(path))}`,
    ),
)

// A key pair used only by tests. The Worker under test trusts its public half.
const { d: _private, ...testPublicKey } = JSON.parse(
  readFileSync('./test/fixtures/test-signing-key.json', 'utf8'),
)

/** Configuration of the Worker under test; tests build variants of it per case. */
const testVars = {
  JWKS: JSON.stringify({ keys: [testPublicKey] }),
  JWT_ISSUER: 'https://issuer.test',
  JWT_AUDIENCE: 'refresh-secret',
  // 32 bytes of 0x2a, Base64url: a fixed pepper for tests only.
  SECRET_PEPPER: 'KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio',
}

export default defineConfig({
  test: {
    projects: [
      {
        plugins: [
          cloudflareTest({
            main: './src/index.ts',
            wrangler: { configPath: testConfigPath },
            miniflare: {
              bindings: { ...testVars, TEST_MIGRATIONS: migrations },
              // A real service binding to the Worker's own RPC entrypoint, as a token endpoint has.
              serviceBindings: {
                SECRET_VERIFIER: { name: 'refresh-secret', entrypoint: 'SecretVerifier' },
              },
              // An empty database that migration tests upgrade step by step.
              d1Databases: ['MIGRATION_DB'],
            },
          }),
        ],
        test: {
          name: 'workers',
          include: ['test/worker/**/*.test.ts'],
          setupFiles: ['./test/worker/setup.ts', './test/worker/leak-guard.ts'],
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          environment: 'node',
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
})
