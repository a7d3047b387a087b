// node-sql-parser's MySQL and MariaDB grammars, each from its own build (~10 MB resident apiece) instead of
// the package's all-dialects entry (~30 MB), and each loaded on first use: a broker without MySQL targets
// loads neither, and the MariaDB grammar only loads for a statement the MySQL grammar cannot read.
import { createRequire } from 'node:module';
import type { Parser } from 'node-sql-parser/build/mysql.js';

export type Grammar = 'MySQL' | 'MariaDB';

/** The builds are CommonJS and the classifier is synchronous: require() loads one in the middle of a parse. */
const require = createRequire(import.meta.url);
const BUILDS: Record<Grammar, string> = { MySQL: 'node-sql-parser/build/mysql.js', MariaDB: 'node-sql-parser/build/mariadb.js' };
const parsers = new Map<Grammar, Parser>();

/** The parser of one grammar, loading its build the first time. */
export function grammar(name: Grammar): Parser {
  let p = parsers.get(name);
  if (!p) {
    // require() is untyped; each build's own .d.ts (build/mysql.d.ts, build/mariadb.d.ts) declares this export.
    const build = require(BUILDS[name]) as { Parser: typeof Parser };
    p = new build.Parser();
    parsers.set(name, p);
  }
  return p;
}

/** Loads the MySQL grammar now (the broker does at start when it serves MySQL targets): the first statement does not wait for it. */
export function loadMysqlParser(): void {
  grammar('MySQL');
}
