"""`python -m generator.release` (`make release`): build dist/<version>/ with every gate."""

import sys

from generator.release.bundle import main

sys.exit(main())
