"""`python -m zfkeras` works like the `zfkeras` command."""

import sys

from zfkeras.cli import main

sys.exit(main())
