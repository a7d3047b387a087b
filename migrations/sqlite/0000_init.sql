CREATE TABLE `sessions` (
	`id` text PRIMARY KEY NOT NULL,
	`target` text NOT NULL,
	`engine` text NOT NULL,
	`subject` text NOT NULL,
	`issuer` text NOT NULL,
	`build` text,
	`claims` text NOT NULL,
	`actors` text NOT NULL,
	`token_id` text,
	`client_address` text NOT NULL,
	`client_port` integer NOT NULL,
	`client_application` text,
	`db_user` text,
	`tls` integer NOT NULL,
	`started_at` integer NOT NULL,
	`ended_at` integer,
	`end_reason` text,
	`statement_count` integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE INDEX `sessions_build_idx` ON `sessions` (`build`);--> statement-breakpoint
CREATE INDEX `sessions_started_at_idx` ON `sessions` (`started_at`);--> statement-breakpoint
CREATE INDEX `sessions_open_idx` ON `sessions` (`started_at`) WHERE "sessions"."ended_at" IS NULL;--> statement-breakpoint
CREATE TABLE `statements` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
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
CREATE UNIQUE INDEX `statements_session_seq_idx` ON `statements` (`session_id`,`seq`);