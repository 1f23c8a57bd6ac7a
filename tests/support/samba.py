"""Samba as an Active Directory domain controller for tests, on loopback.

The domain is provisioned once (``samba-tool domain provision``, about 15 seconds) into a
template directory; each test copies it and starts its own ``samba`` in the foreground with
only the LDAP service, LDAPS on 127.0.0.1:636 (Samba has no setting for the port) with a
certificate from a test CA (trustme). The test then creates users over LDAPS as an admin
would (ldap3 as Domain Administrator). Debian's samba packages are installed when missing.
"""

from __future__ import annotations

import shutil
import signal
import ssl
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import ldap3
import trustme
from ldap3.core.exceptions import LDAPException

from tests.support.ports import wait_for_port

REALM = "CORP.EXAMPLE.TEST"
DOMAIN = "CORP"
BASE_DN = "DC=corp,DC=example,DC=test"
ADMIN_DN = f"CN=Administrator,CN=Users,{BASE_DN}"
ADMIN_PASSWORD = "Adm1n-Passw0rd!"  # a throwaway test domain's password
USER_PASSWORD = "Us3r-Passw0rd!x"
HOST = "127.0.0.1"
LDAPS_PORT = 636
PACKAGES = ("samba", "samba-ad-dc", "samba-ad-provision", "samba-dsdb-modules", "ldb-tools")
ENABLED = 512  # NORMAL_ACCOUNT
DISABLED = 514  # NORMAL_ACCOUNT | ACCOUNTDISABLE


def ensure_samba() -> None:
    """Install Debian's Samba AD DC packages when samba-tool or the AD schema files are missing."""
    if shutil.which("samba-tool") and Path("/usr/share/samba/setup/ad-schema").is_dir():
        return
    subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES], check=True, timeout=900)


def provision(target: Path) -> Path:
    """Provision the test domain into target (the template); returns it."""
    ensure_samba()
    result = subprocess.run(
        [
            "samba-tool",
            "domain",
            "provision",
            "--use-rfc2307",
            f"--realm={REALM}",
            f"--domain={DOMAIN}",
            "--server-role=dc",
            "--dns-backend=NONE",
            f"--adminpass={ADMIN_PASSWORD}",
            "--option=interfaces=lo",
            "--option=bind interfaces only=yes",
            f"--targetdir={target}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"samba-tool domain provision failed: {result.stdout[-2000:]}{result.stderr[-2000:]}")
    return target


def _smb_conf(root: Path, template: Path, cert: Path, key: Path, ca: Path) -> Path:
    """The template's smb.conf pointed at root, with only LDAP on 127.0.0.1 and our certificate."""
    replaced = {"server services", "interfaces", "log file", "logging", "tls enabled", "tls keyfile"}
    replaced |= {"tls certfile", "tls cafile", "ldap server require strong auth"}
    lines = []
    for line in (template / "etc" / "smb.conf").read_text().splitlines():
        key_name = line.split("=")[0].strip()
        if key_name in replaced:
            continue
        lines.append(line.replace(str(template), str(root)))
        if line.strip() == "[global]":
            lines += [
                "\tserver services = ldap",
                f"\tinterfaces = {HOST}",
                "\tlogging = stdout",
                "\ttls enabled = yes",
                f"\ttls keyfile = {key}",
                f"\ttls certfile = {cert}",
                f"\ttls cafile = {ca}",
                "\tldap server require strong auth = allow_sasl_over_tls",
            ]
    path = root / "etc" / "smb.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class SambaDc:
    """A running domain controller copied from the template."""

    root: Path
    process: subprocess.Popen[bytes]
    ca_file: Path
    url: str = f"ldaps://{HOST}:{LDAPS_PORT}"
    base_dn: str = BASE_DN
    _admin: ldap3.Connection | None = field(default=None, repr=False)

    def admin(self) -> ldap3.Connection:
        """An LDAPS connection bound as the domain administrator (kept open)."""
        if self._admin is None:
            tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(self.ca_file))
            server = ldap3.Server(HOST, port=LDAPS_PORT, use_ssl=True, tls=tls, get_info=ldap3.NONE)
            self._admin = ldap3.Connection(server, ADMIN_DN, ADMIN_PASSWORD, auto_bind=True, raise_exceptions=True)
        return self._admin

    def add_user(
        self,
        name: str,
        *,
        mail: str | None = None,
        proxy: Sequence[str] = (),
        display_name: str | None = None,
        mobile: str | None = None,
        other_mailbox: str | None = None,
        enabled: bool = True,
        ou: str = "CN=Users",
    ) -> str:
        """Create a user with a password (over LDAPS, as AD requires); returns its DN."""
        dn = f"CN={name},{ou},{BASE_DN}"
        attributes: dict[str, object] = {
            "sAMAccountName": name,
            "userPrincipalName": f"{name}@corp.example.test",
            "displayName": display_name or name,
            "unicodePwd": f'"{USER_PASSWORD}"'.encode("utf-16-le"),
            "userAccountControl": str(ENABLED if enabled else DISABLED),
        }
        if mail:
            attributes["mail"] = mail
        if proxy:
            attributes["proxyAddresses"] = list(proxy)
        if mobile:
            attributes["mobile"] = mobile
        if other_mailbox:
            attributes["otherMailbox"] = other_mailbox
        self.admin().add(dn, ["top", "person", "organizationalPerson", "user"], attributes)  # type: ignore[no-untyped-call]
        return dn

    def replace(self, dn: str, attribute: str, values: Sequence[str]) -> None:
        """Replace attribute's values on dn."""
        self.admin().modify(dn, {attribute: [(ldap3.MODIFY_REPLACE, list(values))]})  # type: ignore[no-untyped-call]

    def add_ou(self, name: str) -> str:
        """Create an organizational unit; returns its DN."""
        dn = f"OU={name},{BASE_DN}"
        self.admin().add(dn, ["top", "organizationalUnit"])  # type: ignore[no-untyped-call]
        return dn

    def add_group(self, name: str, members: Sequence[str], ou: str) -> str:
        """Create a global security group under ou with members (DNs); returns its DN."""
        dn = f"CN={name},{ou}"
        self.admin().add(dn, ["top", "group"], {"sAMAccountName": name, "member": list(members)})  # type: ignore[no-untyped-call]
        return dn

    def delete(self, dn: str) -> None:
        """Delete the object dn."""
        self.admin().delete(dn)  # type: ignore[no-untyped-call]

    def stop(self) -> None:
        """Stop samba and wait for it."""
        if self._admin is not None:
            self._admin.unbind()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_dc(template: Path, root: Path) -> SambaDc:
    """Copy the provisioned template to root and start a DC on it; LDAPS answers when this returns."""
    shutil.copytree(template, root, symlinks=True)
    ca = trustme.CA()
    issued = ca.issue_cert(HOST, "dc.corp.example.test")
    tls_dir = root / "test-tls"
    tls_dir.mkdir()
    cert, key, ca_file = tls_dir / "cert.pem", tls_dir / "key.pem", tls_dir / "ca.pem"
    issued.private_key_pem.write_to_path(str(key))
    key.chmod(0o600)
    issued.cert_chain_pems[0].write_to_path(str(cert))
    ca.cert_pem.write_to_path(str(ca_file))
    conf = _smb_conf(root, template, cert, key, ca_file)
    log = (root / "samba.log").open("wb")
    process = subprocess.Popen(
        ["samba", "-i", "-M", "single", "-s", str(conf), "--no-process-group"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(LDAPS_PORT, timeout=60, host=HOST)
    except TimeoutError:
        process.kill()
        process.wait()
        output = (root / "samba.log").read_text()[-2000:]
        raise RuntimeError(f"samba did not listen on {HOST}:{LDAPS_PORT}: {output}") from None
    dc = SambaDc(root, process, ca_file)
    deadline = time.monotonic() + 30
    while True:
        try:
            dc.admin()
            return dc
        except LDAPException:
            if time.monotonic() > deadline:
                dc.stop()
                raise
            time.sleep(0.5)
