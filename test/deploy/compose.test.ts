// docker-compose.yml and the Dockerfile, as `docker compose up` would use them. No Docker daemon runs here
// and no image can be pulled: Debian's docker-compose validates and resolves the file (`config`), and the
// Dockerfile is read instruction by instruction.
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseConfig } from '../../broker/config.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const composeFile = join(root, 'docker-compose.yml');
const raw = readFileSync(composeFile, 'utf8');

/** The secrets a user puts in .env; each a value that appears nowhere in the repository. */
const SECRETS = {
  JIT_STORE_PASSWORD: 'store-pw-7f3a9c',
  JIT_UPSTREAM_PASSWORD: 'upstream-pw-51be02',
  DEMO_DB_ROOT_PASSWORD: 'root-pw-c0ffee',
  JIT_ADMIN_TOKEN: 'admin-token-9d8e7f6a5b4c3d2e',
};

interface Service {
  image?: string;
  build?: { context: string };
  hostname?: string;
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  ports?: (string | { target: number; published: number | string })[];
  volumes?: string[];
  command?: string[];
}

/** An empty env file, so that a developer's .env does not stand in for what a test leaves unset. */
const noEnvFile = join(mkdtempSync(join(tmpdir(), 'jit-compose-')), 'empty.env');
writeFileSync(noEnvFile, '');

/** `docker-compose config` with only these variables (no .env is read). */
function composeConfig(env: Record<string, string>): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('docker-compose', ['--env-file', noEnvFile, '-f', composeFile, 'config'], {
    cwd: root,
    encoding: 'utf8',
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
  });
  if (r.error) throw new Error(`docker-compose: ${r.error.message} (Debian's docker-compose; .ci/run installs it)`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const resolved = (() => {
  const r = composeConfig(SECRETS);
  if (r.status !== 0) throw new Error(`docker-compose config failed:\n${r.stderr}`);
  return parse(r.stdout) as { services: Record<string, Service>; volumes: Record<string, unknown> };
})();
const services = resolved.services;
const brokers = ['broker-a', 'broker-b'].map((name) => {
  const s = services[name];
  if (!s) throw new Error(`no service ${name}`);
  return s;
});

/** Host paths of a service's bind mounts, by the path in the container. */
const mounts = (s: Service) =>
  Object.fromEntries(
    (s.volumes ?? []).map((v) => {
      const [src, dst] = v.split(':');
      return [dst!, src!];
    }),
  );

describe('docker-compose.yml', () => {
  it('is a valid compose file (docker-compose config)', () => {
    expect(Object.keys(services).sort()).toEqual(['broker-a', 'broker-b', 'demo-mariadb', 'demo-pg', 'haproxy', 'store-db']);
  });

  it('runs two replicas of one image, each with its own replica id, hostname and journal', () => {
    const [a, b] = brokers as [Service, Service];
    expect(a.image).toBe('jit-broker:local');
    expect(b.image).toBe(a.image);
    expect(a.build?.context).toBe(root);
    expect(b.build?.context).toBe(root);
    expect([a.environment?.JIT_REPLICA_ID, b.environment?.JIT_REPLICA_ID]).toEqual(['broker-a', 'broker-b']);
    expect([a.hostname, b.hostname]).toEqual(['broker-a', 'broker-b']);
    const journal = (s: Service) => mounts(s)['/var/lib/jit-journal'];
    expect(journal(a)).toBeTruthy();
    expect(journal(b)).toBeTruthy();
    expect(journal(a)).not.toBe(journal(b));
    // The issuer key (a token minted by one replica verifies on the other) and the TLS certificate: shared.
    expect(mounts(a)['/var/lib/jit-broker']).toBe(mounts(b)['/var/lib/jit-broker']);
    for (const s of brokers) {
      expect(mounts(s)['/etc/jit-broker/jit.yaml']).toBe(join(root, 'examples/compose/jit.yaml'));
      expect(s.volumes).toContain(`${join(root, 'examples/compose/jit.yaml')}:/etc/jit-broker/jit.yaml:ro`);
    }
  });

  it('starts both replicas once the store is healthy, on the store-db service', () => {
    for (const s of brokers) {
      expect(s.depends_on?.['store-db']).toEqual({ condition: 'service_healthy' });
      expect(new URL(s.environment?.JIT_STORE_URL ?? '').host).toBe('store-db:5432');
    }
    expect(services['store-db']?.image).toMatch(/^postgres:/);
    expect(services['store-db']?.healthcheck?.test.join(' ')).toContain('pg_isready');
  });

  it('gives each replica the environment its config needs, and the config reaches the compose services', () => {
    const configFile = join(root, 'examples/compose/jit.yaml');
    for (const s of brokers) {
      const config = parseConfig(readFileSync(configFile, 'utf8'), { file: configFile, baseDir: dirname(configFile), env: s.environment ?? {} });
      expect(config.store).toBe(`postgres://jit:${SECRETS.JIT_STORE_PASSWORD}@store-db:5432/jit`);
      expect(config.admin_token).toBe(SECRETS.JIT_ADMIN_TOKEN);
      for (const t of Object.values(config.targets)) {
        const host = new URL(t.upstream).hostname;
        expect(services[host], `target host ${host}`).toBeDefined();
        expect(new URL(t.upstream).password).toBe(SECRETS.JIT_UPSTREAM_PASSWORD);
      }
      // The broker's upstream account is created with the same password on both demo targets.
      expect(services['demo-pg']?.environment?.JIT_UPSTREAM_PASSWORD).toBe(SECRETS.JIT_UPSTREAM_PASSWORD);
      expect(services['demo-mariadb']?.environment?.JIT_UPSTREAM_PASSWORD).toBe(SECRETS.JIT_UPSTREAM_PASSWORD);
    }
  });

  it("checks each replica's health on /readyz", () => {
    for (const s of brokers) {
      const test = s.healthcheck?.test ?? [];
      expect(test.slice(0, 3)).toEqual(['CMD', 'node', '-e']);
      expect(test[3]).toContain('http://127.0.0.1:8080/readyz');
    }
  });

  it('publishes the PostgreSQL, MySQL and HTTP ports through HAProxy only', () => {
    const published = (s: Service | undefined) => (s?.ports ?? []).map((p) => (typeof p === 'string' ? p : `${p.published}:${p.target}`)).sort();
    expect(published(services.haproxy)).toEqual(['6033:6033', '6432:6432', '8080:8080']);
    for (const s of brokers) expect(s.ports).toBeUndefined();
    expect(mounts(services.haproxy!)['/usr/local/etc/haproxy/haproxy.cfg']).toBe(join(root, 'examples/compose/haproxy.cfg'));
  });

  it('has no secret in the file: each is a variable the user must set, named when missing', () => {
    for (const value of Object.values(SECRETS)) expect(raw).not.toContain(value);
    const resolvedText = JSON.stringify(resolved);
    for (const value of Object.values(SECRETS)) expect(resolvedText).toContain(value);
    // Every password, token and URL with credentials in the raw file is a `${VAR:?…}`, never a literal or a default.
    const doc = parse(raw, { merge: true }) as { services: Record<string, { environment?: Record<string, string> }> };
    const secretish = /PASSWORD|TOKEN|SECRET|STORE_URL/;
    let checked = 0;
    for (const [name, s] of Object.entries(doc.services)) {
      for (const [k, v] of Object.entries(s.environment ?? {})) {
        if (!secretish.test(k) || k === 'JIT_LOG_LEVEL') continue;
        checked++;
        expect(String(v), `${name}.${k}`).toMatch(/\$\{[A-Z_]+:\?[^}]*\}/);
        expect(String(v), `${name}.${k}`).not.toMatch(/\$\{[A-Z_]+:?-/);
      }
    }
    expect(checked).toBeGreaterThanOrEqual(8);
    for (const missing of Object.keys(SECRETS)) {
      const { [missing as keyof typeof SECRETS]: _, ...rest } = SECRETS;
      const r = composeConfig(rest);
      expect(r.status, missing).not.toBe(0);
      expect(r.stderr, missing).toContain(`set ${missing}`);
    }
  });
});

describe('examples/compose/haproxy.cfg', () => {
  const cfg = readFileSync(join(root, 'examples/compose/haproxy.cfg'), 'utf8');
  /** `backend NAME` sections, as their lines. */
  const sections = new Map<string, string[]>();
  let current: string[] | null = null;
  for (const line of cfg.split('\n')) {
    const head = /^(global|defaults|frontend|backend|resolvers)\b\s*(\S*)/.exec(line);
    if (head) sections.set(`${head[1]} ${head[2]}`.trim(), (current = []));
    else if (current && line.trim() && !line.trim().startsWith('#')) current.push(line.trim());
  }

  it('is valid for HAProxy (haproxy -c)', () => {
    const r = spawnSync('haproxy', ['-c', '-f', join(root, 'examples/compose/haproxy.cfg')], { encoding: 'utf8' });
    if (r.error) throw new Error(`haproxy: ${r.error.message} (.ci/run installs it)`);
    expect(r.status, r.stderr).toBe(0);
  });

  it('balances the database ports across both replicas in TCP mode, checking /readyz on their HTTP port', () => {
    expect(sections.get('defaults')).toContain('mode tcp');
    expect(sections.get('defaults')?.find((l) => l.startsWith('default-server'))).toMatch(/\bcheck port 8080\b/);
    for (const [port, backend] of [
      [6432, 'brokers-postgres'],
      [6033, 'brokers-mysql'],
    ] as const) {
      const frontend = [...sections].find(([, lines]) => lines.includes(`bind :${port}`));
      expect(frontend?.[1], `frontend on ${port}`).toContain(`default_backend ${backend}`);
      const lines = sections.get(`backend ${backend}`) ?? [];
      expect(lines).toContain(`server broker-a broker-a:${port}`);
      expect(lines).toContain(`server broker-b broker-b:${port}`);
      expect(lines).toContain('option httpchk');
      expect(lines).toContain('http-check send meth GET uri /readyz');
    }
  });

  it('routes to the replicas by the names docker-compose.yml gives them, on the ports their config listens on', () => {
    const config = parse(readFileSync(join(root, 'examples/compose/jit.yaml'), 'utf8')) as { listen: Record<string, string> };
    for (const name of ['broker-a', 'broker-b']) {
      expect(services[name]).toBeDefined();
      for (const listen of Object.values(config.listen)) expect(cfg).toContain(`server ${name} ${name}:${listen.split(':')[1]}`);
    }
  });
});

/** The Dockerfile as instructions: comments dropped, continuation lines joined. */
function instructions(text: string): { op: string; args: string }[] {
  const out: { op: string; args: string }[] = [];
  let pending = '';
  for (const line of text.split('\n')) {
    if (!pending && (line.trim().startsWith('#') || !line.trim())) continue;
    pending += `${line.replace(/\\$/, '').trim()} `;
    if (line.endsWith('\\')) continue;
    const m = /^(\S+)\s+(.*)$/.exec(pending.trim());
    if (m) out.push({ op: m[1]!.toUpperCase(), args: m[2]!.trim() });
    pending = '';
  }
  return out;
}

describe('Dockerfile', () => {
  const all = instructions(readFileSync(join(root, 'Dockerfile'), 'utf8'));
  const stages: { op: string; args: string }[][] = [];
  for (const i of all) {
    if (i.op === 'FROM') stages.push([]);
    stages.at(-1)?.push(i);
  }
  const [build = [], runtime = []] = stages;
  const args = (stage: { op: string; args: string }[], op: string) => stage.filter((i) => i.op === op).map((i) => i.args);
  let server: Server;
  let readyz = 200;

  beforeAll(async () => {
    server = createServer((req, res) => {
      res.statusCode = req.url === '/readyz' ? readyz : 404;
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });
  afterAll(() => {
    if (server.listening) server.close();
  });

  it('builds on node:20-slim in two stages: the first installs every dependency, compiles and prunes the dev ones', () => {
    expect(stages).toHaveLength(2);
    expect(args(build, 'FROM')).toEqual(['node:20-slim AS build']);
    expect(args(runtime, 'FROM')).toEqual(['node:20-slim']);
    const run = args(build, 'RUN').join(' ');
    expect(run).toMatch(/apt-get install .*python3 make g\+\+/);
    // npm ci runs `prepare`, the build: the sources and the build's own config reach the stage first.
    expect(run).toContain('npm ci');
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string>; dependencies: Record<string, string> };
    expect(pkg.scripts.prepare).toBe('npm run build');
    const copiedIn = args(build, 'COPY').join('\n');
    for (const p of ['tsconfig.build.json', 'scripts', 'bin', 'broker', 'bot']) expect(copiedIn).toContain(p);
    expect(run.indexOf('npm prune --omit=dev')).toBeGreaterThan(run.indexOf('npm ci'));
    // The build's commit comes in as a build argument (the context has no .git).
    expect(args(build, 'ARG')).toContain('JIT_COMMIT=');
    // Nothing the runtime needs is a dev dependency the prune removes.
    for (const dev of ['tsx', 'typescript', 'vitest', 'drizzle-kit', '@biomejs/biome']) expect(pkg.dependencies[dev]).toBeUndefined();
  });

  it('ships only what runs (the build, the migrations, production dependencies), as a user other than root', () => {
    const copied = args(runtime, 'COPY');
    expect(copied).toContain('--from=build /app/node_modules ./node_modules');
    expect(copied).toContain('--from=build /app/dist ./dist');
    for (const dir of ['bin', 'migrations']) expect(copied).toContain(`${dir} ./${dir}`);
    expect(copied.join('\n')).not.toMatch(/\b(test|bench|docs|broker|bot|\.)\s/);
    const user = args(runtime, 'USER');
    expect(user).toHaveLength(1);
    expect(user[0]).not.toMatch(/^(root|0)(:|$)/);
    const userAt = runtime.findIndex((i) => i.op === 'USER');
    expect(userAt).toBeLessThan(runtime.findIndex((i) => i.op === 'ENTRYPOINT'));
    expect(args(runtime, 'RUN').join(' ')).toMatch(new RegExp(`chown ${user[0]}:${user[0]} /var/lib/jit-broker /var/lib/jit-journal`));
  });

  it('runs `jit start` with the config docker-compose.yml mounts, and the CLI takes those arguments', () => {
    expect(JSON.parse(args(runtime, 'ENTRYPOINT')[0]!)).toEqual(['node', 'bin/jit.js']);
    const cmd = JSON.parse(args(runtime, 'CMD')[0]!) as string[];
    expect(cmd).toEqual(['start', '--config', '/etc/jit-broker/jit.yaml']);
    for (const s of brokers) expect(s.command).toEqual(cmd);
    // The arguments as the CLI reads them: it gets as far as reading the (here absent) config file.
    const r = spawnSync(process.execPath, ['bin/jit.js', ...cmd], { cwd: root, encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("cannot read the file: ENOENT: no such file or directory, open '/etc/jit-broker/jit.yaml'");
  });

  it('exposes the listener ports of the compose config', () => {
    expect(args(runtime, 'EXPOSE').join(' ').split(/\s+/).sort()).toEqual(['6033', '6432', '8080']);
  });

  it('has a HEALTHCHECK that asks /readyz with Node alone (no curl in node:20-slim): healthy on 200, not on 503 or no answer', async () => {
    const hc = args(runtime, 'HEALTHCHECK');
    expect(hc).toHaveLength(1);
    const json = hc[0]!.slice(hc[0]!.indexOf('CMD ') + 4);
    const [node, flag, script] = JSON.parse(json) as string[];
    expect([node, flag]).toEqual(['node', '-e']);
    expect(script).toContain("'http://127.0.0.1:8080/readyz'");
    // Asynchronously: the server answering the probe runs in this process.
    const probe = (url: string) =>
      new Promise<number | null>((resolve) => {
        const child = execFile(process.execPath, ['-e', script!], { env: { ...process.env, JIT_READYZ_URL: url }, timeout: 10_000 });
        child.on('exit', (code) => resolve(code));
      });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/readyz`;
    readyz = 200;
    expect(await probe(url)).toBe(0);
    readyz = 503;
    expect(await probe(url)).toBe(1);
    await new Promise<void>((resolve) => server.close(() => resolve()));
    expect(await probe(url)).toBe(1);
  });
});

// The compose file's own healthcheck is the Dockerfile's with the URL written out: same behaviour.
describe('the replicas healthcheck in docker-compose.yml', () => {
  it('is the Dockerfile HEALTHCHECK script with its default URL', () => {
    const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
    const composeScript = brokers[0]!.healthcheck!.test[3]!;
    const dockerScript = /"node", "-e", (".*")\]/.exec(dockerfile)?.[1];
    expect(JSON.parse(dockerScript!).replace("process.env.JIT_READYZ_URL || 'http://127.0.0.1:8080/readyz'", "'http://127.0.0.1:8080/readyz'")).toBe(
      composeScript,
    );
    expect(execFileSync(process.execPath, ['-e', `new Function(${JSON.stringify(composeScript)})`]).toString()).toBe('');
  });
});
