/** A kind of secret that the service rotates: a client's own, or one connection's. */
export interface SecretTarget {
  name: 'client' | 'connection'
  /** The table whose row carries `secret_hash` and the previous-secret slot. */
  table: 'clients' | 'connections'
  /** The scope that both the token and one of the user's roles must grant. */
  scope: string
  /** SQL condition that selects the row, with the `:client_id` and `:connection_id` parameters. */
  rowMatch: string
  /** Columns returned to the owner after a rotation; never a hash or `priv_settings`. */
  columns: readonly string[]
}

export const CLIENT_TARGET: SecretTarget = {
  name: 'client',
  table: 'clients',
  scope: 'secret:refresh',
  rowMatch: 'id = :client_id',
  columns: [
    'id',
    'name',
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
}

export const CONNECTION_TARGET: SecretTarget = {
  name: 'connection',
  table: 'connections',
  scope: 'connection:refresh_secret',
  rowMatch: 'id = :connection_id AND client_id = :client_id',
  columns: [
    'id',
    'client_id',
    'consumer_id',
    'redirect_uri',
    'inserted_at',
    'updated_at',
    'previous_secret_expires_at',
  ],
}
