"""The web console's shared parts: layout, sessions, assets."""
