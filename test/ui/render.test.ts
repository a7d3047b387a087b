// The console's page renderers (broker/ui/pages) and the document shell (broker/ui/html.ts), without a browser:
// everything interpolated is escaped, no inline script or style, decide forms only for those who may decide.
import { describe, expect, it } from 'vitest';
import type { ApprovalRequest } from '../../broker/approvals/types.js';
import type { RefusedLogin, PolicyVersion, SessionSummary, StatementRecord } from '../../broker/store/types.js';
import type { ResultSample } from '../../broker/types.js';
import type { UiContext } from '../../broker/ui/context.js';
import { Html, html, raw, renderPage } from '../../broker/ui/html.js';
import {
  renderError,
  renderLogins,
  renderPolicy,
  renderPolicyVersion,
  renderReview,
  renderReviews,
  renderSession,
  renderSessions,
  renderSignIn,
} from '../../broker/ui/pages/index.js';

const T0 = new Date('2025-06-02T06:48:29.174Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const XSS_SQL = "SELECT '<script>alert(1)</script>' AS x";
const XSS_VALUE = '"><img src=x onerror=alert(1)>';
const XSS_SUBJECT = 'repo:<b>acme</b>/app';

const approver: UiContext = { base: '/ui', user: { name: 'Dana DBA', email: 'dana@example.com', canApprove: true }, csrf: 'csrf-tok-123', now: at(60_000) };
const viewer: UiContext = { ...approver, user: { name: 'Vic Viewer', email: null, canApprove: false } };
const anonymous: UiContext = { ...approver, user: null };

function request(id: string, over: Partial<ApprovalRequest> = {}): ApprovalRequest {
  return {
    id,
    target: 'app',
    sessionId: 's_7jerbtgkvp6pg87v',
    statementId: 3,
    subject: XSS_SUBJECT,
    build: 'build-123',
    claims: { build: 'build-123', email: 'dev@example.com' },
    actors: ['agent:<i>nested</i>'],
    sql: XSS_SQL,
    kinds: ['destructive'],
    ruleId: 'destructive-needs-approval',
    policyVersion: 2,
    settings: { approvers: ['@dba-oncall'], timeoutSeconds: 600, minApprovals: 2, scope: 'statement' },
    requestedAt: at(10_000),
    expiresAt: at(610_000),
    state: 'pending',
    approvals: [],
    decidedBy: null,
    decidedAt: null,
    reason: null,
    message: null,
    estimate: { rows: 12400, bytes: 1_048_576, tables: ['orders'], source: 'catalog', text: '≈ 12,400 rows of orders' },
    ...over,
  };
}

const requests: ApprovalRequest[] = [
  request('a_settled_old', { state: 'denied', decidedBy: 'U123', decidedAt: at(20_000), reason: 'not the <customers> table', requestedAt: at(1_000) }),
  request('a_pending_new', { requestedAt: at(30_000) }),
  request('a_settled_new', {
    state: 'approved',
    approvals: [
      { by: 'U1', at: at(40_000) },
      { by: 'U2', at: at(45_000) },
    ],
    decidedBy: 'U2',
    decidedAt: at(45_000),
    requestedAt: at(5_000),
  }),
  request('a_pending_old', { requestedAt: at(2_000), approvals: [{ by: 'U1', at: at(3_000) }] }),
];

const session: SessionSummary = {
  id: 's_7jerbtgkvp6pg87v',
  target: 'app',
  engine: 'postgres',
  startedAt: T0,
  replicaId: null,
  subject: XSS_SUBJECT,
  issuer: 'http://127.0.0.1:8080',
  build: 'build-123',
  claims: { build: 'build-123' },
  actors: ['agent:planner'],
  tokenId: 'jti-1',
  clientAddress: '127.0.0.1',
  clientPort: 51234,
  clientApplication: 'psql',
  dbUser: 'ci',
  tls: true,
  endedAt: at(90_000),
  endReason: 'client terminated',
  statementCount: 3,
  allowed: 1,
  denied: 1,
  reviewed: 1,
};

function statement(seq: number, offsetMs: number, over: Partial<StatementRecord> = {}): StatementRecord {
  return {
    id: 100 + seq,
    seq,
    sessionId: session.id,
    sql: 'SELECT name, email FROM customers LIMIT 1',
    protocol: 'simple',
    kinds: ['read'],
    decision: 'allow',
    ruleId: null,
    message: null,
    startedAt: at(offsetMs),
    policyVersion: 2,
    approvalId: null,
    durationMs: 1.5,
    tag: 'SELECT 1',
    rows: 1,
    error: null,
    ...over,
  };
}

const statements: StatementRecord[] = [
  statement(1, 1_234),
  statement(2, 4_000, {
    sql: 'DROP TABLE orders',
    kinds: ['destructive'],
    decision: 'deny',
    ruleId: 'no-drop',
    message: 'denied by rule no-drop',
    durationMs: null,
    tag: null,
    rows: null,
  }),
  statement(3, 12_500, { sql: XSS_SQL, kinds: ['destructive'], decision: 'review', ruleId: 'destructive-needs-approval', approvalId: 'a_settled_new' }),
];

const sample: ResultSample = {
  columns: [
    { name: 'name', type: 'text' },
    { name: 'email', type: 'text' },
  ],
  rows: [[XSS_VALUE, null]],
  truncated: false,
  bytes: 30,
};

const refused: RefusedLogin = {
  id: 1,
  at: at(5_000),
  engine: 'postgres',
  target: 'app',
  reason: 'expired',
  message: 'token expired <at> 06:00',
  issuer: 'https://token.actions.githubusercontent.com',
  subject: XSS_SUBJECT,
  tokenId: null,
  build: 'build-9',
  clientAddress: '::1',
  clientPort: 40000,
  clientApplication: 'psql',
  dbUser: 'ci',
  tls: true,
};

const v1: PolicyVersion = {
  version: 1,
  rules: { rules: [{ id: 'reads', action: 'allow', kinds: ['read'] }], default: 'deny' },
  author: 'config',
  message: null,
  appliedAt: at(0),
  sha256: 'a'.repeat(64),
};
const v2: PolicyVersion = {
  version: 2,
  rules: {
    rules: [
      { id: 'reads', action: 'allow', kinds: ['read'] },
      { id: 'destructive-needs-approval', action: 'review', kinds: ['destructive'], message: '<b>ask</b>' },
    ],
    default: 'deny',
  },
  author: 'cli:<dana>',
  message: 'review "destructive" statements',
  appliedAt: at(1_000),
  sha256: 'b'.repeat(64),
};

/** Every page, as full documents, for the checks that hold everywhere. */
function allPages(): string[] {
  const page = (title: string, ctx: UiContext, body: Html) => renderPage({ title, ctx, body });
  return [
    page('Reviews', approver, renderReviews(approver, { requests, filters: { requester: '"><x', target: "o'b" } })),
    page('Review', approver, renderReview(approver, { request: requests[1]!, canDecide: true, message: 'Approved <1 of 2>' })),
    page('Review', viewer, renderReview(viewer, { request: requests[1]!, canDecide: false, whyNot: 'you asked for this one' })),
    page('Sessions', viewer, renderSessions(viewer, { sessions: [session], filters: { subject: '" onmouseover="x', open: true } })),
    page('Session', viewer, renderSession(viewer, { session, statements, approvals: requests, samples: new Map([[101, sample]]) })),
    page('Logins', viewer, renderLogins(viewer, { logins: [refused], filters: { since: '<1h>' } })),
    page('Policy', viewer, renderPolicy(viewer, { versions: [v1, v2] })),
    page('Policy version 2', viewer, renderPolicyVersion(viewer, { version: v2, previous: v1 })),
    page('Sign in', anonymous, renderSignIn(anonymous, { oidc: true, local: true, error: 'wrong <token>', next: '/ui/reviews?x="1"' })),
    page('Not found', anonymous, renderError(anonymous, 404, 'no request <a_x>')),
  ];
}

describe('html', () => {
  it('escapes text and attribute values, keeps Html, drops nothing-values, joins arrays', () => {
    const out = html`<p title="${`a"b'c\`d`}">${'<&>'}${[1, '<i>', raw('<b>ok</b>')]}${null}${undefined}${false}</p>`;
    expect(out).toBeInstanceOf(Html);
    expect(out.value).toBe('<p title="a&quot;b&#39;c&#96;d">&lt;&amp;&gt;1&lt;i&gt;<b>ok</b></p>');
  });

  it('renders a document with same-origin assets, navigation, the user and a sign-out form', () => {
    const doc = renderPage({ title: 'Reviews', ctx: approver, body: html`<p>x</p>` });
    expect(doc.startsWith('<!doctype html>')).toBe(true);
    expect(doc).toContain('<html lang="en">');
    expect(doc).toContain('<link rel="stylesheet" href="/ui/assets/app.css">');
    expect(doc).toContain('<script src="/ui/assets/app.js" defer></script>');
    expect(doc).toContain('<nav aria-label="Main">');
    expect(doc).toContain('<a href="/ui/reviews" aria-current="page">Reviews</a>');
    expect(doc).toContain('<form method="post" action="/ui/logout"');
    expect(doc).toContain('<input type="hidden" name="_csrf" value="csrf-tok-123">');
    expect(doc).toContain('<main id="main"');
    expect(doc).toContain('Dana DBA');
  });
});

describe('every page', () => {
  const pages = allPages();

  it('escapes what it shows: statements, sample values, subjects, filter values', () => {
    for (const p of pages) {
      expect(p).not.toMatch(/<script(?![^>]*\ssrc=)/i);
      expect(p).not.toMatch(/<img/i);
      // No tag carries an event handler: the attack texts are there, but only as escaped text or inside a quoted value.
      for (const tag of p.match(/<[a-z][^>]*>/gi) ?? []) expect(tag.replace(/="[^"]*"/g, '=""')).not.toMatch(/\son[a-z]+\s*=/i);
      expect(p).not.toContain('<b>acme');
      expect(p).not.toContain('onmouseover="x');
    }
    const all = pages.join('\n');
    expect(all).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(all).toContain('&quot;&gt;&lt;img src=x onerror=alert(1)&gt;');
    expect(all).toContain('repo:&lt;b&gt;acme&lt;/b&gt;/app');
    expect(all).toContain('value="&quot;&gt;&lt;x"');
    expect(all).toContain('value="o&#39;b"');
  });

  it('has no inline style and no inline script', () => {
    for (const p of pages) {
      expect(p).not.toMatch(/\sstyle=/i);
      expect(p).not.toMatch(/<style/i);
      expect(p).not.toMatch(/\son[a-z]+="/i);
      for (const tag of p.match(/<script[^>]*>/gi) ?? []) expect(tag).toMatch(/\ssrc="\/ui\/assets\/app\.js"/);
    }
  });

  it('labels every form input', () => {
    for (const p of pages)
      for (const input of p.match(/<(input|select)\b[^>]*>/gi) ?? []) {
        if (/type="hidden"/.test(input)) continue;
        const id = /\sid="([^"]+)"/.exec(input)?.[1];
        expect(id, input).toBeDefined();
        expect(p).toContain(`<label for="${id}"`);
      }
  });
});

describe('reviews', () => {
  it('lists pending (oldest first) before settled (newest first), in a live region', () => {
    const out = renderReviews(viewer, { requests, filters: {} }).value;
    const order = ['a_pending_old', 'a_pending_new', 'a_settled_new', 'a_settled_old'].map((id) => out.indexOf(`>${id}</a>`));
    expect(order.every((i) => i > 0)).toBe(true);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(out.indexOf('>Pending')).toBeLessThan(out.indexOf('>Settled'));
    expect(out).toContain('data-live="reviews"');
    expect(out).toContain('href="/ui/reviews/a_pending_old"');
    expect(out).toContain('≈ 12,400 rows of orders');
    expect(out).toContain('1/2');
    expect(out).toContain('dev@example.com');
  });

  it('offers Approve and Deny with the CSRF token to approvers only, on pending requests only', () => {
    const out = renderReviews(approver, { requests, filters: {} }).value;
    expect(out).toContain('action="/ui/reviews/a_pending_old/approve"');
    expect(out).toContain('action="/ui/reviews/a_pending_new/deny"');
    expect(out).not.toContain('a_settled_new/approve');
    const forms = out.match(/<form method="post"[\s\S]*?<\/form>/g) ?? [];
    expect(forms).toHaveLength(4);
    for (const f of forms) expect(f).toContain('<input type="hidden" name="_csrf" value="csrf-tok-123">');
    expect(out).toMatch(/<label for="deny-reason-a_pending_old">/);
    const none = renderReviews(viewer, { requests, filters: {} }).value;
    expect(none).not.toContain('method="post"');
  });

  it('applies the filters', () => {
    const out = renderReviews(viewer, { requests: [...requests, request('a_other', { target: 'billing' })], filters: { target: 'billing' } }).value;
    expect(out).toContain('a_other');
    expect(out).not.toContain('a_pending_old');
  });

  it('shows one request with its decide forms, or why not, and a flash', () => {
    const yes = renderReview(approver, { request: requests[3]!, canDecide: true, message: 'Approved: 1 of 2' }).value;
    expect(yes).toContain('action="/ui/reviews/a_pending_old/approve"');
    expect(yes).toContain('name="_csrf" value="csrf-tok-123"');
    expect(yes).toContain('Approved: 1 of 2');
    expect(yes).toContain('agent:&lt;i&gt;nested&lt;/i&gt;');
    expect(yes).toContain('approved by <strong>U1</strong>');
    const no = renderReview(approver, { request: requests[3]!, canDecide: false, whyNot: 'you asked for this one' }).value;
    expect(no).not.toContain('method="post"');
    expect(no).toContain('you asked for this one');
    const retry = renderReview(approver, { request: requests[3]!, canDecide: true, whyNot: 'Say why you deny it.' }).value;
    expect(retry).toContain('Say why you deny it.');
    expect(retry).toContain('action="/ui/reviews/a_pending_old/deny"');
    expect(retry).toMatch(/name="reason" maxlength="2000" required/);
    const settled = renderReview(approver, { request: requests[0]!, canDecide: true }).value;
    expect(settled).not.toContain('method="post"');
    expect(settled).toContain('not the &lt;customers&gt; table');
  });
});

describe('sessions', () => {
  it('lists sessions with links and counts in a live region', () => {
    const out = renderSessions(viewer, {
      sessions: [session, { ...session, id: 's_open', endedAt: null, endReason: null, denied: 0 }],
      filters: { open: false },
    }).value;
    expect(out).toContain('data-live="sessions"');
    expect(out).toContain('href="/ui/sessions/s_7jerbtgkvp6pg87v"');
    expect(out).toContain('(1 denied)');
    expect(out).toContain('state-open');
  });

  it('shows one session: statements with offsets, decisions, approvals and samples, and a player', () => {
    const out = renderSession(viewer, { session, statements, approvals: requests, samples: new Map([[101, sample]]) }).value;
    expect(out).toContain('+1.234s');
    expect(out).toContain('+12.500s');
    expect(out).toContain('href="/ui/reviews/a_settled_new"');
    expect(out).toContain('by U1, U2');
    expect(out).toContain('<td class="null">NULL</td>');
    expect(out).toContain('denied by rule no-drop');
    expect(out).toContain('agent:planner');
    const player = out.slice(out.indexOf('<section data-player'));
    expect(player).toContain('aria-live="polite"');
    expect(player).toMatch(/<button type="button" data-action="play">Play<\/button>/);
    expect(player).toContain('<option value="10">10x</option>');
    const offsets = [...player.matchAll(/<li data-offset-ms="(\d+)"/g)].map((m) => Number(m[1]));
    expect(offsets).toEqual([1234, 4000, 12500]);
  });
});

describe('logins, policy, sign-in, errors', () => {
  it('lists refused logins with why', () => {
    const out = renderLogins(viewer, { logins: [refused] }).value;
    expect(out).toContain('Refused logins');
    expect(out).toContain('expired');
    expect(out).toContain('token expired &lt;at&gt; 06:00');
    expect(out).toContain('[::1]:40000');
  });

  it('lists policy versions with the active one marked, and one version with its diff', () => {
    const list = renderPolicy(viewer, { versions: [v1, v2] }).value;
    expect(list.indexOf('version 2')).toBeLessThan(list.indexOf('version 1'));
    expect(list).toMatch(/<tr class="active">\s*<th scope="row"><a href="\/ui\/policy\/2">/);
    const one = renderPolicyVersion(viewer, { version: v2, previous: v1, active: 2 }).value;
    expect(one).toContain('+ rule destructive-needs-approval: review destructive');
    expect(one).toContain('class="diff-added"');
    expect(one).toContain('&lt;b&gt;ask&lt;/b&gt;');
    expect(one).toContain('cli:&lt;dana&gt;');
  });

  it('signs in with OIDC or the admin token', () => {
    const out = renderSignIn(anonymous, { oidc: true, local: true, next: '/ui/sessions?x=1&y=2' }).value;
    expect(out).toContain('href="/ui/login/oidc?next=%2Fui%2Fsessions%3Fx%3D1%26y%3D2"');
    expect(out).toContain('action="/ui/login/local"');
    expect(out).toContain('<label for="admin-token">Admin token</label>');
    expect(out).toContain('type="password"');
    expect(out).toContain('name="_csrf" value="csrf-tok-123"');
    expect(out).toContain('name="next" value="/ui/sessions?x=1&amp;y=2"');
    const oidcOnly = renderSignIn(anonymous, { oidc: true, local: false }).value;
    expect(oidcOnly).not.toContain('login/local');
  });

  it('shows an error with its status', () => {
    const out = renderError(anonymous, 404, 'no request <a_x>').value;
    expect(out).toContain('404');
    expect(out).toContain('no request &lt;a_x&gt;');
  });
});
