"""/v1/test-clocks: sandbox time for admins (ledger_core/test_clocks.py, service/test_clocks.py)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from marshmallow import Schema, fields, validate

from api.accounts import Blueprint, service
from api.auth import allow
from ledger_core.access import Role
from ledger_core.test_clocks import TEST_CLOCK_ID_PATTERN, TestClock
from service.test_clocks import advance_test_clock, create_test_clock
from service.wire import Amount, UtcDateTime

blp = Blueprint("test_clocks", __name__, url_prefix="/v1/test-clocks",
                description="Test clocks: sandbox time for accounts opened on them (admins)")


class NewTestClockSchema(Schema):
    frozen_time = UtcDateTime(required=True, metadata={"description": "the clock's time until it is advanced"})
    id = fields.String(validate=validate.Regexp(TEST_CLOCK_ID_PATTERN),
                       metadata={"description": "clock_ and 1-32 letters or digits; default: made up"})


class AdvanceSchema(Schema):
    frozen_time = UtcDateTime(required=True, metadata={"description": "later than the clock's time, by at most "
                                                                      "two years"})


class TestClockSchema(Schema):
    id = fields.String(attribute="clock_id")
    frozen_time = UtcDateTime()
    account_ids = fields.List(fields.String(), metadata={"description": "the accounts opened on it"})


class AdvancedSchema(TestClockSchema):
    invoices = fields.Dict(keys=fields.String(), values=fields.List(fields.String()),
                           metadata={"description": "per account, the invoices the cycles closed on the way made"})
    expired = fields.Dict(keys=fields.String(), values=fields.List(fields.String()),
                          metadata={"description": "per account, the holds that expired on the way"})
    renewed = fields.Dict(keys=fields.String(), values=Amount(),
                          metadata={"description": "per subscription, what its renewals on the way charged"})


def _clock(clock: TestClock) -> dict[str, Any]:
    return {"clock_id": clock.clock_id, "frozen_time": clock.frozen_time, "account_ids": list(clock.account_ids)}


@blp.route("")
class TestClocks(MethodView):
    @allow(Role.ADMIN)
    @blp.arguments(NewTestClockSchema)
    @blp.response(201, TestClockSchema)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a clock at a frozen time; open accounts on it with `test_clock_id`."""
        return _clock(create_test_clock(service(), body["frozen_time"], body.get("id")))


@blp.route("/<clock_id>")
class TestClockResource(MethodView):
    @allow(Role.ADMIN)
    @blp.response(200, TestClockSchema)
    def get(self, clock_id: str) -> dict[str, Any]:
        return _clock(service().commands.test_clock(clock_id))


@blp.route("/<clock_id>/advance")
class Advance(MethodView):
    @allow(Role.ADMIN)
    @blp.arguments(AdvanceSchema)
    @blp.response(200, AdvancedSchema)
    def post(self, body: dict[str, Any], clock_id: str) -> dict[str, Any]:
        """Move the clock forward; the chores of its accounts that fall due on the way (cycle
        closes, hold expiry) run at their times, in order, before this answers."""
        done = advance_test_clock(service(), clock_id, body["frozen_time"])
        return {**_clock(done.clock), "invoices": done.invoices, "expired": done.expired, "renewed": done.renewed}
