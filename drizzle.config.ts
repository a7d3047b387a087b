// drizzle-kit configuration: `npm run db:generate` writes a migration for every schema change.
// One folder per store dialect; the PostgreSQL dialect gets its own config when it lands.
import { defineConfig } from 'drizzle-kit';

export default defineConfig({
  dialect: 'sqlite',
  schema: './broker/store/schema.sqlite.ts',
  out: './migrations/sqlite',
});
