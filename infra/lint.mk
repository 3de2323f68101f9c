# Offline gates for infra/ (issue 3). Included by the root Makefile (`include infra/lint.mk`), so
# every path here is relative to the repository root.
#
#   make lint-infra        cfn-lint (+ serverless rules), checkov and asl-validator on the template and
#                          the state machine, then the same gates on the negative fixture, which must fail.
#   make infra-tools       installs the pinned tools (PyPI into infra/.venv, npm into infra/node_modules);
#                          does nothing when they are already installed at the pinned versions.
#
# The Rust half of the gates (what the tools miss) is `cargo test -p ossnap-tests --test integration infra::`.

INFRA_DIR        := infra
INFRA_TEMPLATE   := $(INFRA_DIR)/template.yaml
INFRA_ASL        := $(INFRA_DIR)/statemachine/snapshot.asl.json $(INFRA_DIR)/statemachine/restore.asl.json \
                    $(INFRA_DIR)/statemachine/migrate.asl.json
INFRA_FIXTURE    := $(INFRA_DIR)/fixtures/insecure-blog.yaml
INFRA_VENV       := $(INFRA_DIR)/.venv
INFRA_PYTHON     ?= python3
CFN_LINT         := $(INFRA_VENV)/bin/cfn-lint --append-rules cfn_lint_serverless.rules --include-checks I
# --skip-download: no calls to the vendor's platform (CI is offline but for the package registries).
CHECKOV          := $(INFRA_VENV)/bin/checkov --framework cloudformation --compact --quiet --skip-download
ASL_VALIDATOR    := $(INFRA_DIR)/node_modules/.bin/asl-validator

# The fixture is the seed blog's public bucket: checkov must flag each of these on it, or the
# bucket gates have stopped biting. (Its s3:*, unpinned PassRole and unconditioned trust are what
# checkov misses on CloudFormation: tests/tests/integration/infra.rs asserts those.)
INFRA_FIXTURE_MUST_FAIL := CKV_AWS_20 CKV_AWS_21 CKV_AWS_53 CKV_AWS_54 CKV_AWS_55 CKV_AWS_56
# ... and cfn-lint must flag its legacy public ACL and its untraced function.
INFRA_FIXTURE_MUST_LINT := W3045 WS1000

.PHONY: lint-infra infra-tools

infra-tools: $(INFRA_VENV)/.installed $(INFRA_DIR)/node_modules/.installed

# Reinstalled only when the pins change; `pip install` of already-satisfied pins is a no-op anyway.
$(INFRA_VENV)/.installed: $(INFRA_DIR)/requirements-lint.txt
	test -x $(INFRA_VENV)/bin/pip || $(INFRA_PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/pip install --quiet --disable-pip-version-check -r $<
	touch $@

$(INFRA_DIR)/node_modules/.installed: $(INFRA_DIR)/package.json
	cd $(INFRA_DIR) && npm install --no-audit --no-fund --loglevel=error
	touch $@

lint-infra: infra-tools
	@echo "== cfn-lint (with cfn-lint-serverless): $(INFRA_TEMPLATE)"
	$(CFN_LINT) -- $(INFRA_TEMPLATE)
	@echo "== checkov: $(INFRA_TEMPLATE)"
	$(CHECKOV) --file $(INFRA_TEMPLATE)
	for asl in $(INFRA_ASL); do \
		echo "== asl-validator: $$asl"; \
		$(ASL_VALIDATOR) --json-path $$asl || exit 1; \
	done
	@echo "== negative fixture $(INFRA_FIXTURE): every gate must reject it"
	@report=$$($(CFN_LINT) -- $(INFRA_FIXTURE) 2>&1) \
		&& { echo "FAIL: cfn-lint accepted the insecure fixture"; exit 1; }; \
	for id in $(INFRA_FIXTURE_MUST_LINT); do \
		echo "$$report" | grep -q "^$$id " \
			|| { echo "FAIL: cfn-lint no longer flags $$id on the insecure fixture"; exit 1; }; \
	done; \
	echo "ok: cfn-lint rejects it ($(INFRA_FIXTURE_MUST_LINT))"
	@report=$$($(CHECKOV) --file $(INFRA_FIXTURE) 2>&1); \
	for id in $(INFRA_FIXTURE_MUST_FAIL); do \
		echo "$$report" | grep -q "Check: $$id:" \
			|| { echo "FAIL: checkov no longer flags $$id on the insecure fixture"; exit 1; }; \
	done; \
	echo "ok: checkov flags $(INFRA_FIXTURE_MUST_FAIL)"
	@echo "lint-infra: all gates passed"
