"""Broken on purpose: blocks-through-signals (see base.py). The conformance suite must fail it."""

import sys

from base import main

sys.exit(main("blocks-through-signals"))
