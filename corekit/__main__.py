import sys

from corekit.cli import main

sys.exit(main())
