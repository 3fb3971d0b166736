"""The user state and user search (metrics.md "User state")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from flask import Blueprint, current_app
from pydantic import AfterValidator, BaseModel, Field, field_validator

from api.common import Freshness, Money, Rfc3339, Stamped, Timestamp
from api.declared import QueryError, declare
from api.errors import ApiError
from domain.envelope import NO_NUL, TEXT_PATTERN
from projections.cursors import InvalidCursor, decode_cursor
from projections.lifecycle import STATES
from projections.rfm import SEGMENT_NAMES
from projections.search import MAX_PAGE, UserQuery, attach_net_revenue, user_document, user_state
from projections.tracking import Progress
from projections.users import user_row

blueprint = Blueprint("users", __name__)

Lifecycle = Literal[STATES]  # type: ignore[valid-type]
Segment = Literal[tuple(SEGMENT_NAMES)]  # type: ignore[valid-type]


def _storable(value: str) -> str:
    """Text no database can refuse: PostgreSQL holds no NUL character."""
    if "\x00" in value:
        raise ValueError(NO_NUL)
    return value


Text = Annotated[str, AfterValidator(_storable), Field(json_schema_extra={"pattern": TEXT_PATTERN})]


class SearchQuery(Freshness):
    rules: ClassVar[Mapping[str, str]] = {"after": "only a `next` cursor that this API returned"}

    q: Text | None = Field(
        None,
        min_length=1,
        max_length=128,
        description="a prefix of the user id; only ASCII letters ignore case, % and _ match themselves",
    )
    country: Text | None = Field(None, min_length=1, max_length=2, description="ISO 3166-1 alpha-2")
    min_orders: int | None = Field(None, ge=0, description="at least this many orders")
    lifecycle: Lifecycle | None = Field(None, description="lifecycle state at the watermark")
    segment: Segment | None = Field(None, description="RFM segment at the watermark")
    last_active_before: Timestamp | None = Field(None, description="last activity before this time")
    size: int = Field(20, ge=1, le=MAX_PAGE, description="page size")
    after: str | None = Field(
        None,
        min_length=1,
        description="the `next` cursor of the previous page; a malformed or altered one is 400 invalid_cursor",
    )

    @field_validator("after")
    @classmethod
    def _a_cursor_we_wrote(cls, after: str | None) -> str | None:
        if after is not None:
            try:
                decode_cursor(after)
            except InvalidCursor as e:
                raise QueryError("after", str(e), "invalid_cursor") from None
        return after


class Rfm(BaseModel):
    recency_days: int = Field(description="days since the last order")
    frequency: int = Field(description="orders placed")
    monetary: Money = Field(description="net revenue in `currency` (0 without any)")
    currency: str | None = Field(
        pattern=r"^[A-Z]{3}$",
        description="the ISO 4217 reporting currency monetary is ranked in: COHORTLINE_REPORTING_CURRENCY, "
        "or else the currency of most orders (ties to the first code); never converted",
    )
    r: int = Field(ge=1, le=5, description="quintile among customers")
    f: int = Field(ge=1, le=5, description="quintile among customers")
    m: int = Field(ge=1, le=5, description="quintile among customers")
    segment: Segment


class UserState(BaseModel):
    user_id: str
    first_seen_at: Rfc3339
    signup_at: Rfc3339 | None
    first_order_at: Rfc3339 | None
    last_active_at: Rfc3339 | None
    last_order_at: Rfc3339 | None
    orders: int
    net_revenue: dict[str, Money] = Field(
        description="by ISO 4217 currency of the order: paid minus refunded; a currency without payments "
        "or refunds is left out"
    )
    points: int
    open_tickets: int
    country: str | None
    channel: str | None
    tier: str | None
    resurrected_on: str | None = Field(json_schema_extra={"format": "date"})
    lifecycle: Lifecycle | None
    segment: Segment | None
    rfm: Rfm | None = Field(description="RFM at the watermark; null for a user without orders")
    last_position: int


class StampedUserState(UserState, Stamped):
    pass


class UserPage(Stamped):
    users: list[UserState]
    next: str | None = Field(description="an opaque cursor for the next page, null on the last one")


@declare(
    blueprint,
    "GET",
    "/v1/users/search",
    summary="Search users, newest activity first (Elasticsearch when configured)",
    role="reader",
    query=SearchQuery,
    result=UserPage,
    waits=True,
)
def search(q: SearchQuery, current: Progress) -> dict[str, Any]:
    context = current_app.config["COHORTLINE"]
    cuts = context.rfm_cuts.current(context.read_engine, current.version)
    asked = UserQuery(
        q=q.q,
        lifecycle=q.lifecycle,
        segment=q.segment,
        country=q.country,
        min_orders=q.min_orders,
        last_active_before=q.last_active_before,
        size=q.size,
        after=q.after,
        watermark=current.watermark,
        thresholds=context.lifecycle,
        cuts=cuts,
    )
    page = context.search.search(asked)
    found = [user_state(user, current.watermark, context.lifecycle, cuts) for user in page.users]
    return {"users": found, "next": page.next}


@declare(
    blueprint,
    "GET",
    "/v1/users/<text:user_id>",
    summary="A user's state",
    role="reader",
    query=Freshness,
    result=StampedUserState,
    errors=(404,),
    waits=True,
    path_parameters={"user_id": {"type": "string"}},
)
def get_user(q: Freshness, current: Progress, user_id: str) -> dict[str, Any]:
    context = current_app.config["COHORTLINE"]
    with context.read_engine.connect() as conn:
        row = user_row(conn, user_id)
        if row is not None:
            attach_net_revenue(conn, [row])
    if row is None:
        raise ApiError(404, "user_not_found", f"no events for user {user_id!r}")
    cuts = context.rfm_cuts.current(context.read_engine, current.version)
    return user_state(user_document(row), current.watermark, context.lifecycle, cuts)
