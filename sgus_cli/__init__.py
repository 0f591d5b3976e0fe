"""The ``sgus`` command: the command-line face of SGUS Studio (contract: ``docs/CLI.md``)."""
