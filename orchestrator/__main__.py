"""``python -m orchestrator`` is the ``gnas`` command: see :mod:`orchestrator.cli`."""
import sys

from orchestrator.cli import main

sys.exit(main())
