"""DNS switching: providers that change the protected domains' MX records, and the verification they share.

``provider.py`` states what a provider does (compare-and-swap of an MX set, a harmless test
change) and verifies every switch by querying each authoritative server directly, with
``queries.py`` (direct queries, signed with the TSIG key of ``tsig.py`` where a server
takes it); ``rfc2136.py`` and ``powerdns.py`` are the providers; ``factory.py`` picks one
from ``[dns] provider``; ``errors.py`` holds their errors.
"""
