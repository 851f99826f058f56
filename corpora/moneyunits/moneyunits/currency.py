"""Currency metadata and currency-aware rounding."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Iterable, Optional, Union

from .errors import UnknownCurrencyError
from .numeric import round_fraction, to_decimal


@dataclass(frozen=True)
class Currency:
    """An ISO-4217 style currency.

    ``minor_units`` is the number of decimal places of the smallest unit
    (2 for cents, 0 for yen, 3 for fils).  ``cash_increment``, when set, is
    the smallest coin actually in circulation (e.g. 0.05 CHF).
    """

    code: str
    minor_units: int
    symbol: str
    name: str
    cash_increment: Optional[Decimal] = None
    symbol_first: bool = True

    def __post_init__(self) -> None:
        if len(self.code) != 3 or not self.code.isalpha() or not self.code.isupper():
            raise ValueError(f"currency code must be three upper-case letters, got {self.code!r}")
        if not 0 <= self.minor_units <= 8:
            raise ValueError(f"minor units must be between 0 and 8, got {self.minor_units}")

    def __str__(self) -> str:
        return self.code

    @property
    def exponent(self) -> Decimal:
        """The value of one minor unit, e.g. ``Decimal('0.01')``."""
        return Decimal(1).scaleb(-self.minor_units)

    def quantize(self, amount, rounding: str = ROUND_HALF_EVEN) -> Decimal:
        """Round ``amount`` to this currency's minor units."""
        return round_fraction(Fraction(to_decimal(amount)), self.minor_units, rounding)

    def to_minor(self, amount) -> int:
        """Express an amount as an integer number of minor units."""
        return int(self.quantize(amount).scaleb(self.minor_units))

    def from_minor(self, units: int) -> Decimal:
        """Inverse of :meth:`to_minor`."""
        if not isinstance(units, int) or isinstance(units, bool):
            raise TypeError("minor units must be an integer")
        return Decimal(units).scaleb(-self.minor_units)

    def cash_round(self, amount, rounding: str = ROUND_HALF_EVEN) -> Decimal:
        """Round to the smallest coin; falls back to :meth:`quantize`."""
        if self.cash_increment is None:
            return self.quantize(amount, rounding)
        steps = round_fraction(Fraction(to_decimal(amount)) / Fraction(self.cash_increment),
                               0, rounding)
        return self.quantize(steps * self.cash_increment)


class CurrencyRegistry:
    """A lookup table of currencies by code and by symbol."""

    def __init__(self, currencies: Iterable[Currency] = ()) -> None:
        self._by_code: dict[str, Currency] = {}
        for currency in currencies:
            self.register(currency)

    def register(self, currency: Currency) -> Currency:
        existing = self._by_code.get(currency.code)
        if existing is not None and existing != currency:
            raise ValueError(f"currency {currency.code} is already registered differently")
        self._by_code[currency.code] = currency
        return currency

    def __contains__(self, code: str) -> bool:
        return isinstance(code, str) and code.upper() in self._by_code

    def __iter__(self):
        return iter(sorted(self._by_code.values(), key=lambda c: c.code))

    def __len__(self) -> int:
        return len(self._by_code)

    def get(self, code: Union[str, Currency]) -> Currency:
        """Return the currency for ``code`` (case-insensitive)."""
        if isinstance(code, Currency):
            return code
        if not isinstance(code, str):
            raise TypeError(f"currency must be a code or Currency, got {type(code).__name__}")
        try:
            return self._by_code[code.strip().upper()]
        except KeyError:
            raise UnknownCurrencyError(f"unknown currency {code!r}") from None

    def by_symbol(self, symbol: str) -> Currency:
        """Return the only currency using ``symbol``; ambiguity is an error."""
        matches = [c for c in self if c.symbol == symbol]
        if not matches:
            raise UnknownCurrencyError(f"unknown currency symbol {symbol!r}")
        if len(matches) > 1:
            codes = ", ".join(c.code for c in matches)
            raise UnknownCurrencyError(f"ambiguous currency symbol {symbol!r} ({codes})")
        return matches[0]

    def symbols(self) -> list[str]:
        """All symbols, longest first (useful for prefix matching)."""
        return sorted({c.symbol for c in self}, key=lambda s: (-len(s), s))


DEFAULT_CURRENCIES = CurrencyRegistry([
    Currency("USD", 2, "$", "US Dollar"),
    Currency("EUR", 2, "€", "Euro"),
    Currency("GBP", 2, "£", "Pound Sterling"),
    Currency("JPY", 0, "¥", "Yen"),
    Currency("CHF", 2, "CHF", "Swiss Franc", cash_increment=Decimal("0.05")),
    Currency("CAD", 2, "CA$", "Canadian Dollar"),
    Currency("AUD", 2, "A$", "Australian Dollar"),
    Currency("CNY", 2, "CN¥", "Yuan Renminbi"),
    Currency("INR", 2, "₹", "Indian Rupee"),
    Currency("KRW", 0, "₩", "Won"),
    Currency("SEK", 2, "kr", "Swedish Krona", symbol_first=False),
    Currency("NOK", 2, "kr", "Norwegian Krone", symbol_first=False),
    Currency("ISK", 0, "ISK", "Iceland Krona", symbol_first=False),
    Currency("KWD", 3, "KD", "Kuwaiti Dinar"),
    Currency("BHD", 3, "BD", "Bahraini Dinar"),
    Currency("CLF", 4, "UF", "Unidad de Fomento"),
])


def get_currency(code: Union[str, Currency]) -> Currency:
    """Look a currency up in the default registry."""
    return DEFAULT_CURRENCIES.get(code)
