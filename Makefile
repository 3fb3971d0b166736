# Cohortline: `make demo` runs the embedded demo; `make test` runs every test on real services.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo demo-serve test lint format services-up services-down browser translations

$(BIN)/.installed: setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --constraint constraints.txt --editable '.[test]'
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/cohortline demo

demo-serve: install
	$(BIN)/cohortline demo --serve

# Headless Chromium and a CJK font from Debian's packages, for the dashboard's browser tests.
browser: install
	$(BIN)/python -m tests.install_browser

# After changing a label: extract the dashboard's messages, merge them into each language's
# catalogue (translate the new entries in api/dashboard/translations/*/LC_MESSAGES/messages.po),
# and compile the catalogues the app loads.
translations: install
	$(BIN)/pybabel -q extract -F api/dashboard/babel.cfg -k _l --no-location --sort-output \
		--project Cohortline -o api/dashboard/translations/messages.pot api/dashboard
	$(BIN)/pybabel -q update -i api/dashboard/translations/messages.pot -d api/dashboard/translations \
		--no-fuzzy-matching --ignore-obsolete
	$(BIN)/pybabel -q compile -d api/dashboard/translations

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

services-up: install
	$(BIN)/cohortline services up

services-down: install
	$(BIN)/cohortline services down

# Installs what is missing, starts PostgreSQL, Kafka and Elasticsearch, then runs unit, integration
# and e2e tests (the dashboard's in headless Chromium) against them. The services stay up afterwards
# (`make services-down` stops them).
test: lint services-up browser
	eval "$$($(BIN)/cohortline services env)" && $(BIN)/python -m pytest
