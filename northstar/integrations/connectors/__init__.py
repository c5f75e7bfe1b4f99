"""The connector registry: one ``Connector`` class per provider name."""

from __future__ import annotations

from northstar.integrations.connectors.base import Connector
from northstar.integrations.connectors.stripe import StripeConnector

CONNECTORS: dict[str, type[Connector]] = {connector.provider: connector for connector in (
    StripeConnector,
)}
