"""``python -m nervkit`` (and ``torchrun -m nervkit``) run the CLI."""

import sys

from .cli.main import main

sys.exit(main())
