// upstream_password_file without a database: the file's content (trailing line break trimmed) becomes the URL's
// password as both engines read it back; the Target's `upstream` follows the file when it is rewritten in place,
// replaced by a Kubernetes-style symlink swap, or only seen by the periodic stat; an unreadable file at start throws
// naming the target, at a reload keeps the old password (logged, and listed as a warning until the file is back).
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { parseMysqlUrl } from '../../broker/engines/mysql/upstream.js';
import { parseUpstreamUrl } from '../../broker/engines/postgres/upstream.js';
import { readPasswordFile, type SecretLog, UpstreamSecrets, upstreamOf, withPassword } from '../../broker/engines/upstream-secret.js';
import type { Target } from '../../broker/types.js';
import { parseConfig } from '../../broker/config.js';
import { eventually } from '../support/broker.js';

const dir = mkdtempSync(join(tmpdir(), `jit-secret-${process.pid}-`));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const logs: { level: 'info' | 'error'; msg: string; fields: Record<string, unknown> }[] = [];
const log: SecretLog = {
  info: (msg, fields) => void logs.push({ level: 'info', msg, fields }),
  error: (msg, fields) => void logs.push({ level: 'error', msg, fields }),
};
const open: UpstreamSecrets[] = [];
afterEach(() => {
  for (const s of open.splice(0)) s.close();
  logs.length = 0;
});
const secrets = (...args: ConstructorParameters<typeof UpstreamSecrets>) => {
  const s = new UpstreamSecrets(...args);
  open.push(s);
  return s;
};
const pgTarget = (): Target => ({ name: 'app', engine: 'postgres', upstream: 'postgres://jit_broker@db.internal:5432/app?sslmode=disable' });
const passwordOf = (t: Target) => (t.engine === 'postgres' ? parseUpstreamUrl(t.upstream).password : parseMysqlUrl(t.upstream).password);

describe('the password in a file', () => {
  it('is the content without its trailing line breaks', () => {
    const f = join(dir, 'trailing');
    writeFileSync(f, 's3cret \n');
    expect(readPasswordFile(f)).toBe('s3cret ');
    writeFileSync(f, 'a\r\n\n');
    expect(readPasswordFile(f)).toBe('a');
  });

  it('missing or empty: an error naming the file', () => {
    expect(() => readPasswordFile(join(dir, 'absent'))).toThrow(`cannot read the password file ${join(dir, 'absent')}: no such file`);
    writeFileSync(join(dir, 'empty'), '\n');
    expect(() => readPasswordFile(join(dir, 'empty'))).toThrow(`the password file ${join(dir, 'empty')} is empty`);
  });

  it("replaces the URL's password, whatever characters it holds, as both engines read it", () => {
    const odd = 'p@ss:w/rd%20?#&ü';
    expect(parseUpstreamUrl(withPassword('postgres://u@h:5432/db?sslmode=disable', odd))).toMatchObject({
      user: 'u',
      password: odd,
      database: 'db',
      ssl: false,
    });
    expect(parseUpstreamUrl(withPassword('postgres://u:old@h/db', 'new')).password).toBe('new');
    expect(parseMysqlUrl(withPassword('mysql://u@h:3306/db?sslmode=require', odd))).toMatchObject({ user: 'u', password: odd, database: 'db', ssl: 'require' });
    expect(() => withPassword('postgres://h/db', 'x')).toThrow('the upstream URL names no user');
  });

  it('upstreamOf: a configured target with and without a file', () => {
    const f = join(dir, 'of');
    writeFileSync(f, 'from-file\n');
    expect(upstreamOf({ upstream: 'mysql://u@h/db' })).toBe('mysql://u@h/db');
    expect(parseMysqlUrl(upstreamOf({ upstream: 'mysql://u@h/db', upstream_password_file: f })).password).toBe('from-file');
  });
});

describe('UpstreamSecrets', () => {
  it('at start: sets the password; an unreadable file throws naming the target and the file', () => {
    const f = join(dir, 'start');
    writeFileSync(f, 'one\n');
    const t = pgTarget();
    secrets([{ target: t, file: f }], log, { watch: false, pollMs: 0 });
    expect(passwordOf(t)).toBe('one');
    expect(() => secrets([{ target: pgTarget(), file: join(dir, 'nope') }], log)).toThrow(
      `targets.app.upstream_password_file: cannot read the password file ${join(dir, 'nope')}: no such file`,
    );
  });

  it('a file rewritten in place: the next read of the target has the new password, logged without it', async () => {
    const f = join(dir, 'inplace');
    writeFileSync(f, 'one\n');
    const t = pgTarget();
    secrets([{ target: t, file: f }], log, { pollMs: 0 });
    writeFileSync(f, 'two\n');
    await eventually(async () => passwordOf(t) === 'two', 3000);
    expect(logs).toEqual([
      {
        level: 'info',
        msg: 'upstream password re-read from its file: new connections use it, open ones keep theirs',
        fields: { target: 'app', file: f, reason: 'the file changed' },
      },
    ]);
    expect(JSON.stringify(logs)).not.toContain('two');
  });

  it('a Kubernetes secret mount: the ..data symlink swapped to a new folder', async () => {
    const mount = join(dir, 'mount');
    mkdirSync(join(mount, '..v1'), { recursive: true });
    mkdirSync(join(mount, '..v2'));
    writeFileSync(join(mount, '..v1', 'password'), 'one\n');
    writeFileSync(join(mount, '..v2', 'password'), 'two\n');
    symlinkSync('..v1', join(mount, '..data'));
    symlinkSync('..data/password', join(mount, 'password'));
    const t: Target = { name: 'shop', engine: 'mysql', upstream: 'mysql://jit@db/shop' };
    secrets([{ target: t, file: join(mount, 'password') }], log, { pollMs: 0 });
    expect(passwordOf(t)).toBe('one');
    symlinkSync('..v2', join(mount, '..data_tmp'));
    renameSync(join(mount, '..data_tmp'), join(mount, '..data'));
    await eventually(async () => passwordOf(t) === 'two', 3000);
    // And a write in place through the symlink, into the folder it now leads to.
    writeFileSync(join(mount, '..v2', 'password'), 'three\n');
    await eventually(async () => passwordOf(t) === 'three', 3000);
  });

  it('without watches, the periodic stat sees the change', async () => {
    const f = join(dir, 'polled');
    writeFileSync(f, 'one\n');
    const t = pgTarget();
    secrets([{ target: t, file: f }], log, { watch: false, pollMs: 50 });
    writeFileSync(f, 'two-longer\n');
    await eventually(async () => passwordOf(t) === 'two-longer', 3000);
  });

  it('reload (SIGHUP): names what changed; an unreadable file keeps the old password, logged once and warned until it is back', () => {
    const f = join(dir, 'hup');
    writeFileSync(f, 'one\n');
    const t = pgTarget();
    const s = secrets([{ target: t, file: f }], log, { watch: false, pollMs: 0 });
    expect(s.reload('SIGHUP')).toEqual([]);
    writeFileSync(f, 'two\n');
    expect(s.reload('SIGHUP')).toEqual(['app']);
    unlinkSync(f);
    expect(s.reload('SIGHUP')).toEqual([]);
    expect(s.reload('SIGHUP')).toEqual([]);
    expect(passwordOf(t)).toBe('two');
    expect(logs.filter((l) => l.level === 'error')).toEqual([
      {
        level: 'error',
        msg: 'upstream password file could not be re-read: the previous password is kept',
        fields: { target: 'app', file: f, reason: 'SIGHUP', error: `cannot read the password file ${f}: no such file` },
      },
    ]);
    expect(s.warnings()).toEqual([
      expect.stringMatching(/^target app: cannot read the password file .*: no such file; the password in use since \S+ is kept$/),
    ]);
    writeFileSync(f, 'three\n');
    expect(s.reload('SIGHUP')).toEqual(['app']);
    expect(s.warnings()).toEqual([]);
    expect(passwordOf(t)).toBe('three');
  });

  it('a failed connect to a target with a file is logged with the target and the file', () => {
    const f = join(dir, 'failed');
    writeFileSync(f, 'one\n');
    const t = pgTarget();
    const s = secrets([{ target: t, file: f }], log, { watch: false, pollMs: 0 });
    s.connectFailed({ name: 'other', engine: 'postgres', upstream: 'postgres://x@y/z' });
    s.connectFailed(t);
    expect(logs).toEqual([
      { level: 'error', msg: expect.stringContaining('upstream connect failed'), fields: expect.objectContaining({ target: 'app', file: f }) },
    ]);
  });
});

describe('the config key', () => {
  const parse = (target: string) => parseConfig(`targets:\n  app: ${target}\n`, { file: '/etc/jit/jit.yaml', baseDir: '/etc/jit' });

  it("a relative path resolves against the config file's folder", () => {
    expect(parse('{ engine: postgres, upstream: "postgres://u@h/db", upstream_password_file: secrets/pg }').targets['app']).toMatchObject({
      upstream_password_file: '/etc/jit/secrets/pg',
    });
  });

  it('the demo database has no password to read', () => {
    expect(() => parse('{ engine: postgres, upstream: demo, upstream_password_file: /x }')).toThrow(
      'targets.app.upstream_password_file: the demo database has no password',
    );
  });
});
