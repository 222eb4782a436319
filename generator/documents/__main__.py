"""`python -m generator.documents` (`make docs`): write docs/, or --check for staleness."""

import sys

from generator.documents.pages import main

sys.exit(main())
