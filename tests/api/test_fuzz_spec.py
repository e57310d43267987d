"""schemathesis over the whole served spec, with an admin key, on SQLite and PostgreSQL:
no answer may be a 5xx, and every answer must match the schema the spec documents for
its status (the error body included). Bounded: a few examples per operation here; run it
longer with LEDGER_FUZZ_EXAMPLES=200."""

from __future__ import annotations

import os
from collections import Counter

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES_PER_OPERATION = int(os.environ.get("LEDGER_FUZZ_EXAMPLES", "12"))
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]


def test_the_whole_spec_fuzzed_gives_no_server_error_and_no_schema_mismatch(app, client, key_for):
    for account in ("acme", "other"):  # something to find besides the fuzzer's own inventions
        client.post("/v1/accounts", json={"account_id": account, "billing_mode": "prepaid",
                                          "invoice_mode": "consolidated", "currency": "SGD"})
        client.post(f"/v1/accounts/{account}/recharges", json={"amount": "100"})
        client.post(f"/v1/accounts/{account}/usage", json={"idempotency_key": "u", "product": "sms", "amount": "1"})
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    headers = {"Authorization": f"Bearer {key_for('admin')}"}
    statuses: Counter[int] = Counter()
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        # valid requests, and requests that break the spec on purpose (which must be 4xx)
        strategy = (operation.as_strategy(generation_mode=GenerationMode.POSITIVE)
                    | operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))

        @given(case=strategy)
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def fuzz(case: schemathesis.Case) -> None:
            response = case.call_and_validate(headers=headers, checks=CHECKS)
            statuses[response.status_code] += 1

        fuzz()
    assert operations >= 40
    assert sum(statuses.values()) >= operations * 3
    assert not any(status >= 500 for status in statuses), statuses
    print(f"fuzzed {sum(statuses.values())} requests over {operations} operations: {dict(sorted(statuses.items()))}")
