"""ProducerService and AdminService: jobwire.Client's operations, answered over gRPC.

Producers are built and validated exactly as jobwire.Client builds them (payload.new_job) and
pushed with enqueue.lua from the event loop. Administration runs jobwire.Client itself in a
thread, so the web UI, the CLI and the gateway read and change Redis in one way.
"""

from __future__ import annotations

import asyncio
import json

import grpc
import redis.exceptions as rexc

from .. import payload as jobmod
from ..client import BULK_CHUNK, Client
from ..errors import InvalidJob, NotFound
from ..v1 import admin_pb2 as apb
from ..v1 import admin_pb2_grpc
from ..v1 import producer_pb2 as ppb
from ..v1 import producer_pb2_grpc
from .errors import GatewayError, abort

__all__ = ["ProducerService", "AdminService", "MAX_BULK"]

MAX_BULK = 10000  # jobs per BulkEnqueue request (spec/proto/jobwire/v1/producer.proto)
REDIS_ERRORS = (rexc.ConnectionError, rexc.TimeoutError, rexc.BusyLoadingError)


def _unavailable(exc: Exception) -> GatewayError:
    return GatewayError(grpc.StatusCode.UNAVAILABLE, "jobwire.RedisUnavailable", f"Redis unavailable: {exc}")


def _guarded(method):
    """Turn jobwire's exceptions into statuses with an ErrorDetail (spec/errors.json names)."""

    async def wrapper(self, request, context):
        try:
            return await method(self, request, context)
        except GatewayError as exc:
            await abort(context, exc)
        except NotFound as exc:
            await abort(context, GatewayError(grpc.StatusCode.NOT_FOUND, "jobwire.NotFound", str(exc)))
        except InvalidJob as exc:
            if "queue name" in str(exc):
                error = GatewayError(grpc.StatusCode.INVALID_ARGUMENT, "jobwire.InvalidQueueName", str(exc))
            elif "no runnable job" in str(exc):  # a failure record that cannot be retried
                error = GatewayError(grpc.StatusCode.FAILED_PRECONDITION, "jobwire.InvalidPayload", str(exc))
            else:
                error = GatewayError(grpc.StatusCode.INVALID_ARGUMENT, "jobwire.InvalidPayload", str(exc))
            await abort(context, error)
        except REDIS_ERRORS as exc:
            await abort(context, _unavailable(exc))

    wrapper.__name__ = method.__name__
    return wrapper


def _build(queue: str, job: ppb.NewJob) -> tuple[str, bytes]:
    """(id, payload) for one NewJob; InvalidJob when the class or arguments break the schema."""
    jobmod.validate_queue_name(queue)
    try:
        args = json.loads(job.args_json) if job.args_json else []
    except ValueError as exc:
        raise GatewayError(
            grpc.StatusCode.INVALID_ARGUMENT, "jobwire.InvalidRequest", f"args_json is not JSON: {exc}"
        ) from None
    if not isinstance(args, list):
        raise GatewayError(grpc.StatusCode.INVALID_ARGUMENT, "jobwire.InvalidRequest", "args_json must be a JSON array")
    return jobmod.new_job(job.job_class, args)


class ProducerService(producer_pb2_grpc.ProducerServiceServicer):
    def __init__(self, gateway) -> None:
        self.gw = gateway

    async def _push(self, queue: str, payloads: list[bytes]) -> None:
        k = self.gw.keys
        await self.gw.scripts.call(
            "enqueue", [k.queues, k.queue(queue), k.wake(queue), k.wake_new_queue], [queue, *payloads]
        )

    @_guarded
    async def Enqueue(self, request, context):
        job_id, payload = _build(request.queue, request.job)
        await self._push(request.queue, [payload])
        return ppb.EnqueueResponse(job_id=job_id)

    @_guarded
    async def BulkEnqueue(self, request, context):
        if len(request.jobs) > MAX_BULK:
            raise GatewayError(
                grpc.StatusCode.INVALID_ARGUMENT,
                "jobwire.InvalidRequest",
                f"{len(request.jobs)} jobs in one request; at most {MAX_BULK}",
            )
        built = [_build(request.queue, job) for job in request.jobs]  # all validated before any push
        payloads = [p for _, p in built]
        for start in range(0, len(payloads), BULK_CHUNK):
            await self._push(request.queue, payloads[start : start + BULK_CHUNK])
        return ppb.BulkEnqueueResponse(job_ids=[i for i, _ in built])


def _worker_message(w) -> apb.Worker:
    msg = apb.Worker(
        id=w.id,
        state=w.state,
        info=w.info,
        working_on_json=json.dumps(w.working_on, separators=(",", ":")) if w.working_on else "",
    )
    if w.lease_ms_left is not None:
        msg.lease_ms_left = w.lease_ms_left
    return msg


class AdminService(admin_pb2_grpc.AdminServiceServicer):
    def __init__(self, client: Client) -> None:
        self.client = client

    async def _run(self, fn, *args):
        return await asyncio.to_thread(fn, *args)

    @_guarded
    async def GetInfo(self, request, context):
        return apb.GetInfoResponse(**await self._run(self.client.info))

    @_guarded
    async def ListQueues(self, request, context):
        sizes = await self._run(self.client.queues)
        return apb.ListQueuesResponse(queues=[apb.Queue(name=n, size=s) for n, s in sizes.items()])

    @_guarded
    async def ListWorkers(self, request, context):
        workers = await self._run(self.client.workers)
        return apb.ListWorkersResponse(workers=[_worker_message(w) for w in workers])

    @_guarded
    async def ListFailures(self, request, context):
        count = min(request.count or 50, 1000)
        page = await self._run(self.client.failed, max(0, request.start), count)
        total = await self._run(self.client.failed_count)
        return apb.ListFailuresResponse(
            total=total,
            failures=[
                apb.Failure(
                    id=f.key,
                    record_json=f.raw.decode("utf-8", "replace"),
                    queue=str(f.get("queue") or ""),
                    job_class=f.job_class,
                    exception=str(f.get("exception") or ""),
                    error=str(f.get("error") or ""),
                )
                for f in page
            ],
        )

    @_guarded
    async def RetryFailure(self, request, context):
        if not await self._run(self.client.retry_failed, request.id):
            raise NotFound(f"failure {request.id} was retried or removed meanwhile")
        return apb.RetryFailureResponse()

    @_guarded
    async def RemoveFailure(self, request, context):
        if not await self._run(self.client.remove_failed, request.id):
            raise NotFound(f"failure {request.id} was retried or removed meanwhile")
        return apb.RemoveFailureResponse()

    @_guarded
    async def PauseWorker(self, request, context):
        await self._run(self.client.control, request.worker_id, "pause")
        return apb.PauseWorkerResponse()

    @_guarded
    async def ResumeWorker(self, request, context):
        await self._run(self.client.control, request.worker_id, "resume")
        return apb.ResumeWorkerResponse()

    @_guarded
    async def KillJob(self, request, context):
        await self._run(self.client.control, request.worker_id, f"kill {request.token}".strip())
        return apb.KillJobResponse()
