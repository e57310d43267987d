"""What was used, besides its price: the one place a usage line's fields are declared.

A usage record and a settled hold both carry a ``UsageLine``. The edges build it from
their wire fields (service/wire.py UsageLineSchema), the Account stores its fields flat
in ``UsageRecorded`` and ``ReservationSettled`` (stored events keep the shape they have
always had) and the read models read it back with ``UsageLine.of_event``. A field added
here reaches the events, the idempotency fingerprint and the readers by itself.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, fields
from decimal import Decimal
from typing import Any, TypeVar

from ledger_core.errors import InvalidInput
from ledger_core.money import parse_quantity

F = TypeVar("F", bound=Callable[..., Any])
MAX_LINE_TEXT = 128  # characters of any text field, as the wire schemas declare


@dataclass(frozen=True)
class UsageLine:
    product: str
    application_id: str | None = None
    application_name: str | None = None  # the latest one given names the application on bills
    app_key: str | None = None
    channel_account: str | None = None  # e.g. the WhatsApp Business Account the usage went through
    quantity: Decimal | None = None
    unit: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.product, str) or not self.product:
            raise InvalidInput("product must be a non-empty text", field="product")
        for name, value in vars(self).items():
            if name != "quantity" and value is not None and (type(value) is not str or len(value) > MAX_LINE_TEXT):
                raise InvalidInput(f"{name} must be a text of at most {MAX_LINE_TEXT} characters", field=name)
        if self.quantity is not None:
            object.__setattr__(self, "quantity", parse_quantity(self.quantity))

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> UsageLine:
        """The line of a mapping that may hold other fields too (a request body, a message)."""
        return cls(**{name: values[name] for name in FIELD_NAMES if name in values})

    @classmethod
    def restored(cls, values: Mapping[str, Any]) -> UsageLine:
        """The line as an event stored it, unchecked: history is taken as it was written
        (rules added later must not stop a replay). Fields added after it read None."""
        line = object.__new__(cls)
        line.__dict__.update({name: values.get(name) for name in FIELD_NAMES})  # frozen: set once, here
        return line

    @classmethod
    def of_event(cls, event: object) -> UsageLine:
        return cls.restored(vars(event))

    def stored(self) -> dict[str, Any]:
        """The fields as a stored event holds them: flat, beside the event's own."""
        return dict(vars(self))  # a frozen dataclass's __dict__ holds exactly its fields

    def fingerprinted(self) -> dict[str, Any]:
        """The fields in an idempotency fingerprint. Fields added after the first release
        are left out while None, so a repeat of a request made before they existed still
        matches the claim it made then."""
        return {name: value for name, value in vars(self).items() if value is not None or name in _FIRST_RELEASE}


FIELD_NAMES = tuple(f.name for f in fields(UsageLine))
_FIRST_RELEASE = frozenset({"product", "application_id", "app_key", "quantity", "unit"})


def carries_usage_line(method: F) -> F:
    """Gives an ``@event`` method the usage line's fields as parameters: the library
    builds the event's fields from the method's signature, and the body receives them
    as ``**line``. Put it under ``@event``."""
    signature = inspect.signature(method)
    own = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
    line = [inspect.Parameter(f.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=f.type,
                              default=inspect.Parameter.empty if f.default is MISSING else f.default)
            for f in fields(UsageLine)]
    params = own[:1] + [p for p in own[1:] + line if p.default is p.empty] + \
        [p for p in own[1:] + line if p.default is not p.empty]
    method.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    return method
