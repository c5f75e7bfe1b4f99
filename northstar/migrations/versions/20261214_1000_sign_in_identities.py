"""Sign-in with OpenID Connect providers: ``auth.identities`` (a user's account at a provider, by the provider's
subject: seed 001's ``auth_provider`` and ``auth_provider_id``) and ``auth.sign_in_states`` (one trip to a provider
and back: the state's hash, the nonce, the PKCE verifier; used once). Like ``auth.users`` they belong to people, not
to an organization, and are read before anyone is signed in, so they carry no tenant policy.

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-14 10:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0034"
down_revision: str | None = "0033"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "northstar_app"


def upgrade() -> None:
    op.execute("""
        CREATE TABLE auth.identities (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          user_id uuid NOT NULL,
          auth_provider varchar(40) NOT NULL,
          auth_provider_id varchar(255) NOT NULL,
          created_at timestamptz DEFAULT now() NOT NULL,
          last_used_at timestamptz,
          CONSTRAINT pk_identities PRIMARY KEY (id),
          CONSTRAINT fk_identities_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
          CONSTRAINT uq_identities_provider_subject UNIQUE (auth_provider, auth_provider_id),
          CONSTRAINT uq_identities_user_provider UNIQUE (user_id, auth_provider)
        )""")
    op.execute("CREATE INDEX ix_auth_identities_user_id ON auth.identities (user_id)")
    op.execute("""
        CREATE TABLE auth.sign_in_states (
          id uuid DEFAULT gen_random_uuid() NOT NULL,
          state_hash varchar(64) NOT NULL,
          provider varchar(40) NOT NULL,
          nonce varchar(64) NOT NULL,
          code_verifier varchar(128) NOT NULL,
          link_user_id uuid,
          return_to text NOT NULL,
          expires_at timestamptz NOT NULL,
          used_at timestamptz,
          CONSTRAINT pk_sign_in_states PRIMARY KEY (id),
          CONSTRAINT fk_sign_in_states_link_user_id_users FOREIGN KEY (link_user_id)
            REFERENCES auth.users (id) ON DELETE CASCADE,
          CONSTRAINT uq_sign_in_states_state_hash UNIQUE (state_hash)
        )""")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON auth.identities, auth.sign_in_states TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP TABLE auth.sign_in_states")
    op.execute("DROP TABLE auth.identities")
