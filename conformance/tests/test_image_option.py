"""`--image` / `--image-cmd` without an engine: how the worker command is formed, and the errors a
user gets (the runs against real images are in docker/tests/test_conformance_images.py)."""

from jobwire_conformance import cli
from jobwire_conformance.impl import Implementation


def test_image_entrypoint_gets_the_standard_flags():
    impl = Implementation.from_image("my/worker:1", None, "fork", ["fork-per-job"], "mine")
    assert impl.image == "my/worker:1" and not impl.image_entrypoint
    assert impl.worker_argv[:2] == ["--queues", "{queues}"] and "--redis-url" in impl.worker_argv
    assert impl.mode == "fork" and impl.features == ["fork-per-job"] and impl.impl == "mine"


def test_image_cmd_replaces_the_entrypoint():
    impl = Implementation.from_image("my/worker:1", "my-worker --verbose")
    assert impl.image_entrypoint and impl.worker_argv[:3] == ["my-worker", "--verbose", "--queues"]
    placeholders = Implementation.from_image("my/worker:1", "w -q {queues} -r {redis_url}")
    assert placeholders.worker_argv == ["w", "-q", "{queues}", "-r", "{redis_url}"]


def test_image_cmd_needs_image(capsys):
    assert cli.main(["--image-cmd", "w"]) == 2
    assert "--image-cmd needs --image" in capsys.readouterr().err
