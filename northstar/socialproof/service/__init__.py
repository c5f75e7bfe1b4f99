"""Social proof business logic, split by concern: sites (with templates and notifications), events, feed,
analytics and rollups."""
