from datetime import UTC, datetime

import pytest

from domain.envelope import Envelope
from domain.errors import DomainConflict
from domain.model import Campaign, Coupon, Order, Ticket, User, stream_id
from tests.unit.factories import envelope

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def order(*facts):
    aggregate = Order(stream_id("order", "o1"), NOW)
    for fact in facts:
        aggregate.record(fact)
    return aggregate


def code_of(aggregate, fact) -> str:
    with pytest.raises(DomainConflict) as caught:
        aggregate.record(fact)
    return caught.value.code


PLACED = envelope("OrderPlaced", order_id="o1", amount="20.00", currency="EUR")
PAID = envelope("OrderPaid", order_id="o1", amount="20.00")
SHIPPED = envelope("OrderShipped", order_id="o1")
DELIVERED = envelope("OrderDelivered", order_id="o1")
CANCELLED = envelope("OrderCancelled", order_id="o1")


def refund(amount: str):
    return envelope("OrderRefunded", order_id="o1", amount=amount)


def test_the_happy_lifecycle():
    state = order(PLACED, PAID, SHIPPED, DELIVERED, refund("5"), refund("15")).state()
    assert state["status"] == "delivered"
    assert state["refunded"] == state["paid"]
    assert state["version"] == 6


@pytest.mark.parametrize(
    ("history", "fact", "code"),
    [
        ((), PAID, "order_not_placed"),
        ((PLACED,), PLACED, "order_already_placed"),
        ((PLACED, PAID), PAID, "order_already_paid"),
        ((PLACED,), SHIPPED, "order_not_paid"),
        ((PLACED, PAID), DELIVERED, "order_not_shipped"),
        ((PLACED, PAID, SHIPPED), CANCELLED, "order_already_shipped"),
        ((PLACED, CANCELLED), PAID, "order_cancelled"),
        ((PLACED,), refund("1"), "order_not_paid"),
        ((PLACED, PAID, refund("15")), refund("5.01"), "refund_exceeds_paid"),
        ((PLACED,), envelope("OrderPaid", user_id="u2", order_id="o1", amount="1"), "order_user_mismatch"),
    ],
)
def test_lifecycle_violations(history, fact, code):
    aggregate = order(*history)
    version = aggregate.version
    assert code_of(aggregate, fact) == code
    assert aggregate.version == version and not aggregate.pending_events[version:]


def test_cancel_after_payment_is_allowed_and_refundable():
    assert order(PLACED, PAID, CANCELLED, refund("20")).state()["status"] == "cancelled"


def test_coupon_is_redeemed_at_most_once():
    coupon = Coupon(stream_id("coupon", "c1"), NOW)
    redeem = envelope("CouponRedeemed", coupon_id="c1", order_id="o1")
    assert code_of(coupon, redeem) == "coupon_not_issued"
    coupon.record(envelope("CouponIssued", coupon_id="c1", value="5", currency="EUR"))
    coupon.record(redeem)
    assert (
        code_of(coupon, envelope("CouponRedeemed", coupon_id="c1", order_id="o2"))
        == "coupon_already_redeemed"
    )


SPRING = envelope(
    "CampaignCreated",
    user_id=None,
    campaign_id="spring",
    name="Spring",
    kind="benefit",
    starts_at="2011-03-01T00:00:00Z",
)


def test_enrolment_needs_an_existing_open_campaign():
    campaign = Campaign(stream_id("campaign", "spring"), NOW)
    enrol = envelope("CampaignEnrolled", campaign_id="spring", group="treatment")
    assert code_of(campaign, enrol) == "campaign_not_found"
    campaign.record(SPRING)
    campaign.record(enrol)
    assert code_of(campaign, enrol) == "already_enrolled"
    campaign.record(envelope("CampaignEnded", user_id=None, campaign_id="spring"))
    assert (
        code_of(campaign, envelope("CampaignEnrolled", user_id="u2", campaign_id="spring", group="control"))
        == "campaign_ended"
    )


def test_an_enrolment_that_arrives_late_counts_when_its_event_time_is_before_the_end():
    campaign = Campaign(stream_id("campaign", "spring"), NOW)
    campaign.record(SPRING)
    end = "2011-03-31T00:00:00Z"
    campaign.record(envelope("CampaignEnded", user_id=None, at=end, campaign_id="spring"))

    def enrol(user: str, at: str) -> Envelope:
        return envelope("CampaignEnrolled", user_id=user, at=at, campaign_id="spring", group="treatment")

    campaign.record(enrol("u1", "2011-03-30T23:59:59.999Z"))
    assert code_of(campaign, enrol("u2", end)) == "campaign_ended"
    assert code_of(campaign, enrol("u3", "2011-04-01T00:00:00Z")) == "campaign_ended"
    assert code_of(campaign, enrol("u1", "2011-03-02T00:00:00Z")) == "already_enrolled"


def test_tickets_and_points():
    ticket = Ticket(stream_id("ticket", "t1"), NOW)
    assert code_of(ticket, envelope("TicketResolved", ticket_id="t1")) == "ticket_not_found"
    ticket.record(envelope("TicketOpened", ticket_id="t1", subject="where is my parcel"))
    ticket.record(envelope("TicketResolved", ticket_id="t1"))
    assert code_of(ticket, envelope("TicketResolved", ticket_id="t1")) == "ticket_already_resolved"

    user = User(stream_id("user", "u1"), NOW)
    user.record(envelope("PointsEarned", points=10))
    assert code_of(user, envelope("PointsRedeemed", points=11)) == "insufficient_points"
    user.record(envelope("PointsRedeemed", points=10))
    assert user.points == 0
