/** Fields of a structured log line. Values must never be tokens, secrets, hashes or peppers. */
export type LogFields = Record<string, string | number | boolean | null | undefined>

/** Writes one JSON log line, which Workers Logs indexes by field. */
export function log(level: 'info' | 'warn' | 'error', message: string, fields: LogFields): void {
  const line = JSON.stringify({ level, message, ...fields })

  if (level === 'error') console.error(line)
  else if (level === 'warn') console.warn(line)
  else console.log(line)
}

/** Describes a caught error for the log: its name, code and message, without a stack. */
export function describeError(error: unknown): LogFields {
  if (!(error instanceof Error)) return { error: String(error).slice(0, 200) }

  const code = (error as { code?: unknown }).code
  return {
    error: error.name,
    error_code: typeof code === 'string' ? code : undefined,
    error_message: error.message.slice(0, 500),
  }
}
