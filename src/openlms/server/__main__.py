"""`python -m openlms.server`: run the server in the foreground."""

import sys

from openlms.server.daemon import run

sys.exit(run())
