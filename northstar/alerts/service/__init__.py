"""Alerts' business logic, split by concern: rules, shared channels, preferences, the inbox, evaluation, firing,
delivery and the unsubscribe link.

Other modules call ``report_ready`` when a report is ready; the metrics module announces its refreshes
(``metrics.refreshed``) and the alerts manifest reacts to them, so metrics never imports alerts.
"""

from northstar.alerts.service.firing import report_ready

__all__ = ["report_ready"]
