// drizzle-kit configuration of the PostgreSQL store dialect: `npm run db:generate:pg` writes a migration
// under migrations/postgres for every change to broker/store/schema.pg.ts (no database needed).
import { defineConfig } from 'drizzle-kit';

export default defineConfig({
  dialect: 'postgresql',
  schema: './broker/store/schema.pg.ts',
  out: './migrations/postgres',
});
