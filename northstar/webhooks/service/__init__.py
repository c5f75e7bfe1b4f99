"""Outbound webhooks' business logic: endpoints, emission, delivery.

Other modules emit events with ``emit(session, org_id=..., event_type=..., data=...)`` in their own transaction
(the group-commit writer of social proof with ``emit_many_on_connection`` on its connection), and verify Standard
Webhooks signatures of what they receive with ``verify_signature``.
"""

from northstar.webhooks.models import EVENT_TYPES
from northstar.webhooks.service.emission import (
    cached_subscriptions,
    emit,
    emit_many_on_connection,
    subscriptions,
)
from northstar.webhooks.signing import new_secret, secret_bytes
from northstar.webhooks.signing import verify as verify_signature

__all__ = [
    "EVENT_TYPES",
    "cached_subscriptions",
    "emit",
    "emit_many_on_connection",
    "new_secret",
    "secret_bytes",
    "subscriptions",
    "verify_signature",
]
