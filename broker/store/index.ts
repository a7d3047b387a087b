// The store: everything the broker persists goes through the Store interface (types.ts). This is its
// front door: the contract, the ids, and openStore(), which picks a dialect by the store URL.
import type { Store } from './types.js';

export type * from './types.js';
export * from './ids.js';

/**
 * Opens the store named by a URL and brings its schema up to date:
 * `sqlite:/abs/path.db`, `sqlite:relative/path.db` (against the cwd), `sqlite::memory:`.
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
    // Never echo the URL: it carries the store's password.
    throw new Error(
      'store: PostgreSQL is not supported until the PostgreSQL store dialect lands; ' +
        'use the embedded store for now (store: sqlite:/var/lib/jit-broker/broker.db)',
    );
  }
  throw new Error(`store: unsupported URL scheme ${scheme ? `"${scheme}:"` : '(none)'}; expected sqlite:/path/to/file.db or sqlite::memory:`);
}
