// The console's `ui:` config: its defaults (on, no OIDC, 8 h sessions), public_url without a trailing slash, an
// OIDC issuer over https (plain http only on this machine), and errors that name the key.
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../broker/config.js';

const MIN = 'targets: { app: { engine: postgres, upstream: demo } }\n';
const parse = (text: string) => parseConfig(MIN + text, { file: '/srv/jit/jit.yaml', baseDir: '/srv/jit', env: {} });

function problems(text: string): string[] {
  try {
    parse(text);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).problems;
  }
  throw new Error('parsed');
}

describe('ui:', () => {
  it('defaults: on, no OIDC, no viewers list, 8 h sessions', () => {
    expect(parse('').ui).toEqual({ enabled: true, session_ttl: 8 * 3600 });
  });

  it('takes OIDC settings, viewers and a public URL (trailing slash dropped)', () => {
    const c = parse(`ui:
  public_url: https://jit.acme.test/
  oidc: { issuer: https://login.acme.test, client_id: jit }
  viewers: { email: "*@acme.test" }
  session_ttl: 1h
`);
    expect(c.ui).toEqual({
      enabled: true,
      public_url: 'https://jit.acme.test',
      oidc: { issuer: 'https://login.acme.test', client_id: 'jit', scopes: ['openid', 'email', 'profile'], groups_claim: 'groups' },
      viewers: { email: '*@acme.test' },
      session_ttl: 3600,
    });
    expect(parse('ui: { oidc: { issuer: "http://127.0.0.1:9000", client_id: jit } }').ui.oidc?.issuer).toBe('http://127.0.0.1:9000');
  });

  it('refuses an http issuer elsewhere than this machine, a short session, unknown keys', () => {
    expect(problems('ui: { oidc: { issuer: "http://login.acme.test", client_id: jit } }')).toEqual([
      'ui.oidc.issuer: ui.oidc.issuer is an https URL (plain http only on this machine)',
    ]);
    expect(problems('ui: { session_ttl: 10s }')).toEqual(['ui.session_ttl: session_ttl must be at least 1m']);
    expect(problems('ui: { public_url: "ftp://x" }')[0]).toMatch(/^ui\.public_url: /);
    expect(problems('ui: { oidc: { issuer: "https://x.test", client_id: jit, secret: s } }')[0]).toMatch(/^ui\.oidc: .*secret/);
  });

  it('can be turned off', () => {
    expect(parse('ui: { enabled: false }').ui.enabled).toBe(false);
  });
});
