"""Metrics (seed 000): normalised billing data, the SaaS metrics engine, KPI time series, dashboards."""
