# first-responder: `make demo` (the flow on a local AWS emulator) and `make test` (every test).
# Everything is installed here: a project-local .venv with the pinned tools.

SHELL := /bin/bash
VENV := .venv
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export CARGO_TARGET_DIR ?= $(CURDIR)/target
CARGO ?= cargo

.PHONY: demo test tools unit integration lambda-local lint clean

$(STAMP): tools/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check -q -r tools/requirements.txt
	touch $@

tools: $(STAMP)

demo: tools
	bash scripts/demo.sh

test: tools lint unit integration lambda-local

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Unit tests of the library (parsing, routing, planning, notification, SDK-mocked error paths).
unit:
	$(CARGO) test -p first-responder-lib

# The SDK over HTTP against moto: the playbook, the CLI.
integration:
	$(CARGO) test --workspace --exclude first-responder-lib

# The responder under `cargo lambda watch`, invoked with `cargo lambda invoke`.
lambda-local: tools
	bash scripts/demo.sh --check

clean:
	rm -rf $(VENV) .run target
