PRAGMA foreign_keys=OFF;--> statement-breakpoint
CREATE TABLE `__new_statements` (
	`id` integer PRIMARY KEY NOT NULL,
	`session_id` text NOT NULL,
	`seq` integer NOT NULL,
	`sql` text NOT NULL,
	`protocol` text NOT NULL,
	`kinds` text NOT NULL,
	`decision` text NOT NULL,
	`rule_id` text,
	`message` text,
	`started_at` integer NOT NULL,
	`duration_ms` real,
	`tag` text,
	`rows` integer,
	`error` text,
	FOREIGN KEY (`session_id`) REFERENCES `sessions`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
INSERT INTO `__new_statements`("id", "session_id", "seq", "sql", "protocol", "kinds", "decision", "rule_id", "message", "started_at", "duration_ms", "tag", "rows", "error") SELECT "id", "session_id", "seq", "sql", "protocol", "kinds", "decision", "rule_id", "message", "started_at", "duration_ms", "tag", "rows", "error" FROM `statements`;--> statement-breakpoint
DROP TABLE `statements`;--> statement-breakpoint
ALTER TABLE `__new_statements` RENAME TO `statements`;--> statement-breakpoint
PRAGMA foreign_keys=ON;--> statement-breakpoint
CREATE UNIQUE INDEX `statements_session_seq_idx` ON `statements` (`session_id`,`seq`);--> statement-breakpoint
ALTER TABLE `sessions` DROP COLUMN `statement_count`;