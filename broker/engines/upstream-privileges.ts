// The broker's guarantees (statements confined to the target, classified, decided) assume the account it
// logs in upstream with holds only what the target needs. This checks, after start and without ever
// blocking it, whether a target's account is a superuser or holds server-wide privileges, and says so.
import type { Target } from '../types.js';
import { COM, command, isEof, PacketReader, readErr } from './mysql/protocol.js';
import { PacketIO } from './mysql/framing.js';
import { readTextRow } from './mysql/results.js';
import { connectUpstream } from './mysql/upstream.js';

const TIMEOUT_MS = 5_000;
const SEE = 'the broker\'s guarantees assume a least-privilege account (docs/operations.md: "Least-privilege upstream accounts")';

/** What a PostgreSQL role may do beyond its grants, as the check reads it. */
export interface PgRoleFacts {
  name: string;
  superuser: boolean;
  createrole: boolean;
  bypassrls: boolean;
  replication: boolean;
  /** The predefined roles it is a member of that reach outside the database (server files, programs). */
  serverRoles: string[];
}

/** Why a PostgreSQL role is more than least privilege (empty: it is not). */
export function pgRoleProblems(r: PgRoleFacts): string[] {
  if (r.superuser) return ['is a superuser']; // which implies the rest
  const out: string[] = [];
  if (r.serverRoles.length) out.push(`is a member of ${r.serverRoles.join(', ')}`);
  if (r.createrole) out.push('has CREATEROLE');
  if (r.bypassrls) out.push('has BYPASSRLS (row-level security does not apply to it)');
  if (r.replication) out.push('has REPLICATION');
  return out;
}

/** The predefined roles that reach outside the database (server files, programs). */
export const SERVER_ROLES = ['pg_read_server_files', 'pg_write_server_files', 'pg_execute_server_program'];

async function pgFacts(url: string): Promise<PgRoleFacts> {
  // The broker's own upstream connection (as the MySQL check below), not the `pg` driver: a broker loads that
  // only when it reads a catalog or keeps its store in PostgreSQL. The role names are constants, so no parameter.
  const { CatalogConnection } = await import('./postgres/catalog.js');
  const c = new CatalogConnection(url, TIMEOUT_MS, 'jit-broker privilege check');
  try {
    const [rows] = await c.query(
      `SELECT r.rolname, r.rolsuper, r.rolcreaterole, r.rolbypassrls, r.rolreplication,
              (SELECT string_agg(b.rolname::text, ',' ORDER BY b.rolname) FROM pg_roles b
                WHERE b.rolname IN (${SERVER_ROLES.map((n) => `'${n}'`).join(', ')}) AND pg_has_role(r.oid, b.oid, 'MEMBER')) AS server_roles
         FROM pg_roles r WHERE r.rolname = current_user`,
    );
    const r = rows?.[0];
    if (!r) throw new Error('current_user is not in pg_roles');
    const [name, superuser, createrole, bypassrls, replication, serverRoles] = r;
    return {
      name: name ?? '?',
      superuser: superuser === 't',
      createrole: createrole === 't',
      bypassrls: bypassrls === 't',
      replication: replication === 't',
      serverRoles: serverRoles ? serverRoles.split(',') : [],
    };
  } finally {
    c.close();
  }
}

/** Privileges that are harmless server-wide (USAGE is "no privileges"). */
const HARMLESS = new Set(['USAGE']);

/**
 * Why a MySQL/MariaDB account is more than least privilege, from its `SHOW GRANTS FOR CURRENT_USER` lines:
 * any global (`ON *.*`) privilege but USAGE, and GRANT OPTION anywhere (empty: none).
 */
export function mysqlGrantProblems(grants: readonly string[]): string[] {
  const out = new Set<string>();
  for (const g of grants) {
    const m = /^GRANT\s+(.+?)\s+ON\s+(\S+)\s+TO\s/i.exec(g.trim());
    if (m && m[2] === '*.*') {
      const privs = m[1]!
        .split(/\s*,\s*/)
        .map((p) => p.toUpperCase())
        .filter((p) => !HARMLESS.has(p));
      if (privs.length) out.add(`holds global privileges (${privs.join(', ')} ON *.*)`);
    }
    if (/\bWITH\b.*\bGRANT OPTION\b/i.test(g)) out.add('may grant its privileges to others (WITH GRANT OPTION)');
  }
  return [...out];
}

async function mysqlGrants(url: string): Promise<{ user: string; grants: string[] }> {
  const up = await connectUpstream(url, { timeoutMs: TIMEOUT_MS });
  const io = new PacketIO(up.socket, 'the target', 1 << 24);
  const timer = setTimeout(() => up.socket.destroy(new Error(`no answer to SHOW GRANTS after ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
  try {
    up.socket.write(command(COM.QUERY, 'SELECT CURRENT_USER()'));
    const [user] = await textResult(io);
    up.socket.write(command(COM.QUERY, 'SHOW GRANTS FOR CURRENT_USER'));
    return { user: user ?? '?', grants: await textResult(io) };
  } finally {
    clearTimeout(timer);
    io.detach();
    if (up.socket.writable) up.socket.end(command(COM.QUIT));
    up.socket.destroySoon();
  }
}

/** The first column of every row of a text-protocol result set (the leg has no CLIENT_DEPRECATE_EOF). */
async function textResult(io: PacketIO): Promise<string[]> {
  const head = await io.read();
  if (head.payload[0] === 0xff) {
    const e = readErr(head.payload);
    throw new Error(`ERROR ${e.errno} (${e.sqlstate}): ${e.message}`);
  }
  const columns = new PacketReader(head.payload).lenenc('column count') ?? 0;
  for (let i = 0; i < columns; i++) await io.read();
  if (!isEof((await io.read()).payload)) throw new Error('expected the end of the column definitions');
  const out: string[] = [];
  for (let m = await io.read(); !isEof(m.payload); m = await io.read()) {
    if (m.payload[0] === 0xff) throw new Error(`ERROR ${readErr(m.payload).message}`);
    out.push(readTextRow(m.payload, columns)[0]?.toString('utf8') ?? '');
  }
  return out;
}

/** What `session_roles` needs (docs/session-roles.md), and so no warning where a target has them: MySQL's CREATE USER, ROLE_ADMIN. */
const SESSION_ROLE_PRIVILEGES = new Set(['CREATE USER', 'ROLE_ADMIN']);

/** A `SHOW GRANTS` line without the global privileges session roles need (USAGE when none is left). */
function withoutSessionRolePrivileges(grant: string): string {
  const m = /^GRANT\s+(.+?)\s+(ON\s+\*\.\*\s+TO\s.*)$/i.exec(grant.trim());
  if (!m) return grant;
  const kept = m[1]!.split(/\s*,\s*/).filter((p) => !SESSION_ROLE_PRIVILEGES.has(p.toUpperCase()));
  return `GRANT ${kept.length ? kept.join(', ') : 'USAGE'} ${m[2]}`;
}

/**
 * What of `SHOW GRANTS` is more than the target needs (mysqlGrantProblems); with session roles, less the CREATE USER /
 * ROLE_ADMIN on *.* they need. The start-up check and `jit doctor` both ask here.
 */
export function mysqlAccountProblems(grants: readonly string[], sessionRoles: boolean): string[] {
  return mysqlGrantProblems(sessionRoles ? grants.map(withoutSessionRolePrivileges) : grants);
}

/**
 * A warning about the target's upstream account, or null when it looks least-privileged. Never throws. `sessionRoles`:
 * the target has session_roles, which need CREATEROLE (PostgreSQL) or CREATE USER / ROLE_ADMIN (MySQL): not warned.
 */
export async function checkTargetPrivileges(t: Target, sessionRoles = false): Promise<string | null> {
  try {
    if (t.engine === 'postgres') {
      const facts = await pgFacts(t.upstream);
      const problems = pgRoleProblems(sessionRoles ? { ...facts, createrole: false } : facts);
      return problems.length ? `target ${t.name}: the upstream role "${facts.name}" ${problems.join('; ')}: ${SEE}` : null;
    }
    const { user, grants } = await mysqlGrants(t.upstream);
    const problems = mysqlAccountProblems(grants, sessionRoles);
    return problems.length ? `target ${t.name}: the upstream account ${user} ${problems.join('; ')}: ${SEE}` : null;
  } catch (e) {
    return `target ${t.name}: the privileges of its upstream account could not be checked (${(e as Error).message})`;
  }
}
