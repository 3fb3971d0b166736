import pytest

from infra import migrations
from infra.database import create_database_engine


@pytest.fixture
def sqlite_engine(tmp_path):
    engine = create_database_engine(f"sqlite:///{tmp_path / 'read-models.db'}")
    migrations.upgrade(engine)
    yield engine
    engine.dispose()
