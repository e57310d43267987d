"""Audit operations: check the whole chained log, export one account, check an export offline.

Export format (JSON Lines, UTF-8): a header line
    {"format": "ledger-audit-export/1", "account_id", "aggregate_id", "exported_at", "events"}
then one line per event, in version order:
    {"position", "aggregate_id", "version", "topic", "state", "state_encoding", "cause",
     "recorded_at", "link"}
``state`` is the stored event exactly: its text when it is UTF-8 (the default JSON
transcoding, readable as is), else base64. The file needs nothing but the chain
definition in ledger_core/audit.py to be checked (tools/verify_audit_file.py does it).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from ledger_core.account import account_uuid, parse_account_id
from ledger_core.audit import BrokenLink, ChainEntry, first_broken_link
from ledger_core.errors import AccountNotFound, InvalidInput
from service.ledger_service import LedgerService

EXPORT_FORMAT = "ledger-audit-export/1"


@dataclass(frozen=True)
class AuditReport:
    checked: int
    broken: BrokenLink | None
    orphan_audit_records: int  # audit rows whose event is gone

    @property
    def intact(self) -> bool:
        return self.broken is None and self.orphan_audit_records == 0


def verify_log(service: LedgerService) -> AuditReport:
    recorder: Any = service.commands.recorder
    broken, checked = first_broken_link(recorder.audit_trail())
    return AuditReport(checked, broken, recorder.orphan_audit_records())


def export_account(service: LedgerService, account_id: str, out: TextIO) -> int:
    aggregate_id = account_uuid(parse_account_id(account_id))
    entries = list(service.commands.recorder.audit_trail(aggregate_id))  # type: ignore[attr-defined]
    if not entries:
        raise AccountNotFound(f"no account {account_id!r}", account_id=account_id)
    header = {"format": EXPORT_FORMAT, "account_id": account_id, "aggregate_id": str(aggregate_id),
              "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "events": len(entries)}
    out.write(json.dumps(header, ensure_ascii=False) + "\n")
    for entry in entries:
        out.write(json.dumps(_line(entry), ensure_ascii=False) + "\n")
    return len(entries)


def _line(entry: ChainEntry) -> dict[str, Any]:
    try:
        state, encoding = entry.state.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        state, encoding = base64.b64encode(entry.state).decode("ascii"), "base64"
    return {"position": entry.position, "aggregate_id": entry.aggregate_id, "version": entry.version,
            "topic": entry.topic, "state": state, "state_encoding": encoding, "cause": entry.cause,
            "recorded_at": entry.recorded_at, "link": entry.link}


def verify_file(path: Path) -> tuple[BrokenLink | None, int]:
    return first_broken_link(_entries(path))


def _entries(path: Path) -> Iterator[ChainEntry]:
    with path.open(encoding="utf-8") as lines:
        header = json.loads(next(lines))
        if header.get("format") != EXPORT_FORMAT:
            raise InvalidInput(f"not a {EXPORT_FORMAT} file: {path}")
        for text in lines:
            line = json.loads(text)
            raw = line["state"].encode("utf-8") if line["state_encoding"] == "utf-8" else base64.b64decode(line["state"])
            yield ChainEntry(line["aggregate_id"], line["version"], line["topic"], raw, line["cause"],
                             line["recorded_at"], line["link"], line["position"])
