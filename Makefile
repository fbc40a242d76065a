# jobwire: the two commands are `make demo` and `make test`; both install what they need first.
# Each target below is a thin delegate; the real work lives in scripts/ and in each folder.

PY := .venv/bin/python

.PHONY: help setup demo lint test test-python test-node test-c test-conformance test-web test-containers test-packaging bench chaos soak

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

setup: ## install system packages, the venv, node modules; build the C worker
	bash scripts/setup.sh

demo: setup ## Python enqueues; Python, Node and C workers process; results shown
	$(PY) scripts/demo.py

lint: setup ## ruff (lint, format check), mypy, ESLint, C -pedantic -Werror (WERROR=0: report only), shellcheck
	WERROR=$(WERROR) bash scripts/lint.sh

test: setup ## every test: Python, Node, C, the conformance matrix, the containers
	bash scripts/test.sh

test-python: setup ## Python reference tests (pytest, three processes)
	$(PY) -m pytest -q -n 3 --dist worksteal python/tests

test-node: setup ## Node worker tests (node --test)
	cd examples-node && npm test

test-c: setup ## C worker tests, ASan and valgrind
	$(MAKE) -C examples-c test

test-conformance: setup ## the conformance suite against every implementation
	bash scripts/conformance.sh

test-packaging: setup ## build every package, install each outside the checkout, run it there
	$(PY) -m pytest -q -p no:cacheprovider tests/packaging

test-containers: setup ## images, docker-compose and the conformance suite in containers (root; installs docker.io)
	bash scripts/containers.sh test

bench: setup ## throughput and latency against the peers on one Redis
	$(PY) bench/run.py
	$(PY) bench/gateway.py

chaos: setup ## SIGKILL workers and Redis (AOF always / everysec) under 20,000 jobs a round; lost must be 0
	$(PY) scripts/chaos.py --json chaos-results.json

soak: setup ## 1,000,000 no-op jobs through one Python, Node and C worker; RSS sampled each second, must stay flat
	$(PY) scripts/soak.py --jobs 1000000 --json soak-results.json
