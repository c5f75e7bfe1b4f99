"""Alerts (seed 000's Notifications table: "configuration and history of alerts (email, Slack, in-app)"), in a
schema of its own:

* ``alerts.channels``: shared Slack destinations (an incoming webhook, or a bot token and its channel), encrypted;
* ``alerts.rules``, ``alerts.rule_recipients``, ``alerts.rule_channels``: when to alert, and whom;
* ``alerts.preferences``: each member's channels per rule kind, time zone, quiet hours and digest;
* ``alerts.firings``: what fired, once per rule, day and subject;
* ``alerts.deliveries``: each firing on each channel, with its status, attempts and last error;
* ``alerts.inbox``: the in-app notifications.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-08 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "northstar_app"
CURRENT_ORG = "nullif(current_setting('northstar.org_id', true), '')::uuid"
TABLES = ("channels", "rules", "rule_recipients", "rule_channels", "preferences", "firings", "deliveries", "inbox")


def _org(table: str) -> str:
    return (
        f"CONSTRAINT fk_{table}_org_id_organizations FOREIGN KEY (org_id)"
        " REFERENCES core.organizations (id) ON DELETE CASCADE"
    )


def _member(table: str) -> str:
    return (
        f"CONSTRAINT fk_{table}_member FOREIGN KEY (org_id, user_id)"
        " REFERENCES core.memberships (org_id, user_id) ON DELETE CASCADE"
    )


def _tenant(table: str, column: str, target: str, name: str) -> str:
    return (
        f"CONSTRAINT fk_{table}_{name} FOREIGN KEY (org_id, {column})"
        f" REFERENCES alerts.{target} (org_id, id) ON DELETE CASCADE"
    )


def upgrade() -> None:
    op.execute("CREATE SCHEMA alerts")
    op.execute(f"""
        CREATE TABLE alerts.channels (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          org_id uuid NOT NULL,
          name varchar(200) NOT NULL,
          kind varchar(20) NOT NULL,
          target varchar(100) DEFAULT '' NOT NULL,
          secret_encrypted text NOT NULL,
          status varchar(10) DEFAULT 'active' NOT NULL,
          failing_since timestamptz,
          last_error text,
          disabled_at timestamptz,
          created_by uuid,
          created_at timestamptz DEFAULT now() NOT NULL,
          updated_at timestamptz DEFAULT now() NOT NULL,
          CONSTRAINT pk_channels PRIMARY KEY (id),
          CONSTRAINT uq_channels_org_id_id UNIQUE (org_id, id),
          {_org("channels")},
          CONSTRAINT ck_channels_kind CHECK (kind IN ('slack_webhook', 'slack_bot')),
          CONSTRAINT ck_channels_status CHECK (status IN ('active', 'disabled'))
        )""")
    op.execute(f"""
        CREATE TABLE alerts.rules (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          org_id uuid NOT NULL,
          name varchar(200) NOT NULL,
          kind varchar(20) NOT NULL,
          params jsonb NOT NULL,
          cooldown_minutes integer NOT NULL,
          enabled boolean DEFAULT true NOT NULL,
          last_evaluated_at timestamptz,
          last_error text,
          created_by uuid,
          created_at timestamptz DEFAULT now() NOT NULL,
          updated_at timestamptz DEFAULT now() NOT NULL,
          CONSTRAINT pk_rules PRIMARY KEY (id),
          CONSTRAINT uq_rules_org_id_id UNIQUE (org_id, id),
          {_org("rules")},
          CONSTRAINT ck_rules_kind CHECK (kind IN ('threshold', 'change', 'anomaly', 'goal', 'integration', 'report')),
          CONSTRAINT ck_rules_cooldown CHECK (cooldown_minutes >= 0)
        )""")
    op.execute("CREATE INDEX ix_rules_org_id_created_at ON alerts.rules (org_id, created_at)")
    op.execute(f"""
        CREATE TABLE alerts.rule_recipients (
          org_id uuid NOT NULL,
          rule_id uuid NOT NULL,
          user_id uuid NOT NULL,
          CONSTRAINT pk_rule_recipients PRIMARY KEY (rule_id, user_id),
          {_tenant("rule_recipients", "rule_id", "rules", "rule")},
          {_member("rule_recipients")}
        )""")
    op.execute(f"""
        CREATE TABLE alerts.rule_channels (
          org_id uuid NOT NULL,
          rule_id uuid NOT NULL,
          channel_id uuid NOT NULL,
          CONSTRAINT pk_rule_channels PRIMARY KEY (rule_id, channel_id),
          {_tenant("rule_channels", "rule_id", "rules", "rule")},
          {_tenant("rule_channels", "channel_id", "channels", "channel")}
        )""")
    op.execute(f"""
        CREATE TABLE alerts.preferences (
          org_id uuid NOT NULL,
          user_id uuid NOT NULL,
          time_zone varchar(64),
          quiet_start time,
          quiet_end time,
          digest boolean DEFAULT false NOT NULL,
          digest_hour smallint DEFAULT 8 NOT NULL,
          channels jsonb DEFAULT '{{}}'::jsonb NOT NULL,
          email_failing_since timestamptz,
          email_last_error text,
          email_disabled_at timestamptz,
          updated_at timestamptz DEFAULT now() NOT NULL,
          CONSTRAINT pk_preferences PRIMARY KEY (org_id, user_id),
          {_member("preferences")},
          CONSTRAINT ck_preferences_digest_hour CHECK (digest_hour BETWEEN 0 AND 23),
          CONSTRAINT ck_preferences_quiet_hours CHECK ((quiet_start IS NULL) = (quiet_end IS NULL))
        )""")
    op.execute(f"""
        CREATE TABLE alerts.firings (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          org_id uuid NOT NULL,
          rule_id uuid NOT NULL,
          day date NOT NULL,
          subject varchar(200) NOT NULL,
          title text NOT NULL,
          body text NOT NULL,
          url text,
          facts jsonb DEFAULT '{{}}'::jsonb NOT NULL,
          fired_at timestamptz DEFAULT now() NOT NULL,
          resolved_at timestamptz,
          CONSTRAINT pk_firings PRIMARY KEY (id),
          CONSTRAINT uq_firings_org_id_id UNIQUE (org_id, id),
          CONSTRAINT uq_firings_rule_id_day_subject UNIQUE (rule_id, day, subject),
          {_tenant("firings", "rule_id", "rules", "rule")}
        )""")
    op.execute("CREATE INDEX ix_firings_rule_subject ON alerts.firings (org_id, rule_id, subject, fired_at)")
    op.execute(f"""
        CREATE TABLE alerts.deliveries (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          org_id uuid NOT NULL,
          firing_id uuid,
          digest_id uuid,
          in_digest boolean DEFAULT false NOT NULL,
          channel varchar(10) NOT NULL,
          user_id uuid,
          channel_id uuid,
          status varchar(10) NOT NULL,
          not_before timestamptz,
          attempts integer DEFAULT 0 NOT NULL,
          last_error text,
          sent_at timestamptz,
          created_at timestamptz DEFAULT now() NOT NULL,
          updated_at timestamptz DEFAULT now() NOT NULL,
          CONSTRAINT pk_deliveries PRIMARY KEY (id),
          CONSTRAINT uq_deliveries_org_id_id UNIQUE (org_id, id),
          {_tenant("deliveries", "firing_id", "firings", "firing")},
          {_tenant("deliveries", "digest_id", "deliveries", "digest")},
          {_tenant("deliveries", "channel_id", "channels", "channel")},
          {_member("deliveries")},
          CONSTRAINT ck_deliveries_channel CHECK (channel IN ('email', 'in_app', 'slack')),
          CONSTRAINT ck_deliveries_status CHECK (status IN ('queued', 'held', 'sending', 'retrying', 'sent', 'failed',
                                                            'skipped', 'digested')),
          CONSTRAINT ck_deliveries_target CHECK (
            (channel = 'slack' AND channel_id IS NOT NULL AND user_id IS NULL)
            OR (channel <> 'slack' AND user_id IS NOT NULL AND channel_id IS NULL)),
          CONSTRAINT ck_deliveries_digest CHECK (firing_id IS NOT NULL OR channel = 'email')
        )""")
    op.execute("CREATE INDEX ix_deliveries_org_id_created_at ON alerts.deliveries (org_id, created_at)")
    op.execute("CREATE INDEX ix_deliveries_status ON alerts.deliveries (org_id, status, not_before)")
    op.execute(f"""
        CREATE TABLE alerts.inbox (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          org_id uuid NOT NULL,
          user_id uuid NOT NULL,
          delivery_id uuid,
          kind varchar(20) NOT NULL,
          title text NOT NULL,
          body text NOT NULL,
          url text,
          read_at timestamptz,
          created_at timestamptz DEFAULT now() NOT NULL,
          CONSTRAINT pk_inbox PRIMARY KEY (id),
          CONSTRAINT uq_inbox_delivery_id UNIQUE (delivery_id),
          {_member("inbox")}
        )""")
    op.execute("CREATE INDEX ix_inbox_user ON alerts.inbox (org_id, user_id, created_at)")
    for table in TABLES:
        op.execute(f"ALTER TABLE alerts.{table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE alerts.{table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON alerts.{table} USING (org_id = {CURRENT_ORG})")
    op.execute(f"GRANT USAGE ON SCHEMA alerts TO {APP_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA alerts TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP SCHEMA alerts CASCADE")
