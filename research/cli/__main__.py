"""``python -m research.cli``: the ``navale`` command."""

import sys

from research.cli import main

sys.exit(main())
