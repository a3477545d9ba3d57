import { ApiError, validationFailed } from './errors.ts'

/** Request bodies larger than this are rejected with 413 before they are parsed. */
export const MAX_BODY_BYTES = 16 * 1024

/** The JSON object fields this version of the method accepts. */
const KNOWN_FIELDS = new Set(['previous_secret_expires_in', 'revoke_previous'])

async function readLimited(request: Request): Promise<string> {
  const declared = request.headers.get('content-length')
  if (declared !== null && Number(declared) > MAX_BODY_BYTES) throw bodyTooLarge()
  if (request.body === null) return ''

  const reader = request.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break

    size += value.byteLength
    if (size > MAX_BODY_BYTES) {
      await reader.cancel()
      throw bodyTooLarge()
    }
    chunks.push(value)
  }

  const bytes = new Uint8Array(size)
  let offset = 0
  for (const chunk of chunks) {
    bytes.set(chunk, offset)
    offset += chunk.byteLength
  }
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes)
  } catch {
    throw new ApiError(400, 'request_malformed', 'The request body is not valid UTF-8.')
  }
}

function bodyTooLarge(): ApiError {
  return new ApiError(
    413,
    'request_too_large',
    `The request body is larger than ${MAX_BODY_BYTES} bytes.`,
  )
}

function isJsonContentType(value: string | null): boolean {
  if (value === null) return false

  const mediaType = value.split(';')[0]?.trim().toLowerCase()
  return (
    mediaType === 'application/json' || /^application\/[a-z0-9.+-]+\+json$/.test(mediaType ?? '')
  )
}

/**
 * Reads the optional JSON object body. An empty body is an empty object whatever its content type.
 * A body of another type is 415, invalid JSON is 400, and JSON that is not an object or carries
 * an unknown field is 422.
 */
export async function readRequestBody(request: Request): Promise<Record<string, unknown>> {
  const text = await readLimited(request)
  if (text.trim() === '') return {}

  if (!isJsonContentType(request.headers.get('content-type'))) {
    throw new ApiError(415, 'content_type_invalid', 'The request body must be application/json.')
  }

  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw new ApiError(400, 'request_malformed', 'The request body is not valid JSON.')
  }

  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw validationFailed('The request body must be a JSON object.', [
      {
        entry_type: 'json_data_property',
        entry: '$',
        rules: [{ rule: 'cast', params: ['object'], description: 'type mismatch' }],
      },
    ])
  }

  const unknown = Object.keys(parsed).filter((field) => !KNOWN_FIELDS.has(field))
  if (unknown.length > 0) {
    throw validationFailed(
      'The request body has properties that this method does not accept.',
      unknown.map((field) => ({
        entry_type: 'json_data_property' as const,
        entry: `$.${field}`,
        rules: [
          {
            rule: 'schema',
            params: [],
            description: 'schema does not allow additional properties',
          },
        ],
      })),
    )
  }
  return parsed as Record<string, unknown>
}
