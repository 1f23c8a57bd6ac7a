"""The DNS the ingest benchmark's filters use: a private BIND on loopback, authoritative for the root zone.

Being authoritative for "." it answers every name at once, from memory: the benchmark's
sender domain has the records of a well-run domain (A, MX, SPF, DMARC) and the clients'
address 127.0.0.1 names the HELO host, which names it back, so both filters see a
legitimate sender and do a real SPF pass and DMARC check; every other name (block lists,
the hosts of rspamd's maps) is NXDOMAIN. So no query leaves the machine and none waits
for a time-out.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.bind import BindServer

ROOT_ZONE = """$ORIGIN .
$TTL 3600
@ IN SOA ns1.bench. hostmaster.bench. 1 3600 600 86400 3600
@ IN NS ns1.bench.
ns1.bench. IN A 127.0.0.1
bench.test. IN A 127.0.0.1
bench.test. IN MX 10 load.bench.test.
bench.test. IN TXT "v=spf1 ip4:127.0.0.0/8 -all"
_dmarc.bench.test. IN TXT "v=DMARC1; p=none"
load.bench.test. IN A 127.0.0.1
1.0.0.127.in-addr.arpa. IN PTR load.bench.test.
"""


def start_loopback_dns(workdir: Path) -> BindServer:
    """Start the resolver; its address for settings is f"127.0.0.1:{server.port}"."""
    server = BindServer(workdir, {".": ROOT_ZONE})
    server.start()
    return server
