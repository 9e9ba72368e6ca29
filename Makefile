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
# Fixed copies of the checkout for the release builds (scripts/stage.py).
STAGE_DIR ?= $(CARGO_TARGET_DIR)/stage

.PHONY: demo test tools iam-tools iam nextest system-deps unit integration lambda-local lint fuzz infra-check package package-build bench clean

# Each venv lives under $(TOOLS_DIR)/venvs, keyed by its requirements; the
# checkout links it (scripts/venv.sh).
export TOOLS_DIR
$(STAMP): tools/requirements.txt
	bash scripts/venv.sh $(VENV) tools/requirements.txt

# The SAM CLI and translator live apart: their boto3 pin conflicts with checkov's.
SAM_VENV := .venv-sam
SAM_STAMP := $(SAM_VENV)/.installed
$(SAM_STAMP): tools/requirements-sam.txt
	bash scripts/venv.sh $(SAM_VENV) tools/requirements-sam.txt

CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
$(CHECKOV_STAMP): tools/requirements-checkov.txt
	bash scripts/venv.sh $(CHECKOV_VENV) tools/requirements-checkov.txt

tools: $(STAMP) $(SAM_STAMP) $(CHECKOV_STAMP) system-deps iam-tools

# The IAM policy evaluator (npm, pinned by tests/iam/package-lock.json,
# test-only), under $(TOOLS_DIR)/npm keyed by the lock (scripts/npm.sh).
iam-tools: system-deps
	bash scripts/npm.sh tests/iam

# The product's AWS calls recorded by every suite's moto (make test sets
# FR_IAM_RECORD_DIR; tests/iam/record_moto.py), as IAM requests against the
# policies of the templates, through a real policy evaluator: every call
# must be allowed, the opt-in cases denied without the tag, and a call the
# mapping does not know fails (tests/iam/calls.py, evaluate.mjs).
IAM_RECORD_DIR ?= .test-run/iam
iam: iam-tools
	$(VENV)/bin/python tests/iam/calls.py $(IAM_RECORD_DIR) > .test-run/iam-simulations.json
	node tests/iam/evaluate.mjs .test-run/iam-simulations.json

# Debian packages the tests use: the real Alertmanager (and its amtool),
# Prometheus and its node exporter (promtool tests the shipped rules; the
# live chain scrapes the exporter and evaluates them), shellcheck for every
# script sent to an instance, and for the instance
# stand-in util-linux (unshare, nsenter, findmnt, losetup, partx), xfsprogs and
# e2fsprogs (real filesystems on loop devices), fdisk (sfdisk: a GPT disk) and
# cloud-guest-utils (growpart, grown for real), and Chromium for the approval
# page's browser test (driven by Playwright from the .venv); qemu-user-static,
# libc6-arm64-cross and binutils-aarch64-linux-gnu start the arm64 package
# and read the glibc it needs (scripts/boot_arm64.py).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
system-deps:
	@command -v prometheus-alertmanager >/dev/null && command -v amtool >/dev/null && \
	  command -v prometheus >/dev/null && command -v promtool >/dev/null && \
	  command -v prometheus-node-exporter >/dev/null && \
	  command -v shellcheck >/dev/null && command -v unshare >/dev/null && command -v findmnt >/dev/null && \
	  command -v mkfs.xfs >/dev/null && command -v mkfs.ext4 >/dev/null && \
	  command -v growpart >/dev/null && command -v sfdisk >/dev/null && \
	  command -v chromium >/dev/null && command -v node >/dev/null && command -v npm >/dev/null && \
	  command -v qemu-aarch64-static >/dev/null && command -v aarch64-linux-gnu-objdump >/dev/null && \
	  [ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] || \
	  { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q --no-install-recommends \
	    prometheus-alertmanager prometheus prometheus-node-exporter shellcheck util-linux xfsprogs e2fsprogs \
	    cloud-guest-utils fdisk chromium \
	    qemu-user-static libc6-arm64-cross binutils-aarch64-linux-gnu \
	    $$(command -v node >/dev/null || echo nodejs) $$(command -v npm >/dev/null || echo npm); }

demo: tools
	bash scripts/demo.sh

# Every check, phase by phase (scripts/test.sh): the phases' times go to
# .test-run/phases.tsv. The suites are built by one `cargo test --workspace
# --no-run` (unit + integration; separate invocations unify features
# differently and would build the SDK crates twice on a fresh machine) and run
# by cargo-nextest. The arm64 package builds in the background at the lowest
# priority meanwhile. .ci/run closes with one line counting every test that
# ran (scripts/count_tests.py).
test:
	MAKE="$(MAKE)" CARGO="$(CARGO)" bash scripts/test.sh

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

# cargo-nextest runs the suites in make test. The machine kind carries it;
# where it does not, the pinned version is installed under TOOLS_DIR.
NEXTEST_VERSION := 0.9.143
export PATH := $(PATH):$(TOOLS_DIR)/bin
nextest:
	@$(CARGO) nextest --version >/dev/null 2>&1 || \
	  $(CARGO) install cargo-nextest --locked --version $(NEXTEST_VERSION) --root $(TOOLS_DIR)

$(CARGO_FUZZ):
	$(CARGO) install cargo-fuzz --locked --version 0.13.1 --root $(TOOLS_DIR)

# Every event parser and the webhook's request check under libFuzzer, for
# FUZZ_SECONDS, seeded with events/ and the bad-input corpus. cargo-fuzz passes
# nightly-only flags (-Zsanitizer); RUSTC_BOOTSTRAP lets this machine's one
# stable toolchain accept them.
# Built from the staged copy (see package-build); the corpus and any crash's
# artifact stay in this checkout.
fuzz: $(CARGO_FUZZ)
	mkdir -p fuzz/corpus/parse_event fuzz/artifacts/parse_event $(STAGE_DIR)
	@# Paths relative to this checkout, whose path may hold a space.
	flock $(STAGE_DIR)/fuzz.lock bash -c 'set -e; stage=$$(python3 scripts/stage.py . $(STAGE_DIR)/fuzz); \
	  PATH="$(TOOLS_DIR)/bin:$$PATH" RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run --fuzz-dir "$$stage/fuzz" parse_event \
	  --target-dir $(CARGO_TARGET_DIR)/fuzz fuzz/corpus/parse_event events tests/corpus/bad \
	  -- -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -artifact_prefix=fuzz/artifacts/parse_event/'

# The SAM template: cfn-lint and checkov with zero findings (skips are inline,
# with reasons); --skip-download keeps checkov off the network; `sam validate
# --lint`; the template translated by aws-sam-translator and its output checked. The IAM
# policies for `cargo lambda deploy` must match the template's; the example
# Alertmanager receiver must load.
infra-check: tools
	cfn-lint infra/template.yaml infra/member-role.yaml
	$(CHECKOV_VENV)/bin/checkov -f infra/template.yaml -f infra/member-role.yaml --framework cloudformation --compact --quiet --skip-download
	@# SAM's own validation (offline with a region) and the translated
	@# CloudFormation checked for what linting the SAM source cannot see.
	SAM_CLI_TELEMETRY=0 AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=offline AWS_SECRET_ACCESS_KEY=offline \
	  $(SAM_VENV)/bin/sam validate --lint -t infra/template.yaml
	$(SAM_VENV)/bin/python infra/tests/translate.py
	python3 infra/iam/generate.py --check
	amtool check-config infra/alertmanager/alertmanager.yml
	@# The shipped rules, each on both sides of its threshold and its `for`.
	promtool check rules infra/prometheus/alert_rules.yml
	promtool test rules infra/prometheus/alert_rules.test.yml
	@# The AMP alert manager definition: its template is first_responder.tmpl, its config
	@# passes amtool, the template renders JSON.
	$(VENV)/bin/python infra/amp/check.py

# Each function's Lambda artifact, as deployed: arm64, release profile, zip.
# Fails past the size budget in docs/deploy.md; checks that `cargo lambda deploy`
# reads each function's deployment metadata (--dry: nothing is sent).
# cargo lambda links through zig wrappers named after its own executable's
# path; with the venv under $(TOOLS_DIR) that path is the same from every
# checkout, so one release target directory serves them all. The build runs in
# a copy of the checkout at a fixed place, $(STAGE_DIR)/package, where only the
# files whose bytes changed get a new time (scripts/stage.py): cargo judges by
# time, and a fresh clone's new times alone would rebuild the workspace's
# crates in release, some 4.6 CPU-minutes here. flock: one checkout at a time.
ZIP_BUDGET_BYTES ?= 8388608
PACKAGE_TARGET_DIR ?= $(CARGO_TARGET_DIR)/package
package-build: tools
	@mkdir -p $(STAGE_DIR)
	@# A cold build's time is kept for make bench.
	@flock $(STAGE_DIR)/package.lock bash -c 'stage=$$(python3 scripts/stage.py . $(STAGE_DIR)/package) || exit 1; \
	  cold=$$([ -f $(PACKAGE_TARGET_DIR)/lambda/responder/bootstrap.zip ] || echo 1); start=$$(date +%s); \
	  echo "CARGO_TARGET_DIR=$(PACKAGE_TARGET_DIR) cargo lambda build --release --arm64 --output-format zip --manifest-path $$stage/Cargo.toml -p responder -p webhook"; \
	  CARGO_TARGET_DIR=$(PACKAGE_TARGET_DIR) $(CARGO) lambda build --release --arm64 --output-format zip \
	    --manifest-path "$$stage/Cargo.toml" -p responder -p webhook || exit 1; \
	  [ -z "$$cold" ] || echo $$(( $$(date +%s) - start )) > $(PACKAGE_TARGET_DIR)/build-seconds'

package: package-build
	@for f in responder webhook; do \
	  z=$(PACKAGE_TARGET_DIR)/lambda/$$f/bootstrap.zip; size=$$(stat -c %s $$z); \
	  echo "$$f: $$size bytes zipped (budget $(ZIP_BUDGET_BYTES))"; \
	  [ $$size -le $(ZIP_BUDGET_BYTES) ] || { echo "$$f is over the size budget"; exit 1; }; \
	  AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=dry AWS_SECRET_ACCESS_KEY=dry AWS_ENDPOINT_URL=http://127.0.0.1:9 \
	    $(CARGO) lambda deploy --dry --output-format json --manifest-path functions/$$f/Cargo.toml \
	    --lambda-dir $(PACKAGE_TARGET_DIR)/lambda --iam-role arn:aws:iam::123456789012:role/first-responder-$$f $$f \
	    | python3 -c 'import json,sys; t=sys.stdin.read(); c=json.loads(t[t.index("{"):])["config"]; assert c["tracing"]=="Active" and c["runtime"]=="provided.al2023", c; print("   deploy metadata:", c["memory"], "MB,", c["timeout"], "s, tracing", c["tracing"])'; \
	done
	@# The artifacts as deployed, started: arm64 under qemu-user, each answering an event.
	python3 scripts/boot_arm64.py $(PACKAGE_TARGET_DIR)/lambda

# Side-by-side figures into BENCHMARKS.md (see bench/run.py): release builds of
# the responder, the CLI, the fleet tool and a hello-world baseline; the
# Python port's runtime client; the arm64 packages; and cargo's default release
# profile of the responder's package, a cold build of some 20 minutes here
# (BENCH_PROFILES=0 leaves it out).
bench: tools package
	$(VENV)/bin/pip install --disable-pip-version-check -q -r bench/requirements.txt
	$(CARGO) build --release -p responder -p webhook -p first-responder-cli -p hello-lambda -p integration-tests --bin responder --bin webhook --bin first-responder --bin hello --bin fleet
	PACKAGE_TARGET_DIR=$(PACKAGE_TARGET_DIR) $(VENV)/bin/python bench/run.py

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .run target .tools fuzz/corpus fuzz/artifacts
