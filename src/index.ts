import { WorkerEntrypoint } from 'cloudflare:workers'
import type { Env } from './config.ts'
import { build, handler } from './handler.ts'
import { type ClientSecretCheck, checkClientSecret, checkConnectionSecret } from './verifier.ts'

export { createApp } from './app.ts'
export type { Config, Env, PepperKey } from './config.ts'
export { ConfigError, parseConfig } from './config.ts'
export { handler } from './handler.ts'
export type { SecretMatch, StoredSecrets } from './secret.ts'
export { generateSecret, hashSecret, verifyClientSecret, verifySecret } from './secret.ts'
export type { ClientSecretCheck } from './verifier.ts'
export { checkClientSecret, checkConnectionSecret } from './verifier.ts'

/**
 * An RPC entrypoint for other Workers, such as the token endpoint, to check client secrets
 * through a service binding without an HTTP route.
 */
export class SecretVerifier extends WorkerEntrypoint<Env> {
  async verifyClientSecret(clientId: string, secret: string): Promise<ClientSecretCheck> {
    const result = build(this.env)
    if ('error' in result) {
      throw new Error(`Invalid configuration: ${result.error.setting}`)
    }
    return checkClientSecret(this.env.DB, result.config, clientId, secret)
  }

  async verifyConnectionSecret(connectionId: string, secret: string): Promise<ClientSecretCheck> {
    const result = build(this.env)
    if ('error' in result) {
      throw new Error(`Invalid configuration: ${result.error.setting}`)
    }
    return checkConnectionSecret(this.env.DB, result.config, connectionId, secret)
  }
}

export default handler satisfies ExportedHandler<Env>
