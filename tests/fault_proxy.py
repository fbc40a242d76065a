#!/usr/bin/env python3
"""A loopback TCP proxy to Redis that makes wire faults on demand: the fault tests of every language use it.

    python3 tests/fault_proxy.py --target PORT       prints "port N", then obeys stdin, one command a line:
        forward      pass bytes both ways (the start)
        hang         connections accepted from now on are held open, never read, never answered
        cut N        the next reply from Redis reaches the client as its first N bytes and a closed socket
        drop         close every connection through the proxy (clients must reconnect)
        cuts         print "cuts K": how many replies were cut so far
    Each command is answered with a line ("ok", or "cuts K"); end of stdin stops the proxy.

Python tests import `Proxy` (python/tests/test_faults.py); the Node tests (examples-node/test/
faults.test.js) and the C runner (examples-c/tests/run_tests.py) spawn this script. One proxy, so
a fault means the same bytes on the wire in every language. Standard library only.
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading

__all__ = ["Proxy"]


class Proxy:
    """A loopback TCP proxy to Redis on 127.0.0.1:target_port; listens on a free port (`.port`)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.mode = "forward"
        self.cut_after: int | None = None  # bytes of the next server reply to pass before cutting
        self.cuts = 0
        self.conns: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.conns.append(client)
            if self.mode == "hang":
                continue  # held open, never read, never answered
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns.append(upstream)
            threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, from_server: bool) -> None:
        """Copy src to dst; a reply from Redis is cut once when `cut_after` is set."""
        try:
            while data := src.recv(65536):
                if from_server and self.cut_after is not None and len(data) > self.cut_after:
                    dst.sendall(data[: self.cut_after])
                    self.cut_after, self.cuts = None, self.cuts + 1
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            _close(s)

    def drop_all(self) -> None:
        """Close every connection through the proxy (the worker must reconnect)."""
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            _close(s)

    def close(self) -> None:
        self.listener.close()
        self.drop_all()


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()


def _obey(proxy: Proxy, line: str) -> str:
    """One stdin command; the line to answer."""
    verb, _, arg = line.strip().partition(" ")
    if verb in ("forward", "hang"):
        proxy.mode = verb
    elif verb == "cut":
        proxy.cut_after = int(arg)
    elif verb == "drop":
        proxy.drop_all()
    elif verb == "cuts":
        return f"cuts {proxy.cuts}"
    else:
        return f"error unknown command {line.strip()!r}"
    return "ok"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=int, required=True, help="the Redis port on 127.0.0.1")
    proxy = Proxy(parser.parse_args().target)
    print(f"port {proxy.port}", flush=True)
    for line in sys.stdin:
        if line.strip():
            print(_obey(proxy, line), flush=True)
    proxy.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
