// libpg-query (the PostgreSQL server's own parser, compiled to WebAssembly; ~15 MB resident once imported)
// behind the three calls the classifier and the engine make. Only loadPostgresParser() imports it: a broker
// without PostgreSQL targets never loads it. Until it is loaded every call throws, as libpg-query's own do
// before its loadModule(): callers treat a statement that does not parse as unknown (fail closed).
import type { ParseResult, ScanResult } from 'libpg-query';

type LibPgQuery = typeof import('libpg-query');

let lib: LibPgQuery | null = null;
let loading: Promise<void> | null = null;

/** libpg-query is WebAssembly: load it once (at start, when PostgreSQL targets exist), then parse synchronously. */
export function loadPostgresParser(): Promise<void> {
  loading ??= import('libpg-query').then(async (m) => {
    await m.loadModule();
    lib = m;
  });
  return loading;
}

function loaded(): LibPgQuery {
  if (!lib) throw new Error('the PostgreSQL parser is not loaded: call loadPostgresParser() first');
  return lib;
}

export const parseSync = (sql: string): ParseResult => loaded().parseSync(sql);
export const parsePlPgSQLSync = (sql: string): ParseResult => loaded().parsePlPgSQLSync(sql);
export const scanSync = (sql: string): ScanResult => loaded().scanSync(sql);
