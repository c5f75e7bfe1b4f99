"""The connector registry: one ``Connector`` class per provider name."""

from __future__ import annotations

from northstar.integrations.connectors.base import Connector
from northstar.integrations.connectors.github import GitHubConnector
from northstar.integrations.connectors.gitlab import GitLabConnector
from northstar.integrations.connectors.google_analytics import GoogleAnalyticsConnector
from northstar.integrations.connectors.hubspot import HubSpotConnector
from northstar.integrations.connectors.jira import JiraConnector
from northstar.integrations.connectors.linear import LinearConnector
from northstar.integrations.connectors.mixpanel import MixpanelConnector
from northstar.integrations.connectors.shopify import ShopifyConnector
from northstar.integrations.connectors.stripe import StripeConnector

CONNECTORS: dict[str, type[Connector]] = {
    connector.provider: connector
    for connector in (
        StripeConnector,
        GoogleAnalyticsConnector,
        MixpanelConnector,
        ShopifyConnector,
        HubSpotConnector,
        GitHubConnector,
        GitLabConnector,
        JiraConnector,
        LinearConnector,
    )
}
