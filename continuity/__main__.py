"""Allow ``python -m continuity`` as an alias of the ``continuity`` command."""

from continuity.cli.main import main

main()
