// The pure parts of session roles: which grant an identity gets, role names and passwords, the SCRAM secret, the
// label of a session's upstream connection, the statements each engine runs, the config, and the sweeper's rules
// (against a fake server and store: what a fleet shares, what a crash leaves, what a login in progress looks like).
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseConfig as parse, type SessionRolesConfig } from '../../../broker/config.js';
import { SessionRoles, type SessionRoleEngine } from '../../../broker/engines/session-roles/index.js';
import { createUserSql, dropUserSql, myString, sessionSetupSql } from '../../../broker/engines/session-roles/mysql.js';
import { newRolePassword, scramSecret, sessionOfRole, sessionRoleName, withLogin } from '../../../broker/engines/session-roles/names.js';
import { createRoleSql, dropRoleSql } from '../../../broker/engines/session-roles/postgres.js';
import { RoleSweeper } from '../../../broker/engines/session-roles/sweeper.js';
import { cutBytes, sessionLabel } from '../../../broker/engines/session-label.js';
import { sessionGroupRoles } from '../../../broker/policy/session-grants.js';
import type { UpstreamLogin } from '../../../broker/engines/engine.js';
import type { Identity } from '../../../broker/types.js';

const who = (over: Partial<Identity> = {}): Identity => ({
  subject: 'repo:acme/shop',
  issuer: 'https://issuer',
  build: 'b-1',
  claims: {},
  actors: [],
  tokenId: null,
  expiresAt: new Date(Date.now() + 60_000),
  ...over,
});

describe('session grants', () => {
  const config = {
    grants: [
      { scopes: ['read' as const], roles: ['app_read'] },
      { claims: { repository: 'acme/*' }, roles: ['app_read', 'app_write', 'app_read'] },
      { subjects: ['deploy:*'], builds: ['release-*'], roles: ['app_admin'] },
    ],
    default: ['app_read'],
  };
  it('the first grant whose selectors all match decides; else the default', () => {
    expect(sessionGroupRoles(config, who({ claims: { scope: 'read', repository: 'acme/shop' } }))).toEqual({ roles: ['app_read'], grant: 0 });
    expect(sessionGroupRoles(config, who({ claims: { repository: 'acme/shop' } }))).toEqual({ roles: ['app_read', 'app_write'], grant: 1 });
    expect(sessionGroupRoles(config, who({ claims: { repository: ['other/x', 'acme/y'] } })).grant).toBe(1);
    expect(sessionGroupRoles(config, who({ subject: 'deploy:prod', build: 'release-7' })).grant).toBe(2);
    expect(sessionGroupRoles(config, who({ subject: 'deploy:prod', build: 'nightly' }))).toEqual({ roles: ['app_read'], grant: null });
    // A scope claim that is not understood, or a broader one, matches no `scopes` selector.
    expect(sessionGroupRoles(config, who({ claims: { scope: 'bogus' } })).grant).toBeNull();
    expect(sessionGroupRoles(config, who({ claims: { scope: 'read write' } })).grant).toBeNull();
    expect(sessionGroupRoles({ grants: [], default: [] }, who()).roles).toEqual([]);
  });
});

describe('names, passwords, secrets, labels', () => {
  it('names a role after its session, and reads a session back only from exactly prefix + a session id', () => {
    expect(sessionRoleName('jit_', 's_0123456789abcdef', 63)).toBe('jit_s_0123456789abcdef');
    expect(() => sessionRoleName('jit_longer_prefix_', 's_0123456789abcdef', 32)).toThrow(/longer than the server's 32/);
    expect(sessionOfRole('jit_', 'jit_s_0123456789abcdef')).toBe('s_0123456789abcdef');
    for (const other of ['jit_broker', 'jit_s_0123', 'jit_s_0123456789abcdefg', 'app_s_0123456789abcdef', 'jit_S_0123456789ABCDEF'])
      expect(sessionOfRole('jit_', other)).toBeNull();
  });

  it('makes random passwords that need no quoting and pass strength checks', () => {
    const a = newRolePassword();
    expect(a).toMatch(/^[A-Za-z0-9_-]{32}\.Aa1$/);
    expect(newRolePassword()).not.toBe(a);
  });

  it('gives PostgreSQL a SCRAM-SHA-256 secret of the password, never the password', async () => {
    const secret = await scramSecret('pencil');
    const m = /^SCRAM-SHA-256\$4096:([^$]+)\$([^:]+):(.+)$/.exec(secret)!;
    const salted = pbkdf2Sync('pencil', Buffer.from(m[1]!, 'base64'), 4096, 32, 'sha256');
    const clientKey = createHmac('sha256', salted).update('Client Key').digest();
    expect(m[2]).toBe(createHash('sha256').update(clientKey).digest('base64'));
    expect(m[3]).toBe(createHmac('sha256', salted).update('Server Key').digest('base64'));
  });

  it("puts the role's credentials in the target's URL, keeping host, port, database and TLS settings", () => {
    expect(withLogin('postgres://broker:s3cret@db:5432/app?sslmode=require', 'jit_s_x', 'p.Aa1')).toBe('postgres://jit_s_x:p.Aa1@db:5432/app?sslmode=require');
    expect(withLogin('mysql://broker@[::1]:3306/shop', 'jit_s_x', 'a-b')).toBe('mysql://jit_s_x:a-b@[::1]:3306/shop');
  });

  it('labels a connection jit:<session>:<build>, cut to the byte limit at a character boundary', () => {
    expect(sessionLabel('s_0123456789abcdef', 'build-1')).toBe('jit:s_0123456789abcdef:build-1');
    expect(sessionLabel('s_0123456789abcdef', null)).toBe('jit:s_0123456789abcdef');
    const long = sessionLabel('s_0123456789abcdef', `acme/shop/${'é'.repeat(40)}`);
    expect(Buffer.byteLength(long)).toBeLessThanOrEqual(63);
    expect(long).toMatch(/é$/);
    expect(cutBytes('a\0b', 10)).toBe('ab');
  });
});

describe('the statements', () => {
  it('PostgreSQL: a LOGIN INHERIT role with a secret, valid until the expiry, granted the groups; dropped after its backends and objects', () => {
    const sql = createRoleSql('jit_s_x', 'SCRAM-SHA-256$4096:a$b:c', ['app_read', 'we"ird'], new Date('2030-01-02T03:04:05.000Z'));
    expect(sql).toBe(
      `CREATE ROLE "jit_s_x" LOGIN INHERIT PASSWORD 'SCRAM-SHA-256$4096:a$b:c' VALID UNTIL '2030-01-02T03:04:05.000Z';\nGRANT "app_read", "we""ird" TO "jit_s_x"`,
    );
    expect(dropRoleSql('jit_s_x').split(';\n')).toEqual([
      'GRANT "jit_s_x" TO CURRENT_USER',
      `SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usename = 'jit_s_x' AND pid <> pg_backend_pid()`,
      'REASSIGN OWNED BY "jit_s_x" TO CURRENT_USER',
      'DROP OWNED BY "jit_s_x"',
      'DROP ROLE "jit_s_x"',
    ]);
  });

  it('MariaDB: a role of the session’s name holds the groups, the user is granted it and activates it itself; MySQL: the groups as default roles', () => {
    expect(createUserSql(true, 'jit_s_x', 'pw.Aa1', ['app_read', 'app_write'])).toEqual([
      'CREATE ROLE `jit_s_x`',
      'GRANT `app_read` TO `jit_s_x`',
      'GRANT `app_write` TO `jit_s_x`',
      "CREATE USER 'jit_s_x'@'%' IDENTIFIED BY 'pw.Aa1'",
      "GRANT `jit_s_x` TO 'jit_s_x'@'%'",
    ]);
    expect(sessionSetupSql(true, 'jit_s_x', 'shop')).toEqual(['SET DEFAULT ROLE `jit_s_x`', 'SET ROLE `jit_s_x`', 'USE `shop`']);
    expect(dropUserSql(true, 'jit_s_x')).toEqual(["DROP USER IF EXISTS 'jit_s_x'@'%'", 'DROP ROLE IF EXISTS `jit_s_x`']);
    expect(createUserSql(false, 'jit_s_x', 'pw.Aa1', ['app_read', 'app_write'])).toEqual([
      "CREATE USER 'jit_s_x'@'%' IDENTIFIED BY 'pw.Aa1'",
      "GRANT `app_read`, `app_write` TO 'jit_s_x'@'%'",
      "SET DEFAULT ROLE ALL TO 'jit_s_x'@'%'",
    ]);
    expect(sessionSetupSql(false, 'jit_s_x', 'shop')).toEqual([]);
    expect(() => createUserSql(true, "x'y", 'pw', [])).toThrow(/unexpected characters/);
    expect(myString("it's \\ é")).toBe(`CONVERT(X'${Buffer.from("it's \\ é").toString('hex')}' USING utf8mb4)`);
  });
});

describe('config', () => {
  const parseConfig = (text: string) => parse(text, { file: null, baseDir: '/tmp', env: {} });
  const base = (roles: string) => `targets:\n  app: { engine: postgres, upstream: "postgres://u@h/d", session_roles: ${roles} }\n`;
  it('defaults: prefix jit_, no grants, an empty default (refuse), a 5-minute sweep grace', () => {
    expect(parseConfig(base('{}')).targets.app!.session_roles).toEqual({ prefix: 'jit_', grants: [], default: [], sweep_grace: 300 });
    expect(parseConfig(base('{ grants: [{ scopes: [read], roles: [r] }], default: [r], sweep_grace: 0 }')).targets.app!.session_roles?.grants).toEqual([
      { scopes: ['read'], roles: ['r'] },
    ]);
    expect(parseConfig('targets:\n  app: { engine: postgres, upstream: "postgres://u@h/d" }\n').targets.app!.session_roles).toBeUndefined();
  });
  it('refuses a prefix that could not fit MySQL, a grant without selectors or roles, a role name with quotes', () => {
    expect(() => parseConfig(base('{ prefix: a_very_long_prefix_ }'))).toThrow(/prefix is 1 to 14/);
    expect(() => parseConfig(base('{ prefix: Jit_ }'))).toThrow(/prefix/);
    expect(() => parseConfig(base('{ grants: [{ roles: [r] }] }'))).toThrow(/a grant needs scopes, claims, subjects or builds/);
    expect(() => parseConfig(base('{ grants: [{ scopes: [read], roles: [] }] }'))).toThrow(/roles/);
    expect(() => parseConfig(base(`{ default: ["app'read"] }`))).toThrow(/a role name is/);
  });
  it('refuses session roles on the built-in demo database, which has no roles to create', () => {
    expect(() => parseConfig('targets:\n  app: { engine: postgres, upstream: demo, session_roles: { default: [r] } }\n')).toThrow(
      'targets.app.session_roles: the demo database has no roles to create',
    );
  });
});

/** A server's roles and a store's sessions, as the sweeper sees them. */
function fixture(config: Partial<SessionRolesConfig> = {}) {
  const onServer = new Set<string>();
  const dropped: string[] = [];
  const engine: SessionRoleEngine = {
    nameLimit: 63,
    create: async (role): Promise<UpstreamLogin> => {
      onServer.add(role);
      return { url: 'postgres://x@h/d', role, noDatabase: false, setup: [] };
    },
    drop: async (role) => {
      onServer.delete(role);
      dropped.push(role);
    },
    list: async (prefix) => [...onServer].filter((r) => r.startsWith(prefix)),
    close: async () => {},
  };
  const sessions = new Map<string, Date | null>(); // id → endedAt
  const store = {
    listSessions: async () => [...sessions].filter(([, ended]) => !ended).map(([id]) => ({ id })),
    getSession: async (id: string) => (sessions.has(id) ? { id, endedAt: sessions.get(id)! } : null),
  };
  const roles = new SessionRoles(
    { name: 'app', engine: 'postgres', upstream: 'postgres://x@h/d' },
    { prefix: 'jit_', grants: [], default: ['r'], sweep_grace: 300, ...config },
    engine,
    () => {},
  );
  const sweeper = new RoleSweeper(roles, store, () => {});
  return { onServer, dropped, sessions, roles, sweeper };
}

describe('the sweeper', () => {
  const id = (n: number) => `s_${String(n).padStart(16, '0')}`;
  it("keeps roles of open sessions (any replica's), and of this process's live sessions; drops those of ended sessions at once", async () => {
    const f = fixture();
    f.sessions.set(id(1), null); // open (another replica)
    f.sessions.set(id(2), new Date()); // ended
    f.onServer.add(`jit_${id(1)}`).add(`jit_${id(2)}`);
    const lease = await f.roles.create(`jit_${id(3)}`, ['r'], who()); // this process's, not yet in the store
    expect(await f.sweeper.sweep()).toEqual([`jit_${id(2)}`]);
    expect([...f.onServer].sort()).toEqual([`jit_${id(1)}`, `jit_${id(3)}`]);
    await lease.release();
    expect(f.onServer.has(`jit_${id(3)}`)).toBe(false);
  });

  it('drops a role of a session the store does not know only once it has been seen so for the grace period', async () => {
    const f = fixture({ sweep_grace: 60 });
    f.onServer.add(`jit_${id(4)}`).add(`jit_${id(5)}`);
    const t0 = 1_000_000;
    expect(await f.sweeper.sweep(t0)).toEqual([]);
    f.sessions.set(id(5), null); // a login in progress on another replica: its record reached the store
    expect(await f.sweeper.sweep(t0 + 30_000)).toEqual([]);
    expect(await f.sweeper.sweep(t0 + 61_000)).toEqual([`jit_${id(4)}`]);
    expect(f.onServer.has(`jit_${id(5)}`)).toBe(true);
  });

  it('never touches a name that is not prefix + a session id', async () => {
    const f = fixture({ sweep_grace: 0 });
    f.onServer
      .add('jit_broker')
      .add('jit_app_read')
      .add(`jit_${id(6)}x`)
      .add(`other_${id(7)}`);
    expect(await f.sweeper.sweep()).toEqual([]);
    expect(f.onServer.size).toBe(4);
  });
});
