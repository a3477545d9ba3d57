import type { Env, PepperKey } from '../config.ts'

/** The Worker's default export: the fetch handler of src/handler.ts. */
declare const worker: {
  fetch(request: Request, env: Env, ctx?: ExecutionContext): Response | Promise<Response>
}
export default worker

/** Verifies a presented secret against a stored hash in constant time (src/secret.ts). */
export declare function verifySecret(
  clientId: string,
  secret: string,
  stored: string,
  peppers: readonly PepperKey[],
): Promise<boolean>

/** Hashes a secret for storage as `hmac-sha256$<key id>$<MAC>` (src/secret.ts). */
export declare function hashSecret(
  clientId: string,
  secret: string,
  pepper: PepperKey,
): Promise<string>
