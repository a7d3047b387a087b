// A target's upstream password read from a file (`targets.<name>.upstream_password_file`), kept current without a
// restart: read at start (unreadable: the broker does not start), re-read on SIGHUP, when it changes (fs.watch on its
// folder, since a Kubernetes secret mount replaces it by swapping a symlink, and on the file itself, re-armed after each
// read, for a write in place through a symlink) and by a cheap stat every 30 s in case a watch event is missed. Design: the shared Target's `upstream` is updated in place,
// the single source every connect reads (sessions, catalogs, cancel and KILL, privilege checks), so new
// connections use the new password while open ones keep theirs. At a reload an unreadable or empty file keeps the
// old password, logged and listed in /readyz warnings until a reload succeeds.
import { type FSWatcher, readFileSync, statSync, watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Target } from '../types.js';

/** The password in a file: its content, without the line break(s) an editor or `echo` leaves at the end. */
export function readPasswordFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new Error(`cannot read the password file ${file}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
  }
  const password = text.replace(/[\r\n]+$/, '');
  if (!password) throw new Error(`the password file ${file} is empty`);
  return password;
}

/** `url` with `password` as its password (the URL's own, if any, is replaced). */
export function withPassword(url: string, password: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error('the upstream is not a URL, so a password file cannot be applied to it');
  }
  if (!u.username) throw new Error('the upstream URL names no user for the password file to go with');
  u.password = encodeURIComponent(password);
  return u.toString();
}

/** The effective upstream URL of a configured target: its URL with the password file's content, if it has one. */
export function upstreamOf(t: { upstream: string; upstream_password_file?: string }): string {
  return t.upstream_password_file ? withPassword(t.upstream, readPasswordFile(t.upstream_password_file)) : t.upstream;
}

export interface SecretLog {
  info(msg: string, fields: Record<string, unknown>): void;
  error(msg: string, fields: Record<string, unknown>): void;
}

interface Entry {
  target: Target;
  file: string;
  /** The configured URL, whose password the file's content replaces. */
  base: string;
  /** What was last seen of the file (stat): a change re-reads it. */
  seen: string;
  /** Why the last reload kept the previous password (null: it did not). */
  problem: string | null;
  changedAt: Date;
  /** The watch on the file itself (the file a symlink leads to now), re-armed at each reload. */
  watcher: FSWatcher | null;
  /** A pending debounced reload. */
  timer: NodeJS.Timeout | null;
}

const DEBOUNCE_MS = 200;

/** Identity, size and time of the file a path leads to (symlinks followed), or the error that stopped the stat. */
function fingerprint(file: string): string {
  try {
    const s = statSync(file);
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch (e) {
    return `error:${(e as NodeJS.ErrnoException).code ?? 'unknown'}`;
  }
}

export class UpstreamSecrets {
  private readonly entries = new Map<string, Entry>();
  private readonly watchers: FSWatcher[] = [];
  private readonly watch: boolean;
  private poll: NodeJS.Timeout | null = null;

  /**
   * Reads every target's password file now and sets its `upstream`; throws (naming the target and the file) when
   * one cannot be read. `pollMs`: the stat fallback's period (0: none); `watch: false`: no fs.watch (SIGHUP and poll only).
   */
  constructor(
    files: { target: Target; file: string }[],
    private readonly log: SecretLog,
    opts: { pollMs?: number; watch?: boolean } = {},
  ) {
    this.watch = opts.watch !== false;
    for (const { target, file } of files) {
      const base = target.upstream;
      const seen = fingerprint(file);
      try {
        target.upstream = withPassword(base, readPasswordFile(file));
      } catch (e) {
        throw new Error(`targets.${target.name}.upstream_password_file: ${(e as Error).message}`);
      }
      this.entries.set(target.name, { target, file, base, seen, problem: null, changedAt: new Date(), watcher: null, timer: null });
    }
    if (!this.entries.size) return;
    if (this.watch) {
      this.watchFolders();
      for (const e of this.entries.values()) this.watchFile(e);
    }
    const pollMs = opts.pollMs ?? 30_000;
    if (pollMs > 0) {
      this.poll = setInterval(() => {
        for (const e of this.entries.values()) if (fingerprint(e.file) !== e.seen) this.reloadOne(e, 'the file changed');
      }, pollMs);
      this.poll.unref();
    }
  }

  /** Re-read every password file (SIGHUP); names the targets whose password changed. */
  reload(reason: string): string[] {
    const changed: string[] = [];
    for (const e of this.entries.values()) if (this.reloadOne(e, reason)) changed.push(e.target.name);
    return changed;
  }

  /** Reloads that kept the previous password, for /readyz. */
  warnings(): string[] {
    return [...this.entries.values()].flatMap((e) =>
      e.problem ? [`target ${e.target.name}: ${e.problem}; the password in use since ${e.changedAt.toISOString()} is kept`] : [],
    );
  }

  /** A connect to the target failed: when its password comes from a file, say which file and since when it is in use. */
  connectFailed(target: Target): void {
    const e = this.entries.get(target.name);
    if (!e) return;
    this.log.error("upstream connect failed for a target whose password is read from a file: check that the file holds the account's current password", {
      target: target.name,
      file: e.file,
      password_since: e.changedAt.toISOString(),
    });
  }

  close(): void {
    for (const w of this.watchers) w.close();
    this.watchers.length = 0;
    for (const e of this.entries.values()) {
      e.watcher?.close();
      e.watcher = null;
      if (e.timer) clearTimeout(e.timer);
    }
    if (this.poll) clearInterval(this.poll);
  }

  private reloadOne(e: Entry, reason: string): boolean {
    e.seen = fingerprint(e.file);
    if (this.watch) this.watchFile(e);
    let next: string;
    try {
      next = withPassword(e.base, readPasswordFile(e.file));
    } catch (err) {
      const problem = (err as Error).message;
      if (problem !== e.problem)
        this.log.error('upstream password file could not be re-read: the previous password is kept', {
          target: e.target.name,
          file: e.file,
          reason,
          error: problem,
        });
      e.problem = problem;
      return false;
    }
    e.problem = null;
    if (next === e.target.upstream) return false;
    e.target.upstream = next;
    e.changedAt = new Date();
    this.log.info('upstream password re-read from its file: new connections use it, open ones keep theirs', { target: e.target.name, file: e.file, reason });
    return true;
  }

  /** A reload of `e` in DEBOUNCE_MS, once however many events come meanwhile (a write is often several). */
  private schedule(e: Entry): void {
    if (e.timer) clearTimeout(e.timer);
    e.timer = setTimeout(() => {
      e.timer = null;
      this.reloadOne(e, 'the file changed');
    }, DEBOUNCE_MS);
  }

  /** The file as the path leads to it now; absent or unwatchable: the folder's watch and the poll still see it come back. */
  private watchFile(e: Entry): void {
    e.watcher?.close();
    e.watcher = null;
    try {
      const w = watch(e.file, { persistent: false }, () => this.schedule(e));
      w.on('error', () => w.close());
      e.watcher = w;
    } catch {
      // e.g. ENOENT during a swap: the next reload re-arms it
    }
  }

  /** One watch per folder: any event in it (a symlink swap renames entries other than the file) re-reads its files. */
  private watchFolders(): void {
    const byFolder = new Map<string, Entry[]>();
    for (const e of this.entries.values()) {
      const d = dirname(e.file);
      byFolder.set(d, [...(byFolder.get(d) ?? []), e]);
    }
    for (const [folder, entries] of byFolder) {
      try {
        const w = watch(folder, { persistent: false }, () => {
          for (const e of entries) this.schedule(e);
        });
        w.on('error', (err) => {
          this.log.error('watching the folder of an upstream password file stopped: changes are seen by the periodic check and SIGHUP', {
            folder,
            files: entries.map((e) => basename(e.file)),
            error: String(err),
          });
          w.close();
        });
        this.watchers.push(w);
      } catch (err) {
        this.log.error('cannot watch the folder of an upstream password file: changes are seen by the periodic check and SIGHUP', {
          folder,
          error: String(err),
        });
      }
    }
  }
}
