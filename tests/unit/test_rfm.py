"""RFM scoring (metrics.md "RFM"): quintiles among customers with an order, and the segment map."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from projections.rfm import (
    SEGMENT_CELLS,
    SEGMENT_NAMES,
    Cuts,
    cut_points,
    present_rfm,
    score,
    segment,
    segment_boxes,
)
from projections.search import present_user


def quintile(value: int, values: list[int]) -> int:
    return 1 + 5 * sum(1 for v in values if v < value) // len(values)


def test_ten_distinct_values_fall_two_to_a_quintile():
    values = list(range(10))
    cuts = cut_points(values)
    assert [score(v, cuts) for v in values] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_ties_score_alike_so_one_time_buyers_get_frequency_one():
    orders = [1] * 6 + [2, 2, 3, 7]
    cuts = cut_points(sorted(orders))
    assert {score(1, cuts)} == {1}
    assert [score(v, cuts) for v in (2, 3, 7)] == [4, 5, 5]
    assert {score(v, cut_points([4, 4, 4])) for v in (4,)} == {1}


@given(st.lists(st.integers(-50, 50), min_size=1, max_size=60))
def test_cut_points_give_the_quintile_of_every_customer(values):
    cuts = cut_points(sorted(values))
    assert [score(v, cuts) for v in values] == [quintile(v, values) for v in values]


def test_the_map_gives_every_score_pair_exactly_one_segment():
    cells = [cell for cells in SEGMENT_CELLS.values() for cell in cells]
    assert sorted(cells) == [(r, f) for r in range(1, 6) for f in range(1, 6)]
    assert set(SEGMENT_CELLS) == set(SEGMENT_NAMES)
    assert segment(5, 5) == "champions"
    assert segment(5, 1) == "new"
    assert segment(1, 5) == "cant_lose_them"
    assert segment(1, 1) == "lost"
    assert segment(3, 3) == "need_attention"


customers = st.lists(
    st.tuples(st.integers(0, 40), st.integers(1, 6), st.integers(-100, 10_000)), min_size=1, max_size=40
)


@given(customers)
def test_segment_boxes_hold_exactly_the_segments_customers(found):
    start = date(2011, 1, 1)
    days = sorted(start + timedelta(d) for d, _, _ in found)
    cuts = Cuts(
        len(found),
        cut_points(days),
        cut_points(sorted(o for _, o, _ in found)),
        cut_points(sorted(m for _, _, m in found)),
    )
    for name in SEGMENT_CELLS:
        boxes = segment_boxes(name, cuts)
        for d, orders, money in found:
            at = datetime.combine(start + timedelta(d), datetime.min.time()) + timedelta(hours=d % 24)
            r, f, _ = cuts.scores(at, orders, money)
            inside = any(
                (b.ordered_from is None or at >= b.ordered_from)
                and (b.ordered_before is None or at < b.ordered_before)
                and (b.orders_above is None or orders > b.orders_above)
                and (b.orders_through is None or orders <= b.orders_through)
                for b in boxes
            )
            assert inside == (segment(r, f) == name), (name, d, orders)


def test_monetary_is_scored_exactly_in_the_reporting_currency_and_shown_rounded():
    # five customers' net revenue in GBP, in 1/10,000 units: cut points at sorted indexes 0, 1, 2, 3
    monetary = cut_points(sorted([0, 12_341, 12_349, 500_000, 700_000]))
    assert monetary == (0, 12_341, 12_349, 500_000)
    day = date(2011, 1, 1)
    cuts = Cuts(5, (day, day, day, day), (1, 1, 1, 1), monetary, "GBP")
    watermark = datetime(2011, 1, 11, tzinfo=UTC)

    def rfm(net_revenue: dict[str, str]) -> dict:
        user = {"orders": 1, "last_order_at": "2011-01-01T10:00:00Z", "net_revenue": net_revenue}
        found = present_rfm(user, watermark, cuts)
        assert found is not None
        return found

    more = rfm({"EUR": "999.00", "GBP": "1.2349"})
    less = rfm({"GBP": "1.2341"})
    assert (more["monetary"], more["currency"], more["m"]) == ("1.23", "GBP", 3)
    assert (less["monetary"], less["currency"], less["m"]) == ("1.23", "GBP", 2)  # ranked unrounded
    assert {k: rfm({"EUR": "5.00"})[k] for k in ("monetary", "currency", "m")} == {
        "monetary": "0.00",  # no GBP: 0, never converted
        "currency": "GBP",
        "m": 1,
    }
    assert rfm({"GBP": "70.005"})["monetary"] == "70.00"  # half-even
    assert rfm({"GBP": "70.015"})["monetary"] == "70.02"
    assert present_rfm({"orders": 0, "last_order_at": None, "net_revenue": {}}, watermark, cuts) is None


def test_the_user_state_shows_net_revenue_per_currency_rounded_half_even():
    document = {"user_id": "u1", "net_revenue": {"EUR": "20.125", "GBP": "-0.004", "CNY": "2.675"}}
    assert present_user(document)["net_revenue"] == {"CNY": "2.68", "EUR": "20.12", "GBP": "0.00"}
    assert present_user({"user_id": "u2", "net_revenue": {}})["net_revenue"] == {}
    assert document["net_revenue"]["EUR"] == "20.125"  # the document keeps the exact amount
