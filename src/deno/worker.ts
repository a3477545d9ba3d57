// The Worker's modules, as the Deno entry and tests use them. `deno check` takes their types from
// worker.d.ts, because it checks with Deno's web types, which are stricter than the Workers types
// that `npm run typecheck` checks the same modules against (for example, Deno's BufferSource
// excludes views of a SharedArrayBuffer). The code that runs is that of ../index.ts.

// @ts-types="./worker.d.ts"
export { default, hashSecret, verifySecret } from '../index.ts'
