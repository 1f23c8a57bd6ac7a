"""Active Directory as a source of mailboxes, over LDAPS or StartTLS with ldap3.

Each run lists every object in scope cheaply (objectGUID, memberOf, uSNChanged): that finds
deletions and group membership whatever the change tracking. Only the objects that changed
are then read in full: those the DirSync control reports (when the service account holds
"Replicating Directory Changes"), else those whose uSNChanged passed the highest USN of the
previous run, else everyone. ldap3 is synchronous, so a run goes to a thread.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import ssl
import uuid
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import ldap3
from ldap3.core.exceptions import LDAPException, LDAPOperationResult
from ldap3.utils.conv import escape_bytes
from ldap3.utils.dn import parse_dn

from continuity.config.directory import ActiveDirectorySettings, AdIncremental, LdapSecurity
from continuity.directory.core.proxy import split_proxy_addresses
from continuity.directory.core.records import DirectoryUser, SourceBatch
from continuity.errors import DirectorySourceError

log = logging.getLogger("continuity.directory")

ACCOUNTDISABLE = 0x2
# msExchRecipientTypeDetails values of the mailbox kinds (Exchange's RecipientTypeDetails).
_RECIPIENT_KINDS = {1: "user", 4: "shared", 16: "room", 32: "equipment"}
_PRESENCE = ["objectGUID", "memberOf", "uSNChanged"]
_CHUNK = 50
DEFAULT_FILTER = (
    "(&(|(objectClass=user)(objectClass=inetOrgPerson))(!(objectClass=computer))(|(mail=*)(proxyAddresses=SMTP:*)))"
)


def guid_text(raw: bytes | list[bytes]) -> str:
    """objectGUID (a value, or the one-value list ldap3 returns without a schema) as the usual text.

    AD stores it little-endian.
    """
    value = raw[0] if isinstance(raw, list) else raw
    return str(uuid.UUID(bytes_le=bytes(value)))


def _first(values: Any) -> str | None:
    if isinstance(values, list):
        values = values[0] if values else None
    if values is None or values == "":
        return None
    return str(values)


class ActiveDirectorySource:
    """Reads mail-enabled users, shared and resource mailboxes from a domain controller."""

    name = "ad"

    def __init__(self, settings: ActiveDirectorySettings) -> None:
        self._settings = settings
        self._filter = settings.user_filter or DEFAULT_FILTER
        if settings.security is LdapSecurity.PLAIN:
            log.warning("directory: the LDAP connection to %s is not encrypted (security = plain)", settings.url)

    async def read(self, cursor: str) -> SourceBatch:
        """Read what changed since cursor ("" reads everyone)."""
        return await asyncio.to_thread(self._read_sync, cursor)

    # --- connection ---

    def _password(self) -> str:
        if self._settings.bind_password is not None:
            return self._settings.bind_password.get_secret_value()
        if self._settings.bind_credential_file is not None:
            try:
                return self._settings.bind_credential_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise DirectorySourceError(f"cannot read [directory.ad] bind_credential_file: {exc}") from None
        return ""

    def _connect(self) -> ldap3.Connection:
        settings = self._settings
        parts = urlsplit(settings.url)
        ldaps = settings.security is LdapSecurity.LDAPS
        port = parts.port or (636 if ldaps else 389)
        tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(settings.ca_file) if settings.ca_file else None)
        server = ldap3.Server(
            parts.hostname or settings.url,
            port=port,
            use_ssl=ldaps,
            tls=tls,
            get_info=ldap3.NONE,
            connect_timeout=int(settings.timeout),
        )
        connection = ldap3.Connection(
            server,
            user=settings.bind_dn or None,
            password=self._password() or None,
            receive_timeout=int(settings.timeout),
            raise_exceptions=True,
            auto_referrals=False,
        )
        where = f"the domain controller {settings.url}"
        try:
            connection.open()
            if settings.security is LdapSecurity.STARTTLS:
                connection.start_tls()
            connection.bind()
        except LDAPOperationResult as exc:
            raise DirectorySourceError(
                f"{where} refused the bind as {settings.bind_dn}: {exc.description} {exc.message}".strip()
            ) from None
        except LDAPException as exc:
            raise DirectorySourceError(f"cannot connect to {where}: {exc}") from None
        return connection

    # --- reading ---

    def _read_sync(self, cursor: str) -> SourceBatch:
        connection = self._connect()
        try:
            return self._read_with(connection, cursor)
        except LDAPException as exc:
            raise DirectorySourceError(f"reading {self._settings.url} failed: {exc}") from None
        finally:
            connection.unbind()

    def _paged(self, connection: ldap3.Connection, search_filter: str, attributes: list[str]) -> list[dict[str, Any]]:
        entries = connection.extend.standard.paged_search(
            self._settings.base_dn, search_filter, ldap3.SUBTREE, attributes=attributes, paged_size=500, generator=False
        )
        return [entry for entry in entries if entry.get("type") == "searchResEntry"]

    def _highest_usn(self, connection: ldap3.Connection) -> int:
        connection.search("", "(objectClass=*)", ldap3.BASE, attributes=["highestCommittedUSN"])
        response = connection.response or []
        if not response:
            raise DirectorySourceError(f"{self._settings.url} did not return its rootDSE (highestCommittedUSN)")
        return int(_first(response[0]["attributes"]["highestCommittedUSN"]) or 0)

    def _read_with(self, connection: ldap3.Connection, cursor: str) -> SourceBatch:
        settings = self._settings
        state: dict[str, Any] = json.loads(cursor) if cursor else {}
        highest = self._highest_usn(connection)
        presence = self._paged(connection, self._filter, _PRESENCE)
        present = {guid_text(entry["attributes"]["objectGUID"]): entry["attributes"] for entry in presence}
        memberships = {guid: self._groups(attributes.get("memberOf", [])) for guid, attributes in present.items()}
        changed: set[str] | None = None
        mode = "full"
        new_state: dict[str, Any] = {"usn": highest}
        warnings: list[str] = []
        if settings.incremental in (AdIncremental.AUTO, AdIncremental.DIRSYNC):
            try:
                ids, cookie = self._dirsync(connection, state.get("cookie"))
            except LDAPOperationResult as exc:
                if settings.incremental is AdIncremental.DIRSYNC:
                    raise DirectorySourceError(
                        f"the DirSync control was refused ({exc.description}): the service account needs "
                        "'Replicating Directory Changes' on the domain"
                    ) from None
                warnings.append(f"DirSync refused ({exc.description}); using uSNChanged instead")
            else:
                new_state["cookie"] = cookie
                if state.get("cookie"):
                    changed, mode = ids & present.keys(), "dirsync"
        if changed is None and settings.incremental is not AdIncremental.FULL and "usn" in state:
            last = int(state["usn"])
            changed = {
                guid for guid, attributes in present.items() if int(_first(attributes.get("uSNChanged")) or 0) > last
            }
            mode = "usn"
        users = self._read_users(connection, changed)
        return SourceBatch(
            changed=tuple(users),
            present=frozenset(present),
            memberships=memberships,
            cursor=json.dumps(new_state, sort_keys=True),
            mode=mode,
            warnings=tuple(warnings),
        )

    def _dirsync(self, connection: ldap3.Connection, cookie_text: str | None) -> tuple[set[str], str]:
        cookie = base64.b64decode(cookie_text) if cookie_text else None
        sync = connection.extend.microsoft.dir_sync(
            # DirSync reports an object when one of the attributes asked for changed: ask for all we read.
            self._settings.base_dn,
            "(objectClass=*)",
            attributes=self._attributes(),
            cookie=cookie,
        )
        ids: set[str] = set()
        while True:
            for entry in sync.loop():
                raw = entry.get("raw_attributes", {}).get("objectGUID")
                if raw:
                    ids.add(guid_text(raw))
            if not sync.more_results:
                break
        return ids, base64.b64encode(sync.cookie or b"").decode("ascii")

    def _attributes(self) -> list[str]:
        settings = self._settings
        names = ["objectGUID", "mail", "proxyAddresses", "displayName", "cn", "userAccountControl"]
        names += ["msExchRecipientTypeDetails", settings.mobile_attribute, settings.alternate_email_attribute]
        return list(dict.fromkeys(names))

    def _read_users(self, connection: ldap3.Connection, ids: set[str] | None) -> list[DirectoryUser]:
        if ids is None:
            entries = self._paged(connection, self._filter, self._attributes())
        else:
            entries = []
            ordered = sorted(ids)
            for start in range(0, len(ordered), _CHUNK):
                chunk = ordered[start : start + _CHUNK]
                terms = "".join(f"(objectGUID={escape_bytes(uuid.UUID(guid).bytes_le)})" for guid in chunk)
                entries += self._paged(connection, f"(&{self._filter}(|{terms}))", self._attributes())
        users = []
        for entry in entries:
            user = self._user(entry["attributes"])
            if user is None:
                log.info("directory: %s has no SMTP address; skipped", entry.get("dn"))
            else:
                users.append(user)
        return users

    def _user(self, attributes: Mapping[str, Any]) -> DirectoryUser | None:
        settings = self._settings
        primary, aliases = split_proxy_addresses(str(value) for value in attributes.get("proxyAddresses") or [])
        mail = _first(attributes.get("mail"))
        primary = primary or mail
        if primary is None:
            return None
        if mail and mail.lower() != primary.lower():
            aliases.append(mail)
        flags = int(_first(attributes.get("userAccountControl")) or 0)
        kind_code = _first(attributes.get("msExchRecipientTypeDetails"))
        kind = _RECIPIENT_KINDS.get(int(kind_code), "user") if kind_code and kind_code.isdigit() else "user"
        return DirectoryUser(
            external_id=guid_text(attributes["objectGUID"]),
            address=primary,
            display_name=_first(attributes.get("displayName")) or _first(attributes.get("cn")) or primary,
            aliases=tuple(aliases),
            enabled=not flags & ACCOUNTDISABLE,
            alternate_email=_first(attributes.get(settings.alternate_email_attribute)),
            mobile=_first(attributes.get(settings.mobile_attribute)),
            kind=kind,
        )

    def _groups(self, member_of: Iterable[str]) -> frozenset[str]:
        base = self._settings.group_base_dn.lower()
        names = set()
        for dn in member_of:
            if base and not str(dn).lower().endswith(base):
                continue
            names.add(str(parse_dn(str(dn))[0][1]))
        return frozenset(names)
