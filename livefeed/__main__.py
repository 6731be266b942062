"""``python -m livefeed`` is the ``livefeed`` command."""

import sys

from livefeed.ops.cli import main

sys.exit(main())
