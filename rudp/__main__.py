"""``python -m rudp`` runs the command line."""

import sys

from rudp.cli import main

sys.exit(main())
