# Fleetops: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.9.30
TOOLS := .tools
UV := $(TOOLS)/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := .venv
RUN := $(UV) run --frozen --all-packages

TENANT ?= demo
ROLE ?= operator

$(UV):
	@python3 -m venv $(TOOLS)
	@$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

.venv/.synced: $(UV) uv.lock pyproject.toml */*/pyproject.toml
	@$(UV) sync --frozen --all-packages --quiet
	@touch $@

.PHONY: help env run run-stack test lint typecheck unit token bench bench-carrier bench-platform bench-iot migrate clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

env: .venv/.synced ## create or update the environment (uv + locked dependencies)

run: env ## run the platform on the embedded default (SQLite, in-process broker, simulator)
	@$(RUN) fleetops run

run-stack: env ## run each process separately against PostgreSQL + RabbitMQ
	@$(RUN) fleetops run-stack

test: env lint typecheck ## lint, type checks and every test
	@$(RUN) pytest -q

lint: env ## ruff and the architecture contracts
	@$(RUN) ruff check .
	@$(RUN) ruff format --check .
	@$(RUN) lint-imports

typecheck: env ## mypy (strict on domain, app and libs)
	@$(RUN) mypy libs/fleetops-common/src services/device-change/src services/iot-sync/src \
		tools/thingspace-sim/src tools/arm-sim/src tools/devstack/src

unit: env ## unit tests only (fast)
	@$(RUN) pytest -q -m "not integration and not e2e"

token: env ## print a bearer token: make token TENANT=demo ROLE=operator
	@$(RUN) fleetops token --tenant $(TENANT) --role $(ROLE)

migrate: env ## apply device-change migrations to DEVICE_CHANGE_DATABASE_URL
	@$(RUN) device-change migrate

bench: bench-carrier bench-platform ## both device-change benchmark profiles

bench-carrier: env ## carrier-bound profile: 10,000 devices at 5 req/s x 50 devices
	@$(RUN) fleetops bench carrier

bench-platform: env ## platform-bound profile: 100,000 devices, no carrier limits
	@$(RUN) fleetops bench platform

bench-iot: env ## iot-sync: 5,000 MQTT signals/s for 30 s (CI=true: PostgreSQL + Mosquitto)
	@$(RUN) fleetops bench iot $(BENCH_IOT_ARGS)

clean: ## remove the environment and local data
	rm -rf .venv $(TOOLS) var .pytest_cache .mypy_cache .ruff_cache
