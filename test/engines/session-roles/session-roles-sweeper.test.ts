// A crash leaves nothing behind: a broker killed with -9 leaves its sessions' roles on the server; the next start
// ends those sessions and its sweeper drops their roles. A role named prefix + a session id the store never heard
// of is dropped too (here with sweep_grace: 0), and a name that is not prefix + a session id is left alone — on
// PostgreSQL and on MariaDB (where the broker finds its session roles among the roles it holds WITH ADMIN OPTION).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../../broker/store/sqlite.js';
import { direct, eventually, run } from '../../support/broker.js';
import { directMy, MYSQL_RULES, MYSQL_UPSTREAM, rowsOf, startMysqlBroker } from '../../support/mysql.js';

const P = process.pid;
const BIN = resolve('bin/jit.js');
const BROKER = `jit_broker_k${P}`;
const READ = `jit_read_k${P}`;
const PREFIX = `jit_k${P}_`;
const ORPHAN = `${PREFIX}s_zzzzzzzzzzzzzzzz`;
const KEEP = `${PREFIX}keep`;
const dir = mkdtempSync(join(tmpdir(), 'jit-roles-kill9-'));

const pgRoles = async () =>
  (await direct((c) => c.query<{ rolname: string }>('SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1) ORDER BY 1', [PREFIX]))).rows.map(
    (r) => r.rolname,
  );

beforeAll(async () => {
  await direct((c) =>
    c.query(`
      DROP ROLE IF EXISTS ${READ}; DROP ROLE IF EXISTS ${BROKER};
      CREATE ROLE ${BROKER} LOGIN CREATEROLE PASSWORD 'broker-pw';
      CREATE ROLE ${READ};
    `),
  );
});

afterAll(async () => {
  await direct(async (c) => {
    for (const r of await pgRoles()) await c.query(`DROP ROLE "${r}"`);
    await c.query(`DROP ROLE IF EXISTS ${READ}; DROP ROLE IF EXISTS ${BROKER}`);
  });
  rmSync(dir, { recursive: true, force: true });
});

function freePort(): Promise<number> {
  return new Promise((done) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => done(port));
    });
  });
}

async function start(): Promise<ChildProcess> {
  const child = spawn(process.execPath, [BIN, 'start'], { cwd: dir, env: { ...process.env, JIT_LOG_LEVEL: 'warn' } });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  await eventually(async () => log.includes('jit-broker ready') || child.exitCode !== null, 60_000);
  if (child.exitCode !== null) throw new Error(`the broker did not start:\n${log}`);
  return child;
}

describe('the sweeper (PostgreSQL)', () => {
  it("drops a killed broker's session roles at the next start, and a role of an unknown session; leaves other names alone", async () => {
    const [pgPort, httpPort] = [await freePort(), await freePort()];
    writeFileSync(
      join(dir, 'jit.yaml'),
      `store: sqlite:.jit/jit.db
listen: { postgres: 127.0.0.1:${pgPort}, mysql: null, http: 127.0.0.1:${httpPort} }
tls: { plaintext: loopback }
targets:
  app: { engine: postgres, upstream: "postgres://${BROKER}:broker-pw@127.0.0.1:5432/test", session_roles: { prefix: ${PREFIX}, default: [${READ}], sweep_grace: 0 } }
rules:
  - { id: read, kinds: [read], action: allow }
`,
    );
    const first = await start();
    const token = (await run(process.execPath, [BIN, 'token', '--build', 'roles-kill9', '--config', join(dir, 'jit.yaml')])).stdout.trim();
    const clients = await Promise.all(
      [0, 1].map(async () => {
        const c = new pg.Client({ host: '127.0.0.1', port: pgPort, user: 'ci', database: 'app', password: token, ssl: false });
        c.on('error', () => {});
        await c.connect();
        return c;
      }),
    );
    const held = (await Promise.all(clients.map(async (c) => (await c.query('SELECT current_user AS u')).rows[0].u as string))).sort();
    expect(held).toHaveLength(2);
    expect(await pgRoles()).toEqual(held);
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    expect(await pgRoles()).toEqual(held); // nothing dropped them

    // What else a crash (or someone) may have left: a role of a session no store knows, and a name that is not a session's.
    await direct((c) => c.query(`CREATE ROLE "${ORPHAN}" LOGIN; CREATE ROLE "${KEEP}"`));
    const second = await start();
    await eventually(async () => (await pgRoles()).join() === KEEP, 15_000);
    second.kill('SIGTERM');
    await new Promise((r) => second.once('exit', r));
    const store = await openSqliteStore(join(dir, '.jit/jit.db'));
    try {
      const sessions = await store.listSessions({ build: 'roles-kill9' });
      expect(sessions.map((s) => s.dbRole).sort()).toEqual(held);
      expect(sessions.every((s) => s.endReason === 'the broker stopped while the session was open')).toBe(true);
    } finally {
      await store.close();
    }
  });
});

describe('the sweeper (MariaDB)', () => {
  const MB = `jit_broker_n${P}`;
  const MPREFIX = `jit_n${P}_`;
  const MORPHAN = `${MPREFIX}s_zzzzzzzzzzzzzzzz`;
  const MKEEP = `${MPREFIX}keep`;
  const up = new URL(MYSQL_UPSTREAM);
  const names = async () =>
    (await rowsOf(`SELECT DISTINCT User AS u FROM mysql.user WHERE User LIKE '${MPREFIX.replace(/_/g, '\\_')}%' ORDER BY 1`)).map((r) => String(r.u));

  afterAll(async () => {
    await directMy(async (c) => {
      for (const n of await names()) await c.query(`DROP USER IF EXISTS '${n}'@'%'; DROP ROLE IF EXISTS ${n}`);
      await c.query(`DROP USER IF EXISTS '${MB}'@'%'`);
    });
  });

  it('drops, at start, a session user and role of a session no store knows, found among the roles the broker holds; leaves other names alone', async () => {
    await directMy((c) =>
      c.query(`
        DROP USER IF EXISTS '${MB}'@'%';
        CREATE USER '${MB}'@'%' IDENTIFIED BY 'broker-pw';
        GRANT CREATE USER ON *.* TO '${MB}'@'%';
        GRANT SELECT ON test.* TO '${MB}'@'%';
      `),
    );
    // Left by a crashed broker: its session's role (created by the broker, which holds it WITH ADMIN OPTION) and user.
    const asBroker = await mysql.createConnection({ host: up.hostname, port: Number(up.port || 3306), user: MB, password: 'broker-pw', database: 'test' });
    await asBroker.query(`CREATE ROLE ${MORPHAN}`);
    await asBroker.query(`CREATE USER '${MORPHAN}'@'%' IDENTIFIED BY 'x.Aa1'`);
    await asBroker.query(`GRANT ${MORPHAN} TO '${MORPHAN}'@'%'`);
    await asBroker.query(`CREATE ROLE ${MKEEP}`);
    await asBroker.end();
    expect(await names()).toEqual([MKEEP, MORPHAN]);
    const url = `mysql://${MB}:broker-pw@${up.hostname}:${up.port || 3306}${up.pathname}`;
    const t = await startMysqlBroker(`  swept: { engine: mysql, upstream: "${url}", session_roles: { prefix: ${MPREFIX}, default: [${MKEEP}], sweep_grace: 0 } }
${MYSQL_RULES}`);
    try {
      await eventually(async () => (await names()).join() === MKEEP, 15_000);
    } finally {
      await t.stop();
    }
  });
});
