"""jobwire gateway: the protocol over gRPC (spec/proto/jobwire/v1), for producers, operators and
workers that should not speak Redis.

On the Redis side the gateway is an ordinary jobwire participant: each worker stream is one
jobwire worker (its own id, lease, in-flight hash and working-on record) driven through the
spec's Lua scripts unchanged. Modules: protos (stub generation), errors (status details), auth
(token and TLS), session (one worker stream), services (producer and admin), server (the
asyncio server and `jobwire gateway`), pair (a gateway per worker, for the conformance suite).

Nothing here is imported by `import jobwire`; grpcio is the optional extra `jobwire[gateway]`.
"""
