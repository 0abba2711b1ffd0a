"""``python -m numbanet`` runs the command line (see :mod:`numbanet.cli`)."""

import sys

from numbanet.cli import main

sys.exit(main())
