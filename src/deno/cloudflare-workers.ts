/**
 * The part of the workerd module `cloudflare:workers` that the Worker's source imports, so that
 * its modules load on Deno. deno.json maps the specifier here. Deno serves only the default
 * fetch handler: an RPC entrypoint that extends this class loads but is not served.
 */
export class WorkerEntrypoint<Env = unknown> {
  protected readonly ctx: ExecutionContext
  protected readonly env: Env

  constructor(ctx: ExecutionContext, env: Env) {
    this.ctx = ctx
    this.env = env
  }
}
