// `jit token`: a short-lived token from the broker's own dev issuer (the key under data_dir).
// `jit token exchange`: RFC 8693 token exchange for scripts, through the running broker's POST /oauth/token
// (listen.http of the config, or --url). No admin token: the subject token is the credential. Prints the
// child token (or, with --json, the whole response).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { userInfo } from 'node:os';
import { InvalidArgumentError, type Command } from 'commander';
import type { Config } from '../config.js';
import { ConfigError } from '../config-error.js';
import { parseDuration } from '../duration.js';
import { brokerUrl, exchangeToken } from './api.js';
import { collect, parseClaim } from './args.js';

const TOKEN_TYPE_JWT = 'urn:ietf:params:oauth:token-type:jwt';
const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';

/** `jit token --ttl`: any duration the config allows. */
function parseSeconds(v: string): number {
  const s = parseDuration(v);
  if (s === null) throw new InvalidArgumentError(`'${v}' is not a duration (e.g. 90s, 15m, 1h)`);
  return s;
}

/** `jit token exchange --ttl`: whole seconds, above 0. */
function seconds(v: string): number {
  const s = parseDuration(v);
  if (s === null || s <= 0) throw new InvalidArgumentError(`'${v}' is not a duration (e.g. 90s, 10m, 1h)`);
  return Math.ceil(s);
}

/** A token given as `-` is read from standard input; absent: $JIT_SUBJECT_TOKEN. */
function subjectToken(given: string | undefined): string {
  const t = given === '-' ? readFileSync(0, 'utf8') : (given ?? process.env.JIT_SUBJECT_TOKEN ?? '');
  if (!t.trim()) throw new InvalidArgumentError('give the token to exchange: --subject-token T (or - for standard input, or $JIT_SUBJECT_TOKEN)');
  return t.trim();
}

interface ExchangeOptions {
  subjectToken?: string;
  target: string[];
  scope?: string;
  ttl?: number;
  actor?: string;
  actorToken?: string;
  url?: string;
  json?: boolean;
}

export function registerTokenCommands(program: Command, config: () => Config): void {
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
      const { LocalIssuer } = await import('../identity/local-issuer.js');
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
    .action(async (o: ExchangeOptions) => {
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
      const data = await exchangeToken(brokerUrl(config(), o.url), form);
      process.stdout.write(o.json ? `${JSON.stringify(data, null, 2)}\n` : `${String(data['access_token'])}\n`);
    });
}
