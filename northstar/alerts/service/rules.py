"""Alert rules: when to alert (a condition of one of six kinds), whom (members, on their own channels) and where
(shared Slack channels).

Founders and admins manage every rule and may notify any member who may read alerts. Members create rules that
notify themselves (and post to shared channels), and change or delete the rules they created. Analysts read rules;
investors have no part in alerts.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.accounts.service import organizations as accounts
from northstar.alerts.models import Channel, Firing, Rule, RuleChannel, RuleRecipient
from northstar.core.db import fetch_page, get_in_org
from northstar.core.http import Forbidden, NotFound, Unprocessable
from northstar.core.permissions import Principal, Role, role_allows
from northstar.integrations import service as integrations_service
from northstar.metrics import service as metrics_service


def _invalid(message: str, field: str, kind: str = "value_error") -> Unprocessable:
    return Unprocessable(message, details=[{"field": field, "message": message, "type": kind}])


async def _check_condition(session: AsyncSession, *, org_id: uuid.UUID, condition: dict[str, Any]) -> None:
    """A goal or integration the condition names is one of the organization's."""
    try:
        if condition.get("goal_id"):
            await metrics_service.get_goal(session, org_id=org_id, goal_id=uuid.UUID(condition["goal_id"]))
        if condition.get("integration_id"):
            await integrations_service.get_integration(
                session, org_id=org_id, integration_id=uuid.UUID(condition["integration_id"])
            )
    except NotFound as exc:
        field = "goalId" if condition.get("goal_id") else "integrationId"
        raise _invalid(exc.message, f"body.condition.{field}") from None


async def _check_recipients(
    session: AsyncSession, *, principal: Principal, recipients: list[uuid.UUID]
) -> list[uuid.UUID]:
    """Members who may read alerts; a member (not an admin) may name only themselves."""
    wanted = list(dict.fromkeys(recipients))
    if not principal.can("update", "alerts") and any(user_id != principal.user_id for user_id in wanted):
        raise Forbidden("Your role sends a rule's alerts to yourself only", code="not_own_recipient")
    found = {
        member.user_id: member.role
        for member in await accounts.members_of(session, org_id=principal.org_id, user_ids=wanted)
    }
    for position, user_id in enumerate(wanted):
        role = found.get(user_id)
        if role is None or not role_allows(Role(role), "read", "alerts"):
            raise _invalid("Not a member who may read alerts", f"body.recipients.{position}")
    return wanted


async def _check_channels(session: AsyncSession, *, org_id: uuid.UUID, channels: list[uuid.UUID]) -> list[uuid.UUID]:
    wanted = list(dict.fromkeys(channels))
    known = set(
        (await session.scalars(select(Channel.id).where(Channel.org_id == org_id, Channel.id.in_(wanted)))).all()
    )
    for position, channel_id in enumerate(wanted):
        if channel_id not in known:
            raise _invalid("No such channel", f"body.channels.{position}")
    return wanted


async def _set_targets(
    session: AsyncSession, rule: Rule, *, recipients: list[uuid.UUID] | None, channels: list[uuid.UUID] | None
) -> None:
    if recipients is not None:
        await session.execute(delete(RuleRecipient).where(RuleRecipient.rule_id == rule.id))
        session.add_all(RuleRecipient(org_id=rule.org_id, rule_id=rule.id, user_id=user) for user in recipients)
    if channels is not None:
        await session.execute(delete(RuleChannel).where(RuleChannel.rule_id == rule.id))
        session.add_all(RuleChannel(org_id=rule.org_id, rule_id=rule.id, channel_id=channel) for channel in channels)
    await session.flush()
    has_recipients = await session.scalar(select(RuleRecipient.user_id).where(RuleRecipient.rule_id == rule.id))
    has_channels = await session.scalar(select(RuleChannel.channel_id).where(RuleChannel.rule_id == rule.id))
    if has_recipients is None and has_channels is None:
        raise _invalid("A rule needs a recipient or a channel", "body.recipients")


async def create_rule(
    session: AsyncSession,
    *,
    principal: Principal,
    name: str,
    condition: dict[str, Any],
    recipients: list[uuid.UUID] | None,
    channels: list[uuid.UUID],
    cooldown_minutes: int,
    enabled: bool,
) -> Rule:
    """A rule; its recipients default to the caller (an API key has none: it names them)."""
    await _check_condition(session, org_id=principal.org_id, condition=condition)
    if recipients is None:
        recipients = [principal.user_id] if principal.user_id else []
    recipients = await _check_recipients(session, principal=principal, recipients=recipients)
    channels = await _check_channels(session, org_id=principal.org_id, channels=channels)
    params = {key: value for key, value in condition.items() if key != "kind"}
    rule = Rule(
        id=uuid.uuid4(),
        org_id=principal.org_id,
        name=name,
        kind=condition["kind"],
        params=params,
        cooldown_minutes=cooldown_minutes,
        enabled=enabled,
        created_by=principal.user_id,
    )
    session.add(rule)
    await session.flush()
    await _set_targets(session, rule, recipients=recipients, channels=channels)
    await session.refresh(rule)
    return rule


async def list_rules(session: AsyncSession, *, org_id: uuid.UUID, offset: int, limit: int) -> tuple[list[Rule], int]:
    query = select(Rule).where(Rule.org_id == org_id).order_by(Rule.created_at, Rule.id)
    return await fetch_page(session, query, offset=offset, limit=limit)


async def get_rule(session: AsyncSession, *, org_id: uuid.UUID, rule_id: uuid.UUID) -> Rule:
    return await get_in_org(session, Rule, rule_id, org_id=org_id, missing="No such rule")


async def targets_of(
    session: AsyncSession, *, rule_ids: list[uuid.UUID]
) -> dict[uuid.UUID, tuple[list[uuid.UUID], list[uuid.UUID]]]:
    """Each rule's recipients and channels, for showing rules."""
    targets: dict[uuid.UUID, tuple[list[uuid.UUID], list[uuid.UUID]]] = defaultdict(lambda: ([], []))
    for rule_id, user_id in await session.execute(
        select(RuleRecipient.rule_id, RuleRecipient.user_id).where(RuleRecipient.rule_id.in_(rule_ids))
    ):
        targets[rule_id][0].append(user_id)
    for rule_id, channel_id in await session.execute(
        select(RuleChannel.rule_id, RuleChannel.channel_id).where(RuleChannel.rule_id.in_(rule_ids))
    ):
        targets[rule_id][1].append(channel_id)
    return {rule_id: (sorted(targets[rule_id][0]), sorted(targets[rule_id][1])) for rule_id in rule_ids}


def _ensure_may_change(principal: Principal, rule: Rule, action: str) -> None:
    """Members change only the rules they created; founders and admins change any."""
    if not principal.can(action, "alerts", owner_id=rule.created_by):
        raise Forbidden(f"Your role cannot {action} a rule made by someone else", code="not_owner")


async def update_rule(
    session: AsyncSession, *, principal: Principal, rule_id: uuid.UUID, changes: dict[str, Any]
) -> Rule:
    """Change what was sent (``changes``: the request's fields that are not null). A new condition starts afresh:
    what fired under the old one is no longer open."""
    rule = await get_rule(session, org_id=principal.org_id, rule_id=rule_id)
    _ensure_may_change(principal, rule, "update")
    if changes.get("condition") is not None:
        condition = changes["condition"]
        await _check_condition(session, org_id=principal.org_id, condition=condition)
        rule.kind, rule.params = condition["kind"], {key: value for key, value in condition.items() if key != "kind"}
        rule.last_error = None
        await session.execute(
            update(Firing).where(Firing.rule_id == rule.id, Firing.resolved_at.is_(None)).values(resolved_at=func.now())
        )
    for name in ("name", "cooldown_minutes", "enabled"):
        if changes.get(name) is not None:
            setattr(rule, name, changes[name])
    recipients = changes.get("recipients")
    if recipients is not None:
        recipients = await _check_recipients(session, principal=principal, recipients=recipients)
    channels = changes.get("channels")
    if channels is not None:
        channels = await _check_channels(session, org_id=principal.org_id, channels=channels)
    await session.flush()
    await _set_targets(session, rule, recipients=recipients, channels=channels)
    await session.refresh(rule)
    return rule


async def delete_rule(session: AsyncSession, *, principal: Principal, rule_id: uuid.UUID) -> None:
    """The rule, what it fired and its deliveries (messages already in inboxes stay)."""
    rule = await get_rule(session, org_id=principal.org_id, rule_id=rule_id)
    _ensure_may_change(principal, rule, "delete")
    await session.delete(rule)
    await session.flush()
