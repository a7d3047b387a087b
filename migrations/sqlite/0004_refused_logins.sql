CREATE TABLE `refused_logins` (
	`id` integer PRIMARY KEY NOT NULL,
	`at` integer NOT NULL,
	`engine` text NOT NULL,
	`target` text,
	`client_address` text NOT NULL,
	`client_port` integer NOT NULL,
	`client_application` text,
	`db_user` text,
	`tls` integer NOT NULL,
	`reason` text NOT NULL,
	`message` text NOT NULL,
	`issuer` text,
	`subject` text,
	`token_id` text,
	`build` text
);
--> statement-breakpoint
CREATE INDEX `refused_logins_at_idx` ON `refused_logins` (`at`);