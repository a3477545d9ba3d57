// The Worker's modules as the Deno entry and tests use them. `deno check` reads their types from
// worker.d.ts because it checks with Deno's web types. Those are stricter than the Workers types
// that `npm run typecheck` uses for the same modules: Deno's BufferSource, for example, excludes
// views of a SharedArrayBuffer. The code that runs is that of ../index.ts.

// @ts-types="./worker.d.ts"
export { default, hashSecret, verifySecret } from '../index.ts'
