# ossnap — README's two commands are `make demo` (the main job on the local stack) and
# `make test` (everything CI runs). Each installs what it needs from the package registries.

ARCH          ?= arm64
PYTHON        ?= python3
VENV          := .venv
FUNCTIONS     := register snapshot check-status
# cargo-lambda and the independent SigV4 signer the tests compare against, pinned.
PY_TOOLS      := cargo-lambda==1.9.2 botocore==1.44.8

.PHONY: build test test-rust lint package deploy tools

include infra/lint.mk

build:
	cargo build --workspace --release

# The integration tests start the function binaries as Lambda does, so they are built first.
test: test-rust lint-infra

test-rust: tools
	cargo build --workspace --bins
	cargo test --workspace

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

# Lambda packages (target/lambda/<function>/bootstrap.zip); arm64 by default, ARCH=x86_64 on request.
package: tools
	$(VENV)/bin/cargo-lambda lambda build --release --output-format zip \
		$(if $(filter arm64,$(ARCH)),--arm64,--x86-64) $(addprefix --bin ,$(FUNCTIONS))

tools: $(VENV)/.installed

$(VENV)/.installed: Makefile
	test -x $(VENV)/bin/pip || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check $(PY_TOOLS)
	touch $@
