export type SqlValue = string | number | null

// String literals are matched first and kept, so 'secret:refresh' is not read as a parameter.
const NAMED_PARAMETER = /'(?:[^']|'')*'|:([a-z_][a-z0-9_]*)/g

/**
 * Prepares a statement written with `:name` parameters, which D1 does not support, as numbered
 * `?N` parameters bound from `values`. Every name in the SQL must have a value.
 */
export function prepareNamed(
  db: D1Database,
  sql: string,
  values: Record<string, SqlValue>,
): D1PreparedStatement {
  const order: string[] = []
  const text = sql.replace(NAMED_PARAMETER, (match, name: string | undefined) => {
    if (name === undefined) return match
    if (!(name in values)) throw new Error(`No value for SQL parameter :${name}`)

    let index = order.indexOf(name)
    if (index === -1) index = order.push(name) - 1
    return `?${index + 1}`
  })
  return db.prepare(text).bind(...order.map((name) => values[name] as SqlValue))
}
