// A journal that cannot be written (its filesystem is full): the statement is refused with 58030 and never
// runs; the session goes on, and once there is room again statements run and are recorded as before.
// The filesystem is a real one: a 256 KB tmpfs mounted for this test (CI runs as root).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { direct, psqlEnv, run, startTestBroker, type TestBroker } from '../../support/broker.js';

let t: TestBroker;
const mnt = mkdtempSync(join(tmpdir(), 'jit-fulldisk-'));
const filler = join(mnt, 'filler');

/** Fills the filesystem to its last byte. */
function fill(): void {
  const chunk = Buffer.alloc(4096, 0x61);
  let size = 0;
  for (;;) {
    try {
      writeFileSync(filler, chunk, { flag: size === 0 ? 'w' : 'a' });
      size += chunk.length;
    } catch {
      break;
    }
  }
  // The last partial block too: byte by byte, until not one more fits.
  for (;;) {
    try {
      writeFileSync(filler, 'a', { flag: 'a' });
    } catch {
      return;
    }
  }
}

beforeAll(async () => {
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mnt]);
  t = await startTestBroker(`
rules:
  - { id: rw, kinds: [read, write, ddl], action: allow }
audit: { journal: { dir: "${join(mnt, 'journal')}", segment_bytes: 65536 } }
`);
  await direct((c) => c.query('DROP TABLE IF EXISTS jit_full; CREATE TABLE jit_full (id int)'));
});

afterAll(async () => {
  await t?.stop();
  await direct((c) => c.query('DROP TABLE IF EXISTS jit_full'));
  execFileSync('umount', ['-l', mnt]);
  rmSync(mnt, { recursive: true, force: true });
});

describe('a full journal filesystem', () => {
  it('refuses the statement with 58030 and runs nothing; the session goes on, and records again once there is room', async () => {
    const c = new pg.Client(t.pgConfig(await t.token({ build: 'build-full' })));
    await c.connect();
    await c.query('INSERT INTO jit_full VALUES (1)');
    fill();
    // The journal's last page still has room for a few records: statements run until it is used up.
    const ran = [1];
    let refused: number | null = null;
    try {
      for (let id = 2; id < 200 && refused === null; id++) {
        try {
          await c.query(`INSERT INTO jit_full VALUES (${id})`);
          ran.push(id);
        } catch (e) {
          expect(e).toMatchObject({ code: '58030', message: expect.stringMatching(/could not record the statement/) });
          refused = id;
        }
      }
      expect(refused).not.toBeNull();
      // psql in a session of its own: its login cannot be recorded either, so it is refused.
      const p = await run('psql', ['-X', '-c', 'INSERT INTO jit_full VALUES (1000)'], psqlEnv(t, await t.token({ build: 'build-full' })));
      expect(p.code).not.toBe(0);
    } finally {
      unlinkSync(filler);
    }
    expect(await direct(async (d) => (await d.query('SELECT array_agg(id ORDER BY id) AS ids FROM jit_full')).rows[0].ids)).toEqual(ran);
    // Room again: the same connection runs and records its statements.
    await c.query('INSERT INTO jit_full VALUES (4000)');
    expect((await c.query('SELECT count(*)::int AS n FROM jit_full')).rows).toEqual([{ n: ran.length + 1 }]);
    await c.end();
    const [session] = await t.broker.store.listSessions({ build: 'build-full', limit: 1 });
    const sqls = (await t.broker.store.listStatements(session!.id)).map((s) => s.sql);
    // Every statement that ran is recorded, the refused one is not; the journal holds no torn record.
    expect(sqls).toEqual([...[...ran, 4000].map((id) => `INSERT INTO jit_full VALUES (${id})`), 'SELECT count(*)::int AS n FROM jit_full']);
  });
});
