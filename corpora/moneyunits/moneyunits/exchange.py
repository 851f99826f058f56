"""Exchange rates with inverse and cross-rate derivation."""

from __future__ import annotations

from collections import deque
from decimal import ROUND_HALF_EVEN, Context, Decimal
from fractions import Fraction
from typing import Iterable, Mapping, Optional, Union

from .currency import Currency, get_currency
from .errors import RateNotFoundError
from .money import Money
from .numeric import to_decimal

CurrencyLike = Union[str, Currency]


class RateTable:
    """Known conversion rates between currencies.

    ``set_rate('EUR', 'USD', '1.08')`` states that one euro buys 1.08
    dollars.  Missing rates are derived from inverses and, when needed, by
    chaining known rates along the shortest path of currencies.  Derived
    rates are rounded to ``precision`` significant digits.
    """

    def __init__(self, precision: int = 12) -> None:
        if precision < 1:
            raise ValueError("precision must be positive")
        self.precision = precision
        self._context = Context(prec=precision, rounding=ROUND_HALF_EVEN)
        self._rates: dict[tuple[str, str], Decimal] = {}

    @classmethod
    def from_quotes(cls, base: CurrencyLike, quotes: Mapping[str, object],
                    precision: int = 12) -> "RateTable":
        """Build a table from ``{quote: rate}`` against one base currency."""
        table = cls(precision)
        for quote, rate in quotes.items():
            table.set_rate(base, quote, rate)
        return table

    def set_rate(self, base: CurrencyLike, quote: CurrencyLike, rate) -> None:
        """Record that one unit of ``base`` is worth ``rate`` units of ``quote``."""
        source = get_currency(base).code
        target = get_currency(quote).code
        if source == target:
            raise ValueError("a currency cannot have a rate against itself")
        value = to_decimal(rate)
        if value <= 0:
            raise ValueError(f"rate must be positive, got {value}")
        self._rates.pop((target, source), None)
        self._rates[(source, target)] = value

    def currencies(self) -> list[str]:
        """Codes of all currencies mentioned by some rate, sorted."""
        return sorted({code for pair in self._rates for code in pair})

    def _neighbours(self, code: str) -> list[tuple[str, Fraction]]:
        found = []
        for (source, target), rate in self._rates.items():
            if source == code:
                found.append((target, Fraction(rate)))
            elif target == code:
                found.append((source, 1 / Fraction(rate)))
        return sorted(found, key=lambda item: item[0])

    def path(self, base: CurrencyLike, quote: CurrencyLike) -> list[str]:
        """Shortest chain of currency codes linking ``base`` to ``quote``."""
        source = get_currency(base).code
        target = get_currency(quote).code
        if source == target:
            return [source]
        previous: dict[str, Optional[str]] = {source: None}
        queue = deque([source])
        while queue:
            code = queue.popleft()
            for neighbour, _ in self._neighbours(code):
                if neighbour in previous:
                    continue
                previous[neighbour] = code
                if neighbour == target:
                    chain = [target]
                    while previous[chain[-1]] is not None:
                        chain.append(previous[chain[-1]])
                    return chain[::-1]
                queue.append(neighbour)
        raise RateNotFoundError(f"no exchange rate from {source} to {target}")

    def _exact_rate(self, chain: list[str]) -> Fraction:
        rate = Fraction(1)
        for source, target in zip(chain, chain[1:]):
            rate *= dict(self._neighbours(source))[target]
        return rate

    def rate(self, base: CurrencyLike, quote: CurrencyLike) -> Decimal:
        """The rate from ``base`` to ``quote``: direct, inverse or cross."""
        source = get_currency(base).code
        target = get_currency(quote).code
        if source == target:
            return Decimal(1)
        direct = self._rates.get((source, target))
        if direct is not None:
            return direct
        exact = self._exact_rate(self.path(source, target))
        return self._context.divide(Decimal(exact.numerator), Decimal(exact.denominator))

    def convert(self, money: Money, quote: CurrencyLike,
                rounding: str = ROUND_HALF_EVEN) -> Money:
        """Convert ``money`` into ``quote``, rounding to its minor units."""
        target = get_currency(quote)
        if target == money.currency:
            return money
        rate = Fraction(self.rate(money.currency, target))
        return Money(Fraction(money.amount) * rate, target, rounding=rounding)

    def total(self, amounts: Iterable[Money], quote: CurrencyLike) -> Money:
        """Sum amounts in mixed currencies, rounding only once at the end."""
        target = get_currency(quote)
        exact = Fraction(0)
        for money in amounts:
            exact += Fraction(money.amount) * Fraction(self.rate(money.currency, target))
        return Money(exact, target)

    def spread(self, base: CurrencyLike, quote: CurrencyLike, margin_percent) -> tuple[Decimal, Decimal]:
        """``(bid, ask)`` around the mid rate for a symmetric margin."""
        mid = Fraction(self.rate(base, quote))
        margin = Fraction(to_decimal(margin_percent)) / 100
        bid = mid * (1 - margin)
        ask = mid * (1 + margin)
        as_decimal = lambda value: self._context.divide(Decimal(value.numerator),
                                                        Decimal(value.denominator))
        return as_decimal(bid), as_decimal(ask)
