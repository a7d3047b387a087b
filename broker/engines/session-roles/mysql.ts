// Session roles on MySQL 8 and MariaDB. Neither has a validity on an account: a session's user is dropped by the
// broker at the session's end and, after a crash, by the sweeper.
//
// MariaDB activates one role at a time, and a user may set only its own default role without rights on the `mysql`
// database. So the broker (CREATE USER, and each group role WITH ADMIN OPTION) creates a ROLE named as the session,
// grants the matched group roles to it, creates the USER of the same name ('name'@'%', a random password) and grants
// it that one role. The engine logs in as the user naming no database (no role is active yet, so it may not enter
// it), runs SET DEFAULT ROLE (so COM_RESET_CONNECTION comes back to it), SET ROLE, and USE <database>. The broker
// holds each session role WITH ADMIN OPTION (CREATE ROLE gives it), which is how the sweeper finds them:
// information_schema.APPLICABLE_ROLES, no rights on `mysql` needed.
//
// MySQL 8 (untested here: this machine runs MariaDB) activates several roles: the broker (CREATE USER, ROLE_ADMIN or
// each group role WITH ADMIN OPTION) creates the user, grants it the group roles and sets them all as its default
// roles; the sweeper lists users from mysql.user (SELECT on it).
//
// At the session's end the broker logs in as the session's user and KILLs its other connections (a user may kill
// its own; the broker's account may not kill others'), then drops the user (and on MariaDB the role).
import type { Target } from '../../types.js';
import type { UpstreamLogin } from '../engine.js';
import { connectUpstream, parseMysqlUrl } from '../mysql/upstream.js';
import { COM, command } from '../mysql/protocol.js';
import { MysqlAdmin, runStatement } from './mysql-admin.js';
import { NAME_LIMIT, withLogin } from './names.js';
import type { SessionRoleEngine } from './index.js';

/** An identifier in backquotes. */
export const myIdent = (name: string): string => `\`${name.replace(/`/g, '``')}\``;
/** A string constant whatever sql_mode says of backslashes: its UTF-8 bytes in hex. */
export const myString = (text: string): string => (text === '' ? "''" : `CONVERT(X'${Buffer.from(text, 'utf8').toString('hex')}' USING utf8mb4)`);
/** A user account: 'name'@'%' (names and passwords here are plain: letters, digits, _ - .). */
const account = (name: string): string => `'${name}'@'%'`;
const plain = (text: string): string => {
  if (!/^[A-Za-z0-9_.-]+$/.test(text)) throw new Error(`unexpected characters in ${JSON.stringify(text)}`);
  return text;
};

export function createUserSql(mariadb: boolean, role: string, password: string, groups: readonly string[]): string[] {
  const user = account(plain(role));
  const identified = `IDENTIFIED BY '${plain(password)}'`;
  if (mariadb)
    return [
      `CREATE ROLE ${myIdent(role)}`,
      ...groups.map((g) => `GRANT ${myIdent(g)} TO ${myIdent(role)}`),
      `CREATE USER ${user} ${identified}`,
      `GRANT ${myIdent(role)} TO ${user}`,
    ];
  return [`CREATE USER ${user} ${identified}`, `GRANT ${groups.map(myIdent).join(', ')} TO ${user}`, `SET DEFAULT ROLE ALL TO ${user}`];
}

export function dropUserSql(mariadb: boolean, role: string): string[] {
  const user = account(plain(role));
  return mariadb ? [`DROP USER IF EXISTS ${user}`, `DROP ROLE IF EXISTS ${myIdent(role)}`] : [`DROP USER IF EXISTS ${user}`];
}

/** What the engine runs as the session's user before relaying (MariaDB: activate the role, then enter the database). */
export function sessionSetupSql(mariadb: boolean, role: string, database: string): string[] {
  return mariadb ? [`SET DEFAULT ROLE ${myIdent(role)}`, `SET ROLE ${myIdent(role)}`, `USE ${myIdent(database)}`] : [];
}

export class MysqlSessionRoles implements SessionRoleEngine {
  readonly nameLimit = NAME_LIMIT.mysql;
  private readonly admin: MysqlAdmin;
  private flavor: Promise<boolean> | null = null;

  constructor(private readonly target: Target) {
    this.admin = new MysqlAdmin(() => target.upstream);
  }

  /** Whether the target is MariaDB (from its greeting, asked once). */
  private mariadb(): Promise<boolean> {
    this.flavor ??= this.admin.version().then(
      (v) => /mariadb/i.test(v),
      (e: unknown) => {
        this.flavor = null;
        throw e;
      },
    );
    return this.flavor;
  }

  async create(role: string, password: string, groups: readonly string[]): Promise<UpstreamLogin> {
    const mariadb = await this.mariadb();
    try {
      for (const sql of createUserSql(mariadb, role, password, groups)) await this.admin.query(sql);
    } catch (e) {
      // MySQL's account statements are not transactional: take back what was made before the failure.
      for (const sql of dropUserSql(mariadb, role)) await this.admin.query(sql).catch(() => {});
      throw e;
    }
    const database = parseMysqlUrl(this.target.upstream).database;
    return { url: withLogin(this.target.upstream, role, password), role, noDatabase: mariadb, setup: sessionSetupSql(mariadb, role, database) };
  }

  async drop(role: string, login?: UpstreamLogin): Promise<void> {
    const mariadb = await this.mariadb();
    if (login) await killOwnConnections(login.url).catch(() => {}); // gone already, or never connected: nothing to kill
    for (const sql of dropUserSql(mariadb, role)) await this.admin.query(sql);
  }

  async list(prefix: string): Promise<string[]> {
    const like = `${prefix.replace(/[\\_%]/g, '\\$&')}%`;
    const rows = (await this.mariadb())
      ? await this.admin.query(`SELECT DISTINCT ROLE_NAME FROM information_schema.APPLICABLE_ROLES WHERE ROLE_NAME LIKE ${myString(like)}`)
      : await this.admin.query(`SELECT DISTINCT User FROM mysql.user WHERE User LIKE ${myString(like)}`);
    return rows.map((r) => r[0] ?? '').filter(Boolean);
  }

  close(): Promise<void> {
    return this.admin.close();
  }
}

/** Log in as the session's user (naming no database) and KILL its other connections. */
async function killOwnConnections(url: string): Promise<void> {
  const up = await connectUpstream(url, { timeoutMs: 5_000, noDatabase: true });
  try {
    const rows = await runStatement(up, 'SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()', 5_000);
    for (const [id] of rows) if (id && /^\d+$/.test(id)) await runStatement(up, `KILL CONNECTION ${id}`, 5_000).catch(() => {});
  } finally {
    if (up.socket.writable) up.socket.end(command(COM.QUIT));
    up.socket.destroySoon();
  }
}
