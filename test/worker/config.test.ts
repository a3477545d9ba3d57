import { env } from 'cloudflare:workers'
import { exportJWK } from 'jose'
import { beforeAll, describe, expect, it } from 'vitest'
import { ConfigError, type Env, parseConfig } from '../../src/config'
import {
  AUDIENCE,
  createPepper,
  createSigningKey,
  ISSUER,
  keySetJson,
  PEPPER,
  type Settings,
  type SigningKey,
  toBase64url,
} from './helpers'

let key: SigningKey
let keySet: string

beforeAll(async () => {
  key = await createSigningKey('ES256', 'config-key')
  keySet = keySetJson([key])
})

/** Returns the required settings and nothing else, so that every default applies. */
function settings(overrides: Settings = {}): Env {
  return {
    DB: env.DB,
    JWKS: keySet,
    JWT_ISSUER: ISSUER,
    JWT_AUDIENCE: AUDIENCE,
    SECRET_PEPPER: PEPPER,
    ...overrides,
  }
}

function parseError(overrides: Settings): ConfigError {
  try {
    parseConfig(settings(overrides))
  } catch (error) {
    if (error instanceof ConfigError) return error
    throw new Error(`parseConfig threw ${String(error)} instead of a ConfigError`)
  }
  throw new Error('parseConfig accepted an invalid configuration')
}

function pepperOfLength(bytes: number): string {
  return toBase64url(crypto.getRandomValues(new Uint8Array(bytes)))
}

describe('defaults', () => {
  it('applies every default', () => {
    const config = parseConfig(settings())

    expect(config.jwks).toEqual({ kind: 'local', keySet: JSON.parse(keySet) })
    expect(config.issuer).toBe(ISSUER)
    expect(config.audience).toBe(AUDIENCE)
    expect(config.algorithms).toEqual(['RS256', 'PS256', 'ES256', 'EdDSA'])
    expect(config.clockTolerance).toBe(30)
    expect(config.clientIdClaim).toBe('client_id')
    expect(config.pepper.id).toBe('k1')
    expect(config.pepper.key).toHaveLength(32)
    expect(config.retiredPeppers).toEqual([])
    expect(config.deprecation.date.toISOString()).toBe('2026-01-01T00:00:00.000Z')
    expect(config.deprecation.sunset).toBeUndefined()
    expect(config.deprecation.link).toBeUndefined()
    expect(config.deprecation.successor).toBeUndefined()
    expect(config.corsOrigins).toEqual([])
  })

  it('trims whitespace around values', () => {
    const config = parseConfig(settings({ JWT_ISSUER: `  ${ISSUER}\n`, CLIENT_ID_CLAIM: ' azp ' }))

    expect(config.issuer).toBe(ISSUER)
    expect(config.clientIdClaim).toBe('azp')
  })
})

describe('JWKS and JWKS_URL', () => {
  it('reads an inline key set', () => {
    const config = parseConfig(settings())

    expect(config.jwks.kind).toBe('local')
  })

  it('reads a key set URL', () => {
    const config = parseConfig(settings({ JWKS: undefined, JWKS_URL: 'https://idp.test/keys' }))

    expect(config.jwks).toEqual({ kind: 'remote', url: new URL('https://idp.test/keys') })
  })

  it.each([
    ['both set', { JWKS_URL: 'https://idp.test/keys' }],
    ['neither set', { JWKS: undefined }],
    ['both empty', { JWKS: '', JWKS_URL: '' }],
    ['both blank', { JWKS: '  ', JWKS_URL: ' ' }],
  ])('rejects %s', (_name, overrides: Settings) => {
    expect(parseError(overrides).setting).toBe('JWKS_URL')
  })

  it('treats an empty JWKS as unset when JWKS_URL is set', () => {
    const config = parseConfig(settings({ JWKS: '', JWKS_URL: 'https://idp.test/keys' }))

    expect(config.jwks.kind).toBe('remote')
  })

  it('treats an empty JWKS_URL as unset when JWKS is set', () => {
    const config = parseConfig(settings({ JWKS_URL: '' }))

    expect(config.jwks.kind).toBe('local')
  })

  it.each([
    'http://localhost/keys',
    'http://localhost:8787/keys',
    'http://127.0.0.1:8787/keys',
    'http://127.10.0.1/keys',
    'http://[::1]:8787/keys',
    'https://idp.test:8443/.well-known/jwks.json',
  ])('accepts JWKS_URL %s', (url) => {
    const config = parseConfig(settings({ JWKS: undefined, JWKS_URL: url }))

    expect(config.jwks).toEqual({ kind: 'remote', url: new URL(url) })
  })

  it.each([
    'http://idp.test/keys',
    'http://localhost.idp.test/keys',
    'http://127.0.0.1.idp.test/keys',
    'http://10.0.0.1/keys',
    'http://0.0.0.0/keys',
    'ftp://idp.test/keys',
    'file:///etc/keys.json',
    'idp.test/keys',
    'not a url',
  ])('rejects JWKS_URL %s', (url) => {
    expect(parseError({ JWKS: undefined, JWKS_URL: url }).setting).toBe('JWKS_URL')
  })

  it.each([
    ['invalid JSON', '{"keys": ['],
    ['a JSON array', '[]'],
    ['JSON null', 'null'],
    ['no keys member', '{}'],
    ['an empty keys array', '{"keys": []}'],
    ['keys that is not an array', '{"keys": {}}'],
    ['a key without kty', '{"keys": [{"kid": "a"}]}'],
    ['a key that is not an object', '{"keys": ["RSA"]}'],
    ['a symmetric key', '{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}'],
  ])('rejects JWKS with %s', (_name, value) => {
    expect(parseError({ JWKS: value }).setting).toBe('JWKS')
  })

  it('rejects a JWKS that contains a private key', async () => {
    const { privateKey } = await createSigningKey('ES256')
    const privateJwk = await exportJWK(privateKey)

    expect(parseError({ JWKS: JSON.stringify({ keys: [privateJwk] }) }).setting).toBe('JWKS')
  })
})

describe('JWT_ISSUER and JWT_AUDIENCE', () => {
  it.each([
    ['JWT_ISSUER', 'unset', { JWT_ISSUER: undefined }],
    ['JWT_ISSUER', 'empty', { JWT_ISSUER: '' }],
    ['JWT_ISSUER', 'blank', { JWT_ISSUER: '   ' }],
    ['JWT_AUDIENCE', 'unset', { JWT_AUDIENCE: undefined }],
    ['JWT_AUDIENCE', 'empty', { JWT_AUDIENCE: '' }],
    ['JWT_AUDIENCE', 'blank', { JWT_AUDIENCE: '   ' }],
  ])('rejects %s when %s', (setting, _state, overrides: Settings) => {
    expect(parseError(overrides).setting).toBe(setting)
  })
})

describe('JWT_ALGORITHMS', () => {
  it('reads a comma-separated list', () => {
    const config = parseConfig(settings({ JWT_ALGORITHMS: ' ES256 , PS384,EdDSA ' }))

    expect(config.algorithms).toEqual(['ES256', 'PS384', 'EdDSA'])
  })

  it('accepts every supported asymmetric algorithm', () => {
    const all = 'RS256,RS384,RS512,PS256,PS384,PS512,ES256,ES384,ES512,EdDSA,Ed25519'
    const config = parseConfig(settings({ JWT_ALGORITHMS: all }))

    expect(config.algorithms).toEqual(all.split(','))
  })

  it.each(['HS256', 'HS384', 'HS512', 'none', 'ES256,HS256', 'es256', 'RSA-OAEP', ',', ' , , '])(
    'rejects %j',
    (value) => {
      expect(parseError({ JWT_ALGORITHMS: value }).setting).toBe('JWT_ALGORITHMS')
    },
  )
})

describe('JWT_CLOCK_TOLERANCE', () => {
  it.each([
    ['0', 0],
    ['5', 5],
    ['300', 300],
  ])('reads %s', (value, seconds) => {
    expect(parseConfig(settings({ JWT_CLOCK_TOLERANCE: value })).clockTolerance).toBe(seconds)
  })

  it('uses 30 seconds when empty', () => {
    expect(parseConfig(settings({ JWT_CLOCK_TOLERANCE: '' })).clockTolerance).toBe(30)
  })

  it.each(['301', '-1', '1.5', 'abc', '30s', 'Infinity'])('rejects %j', (value) => {
    expect(parseError({ JWT_CLOCK_TOLERANCE: value }).setting).toBe('JWT_CLOCK_TOLERANCE')
  })
})

describe('CLIENT_ID_CLAIM', () => {
  it.each(['client_id', 'azp', 'cid'] as const)('reads %s', (claim) => {
    expect(parseConfig(settings({ CLIENT_ID_CLAIM: claim })).clientIdClaim).toBe(claim)
  })

  it.each(['sub', 'AZP', 'client-id', 'aud'])('rejects %j', (value) => {
    expect(parseError({ CLIENT_ID_CLAIM: value }).setting).toBe('CLIENT_ID_CLAIM')
  })
})

describe('SECRET_PEPPER', () => {
  it('decodes the key', () => {
    const { key, encoded } = createPepper()
    const config = parseConfig(settings({ SECRET_PEPPER: encoded }))

    expect(config.pepper.key).toEqual(key.key)
  })

  it('accepts a key longer than 32 bytes', () => {
    const config = parseConfig(settings({ SECRET_PEPPER: pepperOfLength(64) }))

    expect(config.pepper.key).toHaveLength(64)
  })

  it.each([
    ['missing', undefined],
    ['empty', ''],
    ['31 bytes long', pepperOfLength(31)],
    ['padded', `${pepperOfLength(32)}=`],
    ['standard Base64', `${pepperOfLength(30)}+/`],
    ['not Base64url', `${pepperOfLength(32).slice(0, 40)}!@#`],
    ['of a length that Base64url never has', `${pepperOfLength(33)}A`],
  ])('rejects a key that is %s', (_name, value) => {
    const error = parseError({ SECRET_PEPPER: value })

    expect(error.setting).toBe('SECRET_PEPPER')
    if (value !== undefined && value !== '') expect(error.message).not.toContain(value)
  })

  it('reads SECRET_PEPPER_ID', () => {
    expect(parseConfig(settings({ SECRET_PEPPER_ID: 'key-2026_a' })).pepper.id).toBe('key-2026_a')
  })

  it.each(['k$1', 'k 1', 'k:1', 'k'.repeat(33)])('rejects SECRET_PEPPER_ID %j', (value) => {
    expect(parseError({ SECRET_PEPPER_ID: value }).setting).toBe('SECRET_PEPPER_ID')
  })
})

describe('SECRET_PEPPERS_RETIRED', () => {
  it('reads id:key pairs', () => {
    const old = createPepper('k0')
    const older = createPepper('legacy')
    const config = parseConfig(
      settings({ SECRET_PEPPERS_RETIRED: `k0:${old.encoded}, legacy : ${older.encoded}` }),
    )

    expect(config.retiredPeppers).toEqual([old.key, older.key])
  })

  it.each([
    ['a pair without a colon', () => createPepper().encoded],
    ['a pair without an id', () => `:${createPepper().encoded}`],
    ['an id that is not a key id', () => `k$0:${createPepper().encoded}`],
    ['the current key id', () => `k1:${createPepper().encoded}`],
    ['one id twice', () => `k0:${createPepper().encoded},k0:${createPepper().encoded}`],
    ['a key of 31 bytes', () => `k0:${pepperOfLength(31)}`],
    ['a padded key', () => `k0:${pepperOfLength(32)}=`],
    ['a key that is not Base64url', () => `k0:${pepperOfLength(32)}!`],
  ])('rejects %s', (_name, value) => {
    const text = value()
    const error = parseError({ SECRET_PEPPERS_RETIRED: text })

    expect(error.setting).toBe('SECRET_PEPPERS_RETIRED')
    expect(error.message).not.toContain(text.slice(text.indexOf(':') + 1))
  })
})

describe('deprecation headers', () => {
  it('reads the dates and links', () => {
    const config = parseConfig(
      settings({
        DEPRECATION_DATE: '2026-06-01T00:00:00Z',
        SUNSET_DATE: '2027-06-01T00:00:00Z',
        DEPRECATION_LINK: 'https://docs.test/deprecations/refresh-secret',
        SUCCESSOR_LINK: 'https://docs.test/connections/refresh-secret',
      }),
    )

    expect(config.deprecation.date.toISOString()).toBe('2026-06-01T00:00:00.000Z')
    expect(config.deprecation.sunset?.toISOString()).toBe('2027-06-01T00:00:00.000Z')
    expect(config.deprecation.link).toBe('https://docs.test/deprecations/refresh-secret')
    expect(config.deprecation.successor).toBe('https://docs.test/connections/refresh-secret')
  })

  it.each([
    ['DEPRECATION_DATE', { DEPRECATION_DATE: 'soon' }],
    ['SUNSET_DATE', { SUNSET_DATE: '2027-13-45' }],
    ['DEPRECATION_LINK', { DEPRECATION_LINK: 'docs/deprecations' }],
    ['DEPRECATION_LINK', { DEPRECATION_LINK: 'javascript:alert(1)' }],
    ['SUCCESSOR_LINK', { SUCCESSOR_LINK: 'ftp://docs.test/successor' }],
    ['SUCCESSOR_LINK', { SUCCESSOR_LINK: 'not a url' }],
  ])('rejects an invalid %s', (setting, overrides: Settings) => {
    expect(parseError(overrides).setting).toBe(setting)
  })
})

describe('CORS_ORIGINS', () => {
  it('reads comma-separated origins', () => {
    const config = parseConfig(
      settings({ CORS_ORIGINS: 'https://cabinet.test, http://localhost:5173,https://admin.test/' }),
    )

    expect(config.corsOrigins).toEqual([
      'https://cabinet.test',
      'http://localhost:5173',
      'https://admin.test',
    ])
  })

  it.each(['*', 'null', 'cabinet.test', 'https://cabinet.test/path', 'https://a.test,nope'])(
    'rejects %j',
    (value) => {
      expect(parseError({ CORS_ORIGINS: value }).setting).toBe('CORS_ORIGINS')
    },
  )
})
