"""Broken on purpose: racy-fire (see sched_base.py). The conformance suite must fail it."""

import sys

from sched_base import main

sys.exit(main("racy-fire"))
