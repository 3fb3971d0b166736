import pytest

from infra.database import create_database_engine
from projections.schema import metadata


@pytest.fixture
def sqlite_engine(tmp_path):
    engine = create_database_engine(f"sqlite:///{tmp_path / 'read-models.db'}")
    metadata.create_all(engine)
    yield engine
    engine.dispose()
