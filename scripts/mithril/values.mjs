// Converts Mithril column values to what the D1 schema stores. A JSON export has typed values;
// a CSV export has text, where an unquoted empty field is NULL. Error messages name the column and
// the expected form but never repeat the value, because a shifted column can put a secret anywhere.

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

// PostgreSQL writes `timestamp` as `2017-04-20 19:14:13.123456` and JSON encoders write a `T`.
// `timestamptz` adds an offset such as +03, +0300 or +03:00.
const TIMESTAMP_PATTERN =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}(?::?\d{2})?)?$/

const CSV_BOOLEANS = new Map([
  ['t', 1],
  ['true', 1],
  ['f', 0],
  ['false', 0],
])

/**
 * @typedef {'json' | 'csv'} SourceFormat
 * @typedef {{ value: string | number | null } | { error: string }} Conversion
 */

/**
 * Returns the canonical lowercase form of a UUID, or undefined when the value is not one.
 * @param {unknown} value
 */
export function parseUuid(value) {
  return typeof value === 'string' && UUID_PATTERN.test(value) ? value.toLowerCase() : undefined
}

/**
 * Parses an offset such as Z, +03, +0300 or -03:30 into minutes east of UTC.
 * @param {string | undefined} offset
 */
function offsetMinutes(offset) {
  if (offset === undefined || offset === 'Z') return 0

  const digits = offset.slice(1).replace(':', '')
  const hours = Number(digits.slice(0, 2))
  const minutes = digits.length > 2 ? Number(digits.slice(2)) : 0
  if (hours > 23 || minutes > 59) return undefined
  return (offset.startsWith('-') ? -1 : 1) * (hours * 60 + minutes)
}

/**
 * Parses an ISO 8601 timestamp as Mithril exports it and returns it in UTC with a Z, such as
 * `2017-04-20T19:14:13.000Z`. A timestamp without an offset is UTC. Digits after the
 * milliseconds are dropped. Returns undefined for text that is not a valid date and time.
 * @param {string} text
 */
export function parseTimestamp(text) {
  const match = TIMESTAMP_PATTERN.exec(text)
  if (match === null) return undefined

  const fields = match.slice(1, 7).map(Number)
  const [year = 0, month = 1, day = 1, hour = 0, minute = 0, second = 0] = fields
  const millis = Number((match[7] ?? '').padEnd(3, '0').slice(0, 3))
  const offset = offsetMinutes(match[8])
  if (offset === undefined || year < 1) return undefined

  const date = new Date(0)
  date.setUTCFullYear(year, month - 1, day)
  date.setUTCHours(hour, minute, second, millis)

  // Date rolls 2017-02-30 over to March 2, so a changed field means the input was not a date.
  const actual = [
    date.getUTCFullYear(),
    date.getUTCMonth() + 1,
    date.getUTCDate(),
    date.getUTCHours(),
    date.getUTCMinutes(),
    date.getUTCSeconds(),
  ]
  if (actual.some((field, index) => field !== fields[index])) return undefined

  return new Date(date.getTime() - offset * 60_000).toISOString()
}

/**
 * @param {string} column
 * @param {unknown} value
 * @param {SourceFormat} format
 * @returns {Conversion}
 */
function convertBoolean(column, value, format) {
  if (format === 'json') {
    if (typeof value === 'boolean') return { value: value ? 1 : 0 }
    return { error: `${column} must be true or false` }
  }
  const parsed = typeof value === 'string' ? CSV_BOOLEANS.get(value.toLowerCase()) : undefined
  if (parsed === undefined) return { error: `${column} must be t, f, true or false` }
  return { value: parsed }
}

/**
 * Converts a JSON column to compact JSON text. A JSON export has an object, and a CSV export has
 * the object as JSON text.
 * @param {string} column
 * @param {unknown} value
 * @param {SourceFormat} format
 * @returns {Conversion}
 */
function convertJsonObject(column, value, format) {
  let parsed = value
  if (format === 'csv') {
    try {
      parsed = JSON.parse(String(value))
    } catch {
      // The parser's message quotes the text, so it is not passed on.
      return { error: `${column} is not valid JSON` }
    }
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { error: `${column} must be a JSON object` }
  }
  return { value: JSON.stringify(parsed) }
}

/**
 * @param {string} column
 * @param {unknown} value
 * @returns {Conversion}
 */
function convertTimestamp(column, value) {
  const parsed = typeof value === 'string' ? parseTimestamp(value) : undefined
  if (parsed === undefined) {
    return { error: `${column} is not an ISO 8601 timestamp such as 2017-04-20T19:14:13.000000` }
  }
  return { value: parsed }
}

/**
 * @param {string} column
 * @param {unknown} value
 * @param {boolean} required
 * @returns {Conversion}
 */
function convertText(column, value, required) {
  if (typeof value !== 'string') return { error: `${column} must be a string` }
  if (required && value.trim() === '') return { error: `${column} is empty` }
  return { value }
}

/**
 * Converts one present value of a column. `null` is SQL NULL, which a required column rejects.
 * The plain secret passes through unchanged, for hashing just before the SQL is written.
 * @param {import('./tables.mjs').ColumnSpec} column
 * @param {unknown} value
 * @param {SourceFormat} format
 * @returns {Conversion}
 */
export function convertValue(column, value, format) {
  if (value === null) {
    return column.required ? { error: `${column.name} is missing` } : { value: null }
  }

  switch (column.type) {
    case 'uuid': {
      const uuid = parseUuid(value)
      return uuid === undefined ? { error: `${column.name} is not a UUID` } : { value: uuid }
    }
    case 'boolean':
      return convertBoolean(column.name, value, format)
    case 'json':
      return convertJsonObject(column.name, value, format)
    case 'timestamp':
      return convertTimestamp(column.name, value)
    case 'secret':
      return convertText(column.name, value, true)
    default:
      return convertText(column.name, value, column.required === true)
  }
}
