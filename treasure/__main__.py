"""``python -m treasure``: the same as the ``treasure`` command."""

import sys

from treasure.cli.main import main

sys.exit(main())
