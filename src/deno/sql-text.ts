// Reads SQL text the way SQLite's tokenizer does, as far as the D1 adapter needs: where comments,
// string literals and quoted identifiers end, and which parameters a statement has.

const WHITESPACE = /\s/
const IDENTIFIER_CHAR = /[\p{L}\p{N}_$]/u
const DIGIT = /[0-9]/

/** Returns the index after the comment, literal or quoted identifier at `start`, or `start`. */
function skipQuoted(sql: string, start: number): number {
  const char = sql[start]
  const next = sql[start + 1]

  if (char === '-' && next === '-') {
    const end = sql.indexOf('\n', start + 2)
    return end === -1 ? sql.length : end + 1
  }
  if (char === '/' && next === '*') {
    const end = sql.indexOf('*/', start + 2)
    return end === -1 ? sql.length : end + 2
  }
  if (char === '[') {
    const end = sql.indexOf(']', start + 1)
    return end === -1 ? sql.length : end + 1
  }
  if (char === "'" || char === '"' || char === '`') {
    // A doubled quote inside the literal stands for one quote character.
    let index = start + 1
    while (index < sql.length) {
      if (sql[index] === char) {
        if (sql[index + 1] !== char) return index + 1
        index += 2
      } else {
        index += 1
      }
    }
    return sql.length
  }
  return start
}

function isComment(sql: string, index: number): boolean {
  const pair = sql.slice(index, index + 2)
  return pair === '--' || pair === '/*'
}

/** Returns the index of the first character that is not whitespace, a comment or a semicolon. */
export function skipBlank(sql: string, start = 0): number {
  let index = start
  while (index < sql.length) {
    const char = sql[index] as string
    if (WHITESPACE.test(char) || char === ';') {
      index += 1
    } else if (isComment(sql, index)) {
      index = skipQuoted(sql, index)
    } else {
      break
    }
  }
  return index
}

/** True when the text contains no statement: only whitespace, comments and semicolons. */
export function isBlank(sql: string, start = 0): boolean {
  return skipBlank(sql, start) === sql.length
}

/** Returns the first keyword of a statement in upper case, such as `SELECT` or `BEGIN`. */
export function firstKeyword(sql: string): string {
  const start = skipBlank(sql)
  let end = start
  while (end < sql.length && IDENTIFIER_CHAR.test(sql[end] as string)) end += 1
  return sql.slice(start, end).toUpperCase()
}

/** The parameters of one statement, numbered as sqlite3_bind_parameter_count counts them. */
export interface Parameters {
  /** The largest parameter index, which is the number of values the statement takes. */
  count: number
  /** Named parameters (`:name`, `@name`, `$name`), which D1 does not bind. */
  names: string[]
}

/**
 * Finds the parameters of one statement. `?NNN` has index NNN, each `?` takes the index after the
 * largest so far, and a name takes the next index the first time it appears.
 */
export function findParameters(sql: string): Parameters {
  let count = 0
  const names: string[] = []
  let index = 0

  while (index < sql.length) {
    const skipped = skipQuoted(sql, index)
    if (skipped !== index) {
      index = skipped
      continue
    }

    const char = sql[index] as string
    let end = index + 1
    if (char === '?') {
      while (end < sql.length && DIGIT.test(sql[end] as string)) end += 1
      count = end > index + 1 ? Math.max(count, Number(sql.slice(index + 1, end))) : count + 1
    } else if (char === ':' || char === '@' || char === '$') {
      while (end < sql.length && IDENTIFIER_CHAR.test(sql[end] as string)) end += 1
      const name = sql.slice(index, end)
      if (end > index + 1 && !names.includes(name)) {
        names.push(name)
        count += 1
      }
    } else if (IDENTIFIER_CHAR.test(char)) {
      // A `$` inside a word such as `a$b` is part of the identifier, not a parameter.
      while (end < sql.length && IDENTIFIER_CHAR.test(sql[end] as string)) end += 1
    }
    index = end
  }
  return { count, names }
}
