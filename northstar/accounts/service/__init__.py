"""Accounts business logic, split by concern: auth, organizations, projects, credentials."""
