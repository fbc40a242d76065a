"""Exceptions raised by the jobwire client and worker. Each says plainly what went wrong."""

from __future__ import annotations


class JobwireError(Exception):
    """Base of every error jobwire raises on purpose."""


class InvalidJob(JobwireError):
    """A payload, queue name or class failed validation; nothing was pushed."""


class NotFound(JobwireError):
    """No job, failure record or worker has the given id."""


class SpecMismatch(JobwireError):
    """Redis holds data of another protocol major version (JOBWIRE_SPEC_MISMATCH)."""
