CREATE TABLE `revocations` (
	`id` integer PRIMARY KEY NOT NULL,
	`build` text,
	`jti` text,
	`reason` text NOT NULL,
	`revoked_by` text NOT NULL,
	`revoked_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `revocations_build_idx` ON `revocations` (`build`);--> statement-breakpoint
CREATE INDEX `revocations_jti_idx` ON `revocations` (`jti`);--> statement-breakpoint
CREATE TABLE `statement_samples` (
	`statement_id` integer PRIMARY KEY NOT NULL,
	`columns` text NOT NULL,
	`rows` text NOT NULL,
	`truncated` integer NOT NULL,
	`bytes` integer NOT NULL,
	FOREIGN KEY (`statement_id`) REFERENCES `statements`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `token_uses` (
	`jti` text PRIMARY KEY NOT NULL,
	`issuer` text NOT NULL,
	`session_id` text,
	`used_at` integer NOT NULL,
	`expires_at` integer NOT NULL,
	FOREIGN KEY (`session_id`) REFERENCES `sessions`(`id`) ON UPDATE no action ON DELETE no action
);
