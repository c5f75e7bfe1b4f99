"""Alert routes (seed 000 ``/api/notifications``): rules, shared Slack channels, the delivery log, each member's
preferences and inbox, and the public one-click unsubscribe."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, status

from northstar.alerts.auth import (
    ChannelsCreate,
    ChannelsDelete,
    ChannelsRead,
    ChannelsUpdate,
    Member,
    RulesCreate,
    RulesDelete,
    RulesRead,
    RulesUpdate,
)
from northstar.alerts.models import Channel, Preferences, Rule
from northstar.alerts.schemas import (
    ChannelCreate,
    ChannelOut,
    ChannelUpdate,
    DeliveryOut,
    InboxMessageOut,
    MarkedOut,
    PreferencesOut,
    PreferencesUpdate,
    RuleCreate,
    RuleOut,
    RuleUpdate,
    UnreadOut,
    UnsubscribeOut,
)
from northstar.alerts.service import channels, delivery, inbox, preferences, rules, unsubscribe
from northstar.core.context import DbSession, audit_target
from northstar.core.http import ERROR_RESPONSES, Envelope, Page, PageEnvelope
from northstar.core.idempotency import Idempotent

router = APIRouter(tags=["alerts"], responses=ERROR_RESPONSES)

RULE = "/notifications/rules/{rule_id}"
CHANNEL = "/notifications/channels/{channel_id}"
Token = Annotated[str, Query(min_length=1, max_length=500, description="the token of the e-mail's link")]


async def _rules_out(session: DbSession, found: list[Rule]) -> list[RuleOut]:
    targets = await rules.targets_of(session, rule_ids=[rule.id for rule in found])
    return [
        RuleOut.model_validate(
            {
                "id": rule.id,
                "name": rule.name,
                "condition": {"kind": rule.kind, **rule.params},
                "recipients": targets[rule.id][0],
                "channels": targets[rule.id][1],
                "cooldown_minutes": rule.cooldown_minutes,
                "enabled": rule.enabled,
                "last_evaluated_at": rule.last_evaluated_at,
                "last_error": rule.last_error,
                "created_by": rule.created_by,
                "created_at": rule.created_at,
                "updated_at": rule.updated_at,
            }
        )
        for rule in found
    ]


@router.get("/notifications/rules", response_model=PageEnvelope[RuleOut], name="alerts.rules.list")
async def list_rules(principal: RulesRead, session: DbSession, page: Page) -> PageEnvelope[RuleOut]:
    found, total = await rules.list_rules(session, org_id=principal.org_id, offset=page.offset, limit=page.limit)
    return PageEnvelope(data=await _rules_out(session, found), meta=page.meta(total))


@router.post(
    "/notifications/rules",
    status_code=status.HTTP_201_CREATED,
    response_model=Envelope[RuleOut],
    name="alerts.rules.create",
    dependencies=[Idempotent],
)
async def create_rule(
    body: RuleCreate, request: Request, principal: RulesCreate, session: DbSession
) -> Envelope[RuleOut]:
    """A rule: its condition, the members it notifies (default: you) and the shared channels it posts to. It is
    evaluated after every metrics refresh and every 15 minutes."""
    rule = await rules.create_rule(
        session,
        principal=principal,
        name=body.name,
        condition=body.condition.model_dump(mode="json"),
        recipients=body.recipients,
        channels=body.channels,
        cooldown_minutes=body.cooldown_minutes,
        enabled=body.enabled,
    )
    audit_target(request, "alert_rule", rule.id, kind=rule.kind)
    return Envelope(data=(await _rules_out(session, [rule]))[0])


@router.get(RULE, response_model=Envelope[RuleOut], name="alerts.rules.get")
async def get_rule(rule_id: uuid.UUID, principal: RulesRead, session: DbSession) -> Envelope[RuleOut]:
    rule = await rules.get_rule(session, org_id=principal.org_id, rule_id=rule_id)
    return Envelope(data=(await _rules_out(session, [rule]))[0])


@router.patch(RULE, response_model=Envelope[RuleOut], name="alerts.rules.update")
async def update_rule(
    rule_id: uuid.UUID, body: RuleUpdate, request: Request, principal: RulesUpdate, session: DbSession
) -> Envelope[RuleOut]:
    """Members change the rules they made; founders and admins any."""
    changes = body.model_dump(exclude_none=True, exclude={"condition"})
    if body.condition is not None:
        changes["condition"] = body.condition.model_dump(mode="json")  # kept as JSON
    rule = await rules.update_rule(session, principal=principal, rule_id=rule_id, changes=changes)
    audit_target(request, "alert_rule", rule.id)
    return Envelope(data=(await _rules_out(session, [rule]))[0])


@router.delete(RULE, status_code=status.HTTP_204_NO_CONTENT, name="alerts.rules.delete")
async def delete_rule(rule_id: uuid.UUID, request: Request, principal: RulesDelete, session: DbSession) -> None:
    await rules.delete_rule(session, principal=principal, rule_id=rule_id)
    audit_target(request, "alert_rule", rule_id)


def _channel_out(channel: Channel) -> ChannelOut:
    return ChannelOut(
        id=channel.id,
        name=channel.name,
        kind=channel.kind,
        channel=channel.target or None,
        status="active" if channel.status == "active" else "disabled",
        failing_since=channel.failing_since,
        last_error=channel.last_error,
        disabled_at=channel.disabled_at,
        created_at=channel.created_at,
        updated_at=channel.updated_at,
    )


@router.get("/notifications/channels", response_model=PageEnvelope[ChannelOut], name="alerts.channels.list")
async def list_channels(principal: ChannelsRead, session: DbSession, page: Page) -> PageEnvelope[ChannelOut]:
    found, total = await channels.list_channels(session, org_id=principal.org_id, offset=page.offset, limit=page.limit)
    return PageEnvelope(data=[_channel_out(channel) for channel in found], meta=page.meta(total))


@router.post(
    "/notifications/channels",
    status_code=status.HTTP_201_CREATED,
    response_model=Envelope[ChannelOut],
    name="alerts.channels.create",
    dependencies=[Idempotent],
)
async def create_channel(
    body: ChannelCreate, request: Request, principal: ChannelsCreate, session: DbSession
) -> Envelope[ChannelOut]:
    """A shared Slack channel: an incoming webhook's URL, or a bot token (``chat:write``) and the channel it posts
    to. The secret is stored encrypted and never returned; ``POST …/test`` checks it."""
    found = await channels.create_channel(
        session,
        principal=principal,
        name=body.name,
        kind=body.kind,
        webhook_url=body.webhook_url,
        token=body.token,
        channel=body.channel,
    )
    audit_target(request, "alert_channel", found.id, kind=found.kind)
    return Envelope(data=_channel_out(found))


@router.get(CHANNEL, response_model=Envelope[ChannelOut], name="alerts.channels.get")
async def get_channel(channel_id: uuid.UUID, principal: ChannelsRead, session: DbSession) -> Envelope[ChannelOut]:
    return Envelope(
        data=_channel_out(await channels.get_channel(session, org_id=principal.org_id, channel_id=channel_id))
    )


@router.patch(CHANNEL, response_model=Envelope[ChannelOut], name="alerts.channels.update")
async def update_channel(
    channel_id: uuid.UUID, body: ChannelUpdate, request: Request, principal: ChannelsUpdate, session: DbSession
) -> Envelope[ChannelOut]:
    """Rename it, replace its secret or channel, or turn it off and on (``enabled``)."""
    found = await channels.update_channel(
        session, org_id=principal.org_id, channel_id=channel_id, changes=body.model_dump(exclude_none=True)
    )
    audit_target(request, "alert_channel", found.id, enabled=body.enabled)
    return Envelope(data=_channel_out(found))


@router.delete(CHANNEL, status_code=status.HTTP_204_NO_CONTENT, name="alerts.channels.delete")
async def delete_channel(
    channel_id: uuid.UUID, request: Request, principal: ChannelsDelete, session: DbSession
) -> None:
    await channels.delete_channel(session, org_id=principal.org_id, channel_id=channel_id)
    audit_target(request, "alert_channel", channel_id)


@router.post(f"{CHANNEL}/test", response_model=Envelope[ChannelOut], name="alerts.channels.test")
async def test_channel(channel_id: uuid.UUID, principal: ChannelsUpdate, session: DbSession) -> Envelope[ChannelOut]:
    """Post a test message now; 422 ``channel_failed`` with what Slack answered when it does not arrive."""
    return Envelope(
        data=_channel_out(await channels.test_channel(session, org_id=principal.org_id, channel_id=channel_id))
    )


@router.get("/notifications/history", response_model=PageEnvelope[DeliveryOut], name="alerts.history")
async def history(
    principal: RulesRead,
    session: DbSession,
    page: Page,
    rule_id: Annotated[uuid.UUID | None, Query(alias="ruleId")] = None,
    channel: Literal["email", "in_app", "slack"] | None = None,
    delivery_status: Annotated[
        Literal["queued", "held", "sending", "retrying", "sent", "failed", "skipped", "digested"] | None,
        Query(alias="status"),
    ] = None,
) -> PageEnvelope[DeliveryOut]:
    """The delivery log, newest first: per channel, its status, attempts and last error. Founders and admins see
    every delivery; others the ones sent to them and those of the rules they made."""
    found, total = await delivery.list_history(
        session,
        principal=principal,
        rule_id=rule_id,
        channel=channel,
        status=delivery_status,
        offset=page.offset,
        limit=page.limit,
    )
    return PageEnvelope(data=[DeliveryOut.model_validate(row) for row in found], meta=page.meta(total))


async def _preferences_out(session: DbSession, found: Preferences) -> PreferencesOut:
    quiet = {"start": found.quiet_start, "end": found.quiet_end} if found.quiet_start is not None else None
    return PreferencesOut.model_validate(
        {
            "time_zone": found.time_zone,
            "effective_time_zone": await preferences.zone_of(session, found),
            "quiet_hours": quiet,
            "digest": found.digest,
            "digest_hour": found.digest_hour,
            "channels": preferences.all_channels(found),
            "email": {
                "status": "disabled" if found.email_disabled_at else "active",
                "failing_since": found.email_failing_since,
                "last_error": found.email_last_error,
                "disabled_at": found.email_disabled_at,
            },
        }
    )


@router.get("/notifications/preferences", response_model=Envelope[PreferencesOut], name="alerts.preferences.get")
async def get_preferences(me: Member, session: DbSession) -> Envelope[PreferencesOut]:
    """Your channels per rule kind, time zone, quiet hours and digest (in every organization: its own)."""
    found = await preferences.preferences_of(session, org_id=me.org_id, user_id=me.user_id)
    return Envelope(data=await _preferences_out(session, found))


@router.patch("/notifications/preferences", response_model=Envelope[PreferencesOut], name="alerts.preferences.update")
async def update_preferences(
    body: PreferencesUpdate, request: Request, me: Member, session: DbSession
) -> Envelope[PreferencesOut]:
    """Only the fields sent change; ``timeZone`` or ``quietHours`` null clears them. During quiet hours e-mail
    waits until they end; with ``digest`` your e-mails come once a day at ``digestHour``, in your time zone."""
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    if body.quiet_hours is not None:
        changes["quiet_hours"] = body.quiet_hours.model_dump()
    found = await preferences.update_preferences(session, org_id=me.org_id, user_id=me.user_id, changes=changes)
    audit_target(request, "alert_preferences", me.user_id)
    return Envelope(data=await _preferences_out(session, found))


@router.get("/notifications/inbox", response_model=PageEnvelope[InboxMessageOut], name="alerts.inbox.list")
async def list_inbox(me: Member, session: DbSession, page: Page, unread: bool = False) -> PageEnvelope[InboxMessageOut]:
    """Your in-app notifications, newest first (``unread=true``: only those not read). New ones are pushed on
    ``/events/stream`` as ``alerts.inbox`` events, read marks as ``alerts.inbox.read``."""
    found, total = await inbox.list_inbox(
        session,
        org_id=me.org_id,
        user_id=me.user_id,
        unread_only=unread,
        offset=page.offset,
        limit=page.limit,
    )
    return PageEnvelope(data=[InboxMessageOut.model_validate(message) for message in found], meta=page.meta(total))


@router.get("/notifications/inbox/unread", response_model=Envelope[UnreadOut], name="alerts.inbox.unread")
async def unread_count(me: Member, session: DbSession) -> Envelope[UnreadOut]:
    count = await inbox.unread_count(session, org_id=me.org_id, user_id=me.user_id)
    return Envelope(data=UnreadOut(unread=count))


@router.post("/notifications/inbox/read-all", response_model=Envelope[MarkedOut], name="alerts.inbox.read_all")
async def mark_all_read(me: Member, session: DbSession) -> Envelope[MarkedOut]:
    marked = await inbox.mark_all_read(session, org_id=me.org_id, user_id=me.user_id)
    return Envelope(data=MarkedOut(marked=marked))


@router.post(
    "/notifications/inbox/{message_id}/read", response_model=Envelope[InboxMessageOut], name="alerts.inbox.read"
)
async def mark_read(message_id: uuid.UUID, me: Member, session: DbSession) -> Envelope[InboxMessageOut]:
    message = await inbox.mark_read(session, org_id=me.org_id, user_id=me.user_id, message_id=message_id)
    return Envelope(data=InboxMessageOut.model_validate(message))


@router.get("/notifications/unsubscribe", response_model=Envelope[UnsubscribeOut], name="alerts.unsubscribe.show")
async def show_unsubscribe(token: Token, session: DbSession) -> Envelope[UnsubscribeOut]:
    """What an e-mail's unsubscribe link would turn off (opening a link changes nothing: mail scanners open
    links). No credential: the signed token is the authority."""
    found = await unsubscribe.describe(session, token=token)
    return Envelope(data=UnsubscribeOut.model_validate(found))


@router.post("/notifications/unsubscribe", response_model=Envelope[UnsubscribeOut], name="alerts.unsubscribe")
async def one_click_unsubscribe(token: Token, session: DbSession) -> Envelope[UnsubscribeOut]:
    """RFC 8058 one-click unsubscribe: the mail client POSTs ``List-Unsubscribe=One-Click`` (form-encoded, which
    is not read) to the e-mail's ``List-Unsubscribe`` address; e-mail of that rule kind (from a digest: of every
    kind) is turned off for the member. Doing it again changes nothing."""
    found = await unsubscribe.unsubscribe(session, token=token)
    return Envelope(data=UnsubscribeOut.model_validate(found))
