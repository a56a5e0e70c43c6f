"""``python -m engine.cli``: the same as the ``dlab`` command."""

from engine.cli import main

raise SystemExit(main())
