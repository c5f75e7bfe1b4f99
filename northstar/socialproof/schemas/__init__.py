"""Requests and responses of the social proof module, split like the service: sites, events, analytics."""
