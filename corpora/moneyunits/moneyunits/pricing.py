"""Prices per unit of measure, bridging money and quantities."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN
from fractions import Fraction
from typing import Optional, Union

from .currency import Currency, get_currency
from .exchange import RateTable
from .formatting import US_STYLE, MoneyStyle, format_amount
from .money import Money
from .numeric import fraction_to_decimal, fraction_to_str, to_fraction
from .quantity import Quantity, UnitLike, _as_unit


class UnitPrice:
    """A price for one unit of something, e.g. 1.659 EUR per litre.

    The rate is kept exactly; rounding to the currency happens only when
    a :class:`Money` amount is produced.
    """

    __slots__ = ("rate", "currency", "unit")

    def __init__(self, rate, currency: Union[str, Currency], unit: UnitLike) -> None:
        self.rate = to_fraction(rate)
        self.currency = get_currency(currency)
        self.unit = _as_unit(unit)
        if self.unit.is_affine:
            raise ValueError("a price cannot be given per affine unit")

    @classmethod
    def of(cls, price: Money, unit: UnitLike) -> "UnitPrice":
        return cls(price.amount, price.currency, unit)

    def __repr__(self) -> str:
        return f"UnitPrice('{fraction_to_str(self.rate)}', '{self.currency.code}', '{self.unit.symbol}')"

    def __eq__(self, other) -> bool:
        if not isinstance(other, UnitPrice):
            return NotImplemented
        return (self.currency == other.currency and self.unit.is_compatible(other.unit)
                and self.rate / self.unit.factor == other.rate / other.unit.factor)

    def __hash__(self) -> int:
        return hash((self.currency.code, self.unit.dimension, self.rate / self.unit.factor))

    @property
    def price(self) -> Money:
        """The rate rounded to the currency's minor units."""
        return Money(self.rate, self.currency)

    def cost(self, quantity: Quantity, rounding: str = ROUND_HALF_EVEN) -> Money:
        """Total cost of ``quantity``, rounded once."""
        amount = quantity.to(self.unit).value * self.rate
        return Money(amount, self.currency, rounding=rounding)

    def per(self, unit: UnitLike) -> "UnitPrice":
        """The same price expressed per another unit."""
        target = _as_unit(unit)
        one = Quantity(1, target).to(self.unit).value
        return UnitPrice(self.rate * one, self.currency, target)

    def quantity_for(self, budget: Money) -> Quantity:
        """How much can be bought with ``budget``."""
        if budget.currency != self.currency:
            raise ValueError(f"budget is in {budget.currency.code}, price in {self.currency.code}")
        return Quantity(Fraction(budget.amount) / self.rate, self.unit)

    def convert(self, table: RateTable, currency: Union[str, Currency]) -> "UnitPrice":
        """The price in another currency, using ``table``'s rate."""
        target = get_currency(currency)
        rate = Fraction(table.rate(self.currency, target))
        return UnitPrice(self.rate * rate, target, self.unit)

    def format(self, places: Optional[int] = None, style: MoneyStyle = US_STYLE) -> str:
        """Render as ``$1.50/L``; ``places`` overrides the currency's digits."""
        amount = fraction_to_decimal(self.rate, self.currency.minor_units if places is None
                                     else places)
        return f"{format_amount(amount, self.currency, places, style)}/{self.unit.symbol}"
