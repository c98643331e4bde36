# `make run`: a working donjon on SQLite at http://localhost:8080.
# `make test`: the test suite (PostgreSQL tests skip without a server unless
# DONJON_TEST_REQUIRE_POSTGRES=1, as in CI).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
MASTERKEY_FILE ?= .donjon/masterkey
PYTEST_ARGS ?=
# Test processes (pytest-xdist); each test file runs whole in one of them.
PYTEST_WORKERS ?= auto

.PHONY: run test bench lint clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

$(MASTERKEY_FILE):
	mkdir -p $(dir $@)
	umask 077 && $(PYTHON) -c "import secrets; print(secrets.token_hex(16), end='')" > $@

# The first instance's service account and where its API token goes
# (printed once, with the admin's login, when the instance is created).
run: $(BIN)/.installed $(MASTERKEY_FILE)
	DONJON_FIRSTINSTANCE_ORG_MACHINE_MACHINE_USERNAME=$${DONJON_FIRSTINSTANCE_ORG_MACHINE_MACHINE_USERNAME-admin-sa} \
	DONJON_FIRSTINSTANCE_ORG_MACHINE_PAT_PATH=$${DONJON_FIRSTINSTANCE_ORG_MACHINE_PAT_PATH-.donjon/admin.pat} \
	$(BIN)/donjon start-from-init --masterkeyFile $(MASTERKEY_FILE)

test: $(BIN)/.installed
	$(BIN)/pip install -q ./tests/fixtures/donjon-sample-plugin
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

bench: $(BIN)/.installed
	$(BIN)/python bench/push.py
	$(BIN)/python bench/rebuild.py
	$(BIN)/python bench/api_users.py
	$(BIN)/python bench/oidc_tokens.py
	$(BIN)/python bench/actions_delivery.py
	$(BIN)/python bench/actions_functions.py
	$(BIN)/python bench/actions_client.py

lint: $(BIN)/.installed
	$(BIN)/pip install -q ruff
	$(BIN)/ruff check core plugins actions tests bench

clean:
	rm -rf $(VENV) .donjon build *.egg-info
