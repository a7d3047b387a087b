// Rotating a target's upstream password without a restart (issue 17), on the machine's MariaDB, which checks
// passwords: the broker's account reads its password from a Kubernetes-style secret mount. The account's password
// changes and the file follows (written in place, then by a symlink swap): the next session logs in with the new
// one while a session already open keeps working. A wrong password in the file fails the next login with an error
// naming the target, logged with the target and the file; a vanished file keeps the old password (/readyz warns).
// As a process: `jit start` with an unreadable file refuses to start, and SIGHUP re-reads the file without ending it.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../broker/config.js';
import { startBroker, type Broker } from '../../../broker/main.js';
import { eventually, run } from '../../support/broker.js';
import { directMy } from '../../support/mysql.js';

const USER = `jit_rot_${process.pid}`;
const ACCOUNT = `'${USER}'@'127.0.0.1'`;
const password = (tag: string) => `rot-${tag}-${process.pid}`;
const setPassword = (tag: string) => directMy((c) => c.query(`ALTER USER ${ACCOUNT} IDENTIFIED BY '${password(tag)}'`));

const dir = mkdtempSync(join(tmpdir(), `jit-rotation-${process.pid}-`));
const mount = join(dir, 'secrets');
let version = 0;
/** A Kubernetes secret update: a new folder with the file, then `..data` swapped to it by a rename. */
function swapSecret(content: string): void {
  const v = `..v${++version}`;
  mkdirSync(join(mount, v));
  writeFileSync(join(mount, v, 'password'), content);
  symlinkSync(v, join(mount, '..data_tmp'));
  renameSync(join(mount, '..data_tmp'), join(mount, '..data'));
}

const targetYaml = (file: string) =>
  `targets:\n  app: { engine: mysql, upstream: "mysql://${USER}@127.0.0.1:3306/test", upstream_password_file: ${JSON.stringify(file)} }\n` +
  'rules:\n  - { id: day-to-day, kinds: [read, write], action: allow }\ndefault: deny\n';

beforeAll(async () => {
  await directMy(async (c) => {
    await c.query(`DROP USER IF EXISTS ${ACCOUNT}`);
    await c.query(`CREATE USER ${ACCOUNT} IDENTIFIED BY '${password('a')}'`);
    await c.query(`GRANT SELECT ON test.* TO ${ACCOUNT}`);
  });
  mkdirSync(mount);
  swapSecret(`${password('a')}\n`);
  symlinkSync('..data/password', join(mount, 'password'));
});
afterAll(async () => {
  await directMy((c) => c.query(`DROP USER IF EXISTS ${ACCOUNT}`));
  rmSync(dir, { recursive: true, force: true });
});

describe('a broker whose MariaDB password is read from a file', () => {
  let broker: Broker;
  const logs: Record<string, unknown>[] = [];
  const connect = async () => {
    const token = await broker.issuer!.sign({ subject: 'ci:rotation', build: 'rotation', audience: 'jit-broker', ttlSeconds: 300 });
    const [host, port] = broker.addresses.mysql!.split(':') as [string, string];
    return mysql.createConnection({ host, port: Number(port), user: 'ci', password: token, database: 'app', ssl: { rejectUnauthorized: false } });
  };
  const whoAmI = async (c: mysql.Connection) => ((await c.query('SELECT CURRENT_USER() AS u'))[0] as { u: string }[])[0]?.u;
  /** Waits for the broker to have re-read the file (the `n`th time). */
  const reloaded = (n: number) => eventually(async () => logs.filter((l) => String(l['msg']).startsWith('upstream password re-read')).length >= n, 5000);

  beforeAll(async () => {
    const text = `data_dir: .jit\nstore: sqlite:.jit/jit.db\nlisten: { postgres: null, mysql: 127.0.0.1:0, http: 127.0.0.1:0 }\ntls: { plaintext: never }\nidentity: { local_issuer_url: "http://jit-broker.test" }\n${targetYaml('secrets/password')}`;
    const config = parseConfig(text, { file: join(dir, 'jit.yaml'), baseDir: dir });
    config.audit.journal.indexer = 'inline';
    const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
    broker = await startBroker(config, { logger });
  });
  let first: mysql.Connection;
  afterAll(async () => {
    await first?.end().catch(() => {});
    await broker?.close();
  });

  it("logs in upstream with the file's password", async () => {
    first = await connect();
    expect(await whoAmI(first)).toBe(`${USER}@127.0.0.1`);
  });

  it('the file rewritten in place (through the mount symlink): the next session uses the new password, the open one goes on', async () => {
    await setPassword('b');
    writeFileSync(join(mount, `..v${version}`, 'password'), `${password('b')}\n`);
    await reloaded(1);
    const next = await connect();
    expect(await whoAmI(next)).toBe(`${USER}@127.0.0.1`);
    await next.end();
    expect(await whoAmI(first)).toBe(`${USER}@127.0.0.1`);
  });

  it('a symlink swap (a Kubernetes secret update): the same', async () => {
    await setPassword('c');
    swapSecret(`${password('c')}\n`);
    await reloaded(2);
    const next = await connect();
    expect(await whoAmI(next)).toBe(`${USER}@127.0.0.1`);
    await next.end();
    expect(await whoAmI(first)).toBe(`${USER}@127.0.0.1`);
    expect(JSON.stringify(logs)).not.toContain(password('c'));
  });

  it("a wrong password in the file: the next login fails naming the target, logged with the target's name and the file", async () => {
    swapSecret('not-the-password\n');
    await reloaded(3);
    await expect(connect()).rejects.toThrow(/could not reach target "app": .*Access denied for user/);
    expect(logs).toContainEqual(expect.objectContaining({ target: 'app', msg: 'upstream connect failed' }));
    expect(logs).toContainEqual(
      expect.objectContaining({ level: 50, target: 'app', file: join(mount, 'password'), msg: expect.stringContaining('password is read from a file') }),
    );
    expect(await whoAmI(first)).toBe(`${USER}@127.0.0.1`);
    swapSecret(`${password('c')}\n`);
    await reloaded(4);
    await (await connect()).end();
  });

  it('the file gone: the old password is kept, logged, and /readyz warns until it is back', async () => {
    unlinkSync(join(mount, 'password'));
    expect(broker.reloadSecrets('SIGHUP')).toEqual([]);
    expect(logs).toContainEqual(
      expect.objectContaining({ level: 50, target: 'app', msg: 'upstream password file could not be re-read: the previous password is kept' }),
    );
    const readyz = async () => (await (await fetch(`${broker.addresses.http}/readyz`)).json()) as { warnings: string[] };
    await broker.privilegeChecks;
    expect((await readyz()).warnings).toContainEqual(
      expect.stringMatching(/^target app: cannot read the password file .*: no such file; the password in use since/),
    );
    await (await connect()).end();
    symlinkSync('..data/password', join(mount, 'password'));
    broker.reloadSecrets('SIGHUP');
    expect((await readyz()).warnings.filter((w) => w.includes('password file'))).toEqual([]);
  });
});

/** A free TCP port on loopback. */
async function freePort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  const { port } = s.address() as net.AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

describe('jit start as a process', () => {
  it('an unreadable password file: the broker does not start, and says which target and file', async () => {
    const d = join(dir, 'nostart');
    mkdirSync(d);
    writeFileSync(join(d, 'jit.yaml'), `data_dir: .jit\nlisten: { postgres: null, mysql: 127.0.0.1:0, http: null }\n${targetYaml('absent')}`);
    const r = await run(process.execPath, ['bin/jit.js', '--config', join(d, 'jit.yaml'), 'start']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`targets.app.upstream_password_file: cannot read the password file ${join(d, 'absent')}: no such file`);
  });

  it('SIGHUP re-reads the password file and does not end the broker', async () => {
    const d = join(dir, 'process');
    mkdirSync(d);
    const file = join(d, 'password');
    await setPassword('d');
    writeFileSync(file, `${password('d')}\n`);
    const port = await freePort();
    const cfg = join(d, 'jit.yaml');
    writeFileSync(
      cfg,
      `data_dir: .jit\nlisten: { postgres: null, mysql: 127.0.0.1:${port}, http: null }\naudit: { journal: { indexer: inline } }\n${targetYaml(file)}`,
    );
    let stderr = '';
    const child: ChildProcess = spawn(process.execPath, ['bin/jit.js', '--config', cfg, 'start'], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      await eventually(async () => stderr.includes('jit-broker ready'), 30_000);
      const token = (await run(process.execPath, ['bin/jit.js', '--config', cfg, 'token', '--build', 'rotation'])).stdout.trim();
      const login = () => mysql.createConnection({ host: '127.0.0.1', port, user: 'ci', password: token, database: 'app', ssl: { rejectUnauthorized: false } });
      const open = await login();
      // The account's password changes, the file follows, and SIGHUP comes before the file's watch would act.
      await setPassword('e');
      writeFileSync(file, `${password('e')}\n`);
      child.kill('SIGHUP');
      await eventually(async () => stderr.includes('jit-broker: SIGHUP, upstream password files re-read (changed: app)'), 10_000);
      const next = await login();
      await next.query('SELECT 1');
      await next.end();
      await open.query('SELECT 1');
      await open.end();
      child.kill('SIGHUP');
      await eventually(async () => stderr.split('SIGHUP, upstream password files re-read').length === 3, 10_000);
      expect(child.exitCode).toBeNull();
    } finally {
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
  });
});
