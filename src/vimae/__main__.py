"""`python -m vimae ...`: the same command line as `vimae ...`."""

import sys

from vimae.cli import main

sys.exit(main())
