"""The web tier: webmail for affected users and the admin HTTP API (litestar)."""
