"""Custom field definitions of an organization: CRUD, and the definitions ingestion checks values against.

Ingestion reads definitions through ``FieldDefinitions``, a per-process cache by organization that is dropped
whenever a definition changes anywhere (the table's trigger publishes ``socialproof.changed``), so the widget's
collection path costs no lookup per batch.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.cache import SharedCache
from northstar.core.db import Database, fetch_page, flush_unique, get_in_org, set_tenant_context
from northstar.core.http import Unprocessable
from northstar.socialproof.customfields import FieldDefinition
from northstar.socialproof.models import CustomFieldDefinition
from northstar.socialproof.schemas.profiles import CustomFieldCreate, CustomFieldOut, FieldType

KEY_TAKEN = "A custom field with this key exists already"
Definitions = Mapping[str, FieldDefinition]


def field_out(field: CustomFieldDefinition) -> CustomFieldOut:
    return CustomFieldOut(
        id=field.id,
        name=field.name,
        key=field.key,
        type=cast(FieldType, field.field_type),  # the table's check allows no other
        options=list(field.options),
        required=field.required,
        default=field.default_value,
        created_at=field.created_at,
        updated_at=field.updated_at,
    )


async def list_fields(
    session: AsyncSession, *, org_id: uuid.UUID, offset: int, limit: int
) -> tuple[list[CustomFieldDefinition], int]:
    query = select(CustomFieldDefinition).where(CustomFieldDefinition.org_id == org_id)
    return await fetch_page(session, query.order_by(CustomFieldDefinition.key), offset=offset, limit=limit)


async def get_field(session: AsyncSession, *, org_id: uuid.UUID, field_id: uuid.UUID) -> CustomFieldDefinition:
    return await get_in_org(session, CustomFieldDefinition, field_id, org_id=org_id, missing="No such custom field")


async def create_field(session: AsyncSession, *, org_id: uuid.UUID, fields: CustomFieldCreate) -> CustomFieldDefinition:
    field = CustomFieldDefinition(
        id=uuid.uuid4(),
        org_id=org_id,
        name=fields.name,
        key=fields.key,
        field_type=fields.type,
        options=list(fields.options),
        required=fields.required,
        default_value=fields.default,
    )
    session.add(field)
    await flush_unique(session, KEY_TAKEN, code="custom_field_key_taken")
    await session.refresh(field)
    return field


async def update_field(
    session: AsyncSession, *, org_id: uuid.UUID, field_id: uuid.UUID, changes: Mapping[str, Any]
) -> CustomFieldDefinition:
    """Apply ``changes`` (name, options, required, default: what the request set) and check the result as a whole:
    an enum's default must stay one of its options."""
    field = await get_field(session, org_id=org_id, field_id=field_id)
    merged = {
        "name": field.name,
        "key": field.key,
        "type": field.field_type,
        "options": list(field.options),
        "required": field.required,
        "default": field.default_value,
        **changes,
    }
    if "options" in changes and field.field_type != "enum":
        raise Unprocessable(
            "Only enum fields have options",
            details=[{"field": "body.options", "message": "only enum fields have options", "type": "value_error"}],
        )
    try:
        checked = CustomFieldCreate.model_validate(merged)
    except ValidationError as exc:
        raise Unprocessable(
            "The custom field is not valid",
            details=[
                {"field": "body", "message": str(error["msg"]).removeprefix("Value error, "), "type": error["type"]}
                for error in exc.errors(include_url=False, include_context=False)
            ],
        ) from None
    field.name, field.options, field.required = checked.name, list(checked.options), checked.required
    field.default_value = checked.default
    await session.flush()
    await session.refresh(field)
    return field


async def delete_field(session: AsyncSession, *, org_id: uuid.UUID, field_id: uuid.UUID) -> None:
    """The definition goes; values already stored on events and profiles stay as they were written."""
    await session.delete(await get_field(session, org_id=org_id, field_id=field_id))
    await session.flush()


async def load_definitions(session: AsyncSession, *, org_id: uuid.UUID) -> dict[str, FieldDefinition]:
    rows = (await session.scalars(select(CustomFieldDefinition).where(CustomFieldDefinition.org_id == org_id))).all()
    return {
        row.key: FieldDefinition(
            key=row.key,
            field_type=row.field_type,
            options=tuple(row.options),
            required=row.required,
            default=row.default_value,
        )
        for row in rows
    }


class FieldDefinitions:
    """Definitions by organization, cached in the process (``invalidate`` on ``socialproof.changed``)."""

    def __init__(self, database: Database, *, ttl_seconds: float) -> None:
        self.database = database
        self.cache: SharedCache[uuid.UUID, dict[str, FieldDefinition]] = SharedCache(
            maxsize=20_000, ttl_seconds=ttl_seconds
        )

    async def of(self, org_id: uuid.UUID) -> dict[str, FieldDefinition]:
        async def load() -> dict[str, FieldDefinition]:
            async with self.database.sessionmaker() as session, session.begin():
                await set_tenant_context(session, org_id=org_id)
                return await load_definitions(session, org_id=org_id)

        return await self.cache.get(org_id, load)

    def invalidate(self) -> None:
        self.cache.invalidate()
