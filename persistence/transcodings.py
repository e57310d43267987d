"""How state values that are dataclasses (the Account's holds and invoice book) are stored
in snapshots: as a dict of their fields, tagged with a name that stays fixed once stored."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from datetime import date
from typing import Any

from eventsourcing.persistence import JSONTranscoder, Transcoding


class DataclassAsDict(Transcoding):
    """A dataclass as a dict of its fields; nested values are transcoded by their own rules."""

    def __init__(self, cls: type, name: str) -> None:
        if not is_dataclass(cls):
            raise TypeError(f"{cls.__name__} is not a dataclass")
        self.type = cls
        self.name = name
        self._names = tuple(f.name for f in fields(cls))

    def encode(self, obj: Any) -> dict[str, Any]:
        return {name: getattr(obj, name) for name in self._names}

    def decode(self, data: dict[str, Any]) -> Any:
        return self.type(**data)


def register_dataclasses(transcoder: JSONTranscoder, named: dict[str, type]) -> None:
    for name, cls in named.items():
        transcoder.register(DataclassAsDict(cls, name))


class DateAsISO(Transcoding):
    """A day (subscription periods), as its ISO text. A datetime has its own transcoding."""

    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)
