"""Who may call the gateway: a shared token in metadata, optional TLS, and the loopback rule.

A token comes from $JOBWIRE_GATEWAY_TOKEN or a file (never a command-line argument, which `ps`
shows); clients send it as `authorization: Bearer <token>`. Without a token the gateway listens
on loopback only unless told otherwise, as `jobwire web` asks for authentication beyond loopback.
"""

from __future__ import annotations

import hmac
import ipaddress
import os

import grpc

from .errors import GatewayError

__all__ = ["TokenInterceptor", "load_token", "is_loopback", "server_credentials"]


def load_token(token_file: str | None, env=os.environ) -> str | None:
    """The token from a file (first line), else $JOBWIRE_GATEWAY_TOKEN, else None."""
    if token_file:
        with open(token_file, encoding="utf-8") as f:
            token = f.readline().strip()
        if not token:
            raise ValueError(f"token file {token_file} is empty")
        return token
    return env.get("JOBWIRE_GATEWAY_TOKEN") or None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def server_credentials(cert: str, key: str, client_ca: str | None = None) -> grpc.ServerCredentials:
    """TLS for the listener; with client_ca, clients must present a certificate it signed."""
    with open(key, "rb") as f:
        key_pem = f.read()
    with open(cert, "rb") as f:
        cert_pem = f.read()
    ca_pem = None
    if client_ca:
        with open(client_ca, "rb") as f:
            ca_pem = f.read()
    return grpc.ssl_server_credentials(
        [(key_pem, cert_pem)], root_certificates=ca_pem, require_client_auth=ca_pem is not None
    )


class TokenInterceptor(grpc.aio.ServerInterceptor):
    """Refuses every call whose `authorization` metadata is not `Bearer <token>`."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    async def intercept_service(self, continuation, details):
        given = dict(details.invocation_metadata or ()).get("authorization", "")
        if isinstance(given, str):
            given = given.encode()
        if hmac.compare_digest(given, self._expected):
            return await continuation(details)
        handler = await continuation(details)
        return _refusing(handler)


def _refusing(handler):
    """A handler of the same shape as `handler` that aborts with UNAUTHENTICATED."""
    from .errors import abort

    error = GatewayError(
        grpc.StatusCode.UNAUTHENTICATED,
        "jobwire.Unauthenticated",
        "missing or wrong token: send metadata 'authorization: Bearer <token>'",
    )

    async def unary(request, context):
        await abort(context, error)

    async def streaming(request_iterator, context):
        await abort(context, error)

    if handler is None:
        return None
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(streaming)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(streaming)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(unary)
    return grpc.unary_unary_rpc_method_handler(unary)
