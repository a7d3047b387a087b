// The store: everything the broker persists goes through the Store interface (types.ts). This is its
// front door: the contract, the ids, and openStore(), which picks a dialect by the store URL.
import type { Store } from './types.js';

export type * from './types.js';
export * from './ids.js';

/**
 * Opens the store named by a URL and brings its schema up to date:
 * `sqlite:/abs/path.db`, `sqlite:relative/path.db` (against the cwd), `sqlite::memory:`, or
 * `postgres://user:pass@host:5432/db` (`postgresql://` too; see pg.ts).
 */
export async function openStore(url: string): Promise<Store> {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'sqlite') {
    let path = url.slice('sqlite:'.length);
    if (path.startsWith('//')) path = path.slice(2); // sqlite:///abs/path.db
    if (path === '') throw new Error('store URL "sqlite:" names no file: use sqlite:/path/to/broker.db or sqlite::memory:');
    const { openSqliteStore } = await import('./sqlite.js');
    return openSqliteStore(path);
  }
  if (scheme === 'postgres' || scheme === 'postgresql') {
    // Errors name the host and database only, never the URL: it carries the store's password.
    const { openPgStore } = await import('./pg.js');
    return openPgStore(url);
  }
  throw new Error(
    `store: unsupported URL scheme ${scheme ? `"${scheme}:"` : '(none)'}; expected sqlite:/path/to/file.db, sqlite::memory: or postgres://user:pass@host:5432/db`,
  );
}
