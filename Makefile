# Cohortline: `make demo` runs the embedded demo; `make test` runs every test on real services.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint format services-up services-down

$(BIN)/.installed: setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --constraint constraints.txt --editable '.[test]'
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/cohortline demo

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
# and e2e tests against them. The services stay up afterwards (`make services-down` stops them).
test: lint services-up
	eval "$$($(BIN)/cohortline services env)" && $(BIN)/python -m pytest
