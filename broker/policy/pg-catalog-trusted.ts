// What the catalog refinement (pg-catalog.ts) trusts without reading a body: the server's own schemas, the
// volatile built-ins and extension functions known to change no data, and the languages judged by volatility.
import type { CatalogFunction } from '../catalog/types.js';

/** Schemas only a superuser can create functions in: the server's own. */
export const BUILTIN_SCHEMAS = new Set(['pg_catalog', 'information_schema']);

/**
 * Volatile built-ins that change no data: randomness, clocks, sleeps, sizes and statistics, advisory locks,
 * notifications (NOTIFY is a read too), sequence state already set (currval, lastval). And those whose arguments
 * the name rules of pg-functions.ts judge (set_config as the SET it is, query_to_xml by its query text).
 * Not here, so `write`: nextval, setval, lo_*, gin/brin maintenance, and everything else volatile.
 */
export const SAFE_VOLATILE = new Set([
  'random',
  'setseed',
  'clock_timestamp',
  'timeofday',
  'gen_random_uuid',
  'pg_sleep',
  'pg_sleep_for',
  'pg_sleep_until',
  'currval',
  'lastval',
  'pg_sequence_last_value',
  'current_query',
  'txid_status',
  'pg_xact_status',
  'pg_xact_commit_timestamp',
  'pg_xact_commit_timestamp_origin',
  'pg_last_committed_xact',
  'pg_blocking_pids',
  'pg_safe_snapshot_blocking_pids',
  'pg_isolation_test_session_is_blocked',
  'pg_lock_status',
  'pg_prepared_xact',
  'pg_is_in_recovery',
  'pg_is_wal_replay_paused',
  'pg_get_wal_replay_pause_state',
  'pg_last_wal_receive_lsn',
  'pg_last_wal_replay_lsn',
  'pg_last_xact_replay_timestamp',
  'pg_current_wal_lsn',
  'pg_current_wal_insert_lsn',
  'pg_current_wal_flush_lsn',
  'pg_database_size',
  'pg_relation_size',
  'pg_table_size',
  'pg_indexes_size',
  'pg_total_relation_size',
  'pg_tablespace_size',
  'pg_partition_tree',
  'pg_partition_ancestors',
  'pg_notification_queue_usage',
  'pg_jit_available',
  'pg_notify',
  'pg_export_snapshot',
  'pg_get_backend_memory_contexts',
  'pg_get_shmem_allocations',
  'pg_get_multixact_members',
  'pg_collation_actual_version',
  'pg_database_collation_actual_version',
  'pg_get_wal_resource_managers',
  'pg_stat_clear_snapshot',
  'pg_stat_have_stats',
  'pg_stat_force_next_flush',
  'pg_stat_get_recovery_prefetch',
  'cursor_to_xml',
  'cursor_to_xmlschema',
  'pg_advisory_lock',
  'pg_advisory_lock_shared',
  'pg_advisory_unlock',
  'pg_advisory_unlock_all',
  'pg_advisory_unlock_shared',
  'pg_advisory_xact_lock',
  'pg_advisory_xact_lock_shared',
  'pg_try_advisory_lock',
  'pg_try_advisory_lock_shared',
  'pg_try_advisory_xact_lock',
  'pg_try_advisory_xact_lock_shared',
  'set_config',
  'query_to_xml',
  'query_to_xmlschema',
  'query_to_xml_and_xmlschema',
  'ts_stat',
  'ts_rewrite',
]);
export const SAFE_VOLATILE_PREFIXES = ['pg_stat_get_xact_'];
/** Volatile C functions of common extensions that change no data (uuid-ossp, pgcrypto, tablefunc, pg_stat_statements). */
export const SAFE_EXTENSION_C = new Set([
  'uuid_generate_v1',
  'uuid_generate_v1mc',
  'uuid_generate_v4',
  'gen_random_bytes',
  'gen_random_uuid',
  'gen_salt',
  'pgp_sym_encrypt',
  'pgp_sym_encrypt_bytea',
  'pgp_pub_encrypt',
  'pgp_pub_encrypt_bytea',
  'normal_rand',
  'pg_stat_statements',
  'pg_stat_statements_info',
]);
/** Languages whose functions are judged by their volatility without reading a body. */
export const OPAQUE_TRUSTED = new Set(['c', 'internal']);

/** A built-in that changes no data: not VOLATILE, or a volatile one known to be harmless. */
export function safeBuiltin(f: CatalogFunction): boolean {
  return f.volatility !== 'v' || SAFE_VOLATILE.has(f.name) || SAFE_VOLATILE_PREFIXES.some((p) => f.name.startsWith(p));
}
