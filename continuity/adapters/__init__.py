"""The edges of the appliance: SMTP, IMAP, DNS and HTTP translated to and from core types."""
