"""A stand-in for Entra ID's token endpoint and Microsoft Graph's delta queries, over HTTPS on loopback.

It answers what the directory sync asks, shaped as Microsoft documents it:
``/{tenant}/v2.0/.well-known/openid-configuration`` and ``/{tenant}/oauth2/v2.0/token``
(client credentials; a wrong secret answers AADSTS7000215, an unknown tenant AADSTS90002),
``/v1.0/users/delta`` and ``/v1.0/groups/delta`` with ``@odata.nextLink`` paging and a final
``@odata.deltaLink``; a later call with the delta token returns only what changed since (deleted
users as ``@removed``, group members as ``members@delta``). ``throttle`` makes the next requests
answer 429 with Retry-After, as Graph does. Response bodies follow the examples on Microsoft
Learn's "user: delta", "group: delta" and "client credentials flow" pages.
"""

from __future__ import annotations

import json
import secrets
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import trustme
from cryptography import x509

PAGE_SIZE = 2


@dataclass
class GraphState:
    """The tenant's users and groups and the change log the delta tokens point into."""

    tenant_id: str
    client_id: str
    client_secret: str
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    # version -> (kind, id, removed member ids for groups); a delta token is the version it was issued at.
    log: list[tuple[str, str, frozenset[str]]] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    # The app's certificate (PEM) when it signs in with a certificate instead of the secret.
    certificate_pem: bytes | None = None
    throttle: int = 0
    retry_after: int = 1
    requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put_user(self, user: dict[str, Any]) -> None:
        """Create or update a user (a Graph user resource)."""
        with self.lock:
            self.users[user["id"]] = {**self.users.get(user["id"], {}), **user}
            self.log.append(("user", user["id"], frozenset()))

    def delete_user(self, user_id: str) -> None:
        """Delete a user."""
        with self.lock:
            self.users.pop(user_id)
            self.log.append(("user", user_id, frozenset()))

    def put_group(self, group_id: str, name: str, members: list[str]) -> None:
        """Create a group or set its members."""
        with self.lock:
            before = set(self.groups.get(group_id, {}).get("members", []))
            self.groups[group_id] = {"id": group_id, "displayName": name, "members": list(members)}
            self.log.append(("group", group_id, frozenset(before - set(members))))


def _user_page_item(state: GraphState, user_id: str) -> dict[str, Any]:
    user = state.users.get(user_id)
    if user is None:
        return {"id": user_id, "@removed": {"reason": "changed"}}
    return dict(user)


def _group_item(state: GraphState, group_id: str, removed: frozenset[str]) -> dict[str, Any]:
    group = state.groups[group_id]
    members = [{"@odata.type": "#microsoft.graph.user", "id": member} for member in group["members"]]
    members += [
        {"@odata.type": "#microsoft.graph.user", "id": member, "@removed": {"reason": "deleted"}}
        for member in sorted(removed)
    ]
    return {
        "@odata.type": "#microsoft.graph.group",
        "id": group_id,
        "displayName": group["displayName"],
        "members@delta": members,
    }


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; odata.metadata=minimal")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    @property
    def state(self) -> GraphState:
        return self.server.state

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        self.state.requests.append(f"GET {parts.path}")
        tenant = self.state.tenant_id
        if parts.path == f"/{tenant}/v2.0/.well-known/openid-configuration":
            base = self.server.base_url
            self._send(
                200,
                {
                    "token_endpoint": f"{base}/{tenant}/oauth2/v2.0/token",
                    "authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/authorize",
                    "issuer": f"{base}/{tenant}/v2.0",
                    "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
                },
            )
            return
        if parts.path.endswith("/v2.0/.well-known/openid-configuration"):
            self._send(400, _aadsts(90002, "invalid_tenant", f"Tenant '{parts.path.split('/')[1]}' not found."))
            return
        if self.headers.get("Authorization", "").removeprefix("Bearer ") not in self.state.tokens:
            self._send(401, {"error": {"code": "InvalidAuthenticationToken", "message": "Access token is empty."}})
            return
        if self.state.throttle > 0:
            self.state.throttle -= 1
            body = {"error": {"code": "TooManyRequests", "message": "Too many requests."}}
            self._send(429, body, {"Retry-After": str(self.state.retry_after)})
            return
        query = parse_qs(parts.query)
        if parts.path in ("/v1.0/users/delta", "/v1.0/groups/delta"):
            self._delta(parts.path, query)
            return
        self._send(404, {"error": {"code": "Request_ResourceNotFound", "message": f"{parts.path} not found"}})

    def _delta(self, path: str, query: dict[str, list[str]]) -> None:
        kind = "user" if "users" in path else "group"
        with self.state.lock:
            version = len(self.state.log)
            if "$skiptoken" in query:
                since, offset, version = (int(part) for part in query["$skiptoken"][0].split("."))
            else:
                since = int(query["$deltatoken"][0]) if "$deltatoken" in query else -1
                offset = 0
            changes: dict[str, frozenset[str]] = {}
            for entry_kind, object_id, removed in self.state.log[since + 1 if since >= 0 else 0 : version]:
                if entry_kind == kind:
                    changes[object_id] = changes.get(object_id, frozenset()) | removed
            if since < 0:
                pool = self.state.users if kind == "user" else self.state.groups
                changes = {object_id: frozenset() for object_id in pool}
            ids = sorted(changes)
            chunk = ids[offset : offset + PAGE_SIZE]
            if kind == "user":
                items = [_user_page_item(self.state, object_id) for object_id in chunk]
            else:
                items = [
                    _group_item(self.state, object_id, changes[object_id])
                    for object_id in chunk
                    if object_id in self.state.groups
                ]
        base = f"{self.server.base_url}{path}"
        body: dict[str, Any] = {"@odata.context": f"https://graph.microsoft.com/v1.0/$metadata#{kind}s", "value": items}
        if offset + PAGE_SIZE < len(ids):
            body["@odata.nextLink"] = f"{base}?$skiptoken={since}.{offset + PAGE_SIZE}.{version}"
        else:
            body["@odata.deltaLink"] = f"{base}?$deltatoken={version - 1}"
        self._send(200, body)

    def _assertion_valid(self, assertion: str) -> bool:
        """A client assertion (RFC 7523) signed with the registered certificate, for this token endpoint."""
        if self.state.certificate_pem is None:
            return False
        audience = f"{self.server.base_url}/{self.state.tenant_id}/oauth2/v2.0/token"
        return _check_assertion(assertion, self.state.certificate_pem, audience)

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        self.state.requests.append(f"POST {parts.path}")
        length = int(self.headers.get("Content-Length", "0"))
        form = parse_qs(self.rfile.read(length).decode())
        tenant = self.state.tenant_id
        if parts.path != f"/{tenant}/oauth2/v2.0/token":
            self._send(400, _aadsts(90002, "invalid_tenant", f"Tenant '{parts.path.split('/')[1]}' not found."))
            return
        if form.get("client_id", [""])[0] != self.state.client_id:
            self._send(400, _aadsts(700016, "unauthorized_client", "Application was not found in the directory."))
            return
        if "client_assertion" in form:
            if not self._assertion_valid(form["client_assertion"][0]):
                self._send(401, _aadsts(700027, "invalid_client", "Client assertion failed signature validation."))
                return
        elif form.get("client_secret", [""])[0] != self.state.client_secret:
            self._send(401, _aadsts(7000215, "invalid_client", "Invalid client secret provided."))
            return
        token = secrets.token_urlsafe(24)
        self.state.tokens.add(token)
        self._send(200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token})


def _check_assertion(assertion: str, certificate_pem: bytes, audience: str) -> bool:
    certificate = x509.load_pem_x509_certificate(certificate_pem)
    try:
        jwt.decode(assertion, certificate.public_key(), algorithms=["RS256", "PS256"], audience=audience)  # type: ignore[arg-type]
    except jwt.PyJWTError:
        return False
    return True


def _aadsts(code: int, error: str, text: str) -> dict[str, Any]:
    return {
        "error": error,
        "error_description": f"AADSTS{code}: {text}\r\nTrace ID: 0000aaaa-11bb-cccc-dd22-eeeeee333333\r\n"
        "Correlation ID: aaaa0000-bb11-2222-33cc-444444dddddd\r\nTimestamp: 2026-01-01 00:00:00Z",
        "error_codes": [code],
        "timestamp": "2026-01-01 00:00:00Z",
        "trace_id": "0000aaaa-11bb-cccc-dd22-eeeeee333333",
        "correlation_id": "aaaa0000-bb11-2222-33cc-444444dddddd",
        "error_uri": f"https://login.microsoftonline.com/error?code={code}",
    }


class _Server(ThreadingHTTPServer):
    state: GraphState
    base_url: str


@dataclass
class GraphStandIn:
    """A running stand-in: its URL (authority and Graph on one host), CA file and state."""

    server: _Server
    thread: threading.Thread
    ca_file: Path

    @property
    def url(self) -> str:
        """https://127.0.0.1:PORT"""
        return self.server.base_url

    @property
    def state(self) -> GraphState:
        """The tenant's users, groups and knobs."""
        return self.server.state

    def stop(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_graph(directory: Path, tenant_id: str, client_id: str, client_secret: str) -> GraphStandIn:
    """Start the stand-in on 127.0.0.1 with a certificate from a fresh test CA (written to directory)."""
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    issued.configure_cert(context)
    ca_file = directory / "graph-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server = _Server(("127.0.0.1", 0), _Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.state = GraphState(tenant_id, client_id, client_secret)
    server.base_url = f"https://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="graph-stand-in", daemon=True)
    thread.start()
    return GraphStandIn(server, thread, ca_file)
