"""Standby mailboxes kept in sync with the organisation's directory.

core/ holds the pure parts (the directory's view of a user, proxyAddresses parsing, the diff
against the stored mailboxes, the removal guard); ad.py reads Active Directory over LDAP
(ldap3), entra.py reads Entra ID over Microsoft Graph (msal + httpx); service.py applies a
planned diff to the store, writes the audit entry and alerts the admins (notice.py is the
alert's text); periodic.py runs it inside ``serve``; wiring.py builds the configured source.
The tables live in continuity.store.sqlite_directory behind continuity.store.directory_protocol.
"""
