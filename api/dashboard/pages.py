"""The dashboard's pages: where each lives, what it is called, whom it is for and which JSON routes
its script reads (pages fetch only the read models they show)."""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import LazyString
from flask_babel import lazy_gettext as _l


@dataclass(frozen=True)
class Page:
    name: str
    path: str
    title: LazyString
    centre: LazyString
    reads: tuple[str, ...]
    default_range: str | None = "last_30"
    """None: the page has no date range."""
    role: str = "reader"
    """Who sees it (besides `reader`, which every page needs); `admin` holds every role."""


PAGES = (
    Page(
        "overview",
        "/",
        _l("Overview"),
        _l("Analysis centre"),
        ("/v1/overview", "/v1/activity/active-users", "/v1/value/revenue"),
    ),
    Page(
        "retention",
        "/retention",
        _l("Retention"),
        _l("Analysis centre"),
        ("/v1/retention/cohorts", "/v1/features"),
        "last_90",
    ),
    Page(
        "activity",
        "/activity",
        _l("Activity"),
        _l("Analysis centre"),
        (
            "/v1/activity/active-users",
            "/v1/activity/stickiness",
            "/v1/activity/lifecycle",
            "/v1/activity/frequency",
        ),
        "last_90",
    ),
    Page(
        "features",
        "/scenes-and-tools",
        _l("Scenes and tools"),
        _l("Scene and tool centre"),
        ("/v1/features", "/v1/features/{feature}/impact", "/v1/retention/cohorts"),
        "last_90",
    ),
    Page(
        "operations",
        "/operations",
        _l("Operations"),
        _l("Operations centre"),
        ("/v1/campaigns", "/v1/campaigns/{campaign_id}/effect"),
        None,
    ),
    Page(
        "service",
        "/service",
        _l("Service"),
        _l("Service centre"),
        ("/v1/service/satisfaction",),
        "last_90",
    ),
    Page(
        "value",
        "/value",
        _l("Value"),
        _l("Analysis centre"),
        ("/v1/value/revenue", "/v1/value/ltv", "/v1/orders/repurchase"),
        "last_90",
    ),
    Page("users", "/users", _l("Users"), _l("User centre"), ("/v1/users/search",), None),
    Page("status", "/status", _l("Status"), _l("Operations"), ("/v1/status",), None),
    Page(
        "audit",
        "/audit",
        _l("Audit"),
        _l("Audit"),
        ("/v1/status", "/v1/audit/log", "/v1/audit/verify"),
        None,
        "auditor",
    ),
)
USER = Page(
    "user",
    "/users/<text:user_id>",
    _l("User"),
    _l("User centre"),
    ("/v1/users/{user_id}", "/v1/audit/streams/user/{user_id}/events"),
    None,
)
"""A user's page (reached from Users); auditors also see the user's events (/v1/audit/...)."""
