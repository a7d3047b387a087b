CREATE TABLE `counters` (
	`name` text PRIMARY KEY NOT NULL,
	`next` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `journal_state` (
	`journal` text PRIMARY KEY NOT NULL,
	`segment` integer NOT NULL,
	`offset` integer NOT NULL,
	`updated_at` integer NOT NULL
);
