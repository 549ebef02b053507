"""``python -m common.data download|check [NAME ...]`` (see :mod:`common.data.cli`)."""
import sys

from common.data.cli import main

sys.exit(main())
