// Authentication of the admin HTTP API (approvals, sessions, revocations): every route needs
// `Authorization: Bearer <admin_token>`: 401 without it or with another token; 503 when the broker has
// no admin_token configured (the API is then disabled).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

const digest = (s: string) => createHash('sha256').update(s).digest();

/** `{ error }`: the body of every refusal of the admin API. */
export const errorJsonSchema = { type: 'object', properties: { error: { type: 'string' } } } as const;
/** The responses every admin route may give before its handler runs. */
export const guardedResponses = { 401: errorJsonSchema, 503: errorJsonSchema } as const;

/** An onRequest hook: `app.addHook('onRequest', adminAuth(opts.adminToken))`. null: the API answers 503. */
export function adminAuth(adminToken: string | null) {
  const expected = adminToken === null ? null : digest(adminToken);
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (!expected) {
      await reply.code(503).send({ error: 'the admin API is disabled: set admin_token (16+ characters) in the broker config' });
      return;
    }
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    // Compare digests: constant time, whatever the length of what was sent.
    if (!m || !timingSafeEqual(digest(m[1]!), expected)) {
      await reply
        .code(401)
        .header('www-authenticate', 'Bearer realm="jit-broker"')
        .send({ error: m ? 'wrong admin token' : 'missing admin token: send Authorization: Bearer <admin_token>' });
    }
  };
}
