import sys

from dan_core.cli import main

sys.exit(main())
