"""``python -m gan.compare``: see :mod:`gan.compare`."""

import sys

from gan.compare.cli import main

sys.exit(main())
