"""The HTTP API for integrations (`tower api`): shipments in, where they stand and alerts out.
See README.md here. FastAPI and uvicorn come with the `api` extra; only tokens.py works without."""
