# ossnap — README's two commands are `make demo` (the main job on the local stack) and
# `make test` (everything CI runs). Each installs what it needs from the package registries.

ARCH          ?= arm64
PYTHON        ?= python3
VENV          := .venv
FUNCTIONS     := register snapshot check-status verify retention restore check-restore copy
# cargo-lambda and the independent SigV4 signer the tests compare against, pinned.
PY_TOOLS      := cargo-lambda==1.9.2 botocore==1.44.8

.PHONY: build demo test test-rust lint package bench deploy tools opensearch-tools terminal-tools install soak fuzz

# The main job on the local stack: the state machine as it deploys, run once by
# aws-local-stepfunctions with the function binaries as its Lambda functions (workflow/workflow.mk).
demo: tools workflow-tools
	cargo build --workspace --bins
	cargo run -q -p ossnap-tests --bin demo

include infra/lint.mk
include workflow/workflow.mk
include azurite/azurite.mk

build:
	cargo build --workspace --release

# The integration tests start the function binaries as Lambda does, so they are built first,
# together with the tests: one build resolves the dev-dependencies' features once, so `cargo test`
# reuses every artifact instead of building the dependency tree a second time (half the disk).
# They include a short soak (tests/tests/integration/soak.rs, SOAK_RUNS=50 unless set) and the
# fuzz targets at proptest's default 256 cases each (tests/tests/integration/fuzz.rs).
# Incremental compilation is off here: its caches would double the target directory on CI.
test: test-rust lint-infra

test-rust: export CARGO_INCREMENTAL ?= 0
test-rust: tools workflow-tools opensearch-tools terminal-tools azure-tools
	cargo build --workspace --bins --tests
	cargo test --workspace

# The full soak: SOAK_RUNS (default 1000) nightly runs of the deployed state machine with faults,
# seeded by SOAK_SEED; the report is printed and written to target/soak/report.json.
soak: workflow-tools
	cargo build --workspace --bins
	cargo run -q -p ossnap-tests --bin soak

# The long fuzz run: PROPTEST_CASES (default 10000) cases per target.
PROPTEST_CASES ?= 10000
fuzz:
	PROPTEST_CASES=$(PROPTEST_CASES) cargo test -p ossnap-tests --test integration fuzz::

# The real OpenSearch nodes of the conformance suite: Maven fetches the integ-test zips (once, into
# .cache/), unzip unpacks them, and they run on the JDKs under /usr/lib/jvm (2.x on Java 11-23,
# 3.x on Java 21+). Installed from Debian's packages when missing (as root, as CI runs).
opensearch-tools:
	@command -v mvn >/dev/null && command -v unzip >/dev/null || \
		{ apt-get update -qq && apt-get install -y -qq maven unzip; }

# `ossnap snapshot --wait`'s progress is tested on a real terminal: a tmux pane (Debian's package,
# installed when missing, as root, as CI runs).
terminal-tools:
	@command -v tmux >/dev/null || { apt-get update -qq && apt-get install -y -qq tmux; }

# The `ossnap` command, into ~/.cargo/bin.
install:
	cargo install --locked --path crates/cli

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

# Lambda packages (target/lambda/<function>/bootstrap.zip); arm64 by default, ARCH=x86_64 on request.
# One build per function, so that Cargo does not unify features across them: only `verify`,
# `copy` and `retention` (which lists verify's verdicts) link the AWS SDK's HTTPS client.
package: tools
	for f in $(FUNCTIONS); do \
		PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda build --release --output-format zip \
			$(if $(filter arm64,$(ARCH)),--arm64,--x86-64) -p ossnap-$$f || exit 1; \
	done

# Cold start, invoke time and peak RSS of the release packages beside the Python twin, the
# packages' zip sizes, SigV4 signing cost, verify at scale, and copy to Azurite beside its
# ceilings and its Python twin. Built for this machine's architecture (x86_64).
bench: tools workflow-tools opensearch-tools azure-tools .venv-bench/.installed
	for f in $(FUNCTIONS); do \
		PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda build --release --x86-64 -p ossnap-$$f || exit 1; \
	done
	@for f in $(FUNCTIONS); do \
		$(PYTHON) -c 'import sys, zipfile, io, os; b = io.BytesIO(); z = zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED, compresslevel=9); z.write(sys.argv[1], "bootstrap"); z.close(); print(f"{sys.argv[2]:<14} bootstrap {os.path.getsize(sys.argv[1]):>10,} B   zip -9 {len(b.getvalue()):>10,} B")' target/lambda/$$f/bootstrap $$f; \
	done
	@for f in $(FUNCTIONS); do \
		echo "$$f links: $$(cargo tree -e normal -p ossnap-$$f --prefix none | sort -u \
			| grep -E '^(rustls|hyper|ring|aws-lc-rs|openssl|native-tls) ' | tr '\n' ' ')"; \
	done
	cargo bench -p ossnap-tests --bench cold_start
	cargo bench -p ossnap-tests --bench verify_repository
	cargo bench -p ossnap-tests --bench copy_to_azure
	cargo build --profile bench --workspace --bins
	cargo bench -p ossnap-tests --bench real_engines
	cargo bench -p ossnap-core --bench sigv4 -- --noplot

# The first deploy is interactive: `sam deploy --template-file infra/template.yaml --guided`
# (it writes samconfig.toml); later ones reuse its answers.
deploy: package
	sam deploy --template-file infra/template.yaml --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset

.venv-bench/.installed: bench/python/requirements.txt
	test -x .venv-bench/bin/pip || $(PYTHON) -m venv .venv-bench
	.venv-bench/bin/pip install --quiet --disable-pip-version-check -r $<
	touch $@

tools: $(VENV)/.installed

$(VENV)/.installed: Makefile
	test -x $(VENV)/bin/pip || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check $(PY_TOOLS)
	touch $@
