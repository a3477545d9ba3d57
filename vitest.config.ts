import { readFileSync } from 'node:fs'
import { cloudflareTest, readD1Migrations } from '@cloudflare/vitest-plugin'
import { defineConfig } from 'vitest/config'

const migrations = await readD1Migrations('./migrations')

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
            wrangler: { configPath: './wrangler.toml' },
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
          setupFiles: ['./test/worker/setup.ts'],
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
