"""Security of the webmail tier: sessions, CSRF, response headers, HTML sanitizing, TOTP."""
