"""The reports module's business logic, split by concern: the coach (coaching), reports and their files
(generation), their schedules (schedules) and share links (sharing)."""
