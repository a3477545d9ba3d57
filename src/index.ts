import { WorkerEntrypoint } from 'cloudflare:workers'
import type { Env } from './config'
import { build, handler } from './handler'
import { type ClientSecretCheck, checkClientSecret } from './verifier'

export { createApp } from './app'
export type { Config, Env, PepperKey } from './config'
export { ConfigError, parseConfig } from './config'
export { handler } from './handler'
export type { SecretMatch, StoredSecrets } from './secret'
export { generateSecret, hashSecret, verifyClientSecret, verifySecret } from './secret'
export type { ClientSecretCheck } from './verifier'
export { checkClientSecret } from './verifier'

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
}

export default handler satisfies ExportedHandler<Env>
