"""Entry point of ``python -m bench.pods`` (see ``bench.pods.main``)."""

import sys

from bench.pods.main import main

sys.exit(main())
