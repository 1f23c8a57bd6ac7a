"""A stand-in for the primary Exchange, from real parts on loopback: Postfix, Dovecot and an HTTPS health server.

* Postfix receives SMTP (STARTTLS with a test CA's certificate) for the given domains and
  hands every message to Dovecot over LMTP;
* Dovecot serves the mailboxes over IMAPS; every user's password is in ``users``, and a
  master user (``master_user``, log in as ``alice@example.com*replay``) can open any
  mailbox, for replay and sync;
* the health server answers Exchange's ``/owa|/ews|/Autodiscover|/mapi/healthcheck.htm``.

``start()``, ``stop()`` and ``start()`` again (an outage and a restart) work on the whole
set; ``maintenance(True)`` puts it into maintenance as Exchange does (SMTP greets with
``421 4.3.2``, the health endpoints answer 503), ``maintenance(False)`` back into service;
``settings()`` gives the appliance's ``[primary]`` and ``[monitor]`` settings for it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trustme

from bench.postfix_instance import PostfixInstance, ensure_postfix
from tests.support.exchange_health import HEALTH_PATHS
from tests.support.ports import free_port, wait_for_port

MASTER_USER = "replay"


class PrimaryStandIn:
    """Postfix + Dovecot + HTTPS health server in a directory of their own under /tmp."""

    def __init__(
        self,
        domains: list[str],
        users: dict[str, str],
        *,
        master_password: str = "replay-secret",
        oauth2_key: str = "",
        oauth2_key_id: str = "k1",
    ) -> None:
        # Postfix and Dovecot drop privileges and cannot enter pytest's private (0700) tmp
        # dirs: everything lives in a world-traversable directory of its own, removed by close().
        self.workdir = Path(tempfile.mkdtemp(prefix="primary-"))
        self.workdir.chmod(0o755)
        self.domains = domains
        self.users = users
        self.master_password = master_password
        # With an oauth2_key (a PEM public key), Dovecot also takes XOAUTH2 and OAUTHBEARER tokens
        # (RS256 JWTs) signed by its private half: see _oauth2_config.
        self.oauth2_key = oauth2_key
        self.oauth2_key_id = oauth2_key_id
        self.smtp_port = free_port()
        self.imaps_port = free_port()
        self.lmtp_port = free_port()
        self.https_port = free_port()
        self.ca = trustme.CA()
        self.ca_file = self.workdir / "ca.pem"
        self.cert_file = self.workdir / "server.pem"
        self.key_file = self.workdir / "server.key"
        self._postfix: PostfixInstance | None = None
        self._dovecot: subprocess.Popen[bytes] | None = None
        self._health: subprocess.Popen[bytes] | None = None
        self._health_down: tuple[str, ...] = ()
        self._prepared = False

    # -- set-up ---------------------------------------------------------------------------

    def _prepare(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        server = self.ca.issue_cert("127.0.0.1", "localhost", "mail.example.com")
        server.private_key_pem.write_to_path(str(self.key_file))
        server.cert_chain_pems[0].write_to_path(str(self.cert_file))
        for pem in server.cert_chain_pems[1:]:
            with self.cert_file.open("ab") as handle:
                handle.write(pem.bytes())
        self._write_dovecot_config()
        ensure_postfix()
        self._postfix = PostfixInstance(
            self.workdir / "postfix",
            self.smtp_port,
            {
                "myhostname": "mail.example.com",
                "virtual_mailbox_domains": " ".join(self.domains),
                "virtual_mailbox_maps": "static:ok",
                "virtual_transport": f"lmtp:inet:127.0.0.1:{self.lmtp_port}",
                "smtpd_tls_cert_file": str(self.cert_file),
                "smtpd_tls_key_file": str(self.key_file),
                "smtpd_tls_security_level": "may",
                "smtpd_banner": "$myhostname ESMTP Microsoft ESMTP MAIL Service (stand-in)",
                "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            },
        )
        self._prepared = True

    def _write_dovecot_config(self) -> None:
        root = self.workdir / "dovecot"
        for sub in ("run", "state", "mail"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        shutil.chown(root / "mail", user="nobody", group="nogroup")
        (root / "users").write_text("".join(f"{user}:{{PLAIN}}{password}\n" for user, password in self.users.items()))
        (root / "masters").write_text(f"{MASTER_USER}:{{PLAIN}}{self.master_password}\n")
        (root / "dovecot.conf").write_text(
            f"""
base_dir = {root / "run"}
state_dir = {root / "state"}
instance_name = primary-{self.imaps_port}
log_path = {root / "dovecot.log"}
protocols = imap lmtp
listen = 127.0.0.1
ssl = required
ssl_cert = <{self.cert_file}
ssl_key = <{self.key_file}
auth_mechanisms = {"plain xoauth2 oauthbearer" if self.oauth2_key else "plain"}
auth_master_user_separator = *
auth_verbose = yes
first_valid_uid = 1
mail_location = maildir:{root / "mail"}/%d/%n
default_internal_user = dovecot
default_login_user = dovenull
passdb {{
  driver = passwd-file
  args = {root / "masters"}
  master = yes
  result_success = continue
}}
passdb {{
  driver = passwd-file
  args = username_format=%u {root / "users"}
}}
{self._oauth2_config(root)}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={root / "mail"}/%d/%n
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.imaps_port}
    ssl = yes
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {self.lmtp_port}
  }}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
protocol lmtp {{
  postmaster_address = postmaster@{self.domains[0]}
}}
"""
        )

    def _oauth2_config(self, root: Path) -> str:
        """Dovecot's oauth2 passdb validating JWTs locally with oauth2_key (empty without one).

        An Exchange Online app token names no mailbox: the app may open every mailbox it has
        FullAccess on. The stand-in models an app with FullAccess on its own domain's mailboxes:
        the token's ``email`` claim is the app's address, and ``username_format = %d`` makes
        Dovecot compare only the domains of that claim and of the mailbox asked for.
        """
        if not self.oauth2_key:
            return ""
        keys = root / "keys"
        # The key dict's lookup key is shared/<azp or "default">/<alg>/<kid or "default">.
        key_file = self._oauth2_key_file()
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_text(self.oauth2_key)
        (root / "oauth2.conf.ext").write_text(
            f"""introspection_mode = local
local_validation_key_dict = fs:posix:prefix={keys}/
username_attribute = email
username_format = %d
"""
        )
        return f"""passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {root / "oauth2.conf.ext"}
}}"""

    def _oauth2_key_file(self) -> Path:
        return self.workdir / "dovecot" / "keys" / "default" / "RS256" / self.oauth2_key_id

    def revoke_oauth2_key(self) -> None:
        """Stop trusting the token signing key: every token is refused from now on."""
        self._oauth2_key_file().unlink(missing_ok=True)
        self._reload_dovecot()

    def trust_oauth2_key(self) -> None:
        """Trust the token signing key again (after revoke_oauth2_key)."""
        self._oauth2_key_file().write_text(self.oauth2_key)
        self._reload_dovecot()

    def _reload_dovecot(self) -> None:
        # Dovecot keeps the keys it has read in memory: a reload makes it read the dict again.
        config = self.workdir / "dovecot" / "dovecot.conf"
        subprocess.run(["doveadm", "-c", str(config), "reload"], check=True, capture_output=True)
        wait_for_port(self.imaps_port, timeout=30)

    # -- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start (or restart) Postfix, Dovecot and the health server; wait until all listen."""
        first = not self._prepared
        if first:
            self._prepare()
        assert self._postfix is not None
        config = self.workdir / "dovecot" / "dovecot.conf"
        self._dovecot = subprocess.Popen(
            ["dovecot", "-F", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._start_health()
        if first:
            self._postfix.start()
        else:
            subprocess.run(["postfix", "-c", str(self._postfix.config_dir), "start"], check=True, capture_output=True)
        for port in (self.imaps_port, self.lmtp_port, self.https_port, self.smtp_port):
            wait_for_port(port, timeout=30)

    def _start_health(self) -> None:
        self._health = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.exchange_health",
                str(self.https_port),
                str(self.cert_file),
                str(self.key_file),
                *self._health_down,
            ],
            cwd=Path(__file__).resolve().parents[2],
        )

    def maintenance(self, on: bool, timeout: float = 15.0) -> None:
        """Put the running stand-in into maintenance as Exchange does, or back into service.

        An Exchange server in maintenance (its transport components inactive) greets SMTP
        clients with ``421 4.3.2 Service not available`` and hangs up, and its health
        endpoints answer 503 so load balancers take it out; IMAP goes on. Postfix does the
        first with a client restriction answering 421, checked at connect
        (``smtpd_delay_reject = no``), after a ``postfix reload``.
        """
        assert self._postfix is not None and self._health is not None
        postconf = ["postconf", "-c", str(self._postfix.config_dir)]
        if on:
            subprocess.run(
                [
                    *postconf,
                    "-e",
                    "smtpd_delay_reject = no",
                    "smtpd_client_restrictions = check_client_access static:{421 4.3.2 Service not available}",
                ],
                check=True,
                capture_output=True,
            )
        else:
            subprocess.run([*postconf, "-X", "smtpd_delay_reject", "smtpd_client_restrictions"], check=True)
        subprocess.run(["postfix", "-c", str(self._postfix.config_dir), "reload"], check=True, capture_output=True)
        self._health.terminate()
        self._health.wait(timeout=10)
        self._health_down = HEALTH_PATHS if on else ()
        self._start_health()
        # A reload lets sessions in progress finish on the old settings: wait for the new greeting.
        wanted = b"421 " if on else b"220 "
        deadline = time.monotonic() + timeout
        while not self._greeting().startswith(wanted):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the stand-in's SMTP greeting is not {wanted!r} after {timeout}s")
            time.sleep(0.1)
        wait_for_port(self.https_port, timeout=timeout)

    def _greeting(self) -> bytes:
        try:
            with socket.create_connection(("127.0.0.1", self.smtp_port), timeout=2) as connection:
                return connection.recv(512)
        except OSError:
            return b""

    def stop(self) -> None:
        """Stop everything, as a crashed server: nothing answers any more."""
        if self._postfix is not None:
            subprocess.run(["postfix", "-c", str(self._postfix.config_dir), "stop"], capture_output=True)
        for process in (self._health, self._dovecot):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self._health = self._dovecot = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.answers():
            time.sleep(0.1)

    def answers(self) -> bool:
        """True while any of the SMTP, IMAPS or HTTPS ports accepts connections."""
        for port in (self.smtp_port, self.imaps_port, self.https_port):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return True
            except OSError:
                continue
        return False

    def close(self) -> None:
        """Stop and remove every file."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    # -- for the appliance ----------------------------------------------------------------

    def settings(self, canary_user: str = "", *, imap: bool = True) -> dict[str, Any]:
        """[primary] and [monitor] overrides that point the appliance at this stand-in."""
        user = canary_user or next(iter(self.users))
        return {
            "primary": {"host": "127.0.0.1", "smtp_port": self.smtp_port, "imap_port": self.imaps_port},
            "monitor": {
                "https_port": self.https_port,
                "ca_file": str(self.ca_file),
                "imap": imap,
                "canary_user": user,
                "canary_password": self.users[user],
            },
        }
