"""Broken on purpose: racy-promote (see sched_base.py). The conformance suite must fail it."""

import sys

from sched_base import main

sys.exit(main("racy-promote"))
