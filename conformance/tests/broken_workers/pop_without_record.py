"""Broken on purpose: pop-without-record (see base.py). The conformance suite must fail it."""

import sys

from base import main

sys.exit(main("pop-without-record"))
