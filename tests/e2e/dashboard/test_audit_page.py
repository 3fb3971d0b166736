"""The audit page: auditors only; the global log and the walk of the tamper-evidence chain."""

from __future__ import annotations

from tests.e2e.dashboard.browser import download_csv, figure, table, translated, wait_ready


def test_an_auditor_reads_the_latest_log_and_verifies_the_chain(dashboard, browse):
    page = browse("/", role="auditor")
    assert "/audit" in page.locator("header nav a").evaluate_all("a => a.map(x => x.getAttribute('href'))")
    page.goto(f"{dashboard.base}/audit")
    wait_ready(page)
    head = dashboard.api("/v1/status")["head"]
    latest = dashboard.api("/v1/audit/log", role="auditor", after=head - 50, limit=50)["events"]
    rows = table(page, "log")
    assert [int(row[0]) for row in rows] == [e["position"] for e in latest]
    assert [row[1] for row in rows] == [e["type"] for e in latest]
    assert [row[5] for row in rows] == [e["hash"] for e in latest]
    assert download_csv(page, "log")[1:] == rows

    page.get_by_role("button", name="Verify the chain").click()
    page.wait_for_selector('[data-figure="events"]')
    verdict = dashboard.api("/v1/audit/verify", role="auditor")
    assert verdict["ok"] is True
    assert (figure(page, "ok"), figure(page, "events"), figure(page, "head_hash")) == (
        "true",
        str(verdict["events"]),
        verdict["head_hash"],
    )
    dashboard.screenshot(page, "audit")

    with page.expect_navigation():
        page.fill('form[data-controls] [name="after"]', "10")
        page.press('form[data-controls] [name="after"]', "Enter")
    wait_ready(page)
    assert page.url.endswith("/audit?after=10")
    assert [int(row[0]) for row in table(page, "log")] == list(range(11, 61))


def test_a_reader_never_sees_the_audit_page(dashboard, browse):
    page = browse("/", lang="zh", role="reader", allow=(r"status of 403",))
    links = page.locator("header nav a").evaluate_all("a => a.map(x => x.getAttribute('href'))")
    assert "/audit" not in links
    response = page.goto(f"{dashboard.base}/audit")
    assert response.status == 403
    assert page.get_by_role("alert").inner_text() == translated("This key may not see this page.", "zh")
