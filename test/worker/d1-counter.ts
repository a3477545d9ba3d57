/** One request from the Worker to D1: a batch, an exec, or one call that runs a statement. */
export interface RoundTrip {
  kind: 'batch' | 'exec' | 'dump' | 'first' | 'all' | 'run' | 'raw'
  /** Statements sent in this round trip: the batch length, else 1. */
  statements: number
}

const STATEMENT_CALLS = new Set<PropertyKey>(['first', 'all', 'run', 'raw'])

/**
 * Wraps a D1 binding and records every round trip made through it. The Worker receives the
 * wrapper in place of `env.DB`, so each `batch`, `exec`, `dump` and each `first`, `all`, `run`
 * or `raw` of a prepared statement counts as one round trip. `delayMs` delays each round trip
 * by that many milliseconds before it reaches D1, to simulate a distant database.
 */
export class RoundTripCounter {
  readonly trips: RoundTrip[] = []
  readonly delayMs: number
  // batch() needs the runtime's own statement objects, so each wrapper maps back to its target.
  private readonly targets = new WeakMap<object, D1PreparedStatement>()

  constructor(options: { delayMs?: number } = {}) {
    this.delayMs = options.delayMs ?? 0
  }

  get count(): number {
    return this.trips.length
  }

  reset(): void {
    this.trips.length = 0
  }

  /** Returns a D1 binding that behaves as `db` and records its round trips here. */
  wrap<Database extends D1Database | D1DatabaseSession>(db: Database): Database {
    return new Proxy(db, {
      get: (target, property) => {
        const value: unknown = Reflect.get(target, property, target)
        if (typeof value !== 'function') return value

        switch (property) {
          case 'prepare':
            return (query: string) => this.wrapStatement(target.prepare(query))
          case 'batch':
            return async (statements: D1PreparedStatement[]) => {
              await this.record({ kind: 'batch', statements: statements.length })
              return target.batch(statements.map((statement) => this.unwrap(statement)))
            }
          case 'exec':
          case 'dump':
            return async (...args: unknown[]) => {
              await this.record({ kind: property, statements: 1 })
              return value.apply(target, args)
            }
          case 'withSession':
            return (...args: unknown[]) => this.wrap(value.apply(target, args) as D1DatabaseSession)
          default:
            return value.bind(target)
        }
      },
    })
  }

  private wrapStatement(statement: D1PreparedStatement): D1PreparedStatement {
    const wrapper = new Proxy(statement, {
      get: (target, property) => {
        const value: unknown = Reflect.get(target, property, target)
        if (typeof value !== 'function') return value

        if (property === 'bind') {
          return (...values: unknown[]) => this.wrapStatement(target.bind(...values))
        }
        if (STATEMENT_CALLS.has(property)) {
          return async (...args: unknown[]) => {
            await this.record({ kind: property as RoundTrip['kind'], statements: 1 })
            return value.apply(target, args)
          }
        }
        return value.bind(target)
      },
    })
    this.targets.set(wrapper, statement)
    return wrapper
  }

  private unwrap(statement: D1PreparedStatement): D1PreparedStatement {
    return this.targets.get(statement) ?? statement
  }

  private async record(trip: RoundTrip): Promise<void> {
    this.trips.push(trip)
    if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs))
  }
}
