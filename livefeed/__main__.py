"""``python -m livefeed`` is the ``livefeed`` command."""

import sys

from livefeed.cli import main

sys.exit(main())
