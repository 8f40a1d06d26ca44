"""``python -m tickvault``: the same as the ``tickvault`` command."""

from .cli import main

raise SystemExit(main())
