"""jobwire conformance suite: runs the tests of conformance/README.md against any worker.

The runner talks to a worker only through Redis and process signals. Test vectors (plain JSON)
live in conformance/vectors/v1; implementation manifests in conformance/implementations.
"""

__version__ = "1.0.0"
