// Policy versions at start (issue 15, point 4): an empty store takes the config's rules as version 1; with
// `policy.source: store` (the default) a config whose rules differ is logged (the store wins) and nothing is
// stored; with `policy.source: config` every start whose rules differ applies them as a new version.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../broker/config.js';
import { startBroker } from '../../broker/main.js';
import { UPSTREAM } from '../support/broker.js';

const dir = mkdtempSync(join(tmpdir(), 'jit-policy-boot-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const READS = '  - { id: reads, kinds: [read], action: allow }';
const NO_READS = '  - { id: no-reads, kinds: [read], action: deny }';

/** Starts a broker on the folder's store with these rules, runs one SELECT through it, stops it; returns what it logged and the SELECT's outcome. */
async function boot(rules: string, source?: 'store' | 'config') {
  const text = `
data_dir: .jit
store: sqlite:.jit/jit.db
listen: { postgres: 127.0.0.1:0, mysql: null, http: null }
tls: { plaintext: loopback }
audit: { journal: { indexer: inline } }
targets:
  app: { engine: postgres, upstream: "${UPSTREAM}" }
${source ? `policy: { source: ${source} }` : ''}
rules:
${rules}
default: deny
`;
  const lines: { level: number; msg: string }[] = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as { level: number; msg: string }) });
  const broker = await startBroker(parseConfig(text, { file: join(dir, 'jit.yaml'), baseDir: dir }), { logger });
  try {
    const [host, port] = broker.addresses.postgres!.split(':') as [string, string];
    const token = await broker.issuer!.sign({ subject: 'ci:boot', audience: 'jit-broker', ttlSeconds: 60 });
    const c = new pg.Client({ host, port: Number(port), user: 'ci', database: 'app', password: token, ssl: false });
    await c.connect();
    const select = await c.query('SELECT 1 AS n').then(
      () => 'allowed',
      (e: Error) => e.message,
    );
    await c.end();
    const versions = await broker.store.listPolicyVersions();
    return { lines, select, versions, live: broker.policy.holder.current.version };
  } finally {
    await broker.close();
  }
}

describe('policy at start', () => {
  it('an empty store takes the config rules as version 1 (author config)', async () => {
    const r = await boot(READS);
    expect(r.versions.map((v) => [v.version, v.author, v.message])).toEqual([[1, 'config', `bootstrap from ${join(dir, 'jit.yaml')}`]]);
    expect(r.versions[0]!.rules).toEqual({ rules: [{ id: 'reads', kinds: ['read'], action: 'allow' }], default: 'deny' });
    expect(r.live).toBe(1);
    expect(r.select).toBe('allowed');
  });

  it('policy.source: store (default): a config that differs is logged, the store wins, nothing is stored', async () => {
    const r = await boot(NO_READS);
    expect(r.versions).toHaveLength(1);
    expect(r.select).toBe('allowed'); // version 1's rules, not the file's
    const warn = r.lines.find((l) => l.level === 40 && l.msg.includes('differ from the active policy version 1'));
    expect(warn?.msg).toBe(
      `policy: the rules in ${join(dir, 'jit.yaml')} differ from the active policy version 1 in the store, which wins (policy.source: store); to make the file's rules live, run: jit policy apply ${join(dir, 'jit.yaml')}`,
    );
  });

  it('policy.source: config: a start whose rules differ applies them as a new version; the same rules again store nothing', async () => {
    const r = await boot(NO_READS, 'config');
    expect(r.versions.map((v) => [v.version, v.author, v.message])).toEqual([
      [1, 'config', expect.any(String)],
      [2, 'config', `applied from ${join(dir, 'jit.yaml')} at start (policy.source: config)`],
    ]);
    expect(r.live).toBe(2);
    expect(r.select).toBe("jit-broker: a read statement is denied by rule 'no-reads'");
    expect(r.lines.some((l) => l.level === 40 && l.msg.startsWith('policy'))).toBe(false);
    const again = await boot(NO_READS, 'config');
    expect(again.versions).toHaveLength(2);
    expect(again.live).toBe(2);
  });
});
