// `jit approvals`, `jit approve`, `jit deny`: decide held statements through the running broker's
// HTTP API (listen.http + admin_token of the config, or --url / JIT_ADMIN_TOKEN; with `admin_token:
// generate`, the token the broker keeps in <data_dir>/admin.token).
import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { adminTokenFile, GENERATE, readAdminToken } from './admin-token.js';
import type { ApprovalJson } from './approvals/json.js';
import { formatTable } from './cli-format.js';
import type { Config } from './config.js';

/** A failure the CLI reports as it is (exit 1), without a stack. */
export class ApiError extends Error {
  override name = 'ApiError';
}

export interface Target {
  url: string;
  token: string;
}

/**
 * The running broker's HTTP API and admin token, from the config (or --url / JIT_ADMIN_TOKEN); with
 * `admin_token: generate` (the embedded default), the token the broker generated under data_dir.
 */
export function target(c: Config, url: string | undefined): Target {
  const where = c.file ?? 'the embedded default config';
  const token = process.env.JIT_ADMIN_TOKEN || (c.admin_token === GENERATE ? generated(c.data_dir) : c.admin_token);
  if (!token) throw new ApiError(`no admin token: set admin_token in ${where} (the running broker's), or JIT_ADMIN_TOKEN`);
  if (url) return { url: url.replace(/\/+$/, ''), token };
  const h = c.listen.http;
  if (!h) throw new ApiError(`listen.http is off in ${where}: pass --url http://host:port of the broker`);
  const host = h.host === '0.0.0.0' ? '127.0.0.1' : h.host === '::' ? '::1' : h.host;
  return { url: `http://${host.includes(':') ? `[${host}]` : host}:${h.port}`, token };
}

function generated(dataDir: string): string {
  let token: string | null;
  try {
    token = readAdminToken(dataDir);
  } catch (e) {
    throw new ApiError((e as Error).message);
  }
  if (!token) throw new ApiError(`no admin token yet: the broker writes ${adminTokenFile(dataDir)} when it starts; start it (jit start) with the same config, from the same folder, first`);
  return token;
}

/** One admin API call; connection and auth failures become ApiErrors that say what to do. */
export async function call<T>(t: Target, method: 'GET' | 'POST', path: string, body?: object): Promise<{ status: number; data: T }> {
  let res: Response;
  try {
    res = await fetch(`${t.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${t.token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(15_000),
    });
  } catch (e) {
    const c = (e as { cause?: { code?: string; message?: string } }).cause;
    const cause = c?.code ?? c?.message ?? (e as Error).message;
    throw new ApiError(`cannot reach the broker at ${t.url} (${cause}): is it running (jit start)? Or pass --url`);
  }
  const text = await res.text();
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    data = { error: text.slice(0, 200) };
  }
  if (res.status === 401) throw new ApiError(`the broker at ${t.url} refused the admin token: it must equal the running broker's admin_token`);
  if (res.status === 403) throw new ApiError(`the broker at ${t.url} refused: ${(data as { error?: string }).error ?? 'forbidden'}`);
  if (res.status === 503) throw new ApiError(`the broker at ${t.url} has its admin API disabled: ${(data as { error?: string }).error ?? 'no admin_token'}`);
  if (res.status >= 500 || (res.status === 400 && !(data as { code?: string }).code)) {
    throw new ApiError(`the broker answered ${res.status}: ${(data as { error?: string; message?: string }).message ?? (data as { error?: string }).error ?? text}`);
  }
  return { status: res.status, data: data as T };
}

function expiresIn(iso: string, now = Date.now()): string {
  const s = Math.round((Date.parse(iso) - now) / 1000);
  if (s <= 0) return 'now';
  return `${s >= 60 ? `${Math.floor(s / 60)}m` : ''}${s % 60}s`;
}

const oneLine = (sql: string, n: number) => {
  const t = sql.replace(/\s+/g, ' ').trim();
  return t.length > n ? `${t.slice(0, n - 1)}…` : t;
};

function describe(a: ApprovalJson): string {
  const who = a.decidedBy ? ` by ${a.decidedBy}` : '';
  const why = a.reason ? ` (${a.reason})` : '';
  if (a.state === 'pending') return `${a.id}: ${a.approvals.length} of ${a.settings.minApprovals} approvals so far, still pending`;
  return `${a.id}: ${a.state}${who}${why}`;
}

export function registerApprovalCommands(program: Command, config: () => Config): void {
  program
    .command('approvals')
    .description('list statements held for approval on the running broker (its HTTP API)')
    .option('--all', 'recent requests in every state, not only pending ones')
    .option('--url <url>', 'the broker HTTP API (default: listen.http of the config)')
    .option('--json', 'machine-readable output')
    .action(async (o: { all?: boolean; url?: string; json?: boolean }) => {
      const t = target(config(), o.url);
      const { data } = await call<{ approvals: ApprovalJson[] }>(t, 'GET', `/api/approvals?${o.all ? 'limit=50' : 'state=pending'}`);
      const rows = data.approvals;
      if (o.json) return void process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      if (!rows.length) return void process.stdout.write(o.all ? 'no approval requests\n' : 'no pending approvals\n');
      const now = Date.now();
      process.stdout.write(
        formatTable(
          ['ID', ...(o.all ? ['STATE'] : []), 'TARGET', 'SUBJECT', 'BUILD', 'KINDS', 'RULE', 'APPROVALS', 'EXPIRES IN', 'STATEMENT'],
          rows.map((a) => [
            a.id, ...(o.all ? [a.state] : []), a.target, a.subject, a.build ?? '', a.kinds.join(','), a.ruleId ?? '(default)',
            `${a.approvals.length}/${a.settings.minApprovals}`, a.state === 'pending' ? expiresIn(a.expiresAt, now) : '', oneLine(a.sql, 80),
          ]),
        ),
      );
    });

  const by = (o: { by?: string }) => `cli:${o.by ?? userInfo().username}`;
  const decide = async (id: string, verb: 'approve' | 'deny', body: object, url?: string) => {
    const { status, data } = await call<{ ok: boolean; approval?: ApprovalJson; code?: string; message?: string }>(
      target(config(), url), 'POST', `/api/approvals/${encodeURIComponent(id)}/${verb}`, body,
    );
    if (!data.ok) throw new ApiError(`${verb} ${id}: ${data.message ?? `HTTP ${status}`}${data.code ? ` [${data.code}]` : ''}`);
    process.stdout.write(`${describe(data.approval!)}\n`);
  };

  program
    .command('approve')
    .description('approve a held statement on the running broker')
    .argument('<id>', 'approval request id (jit approvals)')
    .option('--reason <text>', 'why (recorded with the decision)')
    .option('--by <name>', 'who approves, recorded as cli:<name> (default: your user name)')
    .option('--url <url>', 'the broker HTTP API (default: listen.http of the config)')
    .action(async (id: string, o: { reason?: string; by?: string; url?: string }) => {
      await decide(id, 'approve', { by: by(o), ...(o.reason ? { reason: o.reason } : {}) }, o.url);
    });

  program
    .command('deny')
    .description('deny a held statement on the running broker: its client gets the reason')
    .argument('<id>', 'approval request id (jit approvals)')
    .requiredOption('--reason <text>', 'why (shown to the client)')
    .option('--by <name>', 'who denies, recorded as cli:<name> (default: your user name)')
    .option('--url <url>', 'the broker HTTP API (default: listen.http of the config)')
    .action(async (id: string, o: { reason: string; by?: string; url?: string }) => {
      await decide(id, 'deny', { by: by(o), reason: o.reason }, o.url);
    });
}
