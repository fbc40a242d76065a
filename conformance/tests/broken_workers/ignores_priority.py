"""Broken on purpose: ignores-priority (see base.py). The conformance suite must fail it."""

import sys

from base import main

sys.exit(main("ignores-priority"))
