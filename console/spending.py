"""The spending chart of an account's overview: what each product cost per billing cycle
over the last cycles, as bars a browser draws without any script (plain SVG values)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from projections.bills import BillRow

CYCLES_SHOWN = 12
PALETTE = ("#2f6db5", "#e08a1e", "#3a9a5b", "#b5412f", "#7a52a8", "#5f6b7a")
CHART_HEIGHT_PX = 160


@dataclass(frozen=True)
class Bar:
    product: str
    amount: Decimal  # the cycle's cost of the product (a positive number)
    height_px: int
    y_px: int  # from the chart's top
    colour: str


@dataclass(frozen=True)
class Cycle:
    label: str  # YYYY-MM of the cycle's first local day
    total: Decimal
    bars: tuple[Bar, ...]  # stacked, bottom first


def spending(bills: list[BillRow], cycles: int = CYCLES_SHOWN) -> tuple[list[Cycle], dict[str, str]]:
    """The last ``cycles`` cycles (oldest first) with their products' costs stacked, and the
    colour of each product."""
    per_cycle: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for bill in bills:
        label = (bill.cycle_first_day or bill.cycle_start.date().isoformat())[:7]
        per_cycle[label][bill.product] += -bill.amount if bill.amount < 0 else bill.amount
    labels = sorted(per_cycle)[-cycles:]
    products = sorted({p for label in labels for p in per_cycle[label]})
    colours = {p: PALETTE[n % len(PALETTE)] for n, p in enumerate(products)}
    highest = max((sum(per_cycle[label].values(), Decimal(0)) for label in labels), default=Decimal(0))
    shown = []
    for label in labels:
        bars, top = [], CHART_HEIGHT_PX
        for product in products:
            amount = per_cycle[label].get(product, Decimal(0))
            if not amount:
                continue
            height = max(1, int(amount / highest * CHART_HEIGHT_PX)) if highest else 0
            top -= height
            bars.append(Bar(product, amount, height, top, colours[product]))
        shown.append(Cycle(label, sum(per_cycle[label].values(), Decimal(0)), tuple(bars)))
    return shown, colours
