// Who may decide: Slack users and their e-mail (users.info, users.lookupByEmail), user groups
// (usergroups.list / usergroups.users.list). Everything cached for a few minutes; lookups that fail
// are not cached and count against the clicker (fail closed).
import type { webApi } from '@slack/bolt';
import { groupApprovers, isListedApprover, isOwnRequest } from '../broker/approvals/approvers.js';
import type { ApprovalRequest } from '../broker/approvals/types.js';
import { esc } from './format.js';
import type { BotLog } from './ports.js';

/** `groups`: the user groups of the approvers list the user was verified in (for DecisionInput.groups). */
type Check = { ok: true; email: string | null; groups: string[] } | { ok: false; code: 'not_approver' | 'own_request' | 'lookup_failed'; message: string };

class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; until: number }>();
  constructor(private readonly ttlMs: number) {}
  async get(key: string, load: () => Promise<V>): Promise<V> {
    const hit = this.entries.get(key);
    if (hit && hit.until > Date.now()) return hit.value;
    const value = await load();
    this.entries.set(key, { value, until: Date.now() + this.ttlMs });
    if (this.entries.size > 5000) this.entries.delete(this.entries.keys().next().value as string);
    return value;
  }
}

export class Directory {
  private readonly emails: TtlCache<string | null>;
  private readonly ids: TtlCache<string | null>;
  private readonly groups: TtlCache<Set<string> | null>;
  private readonly handles: TtlCache<Map<string, string>>;

  constructor(
    private readonly client: webApi.WebClient,
    private readonly log: BotLog,
    ttlMs = 5 * 60_000,
  ) {
    this.emails = new TtlCache(ttlMs);
    this.ids = new TtlCache(ttlMs);
    this.groups = new TtlCache(ttlMs);
    this.handles = new TtlCache(ttlMs);
  }

  /** A Slack user's e-mail (lower case), null when the profile has none. Rejects when Slack cannot say. */
  email(userId: string): Promise<string | null> {
    return this.emails.get(userId, async () => {
      const res = await this.client.users.info({ user: userId });
      return res.user?.profile?.email?.toLowerCase() ?? null;
    });
  }

  /** The Slack user with this e-mail, null when there is none. */
  userIdForEmail(email: string): Promise<string | null> {
    return this.ids.get(email.toLowerCase(), async () => {
      try {
        const res = await this.client.users.lookupByEmail({ email });
        return res.user?.id ?? null;
      } catch (e) {
        if (platformError(e) === 'users_not_found') return null;
        throw e;
      }
    });
  }

  /** Members of a user group given as `@handle` or its id `S…`; null when no such group. */
  groupMembers(ref: string): Promise<Set<string> | null> {
    return this.groups.get(ref, async () => {
      let id: string | undefined = ref;
      if (ref.startsWith('@')) {
        const byHandle = await this.handles.get('*', async () => {
          const res = await this.client.usergroups.list({ include_disabled: false });
          return new Map((res.usergroups ?? []).flatMap((g) => (g.handle && g.id ? [[g.handle.toLowerCase(), g.id] as const] : [])));
        });
        id = byHandle.get(ref.slice(1).toLowerCase());
        if (!id) return null;
      }
      try {
        const res = await this.client.usergroups.users.list({ usergroup: id });
        return new Set(res.users ?? []);
      } catch (e) {
        if (platformError(e) === 'no_such_subteam') return null;
        throw e;
      }
    });
  }

  /**
   * Whether `userId` may decide `req` (`approve`: approve it, else deny it): listed (directly, by e-mail, or
   * through a group), and not the requester when approving — the core's rule: a requester may deny (withdraw)
   * their own request, never approve it.
   */
  async check(req: ApprovalRequest, userId: string, approve: boolean): Promise<Check> {
    let email: string | null;
    try {
      email = await this.email(userId);
    } catch (e) {
      this.log.warn({ err: e, user: userId }, 'slack: users.info failed; refusing the click');
      return { ok: false, code: 'lookup_failed', message: 'Slack could not tell me who you are right now, so nothing changed. Try again in a moment.' };
    }
    // The approvals core's own rules (broker/approvals/approvers.ts): the bot adds only what Slack knows.
    if (approve && isOwnRequest(req, { by: userId, email })) {
      return { ok: false, code: 'own_request', message: 'This is your own request: someone else has to decide it. Nothing changed.' };
    }
    const approvers = req.settings.approvers;
    if (isListedApprover(approvers, { by: userId, email })) return { ok: true, email, groups: [] };
    const groups: string[] = [];
    let groupTrouble = false;
    for (const g of groupApprovers(approvers)) {
      try {
        if ((await this.groupMembers(g))?.has(userId)) groups.push(g);
      } catch (e) {
        groupTrouble = true;
        this.log.warn({ err: e, group: g }, 'slack: could not read a user group');
      }
    }
    if (groups.length) return { ok: true, email, groups };
    const listed = approvers.map((a) => (/^[UW][A-Z0-9]+$/.test(a) ? `<@${a}>` : /^S[A-Z0-9]+$/.test(a) ? `<!subteam^${a}>` : esc(a))).join(', ');
    return {
      ok: false,
      code: 'not_approver',
      message:
        `You are not an approver for this request (approvers: ${listed}), so nothing changed.` +
        (groupTrouble ? ' Some user groups could not be read from Slack just now; try again in a moment if you are in one.' : ''),
    };
  }
}

/** The `error` of a Slack platform error (`{ ok: false, error }`), if that is what `e` is. */
export function platformError(e: unknown): string | null {
  if (typeof e === 'object' && e !== null && 'data' in e) {
    const data = (e as { data?: { error?: unknown } }).data;
    if (typeof data?.error === 'string') return data.error;
  }
  return null;
}
