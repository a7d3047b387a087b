// The broker's configuration: one zod schema for the YAML file, `${ENV}` interpolation,
// relative paths resolved against the config file's folder, errors that name the key at fault.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { GENERATE } from './admin-token.js';
import { isGroupApprover } from './approvals/approvers.js';
import { ConfigError } from './config-error.js';
import { action, duration, globMap, hostPort, kind } from './config-primitives.js';
import { masking, slack, target, ui } from './config-sections.js';

export { ConfigError };
export { duration } from './config-primitives.js';
export type { HostPort } from './config-primitives.js';
export type { MaskingSettings, SessionRolesConfig, SlackConfig, UiConfig } from './config-sections.js';

const issuer = z.strictObject({
  issuer: z.string().min(1),
  audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
  jwks_uri: z.url().optional(),
  jwks_file: z.string().optional(),
  claims: globMap.optional(),
  build: z.string().optional(),
  algorithms: z.array(z.string()).optional(),
});

export const rule = z.strictObject({
  id: z.string().min(1),
  targets: z.array(z.string()).optional(),
  kinds: z.array(kind).optional(),
  tables: z.array(z.string()).optional(),
  claims: globMap.optional(),
  subjects: z.array(z.string()).optional(),
  builds: z.array(z.string()).optional(),
  /** Delegation chain globs (allow: every actor must match; deny/review: any); never matches a token used directly. */
  actors: z.array(z.string().min(1)).optional(),
  /** Delegation depth (length of the actor chain) bounds. */
  min_depth: z.number().int().min(0).optional(),
  max_depth: z.number().int().min(0).optional(),
  /** Scopes (ceilings) of broker-minted tokens this rule applies to; never matches an unscoped token. */
  scopes: z.array(kind).optional(),
  action,
  message: z.string().optional(),
  // Review settings (only with `action: review`; defaults applied by the policy: see DEFAULT_REVIEW).
  /** Slack user ids (U…/W…), e-mail addresses, or user groups ("@dba-oncall" or S…); empty/absent: anyone. */
  approvers: z.array(z.string().min(1)).optional(),
  /** How long a held statement waits for a decision before it is refused. Default 5m. */
  timeout: duration.refine((s) => s > 0, 'timeout must be longer than 0s').optional(),
  /** Distinct approvers needed. Default 1. */
  min_approvals: z.number().int().min(1).optional(),
  /** `statement`: one approval, one execution; `session`: the approved text may run again in its session. */
  scope: z.enum(['statement', 'session']).optional(),
  /** Break-glass: results of statements this rule decides are not masked (allow and review rules only). */
  exempt_masking: z.boolean().optional(),
});
export type RuleConfig = z.infer<typeof rule>;

/** `default:`: what a statement no rule matches gets. */
export const defaultAction = action;

/** What `rules:` and `default:` hold: a policy, as jit.yaml, a policy file (`jit policy apply`) and a stored version say it. */
export const policyDocument = z.object({ rules: z.array(rule).default([]), default: action.default('deny') });
export type PolicyDocumentConfig = z.infer<typeof policyDocument>;

/**
 * What the schema of one rule cannot see: duplicate ids, review settings on other rules, settings that could never
 * work, targets not in `targets` (null: not checked). Each problem with its path from `rules`.
 */
export function ruleProblems(rules: readonly RuleConfig[], targets: readonly string[] | null): { path: (string | number)[]; message: string }[] {
  const out: { path: (string | number)[]; message: string }[] = [];
  const ids = new Set<string>();
  rules.forEach((r, i) => {
    if (ids.has(r.id)) out.push({ path: ['rules', i, 'id'], message: `duplicate rule id '${r.id}'` });
    ids.add(r.id);
    if (r.action !== 'review') {
      for (const k of ['approvers', 'timeout', 'min_approvals', 'scope'] as const) {
        if (r[k] !== undefined) out.push({ path: ['rules', i, k], message: `${k} applies only to a rule with action: review` });
      }
    } else if (r.approvers?.length && r.min_approvals && !r.approvers.some(isGroupApprover) && r.approvers.length < r.min_approvals) {
      out.push({
        path: ['rules', i, 'min_approvals'],
        message: `min_approvals is ${r.min_approvals} but only ${r.approvers.length} approver(s) are listed: no request could ever be approved`,
      });
    }
    if (r.exempt_masking && r.action === 'deny')
      out.push({ path: ['rules', i, 'exempt_masking'], message: 'exempt_masking applies to allow and review rules (a denied statement has no result)' });
    if (r.min_depth !== undefined && r.max_depth !== undefined && r.min_depth > r.max_depth)
      out.push({ path: ['rules', i, 'min_depth'], message: `min_depth (${r.min_depth}) is more than max_depth (${r.max_depth}): the rule could never match` });
    if (targets)
      for (const [j, t] of (r.targets ?? []).entries()) {
        if (!/[*?]/.test(t) && !targets.includes(t)) out.push({ path: ['rules', i, 'targets', j], message: `unknown target '${t}'` });
      }
  });
  return out;
}

const schema = z
  .strictObject({
    /** Where the broker keeps its own files (issuer key, generated TLS cert, SQLite store). */
    data_dir: z.string().default('.jit'),
    store: z.string().default('sqlite:.jit/jit.db'),
    /** This broker's name in a fleet (several brokers on one PostgreSQL store), recorded on its sessions. Default: $JIT_REPLICA_ID, else host name and pid. */
    replica_id: z
      .string()
      .regex(/^[A-Za-z0-9_.:-]{1,100}$/, 'replica_id is 1 to 100 letters, digits, _ . : -')
      .optional(),
    /** Approvals across a fleet: a replica silent this long is dead, and the others end its held statements and sessions. */
    approvals: z
      .strictObject({
        lease: duration.refine((s) => s > 0, 'lease must be longer than 0s').default(30),
      })
      .prefault({}),
    listen: z
      .strictObject({
        postgres: hostPort.nullable().default({ host: '127.0.0.1', port: 6432 }),
        mysql: hostPort.nullable().default({ host: '127.0.0.1', port: 6033 }),
        http: hostPort.nullable().default({ host: '127.0.0.1', port: 8080 }),
        /** Database listeners: from accept to the end of authentication; past it the client is closed. */
        login_timeout: duration.refine((s) => s > 0, 'login_timeout must be longer than 0s').default(10),
        /** Database listeners: connections still logging in; past it new ones are refused at once. */
        max_logins: z.number().int().min(1).default(256),
        /** Database listeners: connections of any kind; past it new ones are refused at once. */
        max_clients: z.number().int().min(1).default(2000),
      })
      .prefault({}),
    tls: z
      .strictObject({
        cert: z.string().optional(),
        key: z.string().optional(),
        /** `never`: passwords only inside TLS. `loopback`: plaintext allowed from 127.0.0.0/8 and ::1. */
        plaintext: z.enum(['never', 'loopback']).default('never'),
      })
      .refine((t) => !t.cert === !t.key, 'tls.cert and tls.key go together')
      .prefault({}),
    identity: z
      .strictObject({
        local_issuer: z.boolean().default(true),
        /** `iss` of the broker's own tokens; defaults to the http listener's URL. */
        local_issuer_url: z.string().optional(),
        /** `aud` the broker's own tokens carry and require. */
        audience: z.string().default('jit-broker'),
        /** Lifetime of `jit token` when no --ttl is given, and the most it may ask for. */
        default_ttl: duration.default(900),
        max_ttl: duration.default(3600),
        clock_skew: duration.default(30),
        issuers: z.array(issuer).default([]),
        /** One session per token: a second login with the same `jti` is refused ("token already used"). */
        single_use: z.boolean().default(false),
        /** Who may revoke through the Slack bot (as a rule's `approvers`); absent: the approvers of every review rule. */
        revokers: z.array(z.string().min(1)).optional(),
        /** RFC 8693 token exchange at POST /oauth/token (needs local_issuer: the broker signs the child). */
        exchange: z
          .strictObject({
            enabled: z.boolean().default(true),
            /** Longest life of an exchanged token. Default: identity.max_ttl. */
            max_ttl: duration.refine((s) => s > 0, 'max_ttl must be longer than 0s').optional(),
            /** Longest delegation chain (nested `act`) a child may carry. Default 3. */
            max_depth: z.number().int().min(1).max(15).default(3),
          })
          .prefault({}),
      })
      .prefault({}),
    targets: z.record(z.string().regex(/^[A-Za-z0-9_.-]+$/, 'target names are letters, digits, _ . -'), target),
    rules: z.array(rule).default([]),
    default: action.default('deny'),
    /**
     * Where the live policy comes from. `store` (default): the store's newest version; `rules:`/`default:` above seed
     * an empty store as version 1, and a difference is only logged. `config`: the file wins, applied as a new version at
     * every start where it differs (policy kept in git, deployed with the broker).
     */
    policy: z.strictObject({ source: z.enum(['store', 'config']).default('store') }).prefault({}),
    /** Result masking: see broker/masking and docs/masking.md. */
    masking: masking.default({ rules: [], detectors: {} }),
    /** What is recorded of each statement's result besides its outcome: a bounded sample of what the client saw. */
    audit: z
      .strictObject({
        /** At most this many rows per statement; 0 keeps no sample. Default 100. */
        sample_rows: z.number().int().min(0).default(100),
        /** At most this many bytes of values per statement; 0 keeps no sample. Default 65536. */
        sample_bytes: z
          .number()
          .int()
          .min(0)
          .max(16 * 1024 * 1024)
          .default(65536),
        /** Refused logins are kept this long (pruned at start and hourly). Default 30 days. */
        login_retention: duration.refine((s) => s > 0, 'login_retention must be longer than 0s').default(30 * 86400),
        /** The write-ahead journal every statement is recorded in before it runs (broker/audit/journal). */
        journal: z
          .strictObject({
            /** Its folder. Default: `journal` under data_dir. */
            dir: z.string().optional(),
            /** `os`: a record is in the kernel before its statement runs (survives kill -9). `fsync`: on disk (survives power loss). */
            durability: z.enum(['os', 'fsync']).default('os'),
            /**
             * `thread`: the indexer runs in a worker thread of its own (store writes off the event loop).
             * `inline`: in the broker's thread, in batches (no thread to start: small brokers, tests).
             */
            indexer: z.enum(['thread', 'inline']).default('thread'),
            /** A segment file this large is closed and the next begun; segments are removed once indexed. Default 16 MiB. */
            segment_bytes: z
              .number()
              .int()
              .min(64 * 1024)
              .default(16 * 1024 * 1024),
          })
          .prefault({}),
      })
      .prefault({}),
    /**
     * Bearer token for the admin HTTP API (`jit` commands that go through the broker), 16+ characters; or
     * `generate`: a random one kept in <data_dir>/admin.token (0600), which the `jit` commands run with
     * the same config read themselves; the admin API then answers loopback clients only.
     */
    admin_token: z
      .string()
      .refine((s) => s === GENERATE || s.length >= 16, 'admin_token is 16+ characters, or `generate` (a random one kept in <data_dir>/admin.token)')
      .optional(),
    slack: slack.optional(),
    ui,
    /** GET /metrics (Prometheus text format): behind the admin token unless `public: true`. */
    metrics: z
      .strictObject({
        /** Serve /metrics without the admin token (a scraper on a network you trust). */
        public: z.boolean().default(false),
      })
      .prefault({}),
  })
  .superRefine((c, ctx) => {
    if (c.identity.default_ttl > c.identity.max_ttl)
      ctx.addIssue({
        code: 'custom',
        path: ['identity', 'default_ttl'],
        message: `default_ttl (${c.identity.default_ttl}s) is longer than max_ttl (${c.identity.max_ttl}s)`,
      });
    for (const p of ruleProblems(c.rules, Object.keys(c.targets))) ctx.addIssue({ code: 'custom', path: p.path, message: p.message });
    for (const [name, t] of Object.entries(c.targets)) {
      if (t.upstream_password_file && t.upstream === 'demo')
        ctx.addIssue({ code: 'custom', path: ['targets', name, 'upstream_password_file'], message: 'the demo database has no password' });
      if (t.session_roles && t.upstream === 'demo')
        ctx.addIssue({
          code: 'custom',
          path: ['targets', name, 'session_roles'],
          message: 'the demo database has no roles to create: session_roles needs a real server',
        });
    }
    c.masking.rules.forEach((r, i) => {
      for (const [j, t] of (r.targets ?? []).entries()) {
        if (!/[*?]/.test(t) && !Object.hasOwn(c.targets, t))
          ctx.addIssue({ code: 'custom', path: ['masking', 'rules', i, 'targets', j], message: `unknown target '${t}'` });
      }
    });
  });

type Parsed = z.infer<typeof schema>;

export interface Config extends Omit<Parsed, 'tls' | 'identity' | 'audit'> {
  /** The config file, or null for the embedded default. */
  file: string | null;
  tls: { cert: string | null; key: string | null; plaintext: 'never' | 'loopback' };
  audit: Parsed['audit'] & { journal: Parsed['audit']['journal'] & { dir: string } };
  identity: Parsed['identity'] & { local_issuer_url: string };
}

/**
 * The embedded default: SQLite under .jit/, the dev issuer, the demo target; reads and writes allowed,
 * destructive statements held for approval (decided with `jit approve` / `jit deny`, through an admin
 * token generated under .jit/), everything else denied; the demo's personal data masked.
 */
export const EMBEDDED_DEFAULT = `
store: sqlite:.jit/jit.db
listen:
  postgres: "\${JIT_LISTEN_POSTGRES:-127.0.0.1:6432}"
  mysql: "\${JIT_LISTEN_MYSQL:-127.0.0.1:6033}"
  http: "\${JIT_LISTEN_HTTP:-127.0.0.1:8080}"
tls: { plaintext: loopback }
identity: { local_issuer: true }
targets:
  app: { engine: postgres, upstream: "\${JIT_DEMO_UPSTREAM:-demo}" }
rules:
  - { id: day-to-day, kinds: [read, write], action: allow }
  - { id: destructive-needs-approval, targets: [app], kinds: [destructive], action: review, timeout: 10m }
default: deny
masking:
  - { columns: ["*.email"], with: email }
  - { columns: ["*.card_number"], with: partial, keep_last: 4 }
  - { columns: ["*.phone"], with: partial, keep_last: 4 }
admin_token: "\${JIT_ADMIN_TOKEN:-generate}"
`;

/** `${VAR}` and `${VAR:-fallback}`; `$${` escapes. A missing variable without fallback is an error. */
export function interpolate(text: string, env: NodeJS.ProcessEnv, missing: string[]): string {
  return text.replace(/\$(\$)?\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (all, esc, name: string, fb?: string) => {
    if (esc) return all.slice(1);
    const v = env[name];
    if (v !== undefined && v !== '') return v;
    if (fb !== undefined) return fb;
    missing.push(name);
    return '';
  });
}

export function formatPath(path: PropertyKey[]): string {
  return path.reduce<string>((s, p) => (typeof p === 'number' ? `${s}[${p}]` : s ? `${s}.${String(p)}` : String(p)), '');
}

/** Parse config text. `baseDir` anchors relative paths (the config file's folder, or cwd for the default). */
export function parseConfig(text: string, opts: { file: string | null; baseDir: string; env?: NodeJS.ProcessEnv }): Config {
  const missing: string[] = [];
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length)
    throw new ConfigError(
      opts.file,
      doc.errors.map((e) => e.message),
    );
  // Interpolate inside string scalars only, so a value can never inject YAML structure.
  const raw: unknown = JSON.parse(
    JSON.stringify(doc.toJS() ?? {}, (_k, v: unknown) => (typeof v === 'string' ? interpolate(v, opts.env ?? process.env, missing) : v)),
  );
  if (missing.length) {
    throw new ConfigError(
      opts.file,
      [...new Set(missing)].map((n) => `environment variable ${n} is not set (use \${${n}:-default} for a fallback)`),
    );
  }
  const result = schema.safeParse(raw);
  if (!result.success) {
    throw new ConfigError(
      opts.file,
      result.error.issues.map((i) => {
        // A bad record key (a target name) carries the reason in its nested issues.
        const message = i.code === 'invalid_key' ? i.issues.map((n) => n.message).join('; ') : i.message;
        return `${formatPath(i.path) || '(top level)'}: ${message}`;
      }),
    );
  }
  const c = result.data;
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(opts.baseDir, p));
  const http = c.listen.http;
  return {
    ...c,
    file: opts.file,
    data_dir: abs(c.data_dir),
    store: /^sqlite:(?!:memory:)./.test(c.store) ? `sqlite:${abs(c.store.slice(7))}` : c.store,
    tls: { cert: c.tls.cert ? abs(c.tls.cert) : null, key: c.tls.key ? abs(c.tls.key) : null, plaintext: c.tls.plaintext },
    targets: Object.fromEntries(
      Object.entries(c.targets).map(([n, t]) => [n, t.upstream_password_file ? { ...t, upstream_password_file: abs(t.upstream_password_file) } : t]),
    ),
    audit: { ...c.audit, journal: { ...c.audit.journal, dir: c.audit.journal.dir ? abs(c.audit.journal.dir) : join(abs(c.data_dir), 'journal') } },
    identity: {
      ...c.identity,
      local_issuer_url:
        c.identity.local_issuer_url ?? `http://${http ? `${http.host.includes(':') ? `[${http.host}]` : http.host}:${http.port}` : '127.0.0.1:8080'}`,
      issuers: c.identity.issuers.map((i) => ({ ...i, jwks_file: i.jwks_file ? abs(i.jwks_file) : undefined })),
    },
  };
}

/** `--config FILE`, else ./jit.yaml when present, else the embedded default. */
export function loadConfig(file?: string, env: NodeJS.ProcessEnv = process.env): Config {
  const chosen = file ?? (existsSync('jit.yaml') ? 'jit.yaml' : null);
  if (!chosen) return parseConfig(EMBEDDED_DEFAULT, { file: null, baseDir: process.cwd(), env });
  const path = resolve(chosen);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(path, [`cannot read the file: ${(e as Error).message}`]);
  }
  return parseConfig(text, { file: path, baseDir: dirname(path), env });
}
