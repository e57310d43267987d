"""Defence in depth: every command gets arbitrary text (hypothesis: any code point, control
characters and lone surrogates included) in each of its text fields. Whatever the domain
accepts must project, export to xlsx, csv and PDF, and rebuild into identical read
models, on SQLite and PostgreSQL; whatever it refuses must be a coded 4xx-class error."""

from __future__ import annotations

import io
import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from ledger_core.commands import (
    PostCharge,
    Recharge,
    RecordPayment,
    RecordUsage,
    RefundOverpayment,
    Reserve,
    Settle,
    UpdateAccount,
)
from ledger_core.errors import LedgerError
from ledger_core.usage import UsageLine
from service.rebuild import verify
from tests.service.helpers import open_account

# Any code point, with control characters and lone surrogates drawn often on purpose.
ANY_TEXT = st.text(alphabet=st.one_of(st.characters(), st.characters(categories=["Cs", "Cc"])), max_size=40)
CLIENT_ERRORS = ("invalid", "rule", "conflict", "not_found")
counter = itertools.count()


def attempt(service, command) -> bool:
    try:
        service.run(command)
        return True
    except LedgerError as error:
        assert error.category in CLIENT_ERRORS, error
        return False


@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(product=ANY_TEXT, app_key=ANY_TEXT, unit=ANY_TEXT, channel=ANY_TEXT, reference=ANY_TEXT, method=ANY_TEXT,
       description=ANY_TEXT, payer=ANY_TEXT, address=ANY_TEXT)
def test_whatever_text_the_domain_accepts_projects_exports_and_rebuilds(
        service, client, product, app_key, unit, channel, reference, method, description, payer, address):
    account = open_account(service, f"text-{next(counter)}", billing_mode="postpaid", invoice_mode="consolidated",
                           credit_limit="1000")
    accepted = [
        attempt(service, lambda l: l.handle(UpdateAccount(account, payer={"name": payer, "address": address}))),
        attempt(service, lambda l: l.handle(Recharge(account, amount="10", reference=reference, method=method))),
        attempt(service, lambda l: l.handle(RecordUsage(account, idempotency_key="u1", amount="1.5",
                                                        line=UsageLine(product=product or "p", app_key=app_key, unit=unit,
                                                                       channel_account=channel,
                                                                       application_name=description)))),
        attempt(service, lambda l: l.handle(PostCharge(account, idempotency_key="c1", kind="service",
                                                       description=description, amount="2"))),
        attempt(service, lambda l: l.handle(Reserve(account, reservation_id="h1", amount="3"))),
        attempt(service, lambda l: l.handle(Settle(account, "h1", amount="1", line=UsageLine(
            product=product or "p", unit=unit, app_key=app_key, channel_account=channel)))),
        attempt(service, lambda l: l.handle(RecordPayment(account, payment_id="p1", amount="5", method=method,
                                                          reference=reference))),
        attempt(service, lambda l: l.handle(RefundOverpayment(account, amount="1", reference=reference or "r"))),
        attempt(service, lambda l: l.handle(UpdateAccount(account, time_zone=address or "UTC"))),
    ]
    assert accepted[4]  # plain text fields only: the hold itself is always fine
    transactions = client.get(f"/v1/accounts/{account}/transactions")
    assert transactions.status_code == 200
    xlsx = client.get(f"/v1/accounts/{account}/transactions/export.xlsx")
    assert xlsx.status_code == 200
    load_workbook(io.BytesIO(xlsx.data), read_only=True)
    assert client.get(f"/v1/accounts/{account}/transactions/export.csv").status_code == 200
    for bill in client.get(f"/v1/bills?account_id={account}").get_json()["items"]:
        pdf = client.get(f"/v1/bills/{bill['bill_no']}.pdf")
        assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    assert client.get(f"/v1/bills/export.xlsx?account_id={account}").status_code == 200
    differences, _ = verify(service)  # replayed from event 1 into scratch tables: the same rows
    assert differences == []


def test_after_arbitrary_text_a_rebuild_gives_identical_read_models(service, client):
    """The same fields, the text that the domain accepts at its edges (tab, line breaks in
    free text, every script), then a rebuild compared row by row."""
    account = open_account(service, "text-rebuild")
    service.handle(UpdateAccount(account, payer={"name": "Şirket 北京 شركة \U0001F600",
                                                           "address": "line 1\nline 2\tend"}))
    service.handle(Recharge(account, amount="10", reference="ref\twith tab", method="نقد"))
    service.handle(RecordUsage(account, idempotency_key="u", amount="1", line=UsageLine(product="ส่งข้อความ",
                                                                                        app_key="ключ", unit="мин")))
    differences, _ = verify(service)
    assert differences == []
