// The OpenAPI 3.1 description of the service, written by hand. test/worker/openapi.test.ts checks
// it against real responses, and `npm run assets` writes it to public/openapi.json.

/** A JSON value. */
export type JsonValue =
  | string
  | number
  | boolean
  | null
  | JsonValue[]
  | { [key: string]: JsonValue }

/** A Reference Object: `$ref` is a JSON pointer into this document, such as `#/components/...`. */
export interface ReferenceObject {
  $ref: string
}

export type SchemaType = 'string' | 'integer' | 'number' | 'boolean' | 'object' | 'array' | 'null'

/** A Schema Object: JSON Schema 2020-12, limited to the keywords that this document uses. */
export interface SchemaObject {
  $ref?: string
  description?: string
  type?: SchemaType | SchemaType[]
  format?: string
  const?: JsonValue
  enum?: JsonValue[]
  pattern?: string
  minLength?: number
  maxLength?: number
  minimum?: number
  maximum?: number
  minItems?: number
  items?: SchemaObject
  properties?: Record<string, SchemaObject>
  required?: string[]
  additionalProperties?: boolean
  if?: SchemaObject
  then?: SchemaObject
  examples?: JsonValue[]
}

export interface HeaderObject {
  description: string
  required?: boolean
  schema: SchemaObject
}

export interface ParameterObject {
  name: string
  in: 'path' | 'header' | 'query'
  description: string
  required?: boolean
  schema: SchemaObject
}

export interface MediaTypeObject {
  schema: SchemaObject
  examples?: Record<string, { summary: string; value: JsonValue }>
}

export interface RequestBodyObject {
  description: string
  required: boolean
  content: Record<string, MediaTypeObject>
}

export interface ResponseObject {
  description: string
  headers?: Record<string, HeaderObject | ReferenceObject>
  content?: Record<string, MediaTypeObject>
}

export interface OperationObject {
  operationId: string
  summary: string
  description: string
  deprecated?: boolean
  security: Record<string, string[]>[]
  parameters: (ParameterObject | ReferenceObject)[]
  requestBody: RequestBodyObject | ReferenceObject
  responses: Record<string, ResponseObject>
}

export interface PathItemObject {
  patch: OperationObject
}

export interface SecuritySchemeObject {
  type: 'http'
  scheme: 'bearer'
  bearerFormat: string
  description: string
}

export interface OpenApiDocument {
  openapi: string
  info: { title: string; summary: string; description: string; version: string }
  paths: Record<string, PathItemObject>
  components: {
    securitySchemes: Record<string, SecuritySchemeObject>
    parameters: Record<string, ParameterObject>
    requestBodies: Record<string, RequestBodyObject>
    headers: Record<string, HeaderObject>
    schemas: Record<string, SchemaObject>
  }
}

const CLIENT_PATH = '/admin/clients/{id}/refresh_secret'
const CONNECTION_PATH = '/api/clients/{id}/connections/{connection_id}/actions/refresh_secret'

const JSON_TYPE = 'application/json'

function ref(section: string, name: string): ReferenceObject {
  return { $ref: `#/components/${section}/${name}` }
}

function schemaRef(name: string): SchemaObject {
  return { $ref: `#/components/schemas/${name}` }
}

/** Builds the schema of an error envelope whose `meta.code` is `status` and `error.type` is `type`. */
function errorEnvelope(status: number, type: string, description: string): SchemaObject {
  return {
    $ref: '#/components/schemas/ErrorEnvelope',
    description,
    properties: {
      meta: { properties: { code: { const: status } } },
      error: { properties: { type: { const: type } } },
    },
  }
}

/** The facts that differ between the two methods' responses. */
interface MethodFacts {
  scope: string
  record: string
  /** The rotated secret as descriptions name it, such as "This client's secret". */
  secretName: string
  notFound: string
  /** Headers that every response of the path carries, except the configuration failure 500. */
  pathHeaders: Record<string, HeaderObject | ReferenceObject>
  /** The same headers as they appear on a 500, where they may be absent. */
  pathHeadersOn500: Record<string, HeaderObject | ReferenceObject>
}

const COMMON_HEADERS: Record<string, ReferenceObject> = {
  'x-request-id': ref('headers', 'RequestId'),
  'Cache-Control': ref('headers', 'CacheControl'),
  Pragma: ref('headers', 'Pragma'),
}

function errorResponse(
  facts: MethodFacts,
  schema: string,
  description: string,
  headers: Record<string, HeaderObject | ReferenceObject> = {},
): ResponseObject {
  return {
    description,
    headers: { ...COMMON_HEADERS, ...facts.pathHeaders, ...headers },
    content: { [JSON_TYPE]: { schema: schemaRef(schema) } },
  }
}

function methodResponses(facts: MethodFacts): Record<string, ResponseObject> {
  const retryAfter = { 'Retry-After': ref('headers', 'RetryAfter') }
  return {
    '200': {
      description: `The secret was rotated, or the response to an earlier request with the same \`Idempotency-Key\` was replayed. \`data\` contains the record with the new secret.`,
      headers: {
        ...COMMON_HEADERS,
        ...facts.pathHeaders,
        'Idempotent-Replayed': ref('headers', 'IdempotentReplayed'),
      },
      content: {
        [JSON_TYPE]: {
          schema: schemaRef(`${facts.record}Response`),
          examples: facts.record === 'ClientSecret' ? CLIENT_EXAMPLES : CONNECTION_EXAMPLES,
        },
      },
    },
    '400': errorResponse(
      facts,
      'RequestMalformedError',
      'The body is not valid JSON or not valid UTF-8.',
    ),
    '401': errorResponse(
      facts,
      'AccessDeniedError',
      'The bearer token is missing, malformed, invalid or expired, or its user (`sub`) does not exist or is blocked.',
      { 'WWW-Authenticate': ref('headers', 'WwwAuthenticateInvalidToken') },
    ),
    '403': errorResponse(
      facts,
      'ForbiddenError',
      `The token lacks the scope \`${facts.scope}\` (only then with \`WWW-Authenticate\`), the token was issued to another client, the user holds no role for this client whose scope grants \`${facts.scope}\`, or the client is blocked.`,
      {
        'WWW-Authenticate': {
          description: 'Sent when the token lacks the scope (RFC 6750, section 3.1).',
          required: false,
          schema: {
            type: 'string',
            const: `Bearer error="insufficient_scope", scope="${facts.scope}"`,
          },
        },
      },
    ),
    '404': errorResponse(facts, 'NotFoundError', facts.notFound),
    '405': errorResponse(
      facts,
      'MethodNotAllowedError',
      'Returned to every method other than PATCH on this path.',
      { Allow: ref('headers', 'Allow') },
    ),
    '409': errorResponse(
      facts,
      'RequestConflictError',
      'The stored response for this `Idempotency-Key` cannot be decrypted, for example because the server key that encrypted it is now configured under another key id. Retry with a new key.',
    ),
    '413': errorResponse(facts, 'RequestTooLargeError', 'The body is larger than 16384 bytes.'),
    '415': errorResponse(
      facts,
      'ContentTypeInvalidError',
      'The body is not empty and its content type is neither `application/json` nor another `application/*+json` type.',
    ),
    '422': errorResponse(
      facts,
      'ValidationFailedError',
      'A value is invalid, and `error.invalid` names each one: a path parameter that is not a UUID, a malformed `Idempotency-Key`, a key reused with a different body, a body that is not a JSON object or has an unknown property, or an option of the wrong type or out of range.',
    ),
    '429': errorResponse(
      facts,
      'TooManyRequestsError',
      `${facts.secretName} was rotated too often: by default 5 times in 3600 seconds, as configured per deployment. Replayed responses do not count. \`Retry-After\` gives the seconds until the next rotation is allowed.`,
      retryAfter,
    ),
    '500': {
      description:
        'An unexpected error. While the service configuration is invalid, every request returns this response, without the deprecation headers. The body contains no internal details.',
      headers: { ...COMMON_HEADERS, ...facts.pathHeadersOn500 },
      content: { [JSON_TYPE]: { schema: schemaRef('InternalError') } },
    },
    '503': errorResponse(
      facts,
      'ServiceUnavailableError',
      "The issuer's key set or the database is unavailable, and nothing was written. Retry after `Retry-After` seconds.",
      retryAfter,
    ),
  }
}

const SECRET_EXAMPLE = 'r7VX0wq8Jm2WnYbH1kTt3sFzUe5LcQa9Dg4Po6Ni-_A'

const CLIENT_EXAMPLES: MediaTypeObject['examples'] = {
  rotated: {
    summary: 'A rotation with a one-hour grace period',
    value: {
      meta: {
        url: 'https://auth.example/admin/clients/d0000000-0000-4000-8000-000000000001/refresh_secret',
        type: 'object',
        code: 200,
        request_id: '6f1c2b9e-6a51-4f0e-9a43-0c1f5d2a7b10',
      },
      data: {
        id: 'd0000000-0000-4000-8000-000000000001',
        name: 'Demo clinic',
        secret: SECRET_EXAMPLE,
        redirect_uri: 'https://clinic.example/callback',
        settings: { allowed_grant_types: ['password', 'authorization_code'] },
        is_blocked: false,
        block_reason: null,
        user_id: 'a0000000-0000-4000-8000-000000000001',
        client_type_id: 'b0000000-0000-4000-8000-000000000001',
        inserted_at: '2025-03-01T10:00:00.000Z',
        updated_at: '2026-12-04T15:00:00.000Z',
        previous_secret_expires_at: '2026-12-04T16:00:00.000Z',
      },
    },
  },
}

const CONNECTION_EXAMPLES: MediaTypeObject['examples'] = {
  rotated: {
    summary: 'A rotation that retires the previous secret at once',
    value: {
      meta: {
        url: 'https://auth.example/api/clients/d0000000-0000-4000-8000-000000000001/connections/e0000000-0000-4000-8000-000000000001/actions/refresh_secret',
        type: 'object',
        code: 200,
        request_id: 'req-2026-12-04-0001',
      },
      data: {
        id: 'e0000000-0000-4000-8000-000000000001',
        client_id: 'd0000000-0000-4000-8000-000000000001',
        consumer_id: 'd0000000-0000-4000-8000-000000000002',
        secret: SECRET_EXAMPLE,
        redirect_uri: 'https://consumer.example/callback',
        inserted_at: '2025-03-01T10:00:00.000Z',
        updated_at: '2026-12-04T15:00:00.000Z',
        previous_secret_expires_at: null,
      },
    },
  },
}

/** Describes, in CommonMark, the checks that both methods make in order. */
function checksDescription(scope: string, connection: boolean): string {
  const pathChecks = connection
    ? '3. `{id}` and `{connection_id}` are UUIDs (422).'
    : '3. `{id}` is a UUID (422).'
  const connectionCheck = connection ? ' the client has this connection (404);' : ''
  return `Checks, in this order:

1. The bearer token is valid (401). A key set that cannot be fetched returns 503.
2. The token has the scope \`${scope}\` (403 with \`WWW-Authenticate\`).
${pathChecks}
4. The token's client id equals \`{id}\` (403).
5. The \`Idempotency-Key\` header, when sent, is well formed (422), and the body is valid (413, 400, 415, 422).
6. In one database transaction: the client exists (404);${connectionCheck} the user (\`sub\`) exists and is not blocked (401); the user holds a role for this client whose scope grants \`${scope}\` (403); the client is not blocked (403); a reused \`Idempotency-Key\` comes with the same body (422) and replays the first response; the rate limit is not reached (429). Then the new secret's hash and an audit row are written together.

A database failure returns 503 and writes nothing.`
}

const DEPRECATION_HEADERS: Record<string, ReferenceObject> = {
  Deprecation: ref('headers', 'Deprecation'),
  Sunset: ref('headers', 'Sunset'),
  Link: ref('headers', 'Link'),
}

const DEPRECATION_HEADERS_ON_500: Record<string, HeaderObject> = {
  Deprecation: {
    description: 'As on other responses, but absent while the service configuration is invalid.',
    required: false,
    schema: schemaRef('DeprecationDate'),
  },
  Sunset: {
    description: 'As on other responses, but absent while the service configuration is invalid.',
    required: false,
    schema: schemaRef('SunsetDate'),
  },
  Link: {
    description: 'As on other responses, but absent while the service configuration is invalid.',
    required: false,
    schema: schemaRef('DeprecationLinks'),
  },
}

const CLIENT_FACTS: MethodFacts = {
  scope: 'secret:refresh',
  record: 'ClientSecret',
  secretName: "This client's secret",
  notFound: 'No client has this id.',
  pathHeaders: DEPRECATION_HEADERS,
  pathHeadersOn500: DEPRECATION_HEADERS_ON_500,
}

const CONNECTION_FACTS: MethodFacts = {
  scope: 'connection:refresh_secret',
  record: 'ConnectionSecret',
  secretName: "This connection's secret",
  notFound: 'No client has this id, or the client has no connection with this id.',
  pathHeaders: {},
  pathHeadersOn500: {},
}

const OPTIONAL_HEADER_PARAMETERS = [
  ref('parameters', 'IdempotencyKey'),
  ref('parameters', 'RequestId'),
]

const TIMESTAMP: SchemaObject = { type: ['string', 'null'], format: 'date-time' }

/** The OpenAPI 3.1 description of the service's API. */
export const OPENAPI_DOCUMENT: OpenApiDocument = {
  openapi: '3.1.1',
  info: {
    title: 'Client secret rotation API',
    summary: 'Rotates the secrets of OAuth clients and of their connections.',
    description: `Rotates the secrets of OAuth clients of the eHealth authorization server: the deprecated method rotates a client's own secret, and its successor rotates the secret of one of the client's connections. Each returns a new random secret once and stores only an HMAC-SHA-256 hash of it.

Every response body is JSON in the eHealth envelope: \`meta\` with \`data\` on success, or \`meta\` with \`error\` on failure, never both. Every response carries \`Cache-Control: no-store\` and \`Pragma: no-cache\`, because a successful one contains a secret, and the request id in \`x-request-id\`.

A path that matches neither method returns 404 \`not_found\`. While the service configuration is invalid, every request returns 500 \`internal_error\`. When the deployment lists origins in \`CORS_ORIGINS\`, requests from those origins also get CORS headers and preflight responses.`,
    version: '0.1.0',
  },
  paths: {
    [CLIENT_PATH]: {
      patch: {
        operationId: 'refreshClientSecret',
        summary: "Rotate a client's own secret",
        description: `Replaces the secret of the client \`{id}\` with a new random one and returns the client record with the new secret. Only a user who holds a role for this client, with a token issued to this client, may call it.

Deprecated: use \`PATCH ${CONNECTION_PATH}\`, which rotates one connection's secret. Every response of this path, except the 500 returned while the configuration is invalid, carries \`Deprecation\` (RFC 9745) and a \`Link\` with \`rel="successor-version"\`; \`Sunset\` (RFC 8594) and a \`rel="deprecation"\` link are sent where the deployment configures them.

${checksDescription('secret:refresh', false)}`,
        deprecated: true,
        security: [{ bearerAuth: ['secret:refresh'] }],
        parameters: [ref('parameters', 'ClientId'), ...OPTIONAL_HEADER_PARAMETERS],
        requestBody: ref('requestBodies', 'RotationOptions'),
        responses: methodResponses(CLIENT_FACTS),
      },
    },
    [CONNECTION_PATH]: {
      patch: {
        operationId: 'refreshConnectionSecret',
        summary: "Rotate a connection's secret",
        description: `Replaces the secret of the connection \`{connection_id}\` of the client \`{id}\` with a new random one and returns the connection record with the new secret. A connection holds the secret that one consumer uses for this client. Only a user who holds a role for this client, with a token issued to this client, may call it.

${checksDescription('connection:refresh_secret', true)}`,
        security: [{ bearerAuth: ['connection:refresh_secret'] }],
        parameters: [
          ref('parameters', 'ClientId'),
          ref('parameters', 'ConnectionId'),
          ...OPTIONAL_HEADER_PARAMETERS,
        ],
        requestBody: ref('requestBodies', 'RotationOptions'),
        responses: methodResponses(CONNECTION_FACTS),
      },
    },
  },
  components: {
    securitySchemes: {
      bearerAuth: {
        type: 'http',
        scheme: 'bearer',
        bearerFormat: 'JWT',
        description: `An RFC 9068 JWT access token in the \`Authorization\` header (RFC 6750). The scheme word is case-insensitive, and the token is at most 8192 characters.

The signature must verify against the issuer's key set with an allowed asymmetric algorithm, so \`none\` and HS* never verify. \`iss\` must equal the configured issuer and \`aud\` must contain the configured audience. \`exp\` and \`sub\` are required, and \`exp\`, \`nbf\` and \`iat\` are checked with a small clock tolerance. A deployment may also require the header \`typ\` \`at+jwt\`.

\`sub\` is the user id. The client id is the \`client_id\` claim, or \`azp\` or \`cid\` where the deployment configures it. Scopes come from the space-delimited \`scope\` claim or the \`scp\` array, and match as whole words. Each method lists the scope it requires.`,
      },
    },
    parameters: {
      ClientId: {
        name: 'id',
        in: 'path',
        required: true,
        description:
          "The client's id, which equals its legal entity's id: a UUID in any letter case. The token must be issued to this client.",
        schema: { type: 'string', format: 'uuid' },
      },
      ConnectionId: {
        name: 'connection_id',
        in: 'path',
        required: true,
        description: "The id of one of the client's connections: a UUID in any letter case.",
        schema: { type: 'string', format: 'uuid' },
      },
      IdempotencyKey: {
        name: 'Idempotency-Key',
        in: 'header',
        required: false,
        description:
          'Makes a retry safe. A request with the same key, user and secret within the replay period (600 seconds by default) returns the first response with the same secret and rotates nothing. The same key with a different body returns 422. A retry after the deployment removed the server key that was current at the first request is a new request and rotates the secret again.',
        schema: { type: 'string', minLength: 1, maxLength: 255, pattern: '^[\\x21-\\x7e]{1,255}$' },
      },
      RequestId: {
        name: 'x-request-id',
        in: 'header',
        required: false,
        description:
          'A request id for logs and support. It is echoed in `meta.request_id` and the `x-request-id` response header when it is 1 to 64 characters of `A-Z`, `a-z`, `0-9`, `.`, `_`, `:` and `-`; any other value is replaced by a new UUID.',
        schema: { type: 'string' },
      },
    },
    requestBodies: {
      RotationOptions: {
        description:
          'Optional. An empty body is the same as `{}`, whatever its content type. A non-empty body is a JSON object of at most 16384 bytes of UTF-8, sent as `application/json` or another `application/*+json` type.',
        required: false,
        content: { [JSON_TYPE]: { schema: schemaRef('RotationOptions') } },
      },
    },
    headers: {
      RequestId: {
        description:
          'The incoming `x-request-id` when it is safe, else a new UUID. Equals `meta.request_id`.',
        required: true,
        schema: schemaRef('RequestId'),
      },
      CacheControl: {
        description: 'No cache may store the response, because a successful one contains a secret.',
        required: true,
        schema: { type: 'string', const: 'no-store' },
      },
      Pragma: {
        description: 'The same for HTTP/1.0 caches.',
        required: true,
        schema: { type: 'string', const: 'no-cache' },
      },
      Deprecation: {
        description:
          'RFC 9745: the method is deprecated since this time, given as `@` and Unix seconds. It is 2026-01-01T00:00:00Z (`@1767225600`) unless the deployment sets another date.',
        required: true,
        schema: schemaRef('DeprecationDate'),
      },
      Sunset: {
        description:
          'RFC 8594: when the method is expected to stop working, as an HTTP date. Sent only where the deployment sets a sunset date.',
        required: false,
        schema: schemaRef('SunsetDate'),
      },
      Link: {
        description:
          'RFC 8288 links. `rel="successor-version"` points to the successor method, by default to its description in this document (`/openapi.json#/paths/~1api~1clients~1%7Bid%7D~1connections~1%7Bconnection_id%7D~1actions~1refresh_secret/patch`). `rel="deprecation"` points to a migration guide where the deployment sets one.',
        required: true,
        schema: schemaRef('DeprecationLinks'),
      },
      WwwAuthenticateInvalidToken: {
        description: 'RFC 6750, section 3.1: the token was rejected.',
        required: true,
        schema: { type: 'string', const: 'Bearer error="invalid_token"' },
      },
      Allow: {
        description: 'The only method that this path accepts.',
        required: true,
        schema: { type: 'string', const: 'PATCH' },
      },
      RetryAfter: {
        description: 'Seconds to wait before retrying.',
        required: true,
        schema: { type: 'integer', minimum: 1 },
      },
      IdempotentReplayed: {
        description:
          '`true` when this response replays the first response for the same `Idempotency-Key`: that earlier request rotated the secret, and this one rotated nothing.',
        required: false,
        schema: { type: 'string', const: 'true' },
      },
    },
    schemas: {
      RotationOptions: {
        type: 'object',
        description: 'How the previous secret is retired.',
        additionalProperties: false,
        properties: {
          previous_secret_expires_in: {
            type: 'integer',
            minimum: 0,
            maximum: 31536000,
            description:
              'Seconds for which the previous secret still verifies, so that its users can switch over; 0 retires it at once. The deployment sets the maximum (604800, 7 days, by default; 31536000 at most) and the value used when the field is absent (0 by default).',
          },
          revoke_previous: {
            type: 'boolean',
            description:
              '`true` retires the previous secret at once, as after a leak, whatever the default grace period. It cannot be combined with a non-zero `previous_secret_expires_in`.',
          },
        },
        if: { properties: { revoke_previous: { const: true } }, required: ['revoke_previous'] },
        // biome-ignore lint/suspicious/noThenProperty: JSON Schema's `then` keyword, never awaited.
        then: { properties: { previous_secret_expires_in: { const: 0 } } },
        examples: [{ previous_secret_expires_in: 3600 }, { revoke_previous: true }],
      },
      Secret: {
        type: 'string',
        pattern: '^[A-Za-z0-9_-]{43}$',
        description:
          'The new secret: 32 random bytes in Base64url without padding (43 characters). It appears in this response only, because the service stores just a keyed hash of it.',
      },
      ClientSecret: {
        type: 'object',
        description:
          'A client as returned to its owner after a rotation. Internal settings and secret hashes are never returned.',
        additionalProperties: false,
        required: [
          'id',
          'name',
          'secret',
          'redirect_uri',
          'settings',
          'is_blocked',
          'block_reason',
          'user_id',
          'client_type_id',
          'inserted_at',
          'updated_at',
          'previous_secret_expires_at',
        ],
        properties: {
          id: { type: 'string', format: 'uuid', description: 'The client id, in lowercase.' },
          name: { type: ['string', 'null'] },
          secret: schemaRef('Secret'),
          redirect_uri: { type: ['string', 'null'] },
          settings: {
            description:
              "The client's settings as stored: a JSON value, usually an object, or null.",
          },
          is_blocked: {
            type: 'boolean',
            description: 'A blocked client cannot rotate its secret, so this is false.',
          },
          block_reason: { type: ['string', 'null'] },
          user_id: {
            type: ['string', 'null'],
            description: 'The id of the user who owns the client.',
          },
          client_type_id: { type: 'string' },
          inserted_at: TIMESTAMP,
          updated_at: { ...TIMESTAMP, description: 'The time of the rotation.' },
          previous_secret_expires_at: {
            ...TIMESTAMP,
            description:
              'When the previous secret stops verifying, or null when it was retired at once.',
          },
        },
      },
      ConnectionSecret: {
        type: 'object',
        description:
          'A connection as returned to the owner of its client after a rotation. The secret hashes are never returned.',
        additionalProperties: false,
        required: [
          'id',
          'client_id',
          'consumer_id',
          'secret',
          'redirect_uri',
          'inserted_at',
          'updated_at',
          'previous_secret_expires_at',
        ],
        properties: {
          id: { type: 'string', format: 'uuid', description: 'The connection id, in lowercase.' },
          client_id: {
            type: 'string',
            format: 'uuid',
            description: 'The client that owns the connection, in lowercase.',
          },
          consumer_id: {
            type: 'string',
            description: 'The client that uses this connection and its secret.',
          },
          secret: schemaRef('Secret'),
          redirect_uri: { type: ['string', 'null'] },
          inserted_at: TIMESTAMP,
          updated_at: { ...TIMESTAMP, description: 'The time of the rotation.' },
          previous_secret_expires_at: {
            ...TIMESTAMP,
            description:
              'When the previous secret stops verifying, or null when it was retired at once.',
          },
        },
      },
      ClientSecretResponse: {
        type: 'object',
        additionalProperties: false,
        required: ['meta', 'data'],
        properties: {
          meta: { $ref: '#/components/schemas/Meta', properties: { code: { const: 200 } } },
          data: schemaRef('ClientSecret'),
        },
      },
      ConnectionSecretResponse: {
        type: 'object',
        additionalProperties: false,
        required: ['meta', 'data'],
        properties: {
          meta: { $ref: '#/components/schemas/Meta', properties: { code: { const: 200 } } },
          data: schemaRef('ConnectionSecret'),
        },
      },
      Meta: {
        type: 'object',
        description: 'The eHealth response metadata.',
        additionalProperties: false,
        required: ['url', 'type', 'code', 'request_id'],
        properties: {
          url: {
            type: 'string',
            format: 'uri',
            description: 'The request URL without its query string.',
          },
          type: { type: 'string', const: 'object' },
          code: {
            type: 'integer',
            minimum: 100,
            maximum: 599,
            description: 'The HTTP status code of this response.',
          },
          request_id: schemaRef('RequestId'),
        },
      },
      RequestId: {
        type: 'string',
        pattern: '^[A-Za-z0-9._:-]{1,64}$',
        description: 'The incoming `x-request-id` when it is safe, else a new UUID.',
      },
      ErrorEnvelope: {
        type: 'object',
        description: 'The eHealth error envelope: `meta` and `error`, never `data`.',
        additionalProperties: false,
        required: ['meta', 'error'],
        properties: {
          meta: schemaRef('Meta'),
          error: schemaRef('Error'),
        },
      },
      Error: {
        type: 'object',
        additionalProperties: false,
        required: ['type', 'message'],
        properties: {
          type: schemaRef('ErrorType'),
          message: {
            type: 'string',
            description:
              'A human-readable explanation. It never contains a token, a secret or internal details.',
          },
          invalid: {
            type: 'array',
            minItems: 1,
            items: schemaRef('InvalidEntry'),
            description: 'Sent with 422 only: one entry for each invalid value.',
          },
        },
      },
      ErrorType: {
        type: 'string',
        description: 'The eHealth error type. Each HTTP status has one.',
        enum: [
          'request_malformed',
          'access_denied',
          'forbidden',
          'not_found',
          'method_not_allowed',
          'request_conflict',
          'request_too_large',
          'content_type_invalid',
          'validation_failed',
          'too_many_requests',
          'internal_error',
          'service_unavailable',
        ],
      },
      InvalidEntry: {
        type: 'object',
        additionalProperties: false,
        required: ['entry_type', 'entry', 'rules'],
        properties: {
          entry_type: {
            type: 'string',
            enum: ['json_data_property', 'query_parameter', 'path_parameter', 'header'],
          },
          entry: {
            type: 'string',
            description:
              'The invalid value: a JSON path such as `$.id` or `$.previous_secret_expires_in`, or the name of a header.',
          },
          rules: { type: 'array', minItems: 1, items: schemaRef('InvalidRule') },
        },
      },
      InvalidRule: {
        type: 'object',
        additionalProperties: false,
        required: ['rule', 'params', 'description'],
        properties: {
          rule: {
            type: 'string',
            description:
              'The rule that the value broke, such as `cast`, `format`, `number`, `schema`, `exclusion` or `idempotency`.',
          },
          params: {
            type: ['array', 'object'],
            description: "The rule's parameters, such as the expected type or range.",
          },
          description: { type: 'string' },
        },
      },
      DeprecationDate: { type: 'string', pattern: '^@-?[0-9]+$' },
      SunsetDate: {
        type: 'string',
        pattern:
          '^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT$',
      },
      DeprecationLinks: { type: 'string', pattern: 'rel="successor-version"' },
      RequestMalformedError: errorEnvelope(400, 'request_malformed', 'The body cannot be parsed.'),
      AccessDeniedError: errorEnvelope(401, 'access_denied', 'The caller is not authenticated.'),
      ForbiddenError: errorEnvelope(403, 'forbidden', 'The caller may not rotate this secret.'),
      NotFoundError: errorEnvelope(404, 'not_found', 'The client, connection or path is unknown.'),
      MethodNotAllowedError: errorEnvelope(405, 'method_not_allowed', 'The method is not PATCH.'),
      RequestConflictError: errorEnvelope(
        409,
        'request_conflict',
        'The request conflicts with stored state.',
      ),
      RequestTooLargeError: errorEnvelope(413, 'request_too_large', 'The body is too large.'),
      ContentTypeInvalidError: errorEnvelope(415, 'content_type_invalid', 'The body is not JSON.'),
      ValidationFailedError: {
        ...errorEnvelope(
          422,
          'validation_failed',
          'Values are invalid; `error.invalid` lists them.',
        ),
        properties: {
          meta: { properties: { code: { const: 422 } } },
          error: {
            required: ['invalid'],
            properties: {
              type: { const: 'validation_failed' },
              invalid: { type: 'array', minItems: 1 },
            },
          },
        },
      },
      TooManyRequestsError: errorEnvelope(429, 'too_many_requests', 'The rate limit is reached.'),
      InternalError: errorEnvelope(500, 'internal_error', 'The server failed.'),
      ServiceUnavailableError: errorEnvelope(
        503,
        'service_unavailable',
        'A dependency is unavailable.',
      ),
    },
  },
}

/** Serializes the document as public/openapi.json contains it and GET /openapi.json serves it. */
export function serializeOpenApiDocument(document: OpenApiDocument = OPENAPI_DOCUMENT): string {
  return `${JSON.stringify(document, null, 2)}\n`
}
