// POST /oauth/token: RFC 8693 token exchange over HTTP (identity/exchange.ts does the work). The body
// is form-encoded as RFC 6749 says (JSON is accepted too); errors are RFC 6749 §5.2 JSON with status 400.
// No client authentication: the subject token is the credential, and the child can only be narrower.
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { exchangeToken, type ExchangeOptions, type ExchangeRequest } from '../identity/exchange.js';

export interface OauthTokenOptions {
  /** null: exchange is disabled (identity.exchange.enabled: false), answered `unauthorized_client`. */
  exchange: ExchangeOptions | null;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

const SINGLE = [
  'grant_type',
  'subject_token',
  'subject_token_type',
  'actor_token',
  'actor_token_type',
  'actor',
  'scope',
  'expires_in',
  'requested_token_type',
] as const;
const MULTI = ['audience', 'resource'] as const;
const BODY_LIMIT = 64 * 1024;

function oauthError(reply: FastifyReply, error: string, description: string) {
  return reply.code(400).headers({ 'cache-control': 'no-store', pragma: 'no-cache' }).send({ error, error_description: description });
}

/** The body as name → values (a form may repeat a parameter; JSON gives a string or a list of them). */
function params(body: unknown): Map<string, string[]> | null {
  const out = new Map<string, string[]>();
  if (body instanceof URLSearchParams) {
    for (const [k, v] of body) out.set(k, [...(out.get(k) ?? []), v]);
    return out;
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return null;
  for (const [k, v] of Object.entries(body)) {
    if (typeof v === 'string') out.set(k, [v]);
    else if (typeof v === 'number') out.set(k, [String(v)]);
    else if (Array.isArray(v) && v.every((x) => typeof x === 'string')) out.set(k, v as string[]);
    else return null;
  }
  return out;
}

export const oauthTokenRoute: FastifyPluginAsync<OauthTokenOptions> = async (app, opts) => {
  // Scoped to this plugin: other routes (the Slack receiver) keep their own body parsing.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: BODY_LIMIT }, (_req, body, done) => {
    done(null, new URLSearchParams(body as string));
  });

  app.post('/oauth/token', { bodyLimit: BODY_LIMIT }, async (req, reply) => {
    const p = params(req.body);
    if (!p) return oauthError(reply, 'invalid_request', 'send the parameters form-encoded (application/x-www-form-urlencoded)');
    for (const name of SINGLE) {
      if ((p.get(name)?.length ?? 0) > 1) return oauthError(reply, 'invalid_request', `${name} is given more than once`);
    }
    if (!opts.exchange) {
      return oauthError(reply, 'unauthorized_client', 'token exchange is disabled on this broker (identity.exchange.enabled: false, or no local issuer)');
    }
    const r: ExchangeRequest = {};
    for (const name of SINGLE) {
      const v = p.get(name)?.[0];
      if (v !== undefined && v !== '') r[name] = v;
    }
    for (const name of MULTI) r[name] = p.get(name) ?? [];
    const result = await exchangeToken(opts.exchange, r);
    if (!result.ok) {
      opts.log?.('token exchange refused', { error: result.error, reason: result.description });
      return oauthError(reply, result.error, result.description);
    }
    const c = result.child;
    opts.log?.('token exchanged', {
      subject: c.subject,
      build: c.build,
      actors: c.actors,
      targets: c.targets,
      scope: c.scope,
      expires_in: result.response.expires_in,
    });
    return reply.code(200).headers({ 'cache-control': 'no-store', pragma: 'no-cache' }).send(result.response);
  });
};
