# first-responder: `make demo` (the flow on a local AWS emulator) and `make test` (every test).
# Everything is installed here: a project-local .venv with the pinned tools.

SHELL := /bin/bash
VENV := .venv
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export CARGO_TARGET_DIR ?= $(CURDIR)/target
CARGO ?= cargo

# Cargo-installed tools; .ci/run keeps them under ~/.cache for reuse.
TOOLS_DIR ?= $(CURDIR)/.tools
CARGO_FUZZ := $(TOOLS_DIR)/bin/cargo-fuzz
FUZZ_SECONDS ?= 60

.PHONY: demo test tools unit integration lambda-local lint fuzz clean

$(STAMP): tools/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check -q -r tools/requirements.txt
	touch $@

tools: $(STAMP)

demo: tools
	bash scripts/demo.sh

# One `cargo test --workspace` (unit + integration): separate invocations unify
# features differently and would build the SDK crates twice on a fresh machine.
# In this order, so the last line is a test summary.
test: tools
	$(MAKE) lint
	$(CARGO) test --workspace
	$(MAKE) fuzz FUZZ_SECONDS=20
	$(MAKE) lambda-local

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Unit tests of the library (parsing, routing, planning, notification, SDK-mocked error paths).
unit:
	$(CARGO) test -p first-responder-lib

# The SDK over HTTP against moto: the playbooks, every alert shape, the CLI,
# the bad-input corpus, the webhook under cargo lambda watch.
integration:
	$(CARGO) test --workspace --exclude first-responder-lib

# The demo, checked: both functions under `cargo lambda watch`, invoked with
# `cargo lambda invoke` and through the webhook's Function URL.
lambda-local: tools
	bash scripts/demo.sh --check

$(CARGO_FUZZ):
	$(CARGO) install cargo-fuzz --locked --version 0.13.1 --root $(TOOLS_DIR)

# Every event parser and the webhook's request check under libFuzzer, for
# FUZZ_SECONDS, seeded with events/ and the bad-input corpus. cargo-fuzz passes
# nightly-only flags (-Zsanitizer); RUSTC_BOOTSTRAP lets this machine's one
# stable toolchain accept them.
fuzz: $(CARGO_FUZZ)
	mkdir -p fuzz/corpus/parse_event
	PATH="$(TOOLS_DIR)/bin:$$PATH" RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run parse_event \
	  --target-dir $(CARGO_TARGET_DIR)/fuzz fuzz/corpus/parse_event events tests/corpus/bad \
	  -- -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1

clean:
	rm -rf $(VENV) .run target .tools fuzz/corpus fuzz/artifacts
