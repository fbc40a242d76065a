"""jobwire: the reference implementation of the jobwire protocol (spec/protocol.md).

import jobwire
client = jobwire.Client("redis://127.0.0.1:6379/0")
job_id = client.enqueue("high", "Mail", "ada@example.org", 7)

@jobwire.job("Mail")
def mail(to, n): ...
"""

from .spec import release_version  # noqa: E402

__version__ = release_version()  # the root VERSION (spec.py says where it is read)

from .client import Client, Failure, QueuedJob, WorkerView, connect  # noqa: E402
from .errors import InvalidJob, JobwireError, NotFound, SpecMismatch  # noqa: E402
from .keys import Keys  # noqa: E402
from .registry import DontPerform, Registry, default_registry, job  # noqa: E402
from .worker import Config, Worker, current_job  # noqa: E402

__all__ = [
    "Client",
    "Config",
    "DontPerform",
    "Failure",
    "InvalidJob",
    "JobwireError",
    "Keys",
    "NotFound",
    "QueuedJob",
    "Registry",
    "SpecMismatch",
    "Worker",
    "WorkerView",
    "connect",
    "current_job",
    "default_registry",
    "job",
    "__version__",
]
