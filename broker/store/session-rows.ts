// A new session as every writer of the store records it (both dialects' createSession, the audit journal's
// `open` event): the identity and the client flattened into the session's columns.
import type { NewSession } from './types.js';

export function sessionValues(id: string, s: NewSession) {
  const { identity: who, client } = s;
  return {
    id,
    target: s.target,
    engine: s.engine,
    subject: who.subject,
    issuer: who.issuer,
    build: who.build,
    claims: who.claims,
    actors: who.actors,
    tokenId: who.tokenId,
    clientAddress: client.address,
    clientPort: client.port,
    clientApplication: client.application,
    dbUser: client.user,
    tls: client.tls,
    startedAt: s.startedAt,
    replicaId: s.replicaId ?? null,
  };
}
