CREATE TABLE `policy_versions` (
	`version` integer PRIMARY KEY NOT NULL,
	`rules` text NOT NULL,
	`sha256` text NOT NULL,
	`author` text NOT NULL,
	`message` text,
	`applied_at` integer NOT NULL
);
--> statement-breakpoint
ALTER TABLE `approvals` ADD `policy_version` integer;--> statement-breakpoint
ALTER TABLE `approvals` ADD `estimate` text;--> statement-breakpoint
ALTER TABLE `statements` ADD `policy_version` integer;