from __future__ import annotations

import pytest

from api.app import create_app
from infra.bootstrap import build_system
from infra.config import load_settings
from infra.database import create_database_engine

KEYS = "prod:producer,read:reader,audit:auditor,admin:admin"


@pytest.fixture(params=["sqlite", "postgresql"])
def system(request, tmp_path):
    """The application on each storage: the embedded SQLite file and the real PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'cohortline.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    built = build_system(
        load_settings(
            {"COHORTLINE_DATABASE_URL": url, "COHORTLINE_API_KEYS": KEYS, "COHORTLINE_RATE_LIMIT": "off"}
        )
    )
    yield built
    built.close()


@pytest.fixture
def client(system):
    return create_app(system.api_context()).test_client()


@pytest.fixture
def pg_engine(pg_url):
    """An engine on a fresh, migrated PostgreSQL database."""
    engine = create_database_engine(pg_url)
    yield engine
    engine.dispose()
