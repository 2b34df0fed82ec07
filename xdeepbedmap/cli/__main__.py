"""``python -m xdeepbedmap.cli ...``, the same as the ``xdeepbedmap`` command."""

import sys

from xdeepbedmap.cli import main

sys.exit(main())
