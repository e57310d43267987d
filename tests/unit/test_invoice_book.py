"""The invoice book's own copy: the library copies an aggregate out of its cache for every
command, so a copy must share nothing a later change could reach."""

from __future__ import annotations

import copy
from datetime import date, datetime, timezone
from decimal import Decimal as D

from ledger_core.holds import Hold
from ledger_core.invoice_book import InvoiceBook, OpenInvoice, Topup
from ledger_core.usage import UsageLine

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)


def test_a_copy_of_the_book_changes_apart_from_the_original():
    book = InvoiceBook()
    book.add_usage(date(2026, 11, 30), D("1.5"), UsageLine("sms", quantity=D(3)))
    book.add_usage(date(2026, 12, 1), D(2), UsageLine("sms"))
    book.drafted("acme:I000001", "cycle", book.due(before=date(2026, 12, 1)), D("1.5"), D("1.5"), D("1.5"))
    book.open_invoices["acme:I000000"] = OpenInvoice("INV-1", NOW, D(10), D(10))
    book.topups["acme:I000009"] = Topup("INV-9", D(5), D(5))
    twin = copy.deepcopy(book)
    assert twin == book

    twin.add_usage(date(2026, 12, 1), D(1), UsageLine("sms", quantity=D(1)))
    twin.voided("acme:I000001")
    twin.apply([{"invoice_id": "acme:I000000", "amount": D(4), "outstanding_after": D(6), "paid_after": D(4)}])
    assert book.unbilled["2026-12-01|usage|sms|||"].amount == D(2)
    assert list(book.drafts) == ["acme:I000001"] and len(book.unbilled) == 1
    assert book.open_invoices["acme:I000000"].outstanding == D(10)
    assert twin.open_invoices["acme:I000000"].outstanding == D(6)


def test_holds_are_values():
    hold = Hold(D(3), None)
    assert copy.deepcopy(hold) is hold
    assert not hold.expired(NOW) and Hold(D(1), NOW).expired(NOW)
