"""Integrations (seed 000): connected data sources, their syncs and inbound webhooks."""
