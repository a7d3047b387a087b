// The broker warns (log at warn, /readyz `warnings`; /readyz stays 200) when a target's upstream account
// holds more than least privilege: a PostgreSQL superuser, a MariaDB account with global privileges. A
// limited account gives no warning; an unreachable upstream is a warning, never a failed start.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../broker/config.js';
import { mysqlGrantProblems, pgRoleProblems } from '../../broker/engines/upstream-privileges.js';
import { startBroker, type Broker } from '../../broker/main.js';
import { direct, UPSTREAM } from '../support/broker.js';
import { directMy, MYSQL_UPSTREAM } from '../support/mysql.js';

const suffix = randomBytes(4).toString('hex');
const PG_ROLE = `jit_lp_${suffix}`;
const MY_USER = `jit_lp_${suffix}`;
const MY_PASSWORD = `lp-${suffix}`;
const withUser = (url: string, user: string, password = '') => {
  const u = new URL(url);
  u.username = user;
  u.password = password;
  return u.toString();
};

interface Started {
  broker: Broker;
  logs: Record<string, unknown>[];
  readyz(): Promise<{ status: number; body: { status: string; warnings: string[] } }>;
  stop(): Promise<void>;
}

/** A broker with only these targets (YAML lines under `targets:`), its log captured. */
async function start(targets: string): Promise<Started> {
  const dir = mkdtempSync(join(tmpdir(), 'jit-privileges-'));
  const text = `data_dir: .jit\nstore: sqlite:.jit/jit.db\nlisten: { postgres: 127.0.0.1:0, mysql: 127.0.0.1:0, http: 127.0.0.1:0 }\ntargets:\n${targets}\n`;
  const logs: Record<string, unknown>[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  const broker = await startBroker(parseConfig(text, { file: join(dir, 'jit.yaml'), baseDir: dir }), { logger });
  return {
    broker,
    logs,
    async readyz() {
      await broker.privilegeChecks;
      const res = await fetch(`${broker.addresses.http}/readyz`);
      return { status: res.status, body: (await res.json()) as { status: string; warnings: string[] } };
    },
    async stop() {
      await broker.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe('PostgreSQL targets', () => {
  beforeAll(async () => {
    await direct(async (c) => {
      await c.query(`CREATE ROLE ${PG_ROLE} LOGIN`);
      await c.query(`GRANT CONNECT ON DATABASE test TO ${PG_ROLE}`);
      await c.query(`GRANT USAGE ON SCHEMA public TO ${PG_ROLE}`);
      await c.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${PG_ROLE}`);
    });
  });
  afterAll(async () => {
    await direct(async (c) => {
      await c.query(`DROP OWNED BY ${PG_ROLE}`);
      await c.query(`DROP ROLE ${PG_ROLE}`);
    });
  });

  it('the postgres superuser: /readyz stays 200 and warns, and the warning is logged', async () => {
    const b = await start(`  app: { engine: postgres, upstream: "${UPSTREAM}" }`);
    try {
      const r = await b.readyz();
      expect(r.status).toBe(200);
      expect(r.body.status).toBe('ready');
      expect(r.body.warnings).toEqual([
        expect.stringMatching(/^target app: the upstream role "postgres" is a superuser: the broker's guarantees assume a least-privilege account/),
      ]);
      expect(b.logs.find((l) => l['target'] === 'app')).toMatchObject({ level: 40, msg: r.body.warnings[0] });
    } finally {
      await b.stop();
    }
  });

  it('a LOGIN role granted on the test database only: no warning', async () => {
    const b = await start(`  app: { engine: postgres, upstream: "${withUser(UPSTREAM, PG_ROLE)}" }`);
    try {
      const r = await b.readyz();
      expect(r).toEqual({ status: 200, body: { status: 'ready', warnings: [] } });
      expect(b.logs.filter((l) => l['target'] === 'app')).toEqual([]);
    } finally {
      await b.stop();
    }
  });

  it('an unreachable upstream: the broker starts, /readyz says the account could not be checked', async () => {
    const b = await start(`  app: { engine: postgres, upstream: "postgres://nobody@127.0.0.1:1/test" }`);
    try {
      const r = await b.readyz();
      expect(r.status).toBe(200);
      expect(r.body.warnings).toEqual([expect.stringMatching(/^target app: the privileges of its upstream account could not be checked \(.*ECONNREFUSED/)]);
    } finally {
      await b.stop();
    }
  });
});

describe('MariaDB targets', () => {
  beforeAll(async () => {
    await directMy(async (c) => {
      await c.query(`CREATE USER '${MY_USER}'@'127.0.0.1' IDENTIFIED BY '${MY_PASSWORD}'`);
      await c.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON test.* TO '${MY_USER}'@'127.0.0.1'`);
    });
  });
  afterAll(async () => {
    await directMy((c) => c.query(`DROP USER '${MY_USER}'@'127.0.0.1'`));
  });

  it('root: /readyz warns of its global privileges', async () => {
    const b = await start(`  my: { engine: mysql, upstream: "${MYSQL_UPSTREAM}" }`);
    try {
      const r = await b.readyz();
      expect(r.status).toBe(200);
      expect(r.body.warnings).toHaveLength(1);
      expect(r.body.warnings[0]).toMatch(
        /^target my: the upstream account root@\S+ holds global privileges \(ALL PRIVILEGES ON \*\.\*\); may grant its privileges to others \(WITH GRANT OPTION\): /,
      );
    } finally {
      await b.stop();
    }
  });

  it('a user granted on the test database only: no warning', async () => {
    const b = await start(`  my: { engine: mysql, upstream: "${withUser(MYSQL_UPSTREAM, MY_USER, MY_PASSWORD)}" }`);
    try {
      expect(await b.readyz()).toEqual({ status: 200, body: { status: 'ready', warnings: [] } });
    } finally {
      await b.stop();
    }
  });
});

describe('what counts as more than least privilege', () => {
  it('PostgreSQL role attributes and predefined roles', () => {
    const base = { name: 'r', superuser: false, createrole: false, bypassrls: false, replication: false, serverRoles: [] };
    expect(pgRoleProblems(base)).toEqual([]);
    expect(pgRoleProblems({ ...base, superuser: true, createrole: true, serverRoles: ['pg_read_server_files'] })).toEqual(['is a superuser']);
    expect(pgRoleProblems({ ...base, serverRoles: ['pg_write_server_files'] })).toEqual(['is a member of pg_write_server_files']);
    expect(pgRoleProblems({ ...base, createrole: true, bypassrls: true })).toEqual([
      'has CREATEROLE',
      'has BYPASSRLS (row-level security does not apply to it)',
    ]);
  });

  it('MySQL grants: global privileges other than USAGE, GRANT OPTION', () => {
    expect(mysqlGrantProblems(['GRANT USAGE ON *.* TO `app`@`%`', 'GRANT SELECT, INSERT ON `app`.* TO `app`@`%`'])).toEqual([]);
    expect(mysqlGrantProblems(['GRANT SUPER, FILE ON *.* TO `app`@`%`'])).toEqual(['holds global privileges (SUPER, FILE ON *.*)']);
    expect(mysqlGrantProblems(['GRANT USAGE ON *.* TO `app`@`%`', 'GRANT SELECT ON `app`.* TO `app`@`%` WITH GRANT OPTION'])).toEqual([
      'may grant its privileges to others (WITH GRANT OPTION)',
    ]);
  });
});
