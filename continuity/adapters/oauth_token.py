"""App-only access tokens from Microsoft Entra's token endpoint (client credentials, msal) for IMAP XOAUTH2.

Exchange Online takes no password over IMAP: an app registration with ``IMAP.AccessAsApp``
asks Entra for a token of scope ``https://outlook.office365.com/.default`` with a client
secret or a certificate, and opens each mailbox it has FullAccess on with that token.
:class:`EntraTokens` keeps one token for every session: msal's cache hands out the same
token until about five minutes before it expires, then asks for a new one. ``renew=True``
drops the cached token first, for a server that refused it (revoked or expired early).

msal is synchronous (requests), so every request runs in a worker thread, one at a time.
Secrets are never logged; errors carry the endpoint's AADSTS code and description.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msal  # type: ignore[import-untyped]
import requests

from continuity.config.replay import EntraAppSettings
from continuity.errors import PrimaryAuthError

log = logging.getLogger("continuity.replay.oauth")


@dataclass(frozen=True, slots=True)
class AccessToken:
    """One bearer token; fresh is False when it came from the cache."""

    value: str
    fresh: bool


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise PrimaryAuthError("token endpoint", "credential", f"cannot read the {what} {path}: {exc}") from None


def _credential(app: EntraAppSettings) -> str | dict[str, str]:
    if app.certificate_file is not None:
        return {"private_key": _read(app.certificate_file, "certificate"), "thumbprint": app.certificate_thumbprint}
    if app.client_secret_file is not None:
        return _read(app.client_secret_file, "client secret file")
    if app.client_secret is not None:
        return app.client_secret.get_secret_value()
    raise PrimaryAuthError("token endpoint", "credential", "[replay.entra] has no client secret or certificate")


def describe_refusal(result: dict[str, Any]) -> str:
    """The endpoint's error as one line: its error code and its description (which starts with the AADSTS code)."""
    error = str(result.get("error", "error"))
    description = str(result.get("error_description", "")).splitlines()
    first = description[0].strip() if description else ""
    codes = result.get("error_codes") or []
    if first and not first.startswith("AADSTS") and codes:
        first = f"AADSTS{codes[0]}: {first}"
    return f"{error}: {first}" if first else error


class EntraTokens:
    """Client-credential tokens of one app registration, cached and renewed before they expire."""

    def __init__(self, app: EntraAppSettings) -> None:
        self._settings = app
        self._endpoint = f"{app.authority}/{app.tenant_id}"
        self._app: Any = None
        self._lock = asyncio.Lock()
        self.issued = 0  # tokens obtained from the endpoint (not from the cache)

    def _http_client(self) -> requests.Session:
        """msal's HTTP session: with a ca_file, that file (not REQUESTS_CA_BUNDLE) decides; every request bounded."""
        session = requests.Session()
        if self._settings.ca_file is not None:
            # requests lets the environment's CA bundle win over a session's verify unless trust_env is off.
            session.trust_env = False
            session.verify = str(self._settings.ca_file)
        session.request = functools.partial(session.request, timeout=self._settings.timeout)  # type: ignore[method-assign]
        return session

    def _client(self) -> Any:
        if self._app is None:
            app = self._settings
            self._app = msal.ConfidentialClientApplication(
                app.client_id,
                client_credential=_credential(app),
                authority=self._endpoint,
                # The authority is the admin's setting (sovereign clouds, tests): not checked against
                # Microsoft's list of instances, which would ask login.microsoftonline.com about it.
                instance_discovery=False,
                http_client=self._http_client(),
            )
        return self._app

    def _acquire(self, renew: bool) -> AccessToken:
        try:
            client = self._client()
            if renew:
                cache = client.token_cache
                for entry in list(cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
                    cache.remove_at(entry)
            result = client.acquire_token_for_client(scopes=[self._settings.scope])
        except (requests.RequestException, ValueError, OSError) as exc:
            # msal raises ValueError when the authority's metadata cannot be read.
            detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise PrimaryAuthError(
                self._endpoint, "token endpoint", f"no token from {self._endpoint}: {detail}"
            ) from None
        if "access_token" not in result:
            raise PrimaryAuthError(
                self._endpoint, "token endpoint", f"the token endpoint refused the app: {describe_refusal(result)}"
            )
        fresh = result.get("token_source") != "cache"
        if fresh:
            self.issued += 1
            log.info(
                "new access token for app %s (expires in %s s)", self._settings.client_id, result.get("expires_in")
            )
        return AccessToken(str(result["access_token"]), fresh)

    async def token(self, *, renew: bool = False) -> AccessToken:
        """A valid token (cached when it has five minutes or more to live); PrimaryAuthError when none can be had."""
        async with self._lock:
            return await asyncio.to_thread(self._acquire, renew)
