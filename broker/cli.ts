// The `jit` command: start the broker, mint dev tokens, list recorded sessions.
import { join } from 'node:path';
import { userInfo } from 'node:os';
import { Command, InvalidArgumentError } from 'commander';
import { ConfigError, duration, loadConfig, type Config } from './config.js';
import type { ApprovalRequest } from './approvals/types.js';
import type { SessionSummary, StatementRecord, Store } from './store/index.js';
import type { Target } from './types.js';
import { formatTable, wrapText } from './cli-format.js';
import { ApiError, registerApprovalCommands } from './cli-approvals.js';
import { registerRevokeCommands } from './cli-revoke.js';
import { registerTokenExchange } from './cli-token.js';
import { registerReplayCommand } from './cli-replay.js';
import { registerLoginsCommand } from './cli-logins.js';

// A reader that goes away early (`jit … | head`) is not an error: stop writing and exit quietly. Nothing
// more can be said on a closed stderr either, so writes there are dropped (a running broker goes on).
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code !== 'EPIPE') throw e;
  process.exit(process.exitCode ?? 0);
});
process.stderr.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code !== 'EPIPE') throw e;
});

const program = new Command('jit')
  .description('jit-broker: just-in-time database access for CI pipelines and the agents they spawn')
  .option('-c, --config <file>', 'config file (default: ./jit.yaml when present, else the embedded default)')
  .showHelpAfterError();

function config(): Config {
  return loadConfig(program.opts<{ config?: string }>().config);
}

async function openStore(url: string): Promise<Store> {
  return (await import('./store/index.js')).openStore(url);
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function parseSeconds(v: string): number {
  const r = duration.safeParse(v);
  if (!r.success) throw new InvalidArgumentError(`'${v}' is not a duration (e.g. 90s, 15m, 1h)`);
  return r.data;
}

function parseClaim(kv: string): [string, unknown] {
  const i = kv.indexOf('=');
  if (i <= 0) throw new InvalidArgumentError(`--claim takes k=v, got '${kv}'`);
  const raw = kv.slice(i + 1);
  let value: unknown = raw;
  if (/^(-?\d+(\.\d+)?|true|false|\[.*\]|\{.*\})$/.test(raw)) {
    try {
      value = JSON.parse(raw);
    } catch {
      value = raw;
    }
  }
  return [kv.slice(0, i), value];
}

/** Whether held statements are decided from a shell: review rules, an admin token, no Slack. */
const reviews = (c: Config) => Boolean(c.admin_token) && !c.slack && (c.default === 'review' || c.rules.some((r) => r.action === 'review'));

program
  .command('start')
  .description('run the broker: listeners for clients, the HTTP API, the dev issuer')
  .action(async () => {
    const { startBroker } = await import('./main.js'); // loaded on demand: `jit token` stays fast
    const broker = await startBroker(config());
    const { postgres, http } = broker.addresses;
    process.stderr.write(
      `jit-broker ready: postgres ${postgres ?? 'off'}, http ${http ?? 'off'}, targets ${[...broker.targets.keys()].join(', ')}\n` +
        (broker.issuer ? `  try: PGPASSWORD=$(npx jit token --build build-123) psql "host=${broker.config.listen.postgres?.host ?? '127.0.0.1'} port=${broker.config.listen.postgres?.port ?? 6432} dbname=${[...broker.targets.keys()][0] ?? 'app'} user=ci sslmode=require"\n` : '') +
        (reviews(broker.config) ? '  statements held for approval: npx jit approvals, then npx jit approve ID or npx jit deny ID --reason "…"\n' : ''),
    );
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) process.exit(1);
      stopping = true;
      process.stderr.write(`jit-broker: ${signal}, shutting down\n`);
      broker.close('the broker is shutting down').then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  });

const token = program
  .command('token')
  .description("print a short-lived token from the broker's own dev issuer (the key under data_dir)")
  .option('--sub <subject>', 'subject', `local:${userInfo().username}`)
  .option('--build <id>', 'build id the token belongs to')
  .option('--ttl <duration>', 'lifetime, e.g. 15m (default: identity.default_ttl)', parseSeconds)
  .option('--aud <audience>', 'audience (default: identity.audience)')
  .option('--claim <k=v>', 'extra claim, repeatable; numbers, booleans and JSON are parsed', collect, [])
  .action(async (o: { sub: string; build?: string; ttl?: number; aud?: string; claim: string[] }) => {
    const c = config();
    if (!c.identity.local_issuer) throw new ConfigError(c.file, ['identity.local_issuer is false: this broker has no dev issuer to sign with']);
    const ttl = o.ttl ?? c.identity.default_ttl;
    if (ttl > c.identity.max_ttl) throw new InvalidArgumentError(`--ttl ${ttl}s is longer than identity.max_ttl (${c.identity.max_ttl}s)`);
    const { LocalIssuer } = await import('./identity/local-issuer.js');
    const issuer = await LocalIssuer.loadOrCreate(join(c.data_dir, 'issuer.jwk'), c.identity.local_issuer_url);
    const jwt = await issuer.sign({
      subject: o.sub,
      build: o.build,
      audience: o.aud ?? c.identity.audience,
      ttlSeconds: ttl,
      claims: Object.fromEntries(o.claim.map(parseClaim)),
    });
    process.stdout.write(`${jwt}\n`);
  });
registerTokenExchange(token, config);

const policy = program.command('policy').description('test the policy in the config (without touching any database, unless --catalog-from)');
policy
  .command('check')
  .description('classify SQL and decide it as the broker would, for each statement and for the whole string')
  .requiredOption('--target <name>', 'the target the statement is for')
  .option('--claim <k=v>', 'a claim of the identity, repeatable', collect, [])
  .option('--sub <subject>', 'subject of the identity', 'policy-check')
  .option('--build <id>', 'build id of the identity')
  .option('--expect <action>', 'exit 1 unless the whole string is decided so (allow, deny or review)')
  .option('--catalog-from <target>', "judge functions, operators, views and partitioned tables by that target's catalog (read over its upstream URL), as the broker does")
  .option('--json', 'machine-readable output')
  .argument('[sql]', 'the SQL text (default: read standard input)')
  .action(async (sqlArg: string | undefined, o: { target: string; claim: string[]; sub: string; build?: string; expect?: string; json?: boolean; catalogFrom?: string }) => {
    const c = config();
    const target = c.targets[o.target];
    if (!target) throw new InvalidArgumentError(`no target '${o.target}' in the config (targets: ${Object.keys(c.targets).join(', ')})`);
    const from = o.catalogFrom === undefined ? undefined : c.targets[o.catalogFrom];
    if (o.catalogFrom !== undefined && !from) throw new InvalidArgumentError(`no target '${o.catalogFrom}' in the config for --catalog-from (targets: ${Object.keys(c.targets).join(', ')})`);
    if (from && from.engine !== target.engine) throw new InvalidArgumentError(`--catalog-from ${o.catalogFrom} is a ${from.engine} target; ${o.target} is ${target.engine}`);
    if (o.expect && !['allow', 'deny', 'review'].includes(o.expect)) throw new InvalidArgumentError('--expect takes allow, deny or review');
    const sql = sqlArg ?? (await readStdin());
    const { checkPolicy } = await import('./policy/check.js');
    let catalog: { provider: import('./catalog/index.js').CatalogProvider; target: Target } | undefined;
    if (from && o.catalogFrom !== undefined) {
      const { Catalogs } = await import('./catalog/index.js');
      // The demo database lives inside a running broker only: there is no catalog to read here.
      const loaders = from.upstream === 'demo' ? { postgres: () => Promise.reject(new Error('the demo database runs only inside the broker')) } : {};
      catalog = { provider: new Catalogs({ loaders }), target: { name: o.catalogFrom, engine: from.engine, upstream: from.upstream } };
    }
    const result = await checkPolicy(
      { rules: c.rules, default: c.default },
      target.engine,
      o.target,
      sql,
      { subject: o.sub, build: o.build ?? null, claims: Object.fromEntries(o.claim.map(parseClaim)) },
      catalog,
    );
    if (o.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    else {
      process.stdout.write(
        formatTable(
          ['DECISION', 'RULE', 'KINDS', 'STATEMENT'],
          result.statements.map((st) => [st.action, st.ruleId ?? '(default)', st.kinds.join(','), st.sql.replace(/\s+/g, ' ').slice(0, 100)]),
        ),
      );
      if (result.error) process.stdout.write(`parse error: ${result.error}\n`);
      for (const st of result.statements) if (st.reason) process.stdout.write(`why: ${st.sql.replace(/\s+/g, ' ').slice(0, 60)}: ${st.reason}\n`);
      const cat = result.catalog;
      if (cat && !cat.read) process.stdout.write(`catalog: could not read the catalog of target '${cat.target}' (${cat.error}): what needs it is decided as unknown, as the broker would\n`);
      else if (cat) process.stdout.write(`catalog: read from target '${cat.target}': ${cat.functions} functions, ${cat.views} views or tables with row security, ${cat.parents ?? 0} partitioned or inheritance parent tables\n`);
      process.stdout.write(`=> ${result.action}${result.ruleId ? ` (rule ${result.ruleId})` : ' (default)'}: ${result.message}\n`);
    }
    if (o.expect && o.expect !== result.action) {
      process.stderr.write(`expected ${o.expect}, got ${result.action}\n`);
      process.exitCode = 1;
    }
  });

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

program
  .command('demo-db', { hidden: true })
  .description('run the built-in demo database (the broker starts it as a child process)')
  .requiredOption('--data-dir <dir>', 'where it keeps its data')
  .action(async (o: { dataDir: string }) => {
    const { startDemoDatabase } = await import('./demo/database.js');
    const demo = await startDemoDatabase({ dataDir: o.dataDir });
    process.stdout.write(`${JSON.stringify({ url: demo.url })}\n`);
    const stop = () => void demo.close().finally(() => process.exit(0));
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    // The broker's exit closes this pipe: never outlive it.
    process.stdin.on('end', stop).resume();
  });

/** `approved by U123`, `denied by cli:bob (not now)`, `expired`, … */
function approvalCell(a: ApprovalRequest | undefined): string {
  if (!a) return '';
  return `${a.state}${a.decidedBy ? ` by ${a.decidedBy}` : ''}${a.reason && a.state !== 'approved' ? ` (${a.reason.slice(0, 60)})` : ''}`;
}

const when = (d: Date | null) => (d ? d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '');

function sessionJson(s: SessionSummary) {
  return { ...s, startedAt: s.startedAt.toISOString(), endedAt: s.endedAt?.toISOString() ?? null };
}

program
  .command('sessions')
  .description('list recorded sessions, newest first')
  .option('--build <id>', 'only this build')
  .option('--subject <sub>', 'only this subject')
  .option('--target <name>', 'only this target')
  .option('--open', 'only sessions still open')
  .option('--limit <n>', 'at most n sessions', (v) => Number.parseInt(v, 10), 50)
  .option('--json', 'machine-readable output')
  .action(async (o: { build?: string; subject?: string; target?: string; open?: boolean; limit: number; json?: boolean }) => {
    const store = await openStore(config().store);
    try {
      const rows = await store.listSessions({ build: o.build, subject: o.subject, target: o.target, open: o.open, limit: o.limit });
      if (o.json) return void process.stdout.write(`${JSON.stringify(rows.map(sessionJson), null, 2)}\n`);
      if (!rows.length) return void process.stdout.write('no sessions\n');
      process.stdout.write(
        formatTable(
          ['SESSION', 'SUBJECT', 'BUILD', 'TARGET', 'ENGINE', 'CLIENT', 'STARTED', 'ENDED', 'STATEMENTS'],
          rows.map((s) => [
            s.id, s.subject, s.build ?? '', s.target, s.engine, `${s.clientAddress}${s.clientApplication ? ` (${s.clientApplication})` : ''}`,
            when(s.startedAt), s.endedAt ? when(s.endedAt) : 'open', `${s.statementCount} (${s.denied} denied)`,
          ]),
        ),
      );
    } finally {
      await store.close();
    }
  });

program
  .command('session')
  .description("one session's statements, in order, with decisions and outcomes")
  .argument('<id>', 'session id (a unique prefix is enough)')
  .option('--wide', 'each statement on one line, SQL and errors whole (default: wrapped, long ones cut)')
  .option('--json', 'machine-readable output')
  .action(async (id: string, o: { wide?: boolean; json?: boolean }) => {
    const store = await openStore(config().store);
    try {
      const s = await store.getSession(id);
      if (!s) throw new InvalidArgumentError(`no session '${id}'`);
      const statements = await store.listStatements(s.id);
      // Who approved (or denied) each held statement, for the replay.
      const approvals = new Map<string, ApprovalRequest>();
      for (const id of new Set(statements.flatMap((x) => (x.approvalId ? [x.approvalId] : [])))) {
        const a = await store.getApproval(id);
        if (a) approvals.set(id, a);
      }
      const approval = (x: StatementRecord) => (x.approvalId ? approvals.get(x.approvalId) : undefined);
      if (o.json) {
        const { approvalToJson } = await import('./approvals/json.js');
        const st = statements.map((x: StatementRecord) => {
          const a = approval(x);
          return { ...x, startedAt: x.startedAt.toISOString(), ...(a ? { approval: approvalToJson(a) } : {}) };
        });
        return void process.stdout.write(`${JSON.stringify({ session: sessionJson(s), statements: st }, null, 2)}\n`);
      }
      process.stdout.write(`session ${s.id}: ${s.subject} build=${s.build ?? '-'} target=${s.target} from ${s.clientAddress} ${when(s.startedAt)} → ${s.endedAt ? `${when(s.endedAt)} (${s.endReason})` : 'open'}\n\n`);
      // Default: SQL wrapped at 80 columns and errors at 60, up to 4 lines each; --wide: one line, whole.
      let cut = false;
      const cell = (text: string, width: number) => {
        const flat = text.replace(/\s+/g, ' ');
        if (o.wide) return flat;
        const w = wrapText(flat, width, 4);
        cut ||= w.cut;
        return w.text;
      };
      process.stdout.write(
        formatTable(
          ['#', 'DECISION', 'RULE', 'KINDS', 'SQL', 'RESULT', 'MS', ...(approvals.size ? ['APPROVAL'] : [])],
          statements.map((x) => [
            String(x.seq), x.decision, x.ruleId ?? '(default)', x.kinds.join(','), cell(x.sql, 80),
            x.error ? cell(`error: ${x.error}`, 60) : (x.tag ?? ''), x.durationMs === null ? '' : x.durationMs.toFixed(1),
            ...(approvals.size ? [approvalCell(approval(x))] : []),
          ]),
        ),
      );
      if (cut) process.stdout.write('\n(long SQL or errors were cut, ending in …: --wide or --json shows them whole)\n');
    } finally {
      await store.close();
    }
  });

registerApprovalCommands(program, config);
registerRevokeCommands(program, config);
registerReplayCommand(program, config);
registerLoginsCommand(program, config);

program.parseAsync().catch((e: unknown) => {
  const msg = e instanceof ConfigError || e instanceof InvalidArgumentError ? e.message : e instanceof Error ? `jit: ${e.message}` : String(e);
  process.stderr.write(`${msg}\n`);
  process.exit(e instanceof ConfigError || e instanceof InvalidArgumentError ? 2 : 1);
});
