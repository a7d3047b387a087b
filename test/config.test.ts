// The config as a user meets it: the embedded default, ${ENV} interpolation, paths against the file's
// folder, errors that name the key at fault, and the documented example.
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfig, type Config } from '../broker/config.js';
import { classify, decide, loadPostgresParser } from '../broker/policy/index.js';
import type { Identity } from '../broker/types.js';

const here = dirname(fileURLToPath(import.meta.url));
const BASE = resolve('/srv/jit'); // an absolute folder that need not exist: parseConfig does no I/O
const FILE = join(BASE, 'jit.yaml');
const MIN = 'targets: { app: { engine: postgres, upstream: demo } }\n';

function parse(text: string, env: NodeJS.ProcessEnv = {}): Config {
  return parseConfig(text, { file: FILE, baseDir: BASE, env });
}

/** The problems of the ConfigError `text` raises (fails the test if it parses). */
function problems(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parse(text, env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    const err = e as ConfigError;
    expect(err.file).toBe(FILE);
    expect(err.message).toContain(FILE);
    return err.problems;
  }
  throw new Error(`expected a ConfigError for:\n${text}`);
}

let tmp: string;
const cwd = process.cwd();

beforeAll(async () => {
  tmp = realpathSync(await mkdtemp(join(tmpdir(), 'jit-config-')));
});
afterEach(() => process.chdir(cwd));
afterAll(async () => {
  process.chdir(cwd);
  await rm(tmp, { recursive: true, force: true });
});

describe('embedded default', () => {
  it('is used when there is no file: SQLite under .jit in the cwd, dev issuer, target app on the demo, destructive held, default deny, demo data masked', async () => {
    const dir = await mkdtemp(join(tmp, 'empty-'));
    process.chdir(dir);
    const c = loadConfig(undefined, {});
    expect(c.file).toBeNull();
    expect(c.store).toBe(`sqlite:${join(dir, '.jit', 'jit.db')}`);
    expect(c.data_dir).toBe(join(dir, '.jit'));
    expect(c.identity.local_issuer).toBe(true);
    expect(c.identity.audience).toBe('jit-broker');
    expect(c.identity.local_issuer_url).toBe('http://127.0.0.1:8080');
    expect(c.targets).toEqual({ app: { engine: 'postgres', upstream: 'demo' } });
    expect(c.default).toBe('deny');
    expect(c.rules).toEqual([
      { id: 'day-to-day', kinds: ['read', 'write'], action: 'allow' },
      { id: 'destructive-needs-approval', targets: ['app'], kinds: ['destructive'], action: 'review', timeout: 600 },
    ]);
    expect(c.masking.rules).toEqual([
      { columns: ['*.email'], with: 'email' },
      { columns: ['*.card_number'], with: 'partial', keep_last: 4 },
      { columns: ['*.phone'], with: 'partial', keep_last: 4 },
    ]);
    expect(c.tls).toEqual({ cert: null, key: null, plaintext: 'loopback' });
    expect(c.listen).toEqual({
      postgres: { host: '127.0.0.1', port: 6432 },
      mysql: { host: '127.0.0.1', port: 6033 },
      http: { host: '127.0.0.1', port: 8080 },
      login_timeout: 10,
      max_logins: 256,
      max_clients: 2000,
    });
    // Generated under data_dir at the broker's first start, read there by `jit approve`.
    expect(c.admin_token).toBe('generate');
  });

  it('takes its admin token from JIT_ADMIN_TOKEN when it is set, as the `jit` commands do', async () => {
    const dir = await mkdtemp(join(tmp, 'empty-'));
    process.chdir(dir);
    expect(loadConfig(undefined, { JIT_ADMIN_TOKEN: 'from-the-environment-0123' }).admin_token).toBe('from-the-environment-0123');
    expect(loadConfig(undefined, { JIT_ADMIN_TOKEN: '' }).admin_token).toBe('generate');
  });

  it('points target app at JIT_DEMO_UPSTREAM when it is set', async () => {
    const dir = await mkdtemp(join(tmp, 'empty-'));
    process.chdir(dir);
    const url = 'postgres://me:secret@localhost:5432/app';
    expect(loadConfig(undefined, { JIT_DEMO_UPSTREAM: url }).targets.app).toEqual({ engine: 'postgres', upstream: url });
    expect(loadConfig(undefined, { JIT_DEMO_UPSTREAM: '' }).targets.app?.upstream).toBe('demo');
  });
});

describe('loadConfig', () => {
  it('reads ./jit.yaml when present and resolves its paths against its folder', async () => {
    const dir = await mkdtemp(join(tmp, 'cwd-'));
    await writeFile(join(dir, 'jit.yaml'), `${MIN}store: sqlite:state/broker.db\ndefault: review\n`);
    process.chdir(dir);
    const c = loadConfig(undefined, {});
    expect(c.file).toBe(join(dir, 'jit.yaml'));
    expect(c.store).toBe(`sqlite:${join(dir, 'state', 'broker.db')}`);
    expect(c.default).toBe('review');
  });

  it('prefers --config over ./jit.yaml, and resolves against the --config file, not the cwd', async () => {
    const dir = await mkdtemp(join(tmp, 'cwd-'));
    await writeFile(join(dir, 'jit.yaml'), `${MIN}default: review\n`);
    await mkdir(join(dir, 'conf'));
    await writeFile(join(dir, 'conf', 'other.yaml'), `${MIN}default: allow\ndata_dir: state\n`);
    process.chdir(dir);
    const c = loadConfig('conf/other.yaml', {});
    expect(c.file).toBe(join(dir, 'conf', 'other.yaml'));
    expect(c.default).toBe('allow');
    expect(c.data_dir).toBe(join(dir, 'conf', 'state'));
  });

  it('a missing --config file is a clear error naming the file', () => {
    const missing = join(tmp, 'nope', 'jit.yaml');
    let err: unknown;
    try {
      loadConfig(missing, {});
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).file).toBe(missing);
    expect((err as ConfigError).message).toContain(missing);
    expect((err as ConfigError).message).toMatch(/cannot read the file: .*ENOENT/);
  });

  it('passes the environment through to interpolation', async () => {
    const file = join(tmp, 'env.yaml');
    await writeFile(file, 'targets: { app: { engine: postgres, upstream: "${UPSTREAM}" } }\n');
    expect(loadConfig(file, { UPSTREAM: 'postgres://x@h/app' }).targets.app?.upstream).toBe('postgres://x@h/app');
    expect(() => loadConfig(file, {})).toThrow(/UPSTREAM is not set/);
  });
});

describe('environment interpolation', () => {
  const up = (value: string) => `targets: { app: { engine: postgres, upstream: "${value}" } }\n`;

  it('${VAR} takes the value, inside a longer string too', () => {
    const c = parse(up('postgres://jit:${PW}@db:5432/app'), { PW: 's3cret' });
    expect(c.targets.app?.upstream).toBe('postgres://jit:s3cret@db:5432/app');
  });

  it('${VAR:-fallback} uses the fallback when the variable is unset or empty, the value otherwise', () => {
    expect(parse(up('${U:-demo}')).targets.app?.upstream).toBe('demo');
    expect(parse(up('${U:-demo}'), { U: '' }).targets.app?.upstream).toBe('demo');
    expect(parse(up('${U:-demo}'), { U: 'postgres://h/db' }).targets.app?.upstream).toBe('postgres://h/db');
    expect(parse(up('${U:-}x')).targets.app?.upstream).toBe('x');
  });

  it('$${ writes a literal ${', () => {
    expect(parse(up('$${NOT_A_VAR}'), {}).targets.app?.upstream).toBe('${NOT_A_VAR}');
  });

  it('a missing variable is an error that names it (every one, once)', () => {
    const p = problems(`${up('${DB_URL}')}admin_token: "\${ADMIN}"\nrules: [{ id: "\${DB_URL}", action: allow }]\n`);
    expect(p).toHaveLength(2);
    expect(p[0]).toMatch(/environment variable DB_URL is not set/);
    expect(p[0]).toContain('${DB_URL:-default}');
    expect(p[1]).toMatch(/environment variable ADMIN is not set/);
  });

  it('a value cannot inject YAML structure: it stays one string', () => {
    const evil = 'demo\nrules:\n  - { id: everything, action: allow }\ndefault: allow';
    const c = parse(`${up('${EVIL}')}rules: []\n`, { EVIL: evil });
    expect(c.targets.app?.upstream).toBe(evil);
    expect(c.rules).toEqual([]);
    expect(c.default).toBe('deny');
    // A block scalar, and a value that looks like a flow map: still strings.
    const c2 = parse('targets:\n  app:\n    engine: postgres\n    upstream: ${V}\n', { V: '{ engine: mysql }\n rules: x' });
    expect(c2.targets.app).toEqual({ engine: 'postgres', upstream: '{ engine: mysql }\n rules: x' });
  });

  it('interpolated strings are still validated by the schema', () => {
    expect(parse(`${MIN}default: \${D}\n`, { D: 'allow' }).default).toBe('allow');
    expect(problems(`${MIN}default: \${D}\n`, { D: 'sure' })[0]).toMatch(/^default: /);
    expect(parse(`${MIN}identity: { default_ttl: "\${TTL}" }\n`, { TTL: '2m' }).identity.default_ttl).toBe(120);
  });
});

describe('relative paths resolve against the config file folder', () => {
  it('store, data_dir, tls cert/key and issuers[].jwks_file', () => {
    const c = parse(
      `${MIN}store: sqlite:db/jit.db\ndata_dir: state\ntls: { cert: tls/c.pem, key: ../k.pem }\n` +
        'identity: { issuers: [{ issuer: "https://ci.example", audience: jit, jwks_file: keys/jwks.json }] }\n',
    );
    expect(c.store).toBe(`sqlite:${join(BASE, 'db', 'jit.db')}`);
    expect(c.data_dir).toBe(join(BASE, 'state'));
    expect(c.tls.cert).toBe(join(BASE, 'tls', 'c.pem'));
    expect(c.tls.key).toBe(resolve(BASE, '..', 'k.pem'));
    expect(c.identity.issuers[0]?.jwks_file).toBe(join(BASE, 'keys', 'jwks.json'));
  });

  it('absolute paths are untouched', () => {
    const c = parse(
      `${MIN}store: sqlite:/var/lib/jit/jit.db\ndata_dir: /var/lib/jit\ntls: { cert: /etc/tls/c.pem, key: /etc/tls/k.pem }\n` +
        'identity: { issuers: [{ issuer: "https://ci.example", audience: jit, jwks_file: /etc/jwks.json }] }\n',
    );
    expect(c.store).toBe('sqlite:/var/lib/jit/jit.db');
    expect(c.data_dir).toBe('/var/lib/jit');
    expect(c.tls).toEqual({ cert: '/etc/tls/c.pem', key: '/etc/tls/k.pem', plaintext: 'never' });
    expect(c.identity.issuers[0]?.jwks_file).toBe('/etc/jwks.json');
  });

  it('defaults: data_dir .jit and store sqlite:.jit/jit.db, both against the folder', () => {
    const c = parse(MIN);
    expect(c.file).toBe(FILE);
    expect(c.data_dir).toBe(join(BASE, '.jit'));
    expect(c.store).toBe(`sqlite:${join(BASE, '.jit', 'jit.db')}`);
    expect(c.tls).toEqual({ cert: null, key: null, plaintext: 'never' });
    expect(c.identity.issuers).toEqual([]);
    expect(c.identity.issuers.every((i) => i.jwks_file === undefined)).toBe(true);
  });

  it('non-file stores are left alone', () => {
    expect(parse(`${MIN}store: "sqlite::memory:"\n`).store).toBe('sqlite::memory:');
    expect(parse(`${MIN}store: postgres://jit@db/jit\n`).store).toBe('postgres://jit@db/jit');
    // `sqlite:` with no path is left for the store to refuse, not turned into the config folder.
    expect(parse(`${MIN}store: "sqlite:"\n`).store).toBe('sqlite:');
  });
});

describe('errors name the key path at fault', () => {
  const cases: [string, string, RegExp][] = [
    ['listen.postgres', `${MIN}listen: { postgres: nope }`, /^listen\.postgres: expected host:port/],
    ['listen.http port range', `${MIN}listen: { http: "127.0.0.1:70000" }`, /^listen\.http: port must be at most 65535/],
    ['rules[1].kinds[0]', `${MIN}rules: [{ id: a, action: allow }, { id: b, kinds: [reads], action: allow }]`, /^rules\[1\]\.kinds\[0\]: .*"read"/],
    ['rules[0].action', `${MIN}rules: [{ id: a, action: permit }]`, /^rules\[0\]\.action: /],
    ['targets.app.engine', 'targets: { app: { engine: oracle, upstream: x } }', /^targets\.app\.engine: .*"postgres"\|"mysql"/],
    ['targets.app.upstream', 'targets: { app: { engine: postgres } }', /^targets\.app\.upstream: /],
    ['target name', 'targets: { "my app": { engine: postgres, upstream: demo } }', /^targets\.my app: target names are letters, digits/],
    ['unknown top-level key', `${MIN}rule: []`, /^\(top level\): Unrecognized key: "rule"/],
    ['unknown key in a rule', `${MIN}rules: [{ id: a, action: allow, tabels: [x] }]`, /^rules\[0\]: Unrecognized key: "tabels"/],
    ['unknown key in a target', 'targets: { app: { engine: postgres, upstream: demo, password: x } }', /^targets\.app: Unrecognized key: "password"/],
    ['unknown key in listen', `${MIN}listen: { pg: "1.2.3.4:5" }`, /^listen: Unrecognized key: "pg"/],
    ['unknown key in an issuer', `${MIN}identity: { issuers: [{ issuer: x, audience: y, aud: z }] }`, /^identity\.issuers\[0\]: Unrecognized key: "aud"/],
    [
      'duplicate rule id',
      `${MIN}rules: [{ id: a, action: allow }, { id: b, action: deny }, { id: a, action: deny }]`,
      /^rules\[2\]\.id: duplicate rule id 'a'/,
    ],
    ['rule naming an unknown target', `${MIN}rules: [{ id: a, targets: [app, prod], action: allow }]`, /^rules\[0\]\.targets\[1\]: unknown target 'prod'/],
    ['tls.cert without key', `${MIN}tls: { cert: c.pem }`, /^tls: tls\.cert and tls\.key go together/],
    ['tls.key without cert', `${MIN}tls: { key: k.pem }`, /^tls: tls\.cert and tls\.key go together/],
    ['tls.plaintext', `${MIN}tls: { plaintext: always }`, /^tls\.plaintext: /],
    ['identity.default_ttl', `${MIN}identity: { default_ttl: soon }`, /^identity\.default_ttl: 'soon' is not a duration/],
    ['negative duration', `${MIN}identity: { clock_skew: -1 }`, /^identity\.clock_skew: /],
    [
      'default_ttl beyond max_ttl',
      `${MIN}identity: { default_ttl: 2h, max_ttl: 1h }`,
      /^identity\.default_ttl: default_ttl \(7200s\) is longer than max_ttl \(3600s\)/,
    ],
    ['issuer jwks_uri', `${MIN}identity: { issuers: [{ issuer: x, audience: y, jwks_uri: "not a url" }] }`, /^identity\.issuers\[0\]\.jwks_uri: /],
    ['issuer audience', `${MIN}identity: { issuers: [{ issuer: x, audience: [] }] }`, /^identity\.issuers\[0\]\.audience: /],
    ['default', `${MIN}default: maybe`, /^default: .*"allow"\|"deny"\|"review"/],
    ['admin_token too short', `${MIN}admin_token: short`, /^admin_token: .*16\+ characters, or `generate`/],
    ['targets missing', 'default: deny', /^targets: /],
    ['not a mapping', '- a\n- b', /^\(top level\): .*object/],
  ];
  it.each(cases)('%s', (_name, text, expected) => {
    const p = problems(text);
    expect(
      p.some((m) => expected.test(m)),
      p.join('\n'),
    ).toBe(true);
  });

  it('reports every problem at once', () => {
    const p = problems(`${MIN}listen: { postgres: nope }\nrules: [{ id: a, kinds: [bogus], action: allow }]\ndefault: maybe\n`);
    expect(p.map((m) => m.split(':')[0])).toEqual(expect.arrayContaining(['listen.postgres', 'rules[0].kinds[0]', 'default']));
  });

  it('a YAML syntax error is reported with its position', () => {
    const p = problems('targets: {}\nrules:\n  - id: a\n   action: allow\n');
    expect(p.join('\n')).toMatch(/line \d+, column \d+/);
  });

  it('rule targets may be globs, which need not name a target', () => {
    const c = parse(`${MIN}rules: [{ id: a, targets: ["prod-*", "ap?"], action: allow }]`);
    expect(c.rules[0]?.targets).toEqual(['prod-*', 'ap?']);
  });

  it('a rule target named like an Object.prototype property is still unknown', () => {
    expect(problems(`${MIN}rules: [{ id: a, targets: [constructor], action: allow }]`)[0]).toMatch(/^rules\[0\]\.targets\[0\]: unknown target 'constructor'/);
  });
});

describe('durations', () => {
  it.each([
    ['5m', 300],
    ['30s', 30],
    ['1h', 3600],
    ['2d', 172800],
    ['1.5h', 5400],
    ['500ms', 0.5],
    ['90', 90],
    [45, 45],
  ] as [string | number, number][])('%s is %d seconds', (value, seconds) => {
    const c = parse(`${MIN}identity: { default_ttl: ${JSON.stringify(value)}, max_ttl: 3d, clock_skew: ${JSON.stringify(value)} }`);
    expect(c.identity.default_ttl).toBe(seconds);
    expect(c.identity.clock_skew).toBe(seconds);
    expect(c.identity.max_ttl).toBe(259200);
  });

  it('defaults: default_ttl 15m, max_ttl 1h, clock_skew 30s', () => {
    const c = parse(MIN);
    expect(c.identity).toMatchObject({ default_ttl: 900, max_ttl: 3600, clock_skew: 30 });
  });

  it.each(['5 minutes', '1w', 'm', '-5m', ''])('%j is not a duration', (value) => {
    expect(problems(`${MIN}identity: { max_ttl: ${JSON.stringify(value)} }`)[0]).toMatch(/^identity\.max_ttl: /);
  });
});

describe('listeners', () => {
  it('`listen.x: null` turns a listener off, the others keep their defaults', () => {
    const c = parse(`${MIN}listen: { mysql: null, http: null }`);
    expect(c.listen).toMatchObject({ postgres: { host: '127.0.0.1', port: 6432 }, mysql: null, http: null });
    // No http listener: the dev issuer's `iss` falls back to the default URL.
    expect(c.identity.local_issuer_url).toBe('http://127.0.0.1:8080');
  });

  it('host:port, IPv6 in brackets, and port 0 (let the OS choose)', () => {
    const c = parse(`${MIN}listen: { postgres: "0.0.0.0:5433", mysql: "[::1]:3307", http: "localhost:0" }`);
    expect(c.listen).toMatchObject({ postgres: { host: '0.0.0.0', port: 5433 }, mysql: { host: '::1', port: 3307 }, http: { host: 'localhost', port: 0 } });
  });

  it('login_timeout (a duration), max_logins and max_clients bound the database listeners; nonsense is refused', () => {
    const c = parse(`${MIN}listen: { login_timeout: 1500ms, max_logins: 8, max_clients: 100 }`);
    expect(c.listen).toMatchObject({ login_timeout: 1.5, max_logins: 8, max_clients: 100 });
    expect(problems(`${MIN}listen: { login_timeout: 0s }`)[0]).toMatch(/^listen\.login_timeout: login_timeout must be longer than 0s/);
    expect(problems(`${MIN}listen: { max_logins: 0 }`)[0]).toMatch(/^listen\.max_logins: /);
    expect(problems(`${MIN}listen: { max_clients: 2.5 }`)[0]).toMatch(/^listen\.max_clients: /);
  });

  it('the dev issuer URL follows the http listener (IPv6 bracketed) unless set', () => {
    expect(parse(`${MIN}listen: { http: "10.0.0.5:9000" }`).identity.local_issuer_url).toBe('http://10.0.0.5:9000');
    expect(parse(`${MIN}listen: { http: "[::1]:9000" }`).identity.local_issuer_url).toBe('http://[::1]:9000');
    expect(parse(`${MIN}identity: { local_issuer_url: "https://jit.example" }`).identity.local_issuer_url).toBe('https://jit.example');
  });
});

describe('examples/jit.yaml', () => {
  const file = resolve(here, '..', 'examples', 'jit.yaml');
  const env = { APP_DB_PASSWORD: 'app-pw', ANALYTICS_DB_PASSWORD: 'an-pw', JIT_ADMIN_TOKEN: 'a'.repeat(32) };

  it('parses with the variables it needs', () => {
    const c = loadConfig(file, env);
    expect(c.file).toBe(file);
    expect(c.targets.app).toEqual({ engine: 'postgres', upstream: 'postgres://jit_broker:app-pw@db.internal:5432/app?sslmode=verify-full' });
    expect(c.identity.issuers).toHaveLength(2);
    expect(c.identity.issuers[0]).toMatchObject({
      issuer: 'https://token.actions.githubusercontent.com',
      audience: 'jit-broker',
      claims: { repository_owner: 'acme' },
      build: '{repository}/{run_id}/{run_attempt}',
    });
    expect(c.identity.issuers[1]).toMatchObject({ issuer: 'https://gitlab.com', build: '{project_path}/{pipeline_id}' });
    expect(c.rules.length).toBeGreaterThanOrEqual(3);
    expect(c.default).toBe('deny');
    expect(c.admin_token).toBe(env.JIT_ADMIN_TOKEN);
    expect(c.listen.mysql).toBeNull();
  });

  it('its rules do what their comments say', async () => {
    await loadPostgresParser();
    const c = loadConfig(file, env);
    const policy = { rules: c.rules, default: c.default };
    const github: Identity = {
      subject: 'repo:acme/app:ref:refs/heads/feature',
      issuer: 'https://token.actions.githubusercontent.com',
      build: 'acme/app/77/1',
      claims: { repository_owner: 'acme', job_workflow_ref: 'acme/app/.github/workflows/ci.yml@refs/heads/feature' },
      actors: [],
      tokenId: null,
      expiresAt: new Date(Date.now() + 60_000),
    };
    const deployer: Identity = { ...github, claims: { ...github.claims, job_workflow_ref: 'acme/app/.github/workflows/deploy.yml@refs/heads/main' } };
    const gitlab: Identity = { ...github, subject: 'project_path:acme/web:ref_type:branch:ref:main', build: 'acme/web/9', claims: { namespace_path: 'acme' } };
    const fixer: Identity = { ...gitlab, build: 'acme/data-fixes/12' };
    const d = (who: Identity, target: string, sql: string) => {
      const r = decide(policy, who, target, classify('postgres', sql));
      return [r.action, r.ruleId];
    };
    expect(d(github, 'app', 'SELECT * FROM users')).toEqual(['allow', 'ci-reads']);
    expect(d(github, 'app', "SELECT pg_read_file('/etc/passwd')")).toEqual(['deny', 'no-escape-hatches']);
    // A DO block is classified by what it runs (an empty one is a read); dynamic SQL stays unknown.
    expect(d(github, 'app', "DO $$ BEGIN EXECUTE format('DROP TABLE %I', 'users'); END $$")).toEqual(['deny', 'no-escape-hatches']);
    expect(d(github, 'app', 'ALTER TABLE users ADD COLUMN x int')).toEqual(['deny', 'no-ddl-elsewhere']);
    expect(d(deployer, 'app', 'ALTER TABLE users ADD COLUMN x int')).toEqual(['review', 'migrations']);
    expect(d(github, 'app', 'UPDATE users SET x = 1 WHERE id = 3')).toEqual(['deny', null]);
    expect(d(github, 'analytics', 'SELECT * FROM reporting.daily')).toEqual(['allow', 'analytics-reads']);
    expect(d(github, 'analytics', 'SELECT * FROM reporting.daily JOIN raw.events USING (id)')).toEqual(['deny', null]);
    expect(d(gitlab, 'app', 'SELECT 1')).toEqual(['allow', 'gitlab-reads']);
    expect(d(gitlab, 'analytics', 'SELECT * FROM reporting.daily')).toEqual(['deny', null]);
    expect(d(fixer, 'app', 'UPDATE users SET x = 1 WHERE id = 3')).toEqual(['review', 'data-fixes']);
    expect(d(fixer, 'app', 'UPDATE users SET x = 1')).toEqual(['deny', 'no-ddl-elsewhere']);
    expect(d({ ...github, subject: 'alice@acme.com', claims: {} }, 'analytics', 'SELECT * FROM raw.events')).toEqual(['allow', 'oncall-reads']);
  });

  it('says which variable is missing', () => {
    expect(() => loadConfig(file, { ...env, APP_DB_PASSWORD: undefined })).toThrow(/APP_DB_PASSWORD is not set/);
  });
});
