# Everything a fresh machine needs: each target sets up what it depends on.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
GEN_DIR := clients/python/src
PROTO_SRC := $(wildcard proto/gleam/calendar/v1/*.proto)
PROTO_STAMP := $(GEN_DIR)/gleam/calendar/v1/.generated
DEPS_DIR := build/proto_deps
# Third-party protos our contract imports; taken from the installed googleapis-common-protos.
DEP_PROTOS := google/api/field_behavior.proto google/type/date.proto google/type/datetime.proto \
              google/type/dayofweek.proto google/type/timeofday.proto

.PHONY: install proto run migrate test lint format bench clean

install: $(INSTALLED) $(PROTO_STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(INSTALLED): pyproject.toml clients/python/pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps -e clients/python
	touch $@

proto: $(PROTO_STAMP)

$(PROTO_STAMP): $(PROTO_SRC) $(INSTALLED)
	rm -rf $(DEPS_DIR)
	$(BIN)/python scripts/copy_proto_deps.py $(DEPS_DIR) $(DEP_PROTOS)
	find $(GEN_DIR)/gleam/calendar/v1 -name '*_pb2*' -delete
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m grpc_tools.protoc \
		-I proto -I $(DEPS_DIR) \
		--python_out=$(GEN_DIR) --mypy_out=$(GEN_DIR) \
		--grpc_python_out=$(GEN_DIR) --mypy_grpc_out=$(GEN_DIR) \
		$(PROTO_SRC)
	touch $@

migrate: install
	$(BIN)/python -m service migrate

run: install
	$(BIN)/python -m service seed-demo
	$(BIN)/python -m service serve

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy service clients/python/src
	$(BIN)/buf lint

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build $(GEN_DIR)/gleam/calendar/v1/*_pb2* $(PROTO_STAMP)
