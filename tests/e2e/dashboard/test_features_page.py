"""The scenes-and-tools page: the feature report, one feature's own retention and its impact (adopters
against the others, with the differences' 95 % intervals), the feature and range in the query string."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tests.e2e.dashboard.browser import choose, download_csv, header, state, table, translated

NOTE = "Correlation, not causation: users chose to adopt the feature, so a difference is not its effect."
REPORT = ("feature", "adopted", "users", "uses", "share_of_active", "repeat_7d")


def _number(value: float | None) -> str:
    """As the page keeps it in data-value (JavaScript's String(number); null as blank)."""
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else repr(value)


def _value(value) -> str:
    return value if isinstance(value, str) else _number(value)


def period(page) -> dict[str, str]:
    config = page.evaluate("window.Cohortline.config.period")
    return {"from": config["from"], "to": config["to"]}


def report_rows(body: dict) -> list[list[str]]:
    return [[_value(row[key]) for key in REPORT] for row in body["features"]]


def retention_rows(body: dict) -> list[list[str]]:
    width = max((len(row["rates"]) for row in body["cohorts"]), default=0)
    return [
        [row["cohort"], str(row["size"])]
        + [_number(rate) for rate in row["rates"]]
        + [""] * (width - len(row["rates"]))
        for row in body["cohorts"]
    ]


def _currencies(body: dict) -> list[str]:
    groups, difference = body["groups"], body["difference"]
    return sorted(
        set(groups["adopters"]["net_revenue_d30"])
        | set(groups["others"]["net_revenue_d30"])
        | set(difference["net_revenue_d30"])
    )


def group_rows(body: dict) -> list[list[str]]:
    adopters, others = body["groups"]["adopters"], body["groups"]["others"]
    rows = [
        [key, _value(adopters[key]), _value(others[key])] for key in ("users", "retained_d30", "ordered_d30")
    ]
    for currency in _currencies(body):
        rows.append(
            [
                f"net_revenue_d30:{currency}",
                adopters["net_revenue_d30"].get(currency, ""),
                others["net_revenue_d30"].get(currency, ""),
            ]
        )
    return rows


def difference_rows(body: dict) -> list[list[str]]:
    difference = body["difference"]
    measures = [(key, difference[key]) for key in ("retained_d30", "ordered_d30")]
    measures += [(f"net_revenue_d30:{c}", d) for c, d in sorted(difference["net_revenue_d30"].items())]
    rows = []
    for key, measure in measures:
        low, high = measure["ci95"] if measure["ci95"] else (None, None)
        rows.append([key, _value(measure["value"]), _value(low), _value(high)])
    return rows


def feature_answers(dashboard, page, feature: str) -> tuple[dict, dict]:
    span = period(page)
    retention = dashboard.api(
        "/v1/retention/cohorts", granularity="week", cohort=feature, **{"return": feature}, **span
    )
    impact = dashboard.api(f"/v1/features/{feature}/impact", **span)
    return retention, impact


def assert_feature_sections(dashboard, page, feature: str) -> None:
    retention, impact = feature_answers(dashboard, page, feature)
    assert table(page, "feature-retention") == retention_rows(retention)
    assert table(page, "impact-groups") == group_rows(impact)
    assert table(page, "impact-differences") == difference_rows(impact)
    curve = any(done for row in retention["cohorts"] for done in row["complete"])
    assert state(page, "feature-curve") == ("ready" if curve else "empty")
    measures = [impact["difference"][key]["value"] for key in ("retained_d30", "ordered_d30")]
    measures += [d["value"] for d in impact["difference"]["net_revenue_d30"].values()]
    drawn = any(value is not None for value in measures)
    assert state(page, "impact-chart") == ("ready" if drawn else "empty")


def test_features_show_the_report_and_the_first_features_retention_and_impact(dashboard, browse):
    page = browse("/scenes-and-tools")
    assert page.evaluate("window.Cohortline.config.period.preset") == "last_90"
    body = dashboard.api("/v1/features", **period(page))
    assert len(body["features"]) > 1
    assert table(page, "report") == report_rows(body)
    assert state(page, "users") == "ready"
    first = body["features"][0]["feature"]
    assert page.locator('select[name="feature"]').input_value() == first
    options = page.locator('select[name="feature"] option').evaluate_all("os => os.map(o => o.value)")
    assert options == [row["feature"] for row in body["features"]]
    assert_feature_sections(dashboard, page, first)
    assert first in page.locator('[data-section="impact-groups"] h2').inner_text()
    notes = page.locator(".note-line.causation").all_inner_texts()
    assert notes and all(note == translated(NOTE, "en") for note in notes)

    for section in ("report", "feature-retention", "impact-groups", "impact-differences"):
        csv = download_csv(page, section)
        assert csv[0] == header(page, section)
        assert csv[1:] == table(page, section)
    dashboard.screenshot(page, "features")


def test_the_feature_and_range_controls_change_the_url_and_the_figures(dashboard, browse):
    page = browse("/scenes-and-tools")
    body = dashboard.api("/v1/features", **period(page))
    first = body["features"][0]["feature"]
    other = next(row["feature"] for row in body["features"] if row["feature"].startswith("tool:"))
    assert other != first
    before = table(page, "impact-groups")

    url = choose(page, "feature", other)
    assert parse_qs(urlsplit(url).query)["feature"] == [other]
    assert page.locator('select[name="feature"]').input_value() == other
    assert_feature_sections(dashboard, page, other)
    assert table(page, "impact-groups") != before
    assert page.locator('[data-section="report"] a[aria-current="true"]').inner_text() == other

    url = choose(page, "range", "last_30")
    query = parse_qs(urlsplit(url).query)
    assert query["range"] == ["last_30"] and query["feature"] == [other]
    narrower = dashboard.api("/v1/features", **period(page))
    assert table(page, "report") == report_rows(narrower) != report_rows(body)
    assert_feature_sections(dashboard, page, other)


def test_an_unknown_feature_shows_the_error_state(dashboard, browse):
    page = browse("/scenes-and-tools?feature=tool:no-such-tool", allow=(r"status of 422",))
    assert state(page, "report") == "ready"
    for section in (
        "feature-retention",
        "feature-curve",
        "impact-groups",
        "impact-chart",
        "impact-differences",
    ):
        assert state(page, section) == "error"
    alert = page.locator('[data-section="impact-groups"] .state.error').inner_text()
    assert "tool:no-such-tool" in alert and "unknown_feature" in alert
    assert page.locator('select[name="feature"]').input_value() == "tool:no-such-tool"


def test_features_in_chinese_show_the_same_figures(dashboard, browse):
    page = browse("/scenes-and-tools?feature=tool:check_in", lang="zh")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.locator("h1").inner_text() == translated("Scenes and tools", "zh") != "Scenes and tools"
    assert header(page, "impact-groups") == [
        translated(label, "zh") for label in ("Metric", "Adopters", "Others")
    ]
    assert page.locator(".note-line.causation").first.inner_text() == translated(NOTE, "zh")
    assert table(page, "report") == report_rows(dashboard.api("/v1/features", **period(page)))
    assert_feature_sections(dashboard, page, "tool:check_in")
    dashboard.screenshot(page, "features-zh")
