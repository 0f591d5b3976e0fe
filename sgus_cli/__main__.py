"""``python -m sgus_cli``: the same as the ``sgus`` command."""

import sys

from sgus_cli.main import main

sys.exit(main())
