"""Payload adapters: one module per format a device fleet speaks; each documented in README.md here."""
