"""``python -m fastdl``: the ``fastdl`` console command."""

import sys

from fastdl.cli import main

sys.exit(main())
