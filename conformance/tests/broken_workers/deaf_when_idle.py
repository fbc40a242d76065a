"""Broken on purpose: the Python reference worker with its blocking call's read timeout equal to the
block timeout, as before issue 13 (redis-py's default 5 s against a 5 s BLPOP). Redis answers a
timed-out BLPOP a little late, the client gives up first, drops the connection, logs a warning and
sleeps: deaf for half a second every block timeout. worker.idle.quiet must fail it.

    .venv/bin/python deaf_when_idle.py worker --import jobwire.conformance_jobs [standard flags]
"""

import sys

from jobwire import cli, worker

worker.BLOCK_READ_MARGIN_S = 0.0

sys.exit(cli.main())
