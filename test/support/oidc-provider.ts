// A real OpenID Connect provider for the console's browser tests: oidc-provider (the certified implementation) on
// 127.0.0.1, with one confidential client for the broker (PKCE required), its development login page (any login,
// any password; the login names the person: see PEOPLE) and consent page, and ID tokens carrying name, email and
// groups. The HTTP server starts first (its port is the issuer's), the provider once the broker's callback is known.
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';

export const CLIENT_ID = 'jit-console';
export const CLIENT_SECRET = 'jit-console-test-secret-0123456789';

/** Who each login is. */
export const PEOPLE: Record<string, { name: string; email: string; groups: string[] }> = {
  alice: { name: 'Alice DBA', email: 'alice@acme.test', groups: ['dba'] },
  bob: { name: 'Bob Developer', email: 'bob@acme.test', groups: ['dev'] },
  mallory: { name: 'Mallory', email: 'mallory@evil.test', groups: ['dba'] },
};

export interface TestIdp {
  issuer: string;
  /** Registers the broker's redirect URI and starts answering. */
  start(redirectUri: string): void;
  close(): Promise<void>;
}

export async function startIdp(): Promise<TestIdp> {
  let handler: RequestListener | null = null;
  const server: Server = createServer((req, res) => {
    if (handler) return handler(req, res);
    res.writeHead(503).end('not started');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    issuer,
    start(redirectUri) {
      const provider = new Provider(issuer, {
        clients: [
          {
            client_id: CLIENT_ID,
            client_secret: CLIENT_SECRET,
            redirect_uris: [redirectUri],
            grant_types: ['authorization_code'],
            response_types: ['code'],
            token_endpoint_auth_method: 'client_secret_post',
          },
        ],
        pkce: { required: () => true },
        features: { devInteractions: { enabled: true } },
        claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
        // The claims in the ID token itself (the broker reads no userinfo).
        conformIdTokenClaims: false,
        cookies: { keys: ['oidc-provider-test-cookie-key'] },
        findAccount: async (_ctx, id) => {
          const p = PEOPLE[id];
          if (!p) return undefined;
          return { accountId: id, claims: () => ({ sub: id, name: p.name, email: p.email, email_verified: true, groups: p.groups }) };
        },
      });
      handler = provider.callback() as RequestListener;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
