# Shopfloor — `make run` starts the server with a demo plant, `make test` runs the suite.
# Both create .venv and install what they need on a fresh machine.

SHELL := bash

# The first interpreter on PATH that runs and is Python >= 3.11.
PYTHON ?= $(shell for p in python3 python3.13 python3.12 python3.11; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA_DIR ?= var/demo
# The demo has well-known credentials: it listens on loopback unless told otherwise
# (HOST=0.0.0.0 make run exposes it to the network).
HOST ?= 127.0.0.1
# The settings of `shopfloor serve` win over the defaults, as the server's messages advise.
HTTP_PORT ?= $(or $(SHOPFLOOR_HTTP_PORT),8000)
# Another broker often holds 1883 already (Mosquitto on this kind of machine, for one):
# the demo then takes 11883, and when that is taken too (a second demo) a free port,
# printed at start.
MQTT_PORT ?= $(or $(SHOPFLOOR_MQTT_PORT),$(shell for p in 1883 11883; do \
	(exec 3<>/dev/tcp/127.0.0.1/$$p) 2>/dev/null || { echo $$p; exit; }; done; echo 0))
# MQTT over TLS (client certificates from the platform's CA): 8883, else 18883, else free.
MQTTS_PORT ?= $(or $(SHOPFLOOR_MQTTS_PORT),$(shell for p in 8883 18883; do \
	(exec 3<>/dev/tcp/127.0.0.1/$$p) 2>/dev/null || { echo $$p; exit; }; done; echo 0))

# The SDK's gRPC code, generated from its .proto (not committed; see src/shopfloor/sdk/_protos.py).
PROTO_OUT := src/shopfloor/sdk/_generated/agent_pb2.py
# The console's browser assets (htmx, ECharts) from the npm registry, pinned by the lock
# file; served from node_modules by the console service, never copied into the repo.
NODE_STAMP := node_modules/.package-lock.json

.PHONY: run test bench check services chromium install proto clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python >= 3.11 is required (python3 on PATH)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(PROTO_OUT): src/shopfloor/sdk/proto/agent.proto src/shopfloor/sdk/_protos.py $(STAMP)
	$(BIN)/python -P src/shopfloor/sdk/_protos.py

proto: $(PROTO_OUT)

$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm is required for the console's assets (apt-get install npm)"; exit 1; }
	npm ci --no-audit --no-fund --silent
	touch $(NODE_STAMP)

install: $(STAMP) $(PROTO_OUT) $(NODE_STAMP)
	@# Bytecode of the package, written even where PYTHONDONTWRITEBYTECODE is set: every
	@# `shopfloor` process would otherwise compile its 360 modules again at start.
	@$(BIN)/python -m compileall -q src > /dev/null

run: install
	SHOPFLOOR_LOG_FORMAT=$${SHOPFLOOR_LOG_FORMAT:-text} \
	SHOPFLOOR_ADMIN_EMAIL=$${SHOPFLOOR_ADMIN_EMAIL:-admin@demo.plant} \
	SHOPFLOOR_ADMIN_PASSWORD=$${SHOPFLOOR_ADMIN_PASSWORD:-shopfloor-demo} \
	SHOPFLOOR_MQTT_HOST=$${SHOPFLOOR_MQTT_HOST:-$(HOST)} \
	$(BIN)/shopfloor serve --demo --data-dir $(DATA_DIR) --http-host $(HOST) \
		--http-port $(HTTP_PORT) --mqtt-port $(MQTT_PORT) --mqtts-port $(MQTTS_PORT) \
		--stop-with-parent

services:
	bash scripts/ensure-services.sh

chromium:
	bash scripts/ensure-chromium.sh

test: install services chromium
	$(BIN)/python -m pytest -q

bench: install services
	PYTHON=$(BIN)/python bash scripts/ensure-bench-tools.sh
	$(BIN)/python -m bench --output docs/benchmarks.md

check: install
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/mypy

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache src/shopfloor/sdk/_generated node_modules
