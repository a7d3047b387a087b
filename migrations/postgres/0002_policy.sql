CREATE TABLE "policy_versions" (
	"version" integer PRIMARY KEY NOT NULL,
	"rules" jsonb NOT NULL,
	"sha256" text NOT NULL,
	"author" text NOT NULL,
	"message" text,
	"applied_at" timestamp (3) with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "approvals" ADD COLUMN "policy_version" integer;--> statement-breakpoint
ALTER TABLE "approvals" ADD COLUMN "estimate" jsonb;--> statement-breakpoint
ALTER TABLE "statements" ADD COLUMN "policy_version" integer;