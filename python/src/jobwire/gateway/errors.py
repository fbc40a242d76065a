"""gRPC errors carrying a spec/errors.json name (jobwire.v1.ErrorDetail in the status details).

Every error a gateway returns has a gRPC code for the kind of failure and, in
google.rpc.Status.details, an ErrorDetail naming the protocol rule; the plain trailer
`jobwire-error-name` repeats the name for clients without the google.rpc protos.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import status_pb2
from grpc_status import rpc_status

from .. import spec
from ..v1 import common_pb2

__all__ = ["GatewayError", "abort", "known_names", "NAME_TRAILER"]

NAME_TRAILER = "jobwire-error-name"


def known_names() -> set[str]:
    """Every name errors.json lists: exceptions, script replies and gateway statuses."""
    data = spec.errors()
    return {e["name"] for section in ("exceptions", "replies", "statuses") for e in data.get(section, [])}


class GatewayError(Exception):
    """Raised inside a handler; the server turns it into a status with an ErrorDetail."""

    def __init__(self, code: grpc.StatusCode, name: str, message: str) -> None:
        super().__init__(message)
        self.code, self.name, self.message = code, name, message

    def status(self) -> grpc.Status:
        detail = any_pb2.Any()
        detail.Pack(common_pb2.ErrorDetail(name=self.name, message=self.message))
        status = rpc_status.to_status(
            status_pb2.Status(code=self.code.value[0], message=self.message, details=[detail])
        )
        return status


async def abort(context, error: GatewayError):
    """End the call with the error's status, details and name trailer."""
    status = error.status()
    await context.abort(status.code, status.details, tuple(status.trailing_metadata) + ((NAME_TRAILER, error.name),))
