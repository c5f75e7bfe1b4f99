"""Migrations and models agree, and the migration chain goes down and up again cleanly."""

from __future__ import annotations

import secrets

import psycopg
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import make_url

from northstar.migrations import current_revision, head_revision, upgrade
from northstar.migrations.registry import include_name, target_metadata


def test_models_match_the_migrated_schema(database_url: str) -> None:
    engine = create_engine(make_url(database_url).set(drivername="postgresql+psycopg"), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "include_schemas": True,
                "include_name": include_name,
                "compare_type": True,
            },
        )
        differences = compare_metadata(context, target_metadata)
    engine.dispose()
    assert differences == []


def test_downgrade_to_base_and_upgrade_again(database_url: str) -> None:
    from alembic import command

    from northstar.migrations import alembic_config

    name = f"northstar_migrate_{secrets.token_hex(3)}"
    server = make_url(database_url)
    with psycopg.connect(
        server.set(drivername="postgresql").render_as_string(hide_password=False), autocommit=True
    ) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        assert current_revision(url) == head_revision()
        command.downgrade(alembic_config(url), "base")
        assert current_revision(url) is None
        upgrade(url)
        assert current_revision(url) == head_revision()
    finally:
        with psycopg.connect(
            server.set(drivername="postgresql").render_as_string(hide_password=False), autocommit=True
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
