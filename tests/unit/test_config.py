import pytest

from infra.config import ConfigError, hash_key, load_settings


def test_defaults_are_the_embedded_mode(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings({})
    assert settings.embedded
    assert settings.database_url == f"sqlite:///{tmp_path / 'var' / 'cohortline.db'}"
    assert settings.elasticsearch_url is None and settings.api_keys == {}


def test_services_urls_and_keys_are_read():
    settings = load_settings(
        {
            "COHORTLINE_DATABASE_URL": "postgresql://postgres@127.0.0.1:55432/cohortline",
            "COHORTLINE_KAFKA_URL": "kafka://127.0.0.1:59092",
            "COHORTLINE_ELASTICSEARCH_URL": "http://127.0.0.1:59200/",
            "COHORTLINE_API_KEYS": "k1:producer, k2:reader+auditor",
        }
    )
    assert settings.database_url == "postgresql+psycopg2://postgres@127.0.0.1:55432/cohortline"
    assert settings.kafka_servers == ("127.0.0.1:59092",) and not settings.embedded
    assert settings.elasticsearch_url == "http://127.0.0.1:59200"
    assert settings.api_keys == {hash_key("k1"): {"producer"}, hash_key("k2"): {"reader", "auditor"}}
    assert "k1" not in str(settings)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("COHORTLINE_DATABASE_URL", "mysql://x/y"),
        ("COHORTLINE_DATABASE_URL", "postgresql://host-without-db"),
        ("COHORTLINE_KAFKA_URL", "127.0.0.1:9092"),
        ("COHORTLINE_ELASTICSEARCH_URL", "ftp://x"),
        ("COHORTLINE_API_KEYS", "k1:superuser"),
        ("COHORTLINE_API_KEYS", "k1"),
        ("COHORTLINE_KAFKA_PARTITIONS", "0"),
        ("COHORTLINE_REPORTING_CURRENCY", "gbp"),
        ("COHORTLINE_REPORTING_CURRENCY", "GBPX"),
        ("COHORTLINE_SESSION_SECRET", "too-short"),
        ("COHORTLINE_SESSION_COOKIE_SECURE", "maybe"),
    ],
)
def test_a_malformed_variable_is_named(variable, value):
    with pytest.raises(ConfigError) as caught:
        load_settings({variable: value})
    assert caught.value.variable == variable and variable in str(caught.value)


@pytest.mark.parametrize("value", ["7,90,30", "7,0,90", "0,30,90", "31,30,90", "7,30,30"])
def test_lifecycle_thresholds_must_be_ordered(value):
    with pytest.raises(ConfigError) as caught:
        load_settings({"COHORTLINE_LIFECYCLE_DAYS": value})
    assert caught.value.variable == "COHORTLINE_LIFECYCLE_DAYS"
    assert "0 < new <= active < churn" in str(caught.value) and value in str(caught.value)


@pytest.mark.parametrize("value", ["7,30,90", "30,30,31", "1,1,2"])
def test_ordered_lifecycle_thresholds_are_read(value):
    new, active, churn = (int(p) for p in value.split(","))
    thresholds = load_settings({"COHORTLINE_LIFECYCLE_DAYS": value}).lifecycle
    assert (thresholds.new_days, thresholds.active_days, thresholds.churn_days) == (new, active, churn)


def test_the_reporting_currency_is_read_and_defaults_to_the_currency_of_most_orders():
    assert load_settings({}).reporting_currency is None
    assert load_settings({"COHORTLINE_REPORTING_CURRENCY": ""}).reporting_currency is None
    assert load_settings({"COHORTLINE_REPORTING_CURRENCY": "GBP"}).reporting_currency == "GBP"


def test_the_session_secret_is_read_or_random_per_start_and_never_shown():
    secret = "s" * 40
    settings = load_settings({"COHORTLINE_SESSION_SECRET": secret})
    assert settings.session_secret == secret and secret not in str(settings)
    assert load_settings({}).session_secret != load_settings({}).session_secret


@pytest.mark.parametrize(("value", "secure"), [("", True), ("true", True), ("0", False), ("false", False)])
def test_the_session_cookie_is_secure_unless_turned_off(value, secure):
    assert load_settings({"COHORTLINE_SESSION_COOKIE_SECURE": value}).session_cookie_secure is secure
