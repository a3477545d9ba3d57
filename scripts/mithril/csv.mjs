// A CSV reader for PostgreSQL `COPY ... CSV HEADER` output (RFC 4180): comma separators, fields in
// double quotes with "" for a quote, and line breaks inside quoted fields. It keeps whether a field
// was quoted, because COPY writes NULL as an unquoted empty field and '' as "".

/**
 * @typedef {{ value: string, quoted: boolean }} CsvField
 * @typedef {{ line: number, fields: CsvField[] }} CsvRecord
 */

/** A CSV syntax error; `line` is the 1-based line where it was found. */
export class CsvSyntaxError extends Error {
  /**
   * @param {string} message
   * @param {number} line
   */
  constructor(message, line) {
    super(`line ${line}: ${message}`)
    this.name = 'CsvSyntaxError'
    this.line = line
  }
}

/**
 * Reads a quoted field that starts at `start` (the opening quote). Returns the value and the index
 * after the closing quote, and counts the line breaks inside it into `position.line`.
 * @param {string} text
 * @param {number} start
 * @param {{ line: number }} position
 */
function readQuoted(text, start, position) {
  const openedAt = position.line
  let value = ''
  let index = start + 1
  while (index < text.length) {
    const char = text[index]
    if (char === '"') {
      if (text[index + 1] !== '"') return { value, end: index + 1 }
      value += '"'
      index += 2
      continue
    }
    if (char === '\n') position.line += 1
    value += char
    index += 1
  }
  throw new CsvSyntaxError('a quoted field is not closed before the end of the file', openedAt)
}

/**
 * Reads an unquoted field from `start` up to the next comma or line break.
 * @param {string} text
 * @param {number} start
 * @param {number} line
 */
function readUnquoted(text, start, line) {
  let index = start
  while (index < text.length && !',\r\n'.includes(text[index] ?? '')) {
    if (text[index] === '"') {
      throw new CsvSyntaxError('a double quote inside an unquoted field', line)
    }
    index += 1
  }
  return { value: text.slice(start, index), end: index }
}

/**
 * Returns the index after the line break at `index`, or undefined when there is none.
 * @param {string} text
 * @param {number} index
 */
function skipLineBreak(text, index) {
  if (text[index] === '\n') return index + 1
  if (text[index] === '\r') return text[index + 1] === '\n' ? index + 2 : index + 1
  return undefined
}

/** @param {CsvRecord} record */
function isBlank(record) {
  const [only] = record.fields
  return record.fields.length === 1 && only?.value === '' && !only.quoted
}

/**
 * Parses CSV text into records with the line on which each starts. Blank lines are skipped and
 * a leading UTF-8 byte order mark is ignored. Throws a CsvSyntaxError on malformed quoting.
 * @param {string} text
 * @returns {CsvRecord[]}
 */
export function parseCsv(text) {
  const source = text.startsWith('\uFEFF') ? text.slice(1) : text
  const position = { line: 1 }
  /** @type {CsvRecord[]} */
  const records = []
  /** @type {CsvRecord} */
  let record = { line: 1, fields: [] }
  let index = 0

  while (index <= source.length) {
    const quoted = source[index] === '"'
    const field = quoted
      ? readQuoted(source, index, position)
      : readUnquoted(source, index, position.line)
    record.fields.push({ value: field.value, quoted })
    index = field.end

    if (source[index] === ',') {
      index += 1
      continue
    }

    const next = skipLineBreak(source, index)
    if (next === undefined && index < source.length) {
      throw new CsvSyntaxError(
        'a closing quote must be followed by a comma or a line break',
        position.line,
      )
    }
    if (!isBlank(record)) records.push(record)

    position.line += 1
    index = next ?? source.length + 1
    record = { line: position.line, fields: [] }
  }
  return records
}
