"""The platform's own routes: health and readiness for operators, and the live event stream for clients."""
