"""An immutable, currency-aware monetary amount."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Iterable, Sequence, Union

from . import allocation
from .currency import Currency, get_currency
from .errors import CurrencyMismatchError
from .numeric import CONTEXT, round_fraction, to_decimal, to_fraction

Number = Union[int, str, Decimal, Fraction]


class Money:
    """An amount of a given currency, always rounded to its minor units.

    Rounding defaults to banker's rounding (half-even).  Arithmetic between
    different currencies raises :class:`CurrencyMismatchError`.
    """

    __slots__ = ("_amount", "_currency")

    def __init__(self, amount: Number, currency: Union[str, Currency],
                 *, rounding: str = ROUND_HALF_EVEN) -> None:
        cur = get_currency(currency)
        if isinstance(amount, Fraction):
            value = round_fraction(amount, cur.minor_units, rounding)
        else:
            value = cur.quantize(to_decimal(amount), rounding)
        object.__setattr__(self, "_amount", value)
        object.__setattr__(self, "_currency", cur)

    def __setattr__(self, name, value):
        raise AttributeError("Money objects are immutable")

    @classmethod
    def zero(cls, currency: Union[str, Currency]) -> "Money":
        return cls(0, currency)

    @classmethod
    def from_minor(cls, units: int, currency: Union[str, Currency]) -> "Money":
        """Build an amount from an integer count of minor units (cents)."""
        cur = get_currency(currency)
        return cls(cur.from_minor(units), cur)

    @classmethod
    def total(cls, amounts: Iterable["Money"], currency: Union[str, Currency]) -> "Money":
        """Sum ``amounts``, which must all be in ``currency``."""
        result = cls.zero(currency)
        for amount in amounts:
            result = result + amount
        return result

    @property
    def amount(self) -> Decimal:
        return self._amount

    @property
    def currency(self) -> Currency:
        return self._currency

    @property
    def minor_amount(self) -> int:
        """The amount as an integer number of minor units."""
        return self._currency.to_minor(self._amount)

    def _check(self, other: "Money") -> None:
        if not isinstance(other, Money):
            raise TypeError(f"expected Money, got {type(other).__name__}")
        if other._currency != self._currency:
            raise CurrencyMismatchError(
                f"cannot combine {self._currency.code} and {other._currency.code}")

    def __repr__(self) -> str:
        return f"Money('{self._amount}', '{self._currency.code}')"

    def __str__(self) -> str:
        return f"{self._amount} {self._currency.code}"

    def __hash__(self) -> int:
        return hash((self._amount, self._currency.code))

    def __eq__(self, other) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        return self._currency == other._currency and self._amount == other._amount

    def __lt__(self, other: "Money") -> bool:
        self._check(other)
        return self._amount < other._amount

    def __le__(self, other: "Money") -> bool:
        self._check(other)
        return self._amount <= other._amount

    def __gt__(self, other: "Money") -> bool:
        self._check(other)
        return self._amount > other._amount

    def __ge__(self, other: "Money") -> bool:
        self._check(other)
        return self._amount >= other._amount

    def __bool__(self) -> bool:
        return bool(self._amount)

    def __neg__(self) -> "Money":
        return Money(-self._amount, self._currency)

    def __pos__(self) -> "Money":
        return self

    def __abs__(self) -> "Money":
        return Money(abs(self._amount), self._currency)

    def __add__(self, other: "Money") -> "Money":
        if not isinstance(other, Money):
            return NotImplemented
        self._check(other)
        return Money(CONTEXT.add(self._amount, other._amount), self._currency)

    def __radd__(self, other) -> "Money":
        if other == 0 and not isinstance(other, bool):
            return self
        return NotImplemented

    def __sub__(self, other: "Money") -> "Money":
        if not isinstance(other, Money):
            return NotImplemented
        self._check(other)
        return Money(CONTEXT.subtract(self._amount, other._amount), self._currency)

    def multiply(self, factor: Number, rounding: str = ROUND_HALF_EVEN) -> "Money":
        """Multiply by a plain number, rounding with ``rounding``."""
        exact = Fraction(self._amount) * to_fraction(factor)
        return Money(exact, self._currency, rounding=rounding)

    def __mul__(self, factor) -> "Money":
        if isinstance(factor, (Money, float, bool)):
            return NotImplemented
        if not isinstance(factor, (int, Decimal, Fraction)):
            return NotImplemented
        return self.multiply(factor)

    __rmul__ = __mul__

    def __truediv__(self, divisor):
        if isinstance(divisor, Money):
            self._check(divisor)
            if not divisor._amount:
                raise ZeroDivisionError("division by a zero amount")
            return CONTEXT.divide(self._amount, divisor._amount)
        if isinstance(divisor, (float, bool)) or not isinstance(divisor, (int, Decimal, Fraction)):
            return NotImplemented
        value = to_fraction(divisor)
        if value == 0:
            raise ZeroDivisionError("division of money by zero")
        return Money(Fraction(self._amount) / value, self._currency)

    def percent(self, rate: Number, rounding: str = ROUND_HALF_EVEN) -> "Money":
        """``rate`` percent of this amount, e.g. ``percent('7.5')``."""
        return self.multiply(to_fraction(rate) / 100, rounding)

    def round_cash(self, rounding: str = ROUND_HALF_EVEN) -> "Money":
        """Round to the currency's cash increment (e.g. 0.05 CHF)."""
        return Money(self._currency.cash_round(self._amount, rounding), self._currency)

    def allocate(self, ratios: Sequence[Number]) -> list["Money"]:
        """Split by ``ratios`` so that the parts add up exactly to this amount."""
        parts = allocation.allocate(self.minor_amount, ratios)
        return [Money.from_minor(part, self._currency) for part in parts]

    def split(self, count: int) -> list["Money"]:
        """Split into ``count`` nearly equal parts that add up exactly."""
        parts = allocation.split_evenly(self.minor_amount, count)
        return [Money.from_minor(part, self._currency) for part in parts]

    def add_tax(self, rate: Number) -> tuple["Money", "Money"]:
        """Return ``(tax, gross)`` for a net amount and a percentage ``rate``."""
        tax = self.percent(rate)
        return tax, self + tax

    def extract_tax(self, rate: Number) -> tuple["Money", "Money"]:
        """Return ``(net, tax)`` contained in this gross amount at ``rate`` percent."""
        net = Money(Fraction(self._amount) / (1 + to_fraction(rate) / 100), self._currency)
        return net, self - net
