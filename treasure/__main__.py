import sys

from treasure.cli.main import main

sys.exit(main())
