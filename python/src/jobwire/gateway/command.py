"""`jobwire gateway`: its flags and entry point, kept here so that cli.py adds two lines.

grpcio is imported only when the command runs, so `jobwire` works without the gateway extra.
"""

from __future__ import annotations

import argparse

from ..errors import JobwireError

__all__ = ["add_parser", "run"]


def add_parser(sub, common) -> None:
    g = sub.add_parser(
        "gateway",
        parents=[common],
        help="serve the gRPC API (spec/proto) for producers and workers",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    g.add_argument(
        "--listen",
        default="127.0.0.1:7460",
        metavar="HOST:PORT",
        help="where to listen; port 0 picks a free one; unix:PATH for a Unix socket",
    )
    g.add_argument(
        "--token-file",
        metavar="FILE",
        help="file whose first line is the token clients send (else $JOBWIRE_GATEWAY_TOKEN)",
    )
    g.add_argument("--tls-cert", metavar="PEM", help="serve TLS with this certificate chain")
    g.add_argument("--tls-key", metavar="PEM", help="the certificate's private key")
    g.add_argument("--tls-client-ca", metavar="PEM", help="require client certificates signed by this CA")
    g.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="listen beyond loopback without a token (anyone who can connect may enqueue and work)",
    )
    g.add_argument(
        "--allow-namespace",
        action="append",
        default=[],
        metavar="NS",
        help="a further namespace workers may name in hello (repeatable)",
    )
    g.add_argument("--any-namespace", action="store_true", help="workers may name any namespace (tests)")
    g.add_argument(
        "--conformance",
        action="store_true",
        help="accept conformance_echo records from workers (the conformance suite only)",
    )


def run(opts) -> int:
    try:
        from .auth import load_token
        from .server import GatewayOptions, serve
    except ImportError as exc:
        raise JobwireError(f"the gateway needs the gateway extra: pip install 'jobwire[gateway]' ({exc})") from None
    if bool(opts.tls_cert) != bool(opts.tls_key):
        raise JobwireError("--tls-cert and --tls-key go together")
    try:
        token = load_token(opts.token_file)
    except (OSError, ValueError) as exc:
        raise JobwireError(str(exc)) from None
    options = GatewayOptions(
        listen=opts.listen,
        redis_url=opts.redis_url,
        namespace=opts.namespace,
        token=token,
        tls_cert=opts.tls_cert,
        tls_key=opts.tls_key,
        tls_client_ca=opts.tls_client_ca,
        allow_insecure=opts.insecure_no_auth,
        conformance=opts.conformance,
        extra_namespaces=opts.allow_namespace,
        any_namespace=opts.any_namespace,
    )
    try:
        return serve(options)
    except ValueError as exc:
        raise JobwireError(str(exc)) from None
