"""Subcommands of the ``cosmo-edge`` CLI, one module each (see ``cosmo_edge.cli``)."""
