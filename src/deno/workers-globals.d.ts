// Global types that the Worker's source takes from @cloudflare/workers-types, declared for
// `deno check`, which uses Deno's own web types instead. The D1 members follow
// @cloudflare/workers-types 5.20261117.1; SqliteD1Database implements them.

declare global {
  interface D1Meta {
    duration: number
    size_after: number
    rows_read: number
    rows_written: number
    last_row_id: number
    changed_db: boolean
    changes: number
    served_by_region?: string
    served_by_colo?: string
    served_by_primary?: boolean
    timings?: { sql_duration_ms: number }
    total_attempts?: number
  }

  interface D1Response {
    success: true
    meta: D1Meta & Record<string, unknown>
    error?: never
  }

  type D1Result<T = unknown> = D1Response & { results: T[] }

  interface D1ExecResult {
    count: number
    duration: number
  }

  type D1SessionConstraint = 'first-primary' | 'first-unconstrained'
  type D1SessionBookmark = string

  interface D1PreparedStatement {
    bind(...values: unknown[]): D1PreparedStatement
    first<T = unknown>(colName: string): Promise<T | null>
    first<T = Record<string, unknown>>(): Promise<T | null>
    run<T = Record<string, unknown>>(): Promise<D1Result<T>>
    all<T = Record<string, unknown>>(): Promise<D1Result<T>>
    raw<T = unknown[]>(options: { columnNames: true }): Promise<[string[], ...T[]]>
    raw<T = unknown[]>(options?: { columnNames?: false }): Promise<T[]>
  }

  interface D1DatabaseSession {
    prepare(query: string): D1PreparedStatement
    batch<T = unknown>(statements: D1PreparedStatement[]): Promise<D1Result<T>[]>
    getBookmark(): D1SessionBookmark | null
  }

  interface D1Database {
    prepare(query: string): D1PreparedStatement
    batch<T = unknown>(statements: D1PreparedStatement[]): Promise<D1Result<T>[]>
    exec(query: string): Promise<D1ExecResult>
    withSession(constraintOrBookmark?: D1SessionBookmark | D1SessionConstraint): D1DatabaseSession
    dump(): Promise<ArrayBuffer>
  }

  interface ExecutionContext<Props = unknown> {
    waitUntil(promise: Promise<unknown>): void
    passThroughOnException(): void
    readonly props: Props
  }

  interface ExportedHandler<Env = unknown> {
    fetch?(request: Request, env: Env, ctx: ExecutionContext): Response | Promise<Response>
  }
}

export {}
