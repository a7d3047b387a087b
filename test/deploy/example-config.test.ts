// examples/compose/jit.yaml, the config every replica of docker-compose.yml reads: it must load with the
// broker's own parser, and decide and mask what the Deploy section says it does.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../broker/config.js';
import { checkPolicy } from '../../broker/policy/check.js';
import { globMatch } from '../../broker/policy/glob.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const file = join(root, 'examples/compose/jit.yaml');
const text = readFileSync(file, 'utf8');

/** What docker-compose.yml gives each replica (test/deploy/compose.test.ts loads this file with its real environment). */
const COMPOSE_ENV = {
  JIT_STORE_URL: 'postgres://jit:store-secret@store-db:5432/jit',
  JIT_UPSTREAM_PASSWORD: 'upstream-secret',
  JIT_ADMIN_TOKEN: 'admin-token-0123456789abcdef',
};

const load = (env: NodeJS.ProcessEnv) => parseConfig(text, { file, baseDir: dirname(file), env });

describe('examples/compose/jit.yaml', () => {
  const config = load(COMPOSE_ENV);

  it('takes the store, the upstream credentials and the admin token from the environment', () => {
    expect(config.store).toBe(COMPOSE_ENV.JIT_STORE_URL);
    expect(config.admin_token).toBe(COMPOSE_ENV.JIT_ADMIN_TOKEN);
    expect(config.targets.app?.upstream).toContain(':upstream-secret@demo-pg:5432/app');
    expect(config.targets.shop?.upstream).toContain(':upstream-secret@demo-mariadb:3306/shop');
    expect(text).not.toMatch(/upstream-secret|store-secret|admin-token-0123/);
  });

  it('refuses to start without each secret, naming it', () => {
    for (const name of Object.keys(COMPOSE_ENV)) {
      const env: NodeJS.ProcessEnv = { ...COMPOSE_ENV, [name]: undefined };
      expect(() => load(env), name).toThrow(ConfigError);
      expect(() => load(env), name).toThrow(`environment variable ${name} is not set`);
    }
  });

  it('listens on every interface of the container, with TLS required, the journal apart from data_dir', () => {
    expect(config.listen.postgres).toEqual({ host: '0.0.0.0', port: 6432 });
    expect(config.listen.mysql).toEqual({ host: '0.0.0.0', port: 6033 });
    expect(config.listen.http).toEqual({ host: '0.0.0.0', port: 8080 });
    expect(config.tls).toEqual({ cert: null, key: null, plaintext: 'never' }); // generated under data_dir
    expect(config.data_dir).toBe('/var/lib/jit-broker');
    expect(config.audit.journal.dir).toBe('/var/lib/jit-journal');
    expect(config.identity.local_issuer_url).toBe('http://localhost:8080');
    expect(load({ ...COMPOSE_ENV, JIT_PUBLIC_URL: 'https://jit.example.com' }).identity.local_issuer_url).toBe('https://jit.example.com');
  });

  it('serves both demo targets, one per engine', () => {
    expect(Object.fromEntries(Object.entries(config.targets).map(([n, t]) => [n, t.engine]))).toEqual({ app: 'postgres', shop: 'mysql' });
  });

  it('allows reads and writes, holds destructive statements for review, denies DDL', async () => {
    const who = { subject: 'ci', build: 'build-123', claims: {} };
    const decision = async (dialect: 'postgres' | 'mysql', target: string, sql: string) => {
      const r = await checkPolicy(config, dialect, target, sql, who);
      return [r.action, r.ruleId];
    };
    expect(await decision('postgres', 'app', 'SELECT email FROM customers')).toEqual(['allow', 'day-to-day']);
    expect(await decision('postgres', 'app', "UPDATE orders SET status = 'paid' WHERE id = 2")).toEqual(['allow', 'day-to-day']);
    expect(await decision('postgres', 'app', 'DELETE FROM orders')).toEqual(['review', 'destructive-needs-approval']);
    expect(await decision('postgres', 'app', 'ALTER TABLE customers ADD COLUMN note text')).toEqual(['deny', 'no-ddl']);
    expect(await decision('postgres', 'app', "SELECT pg_read_file('/etc/passwd')")).toEqual(['deny', 'no-escape-hatches']);
    expect(await decision('mysql', 'shop', 'SELECT * FROM customers')).toEqual(['allow', 'day-to-day']);
    expect(await decision('mysql', 'shop', 'TRUNCATE TABLE orders')).toEqual(['review', 'destructive-needs-approval']);
    expect(await decision('mysql', 'shop', 'DROP TABLE customers')).toEqual(['review', 'destructive-needs-approval']);
  });

  it("masks the seeded customers' e-mails and card numbers on both targets", () => {
    for (const seed of ['seed/postgres/01-schema.sql', 'seed/mariadb/01-schema.sql']) {
      const sql = readFileSync(join(root, 'examples/compose', seed), 'utf8');
      expect(sql, seed).toMatch(/CREATE TABLE customers \([^;]*\bemail\b[^;]*\bcard_number\b/);
    }
    const masker = (column: string) => config.masking.rules.find((r) => r.columns?.some((g) => globMatch(g, column)) && !r.targets)?.with;
    expect(masker('customers.email')).toBe('email');
    expect(masker('customers.card_number')).toBe('partial');
    expect(masker('customers.name')).toBeUndefined();
  });
});
