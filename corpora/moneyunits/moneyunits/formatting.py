"""Human-readable rendering and parsing of money and quantities."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Optional, Union

from .currency import DEFAULT_CURRENCIES, Currency, CurrencyRegistry
from .errors import ParseError, UnknownCurrencyError
from .money import Money
from .numeric import format_decimal, to_decimal
from .quantity import Quantity, UnitLike


@dataclass(frozen=True)
class MoneyStyle:
    """Presentation options for :func:`format_money`.

    ``display`` is ``"symbol"``, ``"code"`` or ``"none"``; ``negative`` is
    ``"minus"`` (``-$5.00``) or ``"parentheses"`` (``($5.00)``).
    ``symbol_first`` overrides the currency's own preference when set.
    """

    display: str = "symbol"
    thousands: str = ","
    decimal_point: str = "."
    negative: str = "minus"
    symbol_first: Optional[bool] = None

    def __post_init__(self) -> None:
        if self.display not in ("symbol", "code", "none"):
            raise ValueError(f"unknown display {self.display!r}")
        if self.negative not in ("minus", "parentheses"):
            raise ValueError(f"unknown negative style {self.negative!r}")
        if self.thousands == self.decimal_point:
            raise ValueError("thousands and decimal separators must differ")


US_STYLE = MoneyStyle()
EUROPEAN_STYLE = MoneyStyle(thousands=".", decimal_point=",", symbol_first=False)
ACCOUNTING_STYLE = MoneyStyle(negative="parentheses")
CODE_STYLE = MoneyStyle(display="code")


def format_amount(amount, currency: Union[str, Currency], places: Optional[int] = None,
                  style: MoneyStyle = US_STYLE) -> str:
    """Render a bare amount of ``currency`` with ``places`` decimals.

    ``places`` defaults to the currency's minor units; a larger value is
    useful for unit prices such as fuel.
    """
    currency = DEFAULT_CURRENCIES.get(currency)
    value = to_decimal(amount)
    digits = format_decimal(abs(value), currency.minor_units if places is None else places,
                            thousands=style.thousands, decimal_point=style.decimal_point)
    if style.display == "none":
        body = digits
    else:
        if style.display == "code":
            marker = currency.code
            first = True if style.symbol_first is None else style.symbol_first
        else:
            marker = currency.symbol
            first = currency.symbol_first if style.symbol_first is None else style.symbol_first
        if first:
            gap = " " if marker[-1].isalpha() else ""
            body = f"{marker}{gap}{digits}"
        else:
            body = f"{digits} {marker}"
    if value < 0 and any(ch in "123456789" for ch in digits):
        return f"({body})" if style.negative == "parentheses" else f"-{body}"
    return body


def format_money(money: Money, style: MoneyStyle = US_STYLE) -> str:
    """Render ``money`` such as ``$1,234.50``, ``1.234,50 €`` or ``(USD 5.00)``."""
    return format_amount(money.amount, money.currency, money.currency.minor_units, style)


_AMOUNT = re.compile(r"[0-9][0-9.,' ]*")


def _normalise_amount(text: str, style: MoneyStyle) -> str:
    cleaned = text.replace(" ", "").replace("'", "")
    if style.thousands:
        cleaned = cleaned.replace(style.thousands, "")
    if style.decimal_point != ".":
        cleaned = cleaned.replace(style.decimal_point, ".")
    if cleaned.count(".") > 1 or not re.fullmatch(r"\d+(?:\.\d+)?", cleaned):
        raise ParseError(f"malformed amount {text.strip()!r}")
    return cleaned


def _find_currency(marker: str, registry: CurrencyRegistry) -> Currency:
    if marker.upper() in registry and len(marker) == 3 and marker.isalpha():
        return registry.get(marker)
    try:
        return registry.by_symbol(marker)
    except UnknownCurrencyError as exc:
        raise ParseError(str(exc)) from None


def parse_money(text: str, *, default: Union[str, Currency, None] = None,
                style: MoneyStyle = US_STYLE, strict: bool = True,
                registry: CurrencyRegistry = DEFAULT_CURRENCIES) -> Money:
    """Parse ``"$1,234.50"``, ``"EUR 12"``, ``"-5 kr"`` or ``"(CHF 3.05)"``.

    With ``strict`` (the default) an amount with more decimal places than
    the currency allows is rejected instead of being rounded.
    """
    source = text.strip()
    negative = False
    if source.startswith("(") and source.endswith(")"):
        negative, source = True, source[1:-1].strip()
    if source.startswith("-"):
        negative, source = not negative, source[1:].strip()
    match = _AMOUNT.search(source)
    if not match:
        raise ParseError(f"no amount found in {text!r}")
    amount_text = match.group().strip()
    before = source[:match.start()].strip()
    after = source[match.end():].strip()
    if before.startswith("-"):
        negative, before = not negative, before[1:].strip()
    elif before.endswith("-"):
        negative, before = not negative, before[:-1].strip()
    if before and after:
        raise ParseError(f"currency given twice in {text!r}")
    marker = before or after
    if marker:
        currency = _find_currency(marker, registry)
    elif default is not None:
        currency = registry.get(default)
    else:
        raise ParseError(f"no currency in {text!r} and no default given")
    amount = to_decimal(_normalise_amount(amount_text, style))
    if strict and -amount.as_tuple().exponent > currency.minor_units:
        raise ParseError(
            f"{amount_text!r} has more decimal places than {currency.code} allows "
            f"({currency.minor_units})")
    return Money(-amount if negative else amount, currency)


def format_quantity(quantity: Quantity, places: Optional[int] = None, *,
                    unit: Optional[UnitLike] = None, thousands: str = "",
                    decimal_point: str = ".", rounding: str = ROUND_HALF_EVEN) -> str:
    """Render a quantity, optionally converted to ``unit`` and rounded."""
    if unit is not None:
        quantity = quantity.to(unit)
    value = quantity.magnitude(places, rounding)
    if places is None:
        value = value.normalize()
    text = format_decimal(value, thousands=thousands, decimal_point=decimal_point)
    return f"{text} {quantity.unit.symbol}"


def format_ratio(value: Decimal, places: int = 4) -> str:
    """Render an exchange rate or ratio with fixed decimals."""
    return format_decimal(to_decimal(value), places)
