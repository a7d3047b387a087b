// `jit policy apply|show|history|diff|rollback` and `check --version`: policy versions, through the running
// broker's admin API (GET/POST /api/policy) when it answers, else straight in the store of the config (a broker
// that runs on it switches within a second: it polls). `--url` insists on the broker.
import { userInfo } from 'node:os';
import { InvalidArgumentError } from 'commander';
import { stringify } from 'yaml';
import type { Config } from '../config.js';
import type { PolicyAppliedJson, PolicyVersionJson } from '../http/api-policy.js';
import { diffPolicies, formatDiff, isEmptyDiff, loadPolicyFile, samePolicy, toDocument, type ValidPolicy } from '../policy/versions.js';
import type { PolicyDocument, Store } from '../store/types.js';
import { ApiError, call, target, type ApiTarget } from './api.js';
import { formatTable, when } from './format.js';

/** Where versions are read and applied: the running broker, or the store itself. */
interface VersionSource {
  readonly where: string;
  get(version?: number): Promise<PolicyVersionJson | null>;
  list(): Promise<PolicyVersionJson[]>;
  apply(doc: PolicyDocument, author: string, message: string | null): Promise<PolicyAppliedJson>;
  close(): Promise<void>;
}

const json = (v: { appliedAt: Date } & Omit<PolicyVersionJson, 'appliedAt'>): PolicyVersionJson => ({ ...v, appliedAt: v.appliedAt.toISOString() });

class ApiSource implements VersionSource {
  constructor(private readonly t: ApiTarget) {}
  get where() {
    return `the broker at ${this.t.url}`;
  }
  async get(version?: number) {
    const { status, data } = await call<{ policy?: PolicyVersionJson; error?: string }>(
      this.t,
      'GET',
      version === undefined ? '/api/policy' : `/api/policy/versions/${version}`,
    );
    if (status === 404) return null;
    if (!data.policy) throw new ApiError(`policy: ${data.error ?? `HTTP ${status}`}`);
    return data.policy;
  }
  async list() {
    const { status, data } = await call<{ versions?: PolicyVersionJson[]; error?: string }>(this.t, 'GET', '/api/policy/versions');
    if (!data.versions) throw new ApiError(`policy: ${data.error ?? `HTTP ${status}`}`);
    return data.versions;
  }
  async apply(doc: PolicyDocument, author: string, message: string | null) {
    const { status, data } = await call<PolicyAppliedJson & { error?: string; problems?: string[] }>(this.t, 'POST', '/api/policy', {
      rules: doc.rules,
      default: doc.default,
      author,
      ...(message ? { message } : {}),
    });
    if (status !== 201)
      throw new ApiError(data.problems ? `invalid policy:\n${data.problems.map((p) => `  - ${p}`).join('\n')}` : `policy: ${data.error ?? `HTTP ${status}`}`);
    return data;
  }
  async close() {}
}

class StoreSource implements VersionSource {
  constructor(
    private readonly store: Store,
    readonly where: string,
  ) {}
  async get(version?: number) {
    const v = await this.store.getPolicyVersion(version);
    return v ? json(v) : null;
  }
  async list() {
    return (await this.store.listPolicyVersions()).map(json);
  }
  async apply(doc: PolicyDocument, author: string, message: string | null) {
    const previous = await this.store.getPolicyVersion();
    const stored = await this.store.addPolicyVersion({ rules: doc, author, message, appliedAt: new Date() });
    return { policy: json(stored), previous: previous?.version ?? null, diff: diffPolicies(previous?.rules ?? { rules: [], default: 'deny' }, doc) };
  }
  close() {
    return this.store.close();
  }
}

/**
 * The running broker when it can be reached with the admin token; else the store of the config. With --url,
 * the broker or an error.
 */
async function open(c: Config, url: string | undefined): Promise<VersionSource> {
  let t: ApiTarget | null = null;
  try {
    t = target(c, url);
    await call(t, 'GET', '/api/policy/versions');
    return new ApiSource(t);
  } catch (e) {
    if (url || !(e instanceof ApiError) || (t && !/cannot reach the broker/.test(e.message))) throw e;
  }
  const { openStore } = await import('../store/index.js');
  // store/pg.js (pg, drizzle's PostgreSQL dialect) only for a PostgreSQL store: a SQLite one is named by its path.
  const where = c.store.startsWith('sqlite:') ? `the store ${c.store.slice(7)}` : `the store at ${(await import('../store/pg.js')).describePgUrl(c.store)}`;
  return new StoreSource(await openStore(c.store), where);
}

async function withSource<T>(c: Config, url: string | undefined, fn: (s: VersionSource) => Promise<T>): Promise<T> {
  const s = await open(c, url);
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

const out = (s: string) => void process.stdout.write(s);
const author = () => `cli:${userInfo().username}`;

function versionNumber(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`'${v}' is not a policy version (1, 2, …)`);
  return n;
}

async function need(s: VersionSource, n?: number): Promise<PolicyVersionJson> {
  const v = await s.get(n);
  if (!v)
    throw new ApiError(
      n === undefined
        ? `no policy version in ${s.where} yet (a broker stores its config's rules as version 1 when it starts)`
        : `no policy version ${n} in ${s.where}`,
    );
  return v;
}

/** Applies `doc` unless it is what the active version already holds; prints the diff (or JSON). */
async function applyDoc(s: VersionSource, doc: PolicyDocument, message: string | null, asJson: boolean | undefined): Promise<void> {
  const active = await s.get();
  if (active && samePolicy(active.rules, doc)) {
    if (asJson) return out(`${JSON.stringify({ policy: active, previous: active.version, diff: diffPolicies(doc, doc), unchanged: true }, null, 2)}\n`);
    return out(`no change: the active policy version ${active.version} already has these rules; nothing stored\n`);
  }
  const r = await s.apply(doc, author(), message);
  if (asJson) return out(`${JSON.stringify(r, null, 2)}\n`);
  out(
    `policy version ${r.policy.version} applied to ${s.where}${r.previous ? ` (was version ${r.previous})` : ''}: it decides the next statement of every session\n`,
  );
  out(isEmptyDiff(r.diff) ? 'no change in the rules\n' : formatDiff(r.diff, r.policy.rules));
}

export interface ApplyOptions {
  message?: string;
  url?: string;
  json?: boolean;
}

/** `jit policy apply FILE`: validate (loadPolicyFile), print the diff against the active version, store a new version. */
export async function policyApply(file: string, o: ApplyOptions, c: Config): Promise<void> {
  const policy = loadPolicyFile(file, Object.keys(c.targets));
  await withSource(c, o.url, (s) => applyDoc(s, toDocument(policy), o.message ?? `applied from ${file}`, o.json));
}

export async function policyShow(o: { version?: string; url?: string; json?: boolean }, c: Config): Promise<void> {
  await withSource(c, o.url, async (s) => {
    const v = await need(s, o.version === undefined ? undefined : versionNumber(o.version));
    if (o.json) return out(`${JSON.stringify(v, null, 2)}\n`);
    const active = o.version === undefined ? v.version : (await s.get())?.version;
    out(
      `# policy version ${v.version}${v.version === active ? ' (active)' : ''}, applied by ${v.author} at ${when(new Date(v.appliedAt))}${v.message ? `: ${v.message}` : ''}\n# sha256 ${v.sha256}\n`,
    );
    out(stringify(v.rules));
  });
}

export async function policyHistory(o: { url?: string; json?: boolean }, c: Config): Promise<void> {
  await withSource(c, o.url, async (s) => {
    const versions = await s.list();
    if (o.json) return out(`${JSON.stringify(versions, null, 2)}\n`);
    if (!versions.length) return out('no policy versions\n');
    const active = versions[versions.length - 1]!.version;
    out(
      formatTable(
        ['VERSION', 'APPLIED', 'AUTHOR', 'RULES', 'DEFAULT', 'SHA256', 'MESSAGE'],
        [...versions]
          .reverse()
          .map((v) => [
            `${v.version}${v.version === active ? ' (active)' : ''}`,
            when(new Date(v.appliedAt)),
            v.author,
            String(v.rules.rules.length),
            v.rules.default,
            v.sha256.slice(0, 12),
            (v.message ?? '').replace(/\s+/g, ' ').slice(0, 80),
          ]),
      ),
    );
  });
}

export async function policyDiff(a: string, b: string, o: { url?: string; json?: boolean }, c: Config): Promise<void> {
  await withSource(c, o.url, async (s) => {
    const [va, vb] = [await need(s, versionNumber(a)), await need(s, versionNumber(b))];
    const d = diffPolicies(va.rules, vb.rules);
    if (o.json) return out(`${JSON.stringify(d, null, 2)}\n`);
    out(`policy version ${va.version} → ${vb.version}\n${formatDiff(d, vb.rules)}`);
  });
}

export async function policyRollback(n: string, o: ApplyOptions, c: Config): Promise<void> {
  await withSource(c, o.url, async (s) => {
    const v = await need(s, versionNumber(n));
    await applyDoc(s, v.rules, o.message ?? `rollback to version ${v.version}`, o.json);
  });
}

/** The rules of stored version `n` (for `jit policy check --version N`). */
export async function storedRules(n: string, url: string | undefined, c: Config): Promise<ValidPolicy & { version: number }> {
  return withSource(c, url, async (s) => {
    const v = await need(s, versionNumber(n));
    const { storedPolicy } = await import('../policy/live.js');
    return { ...storedPolicy(v.rules), version: v.version };
  });
}
