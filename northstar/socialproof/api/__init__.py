"""Social proof routes: the merchant API (FastAPI, authenticated) and the public widget paths (``FastPaths``)."""
