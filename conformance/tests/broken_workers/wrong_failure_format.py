"""Broken on purpose: wrong-failure-format (see base.py). The conformance suite must fail it."""

import sys

from base import main

sys.exit(main("wrong-failure-format"))
