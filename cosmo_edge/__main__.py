"""Allow ``python -m cosmo_edge``."""

from cosmo_edge.cli import main

raise SystemExit(main())
