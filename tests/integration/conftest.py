from __future__ import annotations

import pytest

from api.app import create_app
from infra.bootstrap import build_system
from infra.config import load_settings
from infra.database import create_database_engine
from projections.schema import metadata

KEYS = "prod:producer,read:reader,audit:auditor,admin:admin"


@pytest.fixture(params=["sqlite", "postgresql"])
def system(request, tmp_path):
    """The application on each storage: the embedded SQLite file and the real PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'cohortline.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    built = build_system(load_settings({"COHORTLINE_DATABASE_URL": url, "COHORTLINE_API_KEYS": KEYS}))
    yield built
    built.close()


@pytest.fixture
def client(system):
    return create_app(system.api_context()).test_client()


@pytest.fixture
def pg_engine(pg_url):
    """An engine on a fresh PostgreSQL database with the read-model tables."""
    engine = create_database_engine(pg_url)
    metadata.create_all(engine)
    yield engine
    engine.dispose()
