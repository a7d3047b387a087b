CREATE TABLE `approvals` (
	`id` text PRIMARY KEY NOT NULL,
	`target` text NOT NULL,
	`session_id` text NOT NULL,
	`statement_id` integer,
	`subject` text NOT NULL,
	`build` text,
	`claims` text NOT NULL,
	`actors` text NOT NULL,
	`sql` text NOT NULL,
	`kinds` text NOT NULL,
	`rule_id` text,
	`settings` text NOT NULL,
	`requested_at` integer NOT NULL,
	`expires_at` integer NOT NULL,
	`state` text NOT NULL,
	`approvals` text NOT NULL,
	`decided_by` text,
	`decided_at` integer,
	`reason` text,
	`message_channel` text,
	`message_ts` text,
	FOREIGN KEY (`session_id`) REFERENCES `sessions`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`statement_id`) REFERENCES `statements`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `approvals_session_idx` ON `approvals` (`session_id`);--> statement-breakpoint
CREATE INDEX `approvals_build_idx` ON `approvals` (`build`);--> statement-breakpoint
CREATE INDEX `approvals_requested_at_idx` ON `approvals` (`requested_at`);--> statement-breakpoint
CREATE INDEX `approvals_pending_idx` ON `approvals` (`requested_at`) WHERE "approvals"."state" = 'pending';--> statement-breakpoint
ALTER TABLE `statements` ADD `approval_id` text REFERENCES approvals(id);