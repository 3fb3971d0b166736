"""The retention page: the cohort heat map and the retention curve of GET /v1/retention/cohorts, with
its cohort, return, mode, granularity and breakdown kept in the query string."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tests.e2e.dashboard.browser import choose, download_csv, header, state, table, translated

DEFAULTS = {"granularity": "week", "cohort": "first_seen", "return": "active", "mode": "on"}


def _number(value: float) -> str:
    """As JavaScript's String(number) writes it."""
    return str(int(value)) if float(value).is_integer() else repr(value)


def period(page) -> dict[str, str]:
    config = page.evaluate("window.Cohortline.config.period")
    return {"from": config["from"], "to": config["to"]}


def answer(dashboard, page, **asked: str) -> dict:
    return dashboard.api("/v1/retention/cohorts", **(DEFAULTS | asked | period(page)))


def expected_rows(body: dict) -> list[list[str]]:
    """The heat map's rows as the API gives them: cohort, breakdown value, size, the rate per offset
    (blank after the cohort's last offset)."""
    width = max((len(row["rates"]) for row in body["cohorts"]), default=0)
    rows = []
    for row in body["cohorts"]:
        shown = [row["cohort"]]
        if body.get("breakdown"):
            shown.append(row["breakdown_value"] or "")
        shown.append(str(row["size"]))
        shown += [_number(rate) for rate in row["rates"]] + [""] * (width - len(row["rates"]))
        rows.append(shown)
    return rows


def incomplete_marks(page) -> list[list[bool]]:
    """Per row, whether each rate cell is marked incomplete (cells after the triangle left out)."""
    return page.locator('[data-section="cohorts"] table tbody tr').evaluate_all(
        "rows => rows.map(r => [...r.querySelectorAll('td.rate')].map(c => c.classList.contains('incomplete')))"
    )


def test_retention_shows_the_api_cohorts_as_a_heat_map(dashboard, browse):
    page = browse("/retention")
    assert page.evaluate("window.Cohortline.config.period.preset") == "last_90"
    body = answer(dashboard, page)
    assert body["cohorts"], "the demo history has cohorts in its last 90 days"
    rows = table(page, "cohorts")
    assert rows == expected_rows(body)
    assert incomplete_marks(page) == [[not done for done in row["complete"]] for row in body["cohorts"]]
    assert any(not done for row in body["cohorts"] for done in row["complete"])
    first = page.locator('[data-section="cohorts"] td.rate').first
    assert str(body["cohorts"][0]["size"]) in (first.get_attribute("title") or "")
    assert "background-color" in (first.get_attribute("style") or "")

    csv = download_csv(page, "cohorts")
    assert csv[0] == header(page, "cohorts")
    assert csv[1:] == rows
    assert state(page, "curve") == "ready"
    dashboard.screenshot(page, "retention")


def test_retention_controls_change_the_url_and_the_cohorts(dashboard, browse):
    page = browse("/retention")
    weekly = table(page, "cohorts")

    url = choose(page, "granularity", "month")
    assert parse_qs(urlsplit(url).query)["granularity"] == ["month"]
    monthly = table(page, "cohorts")
    assert monthly == expected_rows(answer(dashboard, page, granularity="month")) != weekly

    url = choose(page, "breakdown", "channel")
    query = parse_qs(urlsplit(url).query)
    assert query["breakdown"] == ["channel"] and query["granularity"] == ["month"]
    body = answer(dashboard, page, granularity="month", breakdown="channel")
    assert table(page, "cohorts") == expected_rows(body)
    assert {row[1] for row in table(page, "cohorts")} == {
        row["breakdown_value"] or "" for row in body["cohorts"]
    }
    assert download_csv(page, "cohorts")[1:] == table(page, "cohorts")

    # The features of /v1/features join the cohort and return choices.
    features = dashboard.api("/v1/features", **period(page))["features"]
    feature = next(row["feature"] for row in features if row["feature"].startswith("tool:"))
    url = choose(page, "cohort", feature)
    assert parse_qs(urlsplit(url).query)["cohort"] == [feature]
    body = answer(dashboard, page, granularity="month", breakdown="channel", cohort=feature)
    assert table(page, "cohorts") == expected_rows(body)

    choose(page, "breakdown", "none")
    choose(page, "granularity", "week")
    url = choose(page, "return", "order")
    url = choose(page, "mode", "on_or_after")
    query = parse_qs(urlsplit(url).query)
    assert query["return"] == ["order"] and query["mode"] == ["on_or_after"] and query["cohort"] == [feature]
    body = answer(dashboard, page, cohort=feature, mode="on_or_after", **{"return": "order"})
    assert table(page, "cohorts") == expected_rows(body)
    assert page.locator('select[name="cohort"]').input_value() == feature


def test_an_unknown_feature_shows_the_error_state(dashboard, browse):
    page = browse("/retention?cohort=tool:no-such-tool", allow=(r"status of 422",))
    assert state(page, "cohorts") == "error" and state(page, "curve") == "error"
    alert = page.locator('[data-section="cohorts"] .state.error').inner_text()
    assert "tool:no-such-tool" in alert and "unknown_feature" in alert
    assert page.locator('select[name="cohort"]').input_value() == "tool:no-such-tool"


def test_retention_in_chinese_shows_the_same_cohorts(dashboard, browse):
    page = browse("/retention?granularity=month&breakdown=country", lang="zh")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.locator("h1").inner_text() == translated("Retention", "zh") != "Retention"
    title = page.locator('[data-section="cohorts"] h2').inner_text()
    assert title == translated("Retention by cohort", "zh")
    assert header(page, "cohorts")[:3] == [
        translated(label, "zh") for label in ("Cohort", "Country", "Cohort size")
    ]
    assert page.locator('[data-section="cohorts"] [data-csv]').inner_text() == translated(
        "Download CSV", "zh"
    )
    body = answer(dashboard, page, granularity="month", breakdown="country")
    assert table(page, "cohorts") == expected_rows(body)
    assert state(page, "curve") == "ready"
    dashboard.screenshot(page, "retention-zh")
