"""A stand-in for Microsoft Entra's v2.0 token endpoint (client credentials) over HTTPS on loopback.

It answers what msal asks for: ``GET /{tenant}/v2.0/.well-known/openid-configuration`` and
``POST /{tenant}/oauth2/v2.0/token`` with ``grant_type=client_credentials``, as Microsoft
documents them: ``token_type``, ``expires_in``, ``ext_expires_in`` and ``access_token`` on
success; ``error``, ``error_description`` (starting with the AADSTS code), ``error_codes``,
``timestamp``, ``trace_id`` and ``correlation_id`` on failure.

Access tokens are RS256 JWTs signed with a key of the endpoint's own; ``public_key_pem`` is
what the primary (Dovecot's oauth2 passdb, local validation) trusts. Knobs for the tests:
``lifetime`` (seconds in the JWT's ``exp``) apart from ``expires_in`` (what the endpoint
tells the client), so a token can expire while the client still thinks it good; ``revoked``
refuses the app as Entra does for a deleted secret (AADSTS7000215).
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

AUDIENCE = "https://outlook.office365.com"


class TokenEndpoint:
    """The endpoint of one tenant with one app registration (client id and secret)."""

    def __init__(
        self, ca: trustme.CA, tenant_id: str, client_id: str, client_secret: str, *, subject: str, key_id: str = "k1"
    ) -> None:
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.client_secret = client_secret
        # The claim the primary stand-in reads as the token's user (Exchange's app tokens name none).
        self.subject = subject
        self.key_id = key_id
        # The object id of the app's service principal in the tenant (sub and oid of its tokens).
        self.principal_id = str(uuid.uuid4())
        self.lifetime = 3600.0
        self.expires_in = 3599
        self.revoked = False
        self.issued: list[str] = []
        self.refusals = 0
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._ca = ca
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def public_key_pem(self) -> str:
        """The signing key's public half (PEM), for the primary to trust."""
        public = self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return public.decode("ascii")

    @property
    def authority(self) -> str:
        """The [replay.entra] authority that points msal here."""
        assert self._server is not None
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    def start(self, workdir: Path) -> None:
        """Listen on a loopback port (HTTPS with a certificate of the test CA)."""
        cert = self._ca.issue_cert("127.0.0.1", "localhost")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                if self.path == f"/{endpoint.tenant_id}/v2.0/.well-known/openid-configuration":
                    self._json(200, endpoint.openid_configuration())
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = {key: values[0] for key, values in parse_qs(self.rfile.read(length).decode()).items()}
                if self.path != f"/{endpoint.tenant_id}/oauth2/v2.0/token":
                    self._json(404, {"error": "not_found"})
                    return
                status, body = endpoint.answer(form)
                self._json(status, body)

            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def openid_configuration(self) -> dict[str, Any]:
        """The tenant's OpenID metadata (what msal reads before its first token request)."""
        base = f"{self.authority}/{self.tenant_id}"
        return {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "issuer": f"{base}/v2.0",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
        }

    def _error(self, status: int, error: str, code: int, text: str) -> tuple[int, dict[str, Any]]:
        self.refusals += 1
        trace = str(uuid.uuid4())
        return status, {
            "error": error,
            "error_description": f"AADSTS{code}: {text} Trace ID: {trace} Correlation ID: {trace} Timestamp: now",
            "error_codes": [code],
            "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
            "trace_id": trace,
            "correlation_id": trace,
        }

    def answer(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """The reply to one token request (status, JSON body)."""
        if form.get("grant_type") != "client_credentials":
            return self._error(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
        if form.get("client_id") != self.client_id:
            return self._error(
                400, "unauthorized_client", 700016, f"Application with identifier '{form.get('client_id')}' not found."
            )
        if self.revoked or form.get("client_secret") != self.client_secret:
            return self._error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret "
                "value, not the client secret ID, for a secret added to app '" + self.client_id + "'.",
            )
        if form.get("scope") != f"{AUDIENCE}/.default":
            return self._error(
                400, "invalid_scope", 1002012, f"The provided value for scope {form.get('scope')} is not valid."
            )
        now = int(time.time())
        claims = {
            "aud": AUDIENCE,
            "iss": f"https://sts.windows.net/{self.tenant_id}/",
            "iat": now,
            "nbf": now,
            "exp": now + int(self.lifetime),
            "tid": self.tenant_id,
            "appid": self.client_id,
            "sub": self.principal_id,
            "oid": self.principal_id,
            "roles": ["IMAP.AccessAsApp"],
            "email": self.subject,
        }
        token = jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.key_id})
        self.issued.append(token)
        return 200, {
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "ext_expires_in": self.expires_in,
            "access_token": token,
        }
