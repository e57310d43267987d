"""How events and snapshots become bytes: the library's JSON format, written and read by
orjson, and the values it needs told about (dataclasses in snapshots, days).

Dataclasses (the Account's holds and invoice book) are stored as a dict of their fields,
tagged with a name that stays fixed once stored."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from datetime import date
from typing import Any

import orjson
from eventsourcing.persistence import JSONTranscoder, Transcoding, TranscodingNotRegisteredError

# Datetimes, days and dataclasses go to the registered transcodings, as the library's
# encoder sends them, instead of orjson's own forms.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class FastJSONTranscoder(JSONTranscoder):
    """The library's JSONTranscoder, byte for byte, at a fraction of the cost: encoding and
    decoding were a tenth of a Kafka message's CPU. Same text (compact, UTF-8, the same
    escapes; checked on every stored kind in tests/compat and on every character), same
    ``{"_type_": .., "_data_": ..}`` tags, same transcodings. What orjson refuses (a lone
    surrogate, an integer past 64 bits, a key that is not text, text it cannot parse) goes
    to the library's own code, which then does what it always did, errors included.

    Not for event state holding a UUID, a plain Enum or a float: orjson writes those
    itself (as text, as its value, as a number) where the library would tag, refuse or
    write NaN. No event holds one (tests/compat/test_stored_events.py fails if one does)."""

    def encode(self, obj: Any) -> bytes:
        try:
            return orjson.dumps(obj, default=self._encode_obj, option=_ORJSON_OPTIONS)
        except orjson.JSONEncodeError:
            return super().encode(obj)

    def decode(self, data: bytes) -> Any:
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            return super().decode(data)
        return self._restored(obj)

    def _restored(self, value: Any) -> Any:
        """The tagged values of a parsed document as their objects, innermost first, as
        the library's object hook does."""
        if type(value) is dict:
            if len(value) == 2 and "_type_" in value and "_data_" in value:
                try:
                    transcoding = self.names[value["_type_"]]
                except (KeyError, TypeError):
                    raise TranscodingNotRegisteredError(
                        f"Data serialized with name '{value['_type_']}' is not deserializable. "
                        "Please register a custom transcoding for this type.") from None
                return transcoding.decode(self._restored(value["_data_"]))
            for key, item in value.items():
                if type(item) is dict or type(item) is list:
                    value[key] = self._restored(item)
            return value
        if type(value) is list:
            return [self._restored(item) if type(item) is dict or type(item) is list else item for item in value]
        return value


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
