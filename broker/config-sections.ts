// Sections of the config file with a shape of their own: a target (with its session roles), Slack, masking and
// the web console. config.ts puts them together with the rest of the file's schema.
import { z } from 'zod';
import { duration, globMap, kind } from './config-primitives.js';
import { BUILTIN_DETECTORS, patternProblem } from './masking/detectors.js';
import { MASKERS } from './masking/maskers.js';

/** A group role a session may be made a member of (quoted by the engine: letters, digits, `_ $ . -`). */
const groupRole = z.string().regex(/^[A-Za-z_][A-Za-z0-9_$.-]{0,62}$/, 'a role name is letters, digits, _ $ . - (at most 63)');

/** `targets.<name>.session_roles`: a database role per session (docs/session-roles.md). */
export const sessionRoles = z.strictObject({
  /** Start of every session role's name (then the session id): at most 14 characters, so a name fits MySQL's 32. */
  prefix: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,13}$/, 'prefix is 1 to 14 lower-case letters, digits, _ (not starting with a digit)')
    .default('jit_'),
  /** The first grant whose selectors all match the identity gives its roles. */
  grants: z
    .array(
      z
        .strictObject({
          scopes: z.array(kind).optional(),
          claims: globMap.optional(),
          subjects: z.array(z.string()).optional(),
          builds: z.array(z.string()).optional(),
          roles: z.array(groupRole).min(1),
        })
        .refine((g) => g.scopes || g.claims || g.subjects || g.builds, 'a grant needs scopes, claims, subjects or builds (`default` is for everyone else)'),
    )
    .default([]),
  /** The roles of an identity no grant matches; empty: its login is refused. */
  default: z.array(groupRole).default([]),
  /** A role whose session the store does not know is dropped once it has been seen so this long. */
  sweep_grace: duration.default(300),
});
export type SessionRolesConfig = z.infer<typeof sessionRoles>;

export const target = z.strictObject({
  engine: z.enum(['postgres', 'mysql']),
  /** Upstream URL with the broker's own credentials, or `demo` for the embedded demo database. */
  upstream: z.string().min(1),
  /** A file holding the upstream password (replaces the URL's); re-read on SIGHUP and when it changes (broker/engines/upstream-secret.ts). */
  upstream_password_file: z.string().min(1).optional(),
  /**
   * How long the target's catalog (functions, operators, views), read to judge what a statement calls, is trusted
   * before it is read again (seconds; absent: 60); DDL that goes through the broker has it read again once committed.
   */
  catalog_ttl: duration.refine((s) => s >= 1, 'catalog_ttl must be at least 1s').optional(),
  /** A database role per session, made a member of the group roles its identity is granted; absent: the broker's own account. */
  session_roles: sessionRoles.optional(),
});

/** Slack app settings, for the bot (`bot/`); absent: the broker runs without Slack (approvals via CLI/API). */
export const slack = z.strictObject({
  /** Bot user OAuth token. */
  bot_token: z.string().startsWith('xoxb-', 'a Slack bot token starts with xoxb-'),
  /** Signing secret, to verify requests Slack sends to the broker's HTTP listener. */
  signing_secret: z.string().min(1),
  /** App-level token for Socket Mode (no public HTTP endpoint needed). */
  app_token: z.string().startsWith('xapp-', 'a Slack app-level token starts with xapp-').optional(),
  /** Channel (id C… or #name) where approval requests are posted. */
  channel: z.string().min(1),
  /** Slack Web API base URL (tests point it at a fake). Default: https://slack.com/api/ */
  api_url: z.url().optional(),
});
export type SlackConfig = z.infer<typeof slack>;

/** One `masking:` rule: exactly one of columns / detect / derived, a masker, and whom it applies to. */
export const maskRule = z
  .strictObject({
    id: z.string().min(1).optional(),
    /** `table.column` or `schema.table.column` globs, resolved against the catalog (aliases, views, subqueries). */
    columns: z
      .array(z.string().regex(/^[^.\s]+(\.[^.\s]+){1,2}$/, 'a column is table.column or schema.table.column (globs allowed)'))
      .min(1)
      .optional(),
    /** Detectors: card, email, ssn, or names under masking.detectors. */
    detect: z.array(z.string().min(1)).min(1).optional(),
    /** Result columns computed by an expression (their origin is lost) with a type that can carry text. */
    derived: z.literal(true).optional(),
    /** The masker (`with: null` in YAML is the null masker, not a missing value). */
    with: z.preprocess((v) => (v === null ? 'null' : v), z.enum(MASKERS)),
    /** `partial`: characters left visible at the end (default 4) / at the start (default 0). */
    keep_last: z.number().int().min(0).max(64).optional(),
    keep_first: z.number().int().min(0).max(64).optional(),
    targets: z.array(z.string()).optional(),
    subjects: z.array(z.string()).optional(),
    builds: z.array(z.string()).optional(),
    claims: globMap.optional(),
  })
  .superRefine((r, ctx) => {
    const selectors = [r.columns, r.detect, r.derived].filter((x) => x !== undefined).length;
    if (selectors !== 1) ctx.addIssue({ code: 'custom', message: 'a masking rule has exactly one of columns, detect, derived' });
    if (r.with !== 'partial' && (r.keep_last !== undefined || r.keep_first !== undefined))
      ctx.addIssue({ code: 'custom', path: ['keep_last'], message: 'keep_last / keep_first go with `with: partial`' });
  });

/** `masking:` is a list of rules, or an object with rules, named detectors and the hash key. */
export const masking = z.preprocess(
  (v) => (Array.isArray(v) ? { rules: v } : v),
  z
    .strictObject({
      rules: z.array(maskRule).default([]),
      detectors: z
        .record(z.string().regex(/^[a-z][a-z0-9_]*$/, 'detector names are lower-case letters, digits, _'), z.string().min(1))
        .default({})
        .superRefine((d, ctx) => {
          for (const [name, src] of Object.entries(d)) {
            if ((BUILTIN_DETECTORS as readonly string[]).includes(name))
              ctx.addIssue({ code: 'custom', path: [name], message: `'${name}' is a built-in detector` });
            const problem = patternProblem(src);
            if (problem) ctx.addIssue({ code: 'custom', path: [name], message: `not a usable regular expression: ${problem}` });
          }
        }),
      /** Key of the `hash` masker (16+ characters); absent: generated under data_dir (masking.key). */
      hash_key: z.string().min(16).optional(),
    })
    .superRefine((m, ctx) => {
      m.rules.forEach((r, i) => {
        for (const [j, name] of (r.detect ?? []).entries()) {
          if (!(BUILTIN_DETECTORS as readonly string[]).includes(name) && !Object.hasOwn(m.detectors, name))
            ctx.addIssue({
              code: 'custom',
              path: ['rules', i, 'detect', j],
              message: `unknown detector '${name}' (built-in: ${BUILTIN_DETECTORS.join(', ')}; or define it under masking.detectors)`,
            });
        }
      });
    }),
);
export type MaskingSettings = z.infer<typeof masking>;

/** The web console at /ui/ on the HTTP listener (broker/ui, docs/console.md). */
export const ui = z
  .strictObject({
    enabled: z.boolean().default(true),
    /** Where people reach the broker's HTTP listener (https://jit.example.com): Slack links to `<public_url>/ui/reviews/<id>`; the sign-in redirect is built on it. */
    public_url: z
      .url()
      .refine((u) => /^https?:\/\//.test(u), 'public_url is an http(s) URL')
      .transform((u) => u.replace(/\/+$/, ''))
      .optional(),
    /** Sign-in through OpenID Connect (authorization code flow with PKCE). Absent: the local sign-in with the admin token, from loopback only. */
    oidc: z
      .strictObject({
        issuer: z
          .url()
          .refine(
            (u) => u.startsWith('https://') || /^http:\/\/(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?(\/|$)/.test(u),
            'ui.oidc.issuer is an https URL (plain http only on this machine)',
          ),
        client_id: z.string().min(1),
        /** Absent: a public client (PKCE only). */
        client_secret: z.string().min(1).optional(),
        scopes: z.array(z.string().min(1)).default(['openid', 'email', 'profile']),
        /** The ID token claim that lists the person's groups, matched against the review rules' `@group` approvers. */
        groups_claim: z.string().min(1).default('groups'),
      })
      .optional(),
    /** Who may view, by ID token claims (globs, as a rule's `claims`); absent: anyone who signs in through OIDC. */
    viewers: globMap.optional(),
    /** How long a sign-in lasts. Default 8h. */
    session_ttl: duration.refine((s) => s >= 60, 'session_ttl must be at least 1m').default(8 * 3600),
  })
  .prefault({});
export type UiConfig = z.infer<typeof ui>;
