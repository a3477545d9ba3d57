// The Mithril tables that the import reads, in foreign-key order, and how each column maps to
// the D1 schema in migrations/.

/**
 * @typedef {'uuid' | 'text' | 'boolean' | 'json' | 'timestamp' | 'secret'} ColumnType
 *
 * @typedef {object} ColumnSpec
 * @property {string} name the Mithril column name, which is also the D1 column name
 * @property {ColumnType} type
 * @property {boolean} [required] a row without a value is rejected
 * @property {string} [target] the D1 column when it differs from the name (`secret` → `secret_hash`)
 * @property {string} [references] the table whose id the column holds
 *
 * @typedef {object} TableSpec
 * @property {string} name
 * @property {ColumnSpec[]} columns
 * @property {string[][]} uniqueKeys D1 UNIQUE constraints other than the primary key
 */

/** @type {TableSpec[]} */
export const TABLES = [
  {
    name: 'users',
    columns: [
      { name: 'id', type: 'uuid', required: true },
      { name: 'email', type: 'text', required: true },
      { name: 'is_blocked', type: 'boolean' },
      { name: 'block_reason', type: 'text' },
      { name: 'settings', type: 'json' },
      { name: 'inserted_at', type: 'timestamp' },
      { name: 'updated_at', type: 'timestamp' },
    ],
    uniqueKeys: [['email']],
  },
  {
    name: 'client_types',
    columns: [
      { name: 'id', type: 'uuid', required: true },
      { name: 'name', type: 'text', required: true },
      { name: 'scope', type: 'text' },
      { name: 'inserted_at', type: 'timestamp' },
      { name: 'updated_at', type: 'timestamp' },
    ],
    uniqueKeys: [['name']],
  },
  {
    name: 'clients',
    columns: [
      { name: 'id', type: 'uuid', required: true },
      { name: 'name', type: 'text', required: true },
      { name: 'secret', type: 'secret', required: true, target: 'secret_hash' },
      { name: 'redirect_uri', type: 'text' },
      { name: 'settings', type: 'json' },
      { name: 'priv_settings', type: 'json' },
      { name: 'user_id', type: 'uuid', references: 'users' },
      { name: 'client_type_id', type: 'uuid', required: true, references: 'client_types' },
      { name: 'is_blocked', type: 'boolean' },
      { name: 'block_reason', type: 'text' },
      { name: 'inserted_at', type: 'timestamp' },
      { name: 'updated_at', type: 'timestamp' },
    ],
    uniqueKeys: [],
  },
  {
    name: 'roles',
    columns: [
      { name: 'id', type: 'uuid', required: true },
      { name: 'name', type: 'text', required: true },
      { name: 'scope', type: 'text' },
    ],
    uniqueKeys: [['name']],
  },
  {
    name: 'user_roles',
    columns: [
      { name: 'id', type: 'uuid', required: true },
      { name: 'user_id', type: 'uuid', required: true, references: 'users' },
      { name: 'role_id', type: 'uuid', required: true, references: 'roles' },
      { name: 'client_id', type: 'uuid', required: true, references: 'clients' },
    ],
    uniqueKeys: [['user_id', 'role_id', 'client_id']],
  },
]

/** Table names in foreign-key order: every table comes after the tables it references. */
export const TABLE_ORDER = TABLES.map((table) => table.name)

/**
 * Returns the spec of a table, or undefined for a name the import does not know.
 * @param {string} name
 */
export function findTable(name) {
  return TABLES.find((table) => table.name === name)
}

/**
 * Returns the D1 column that a Mithril column is written to.
 * @param {ColumnSpec} column
 */
export function targetColumn(column) {
  return column.target ?? column.name
}
