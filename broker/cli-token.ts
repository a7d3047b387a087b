// `jit token exchange`: RFC 8693 token exchange for scripts, through the running broker's
// POST /oauth/token (listen.http of the config, or --url). No admin token: the subject token is the
// credential. Prints the child token (or, with --json, the whole response).
import { readFileSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { ApiError } from './cli-approvals.js';
import { duration, type Config } from './config.js';

const TOKEN_TYPE_JWT = 'urn:ietf:params:oauth:token-type:jwt';
const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';

/** The broker's HTTP listener, from --url or listen.http. */
export function brokerUrl(c: Config, url: string | undefined): string {
  if (url) return url.replace(/\/+$/, '');
  const h = c.listen.http;
  if (!h) throw new ApiError(`listen.http is off in ${c.file ?? 'the embedded default config'}: pass --url http://host:port of the broker`);
  const host = h.host === '0.0.0.0' ? '127.0.0.1' : h.host === '::' ? '::1' : h.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${h.port}`;
}

function seconds(v: string): number {
  const r = duration.safeParse(v);
  if (!r.success || r.data <= 0) throw new InvalidArgumentError(`'${v}' is not a duration (e.g. 90s, 10m, 1h)`);
  return Math.ceil(r.data);
}

const collect = (value: string, previous: string[]) => [...previous, value];

/** A token given as `-` is read from standard input; absent: $JIT_SUBJECT_TOKEN. */
function subjectToken(given: string | undefined): string {
  const t = given === '-' ? readFileSync(0, 'utf8') : (given ?? process.env.JIT_SUBJECT_TOKEN ?? '');
  if (!t.trim()) throw new InvalidArgumentError('give the token to exchange: --subject-token T (or - for standard input, or $JIT_SUBJECT_TOKEN)');
  return t.trim();
}

interface Options {
  subjectToken?: string;
  target: string[];
  scope?: string;
  ttl?: number;
  actor?: string;
  actorToken?: string;
  url?: string;
  json?: boolean;
}

export function registerTokenExchange(token: Command, config: () => Config): void {
  token
    .command('exchange')
    .description('trade a token for a narrower one for a nested agent (RFC 8693 token exchange on the running broker)')
    .option('--subject-token <jwt>', 'the token to exchange (a CI OIDC token or one the broker minted); - reads standard input (default: $JIT_SUBJECT_TOKEN)')
    .option('--target <name>', "a target the child may log in to, repeatable (default: the subject token's)", collect, [])
    .option('--scope <kinds>', "the most the child may do: read, write, ddl, destructive, ... (default: the subject token's)")
    .option('--ttl <duration>', "lifetime, e.g. 10m (default: identity.default_ttl; never beyond the subject token's)", seconds)
    .option('--actor <name>', 'who the child is for, recorded in its delegation chain (e.g. nightly-agent)')
    .option('--actor-token <jwt>', "the actor's own token, verified by the broker; its subject names the actor")
    .option('--url <url>', 'the broker HTTP listener (default: listen.http of the config)')
    .option('--json', 'print the whole token response')
    .action(async (o: Options) => {
      const form = new URLSearchParams({ grant_type: GRANT, subject_token: subjectToken(o.subjectToken), subject_token_type: TOKEN_TYPE_JWT });
      for (const t of o.target) form.append('audience', t);
      if (o.scope) form.set('scope', o.scope);
      // `jit token` has a --ttl too, and commander gives it the value wherever it is written.
      const ttl = o.ttl ?? token.opts<{ ttl?: number }>().ttl;
      if (ttl !== undefined) form.set('expires_in', String(Math.ceil(ttl)));
      if (o.actor) form.set('actor', o.actor);
      if (o.actorToken) {
        form.set('actor_token', o.actorToken);
        form.set('actor_token_type', TOKEN_TYPE_JWT);
      }
      const url = `${brokerUrl(config(), o.url)}/oauth/token`;
      let res: Response;
      try {
        res = await fetch(url, { method: 'POST', body: form, signal: AbortSignal.timeout(15_000) });
      } catch (e) {
        const c = (e as { cause?: { code?: string; message?: string } }).cause;
        throw new ApiError(`cannot reach the broker at ${url} (${c?.code ?? c?.message ?? (e as Error).message}): is it running (jit start)? Or pass --url`);
      }
      const text = await res.text();
      let data: Record<string, unknown>;
      try {
        data = JSON.parse(text) as Record<string, unknown>;
      } catch {
        throw new ApiError(`the broker answered ${res.status}: ${text.slice(0, 200)}`);
      }
      if (!res.ok) {
        throw new ApiError(`token exchange refused: ${String(data['error'] ?? res.status)}: ${String(data['error_description'] ?? text.slice(0, 200))}`);
      }
      process.stdout.write(o.json ? `${JSON.stringify(data, null, 2)}\n` : `${String(data['access_token'])}\n`);
    });
}
