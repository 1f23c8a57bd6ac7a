"""The webmail for affected users: sign-in, folders, message view, compose, settings."""
