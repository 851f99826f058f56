"""moneyunits -- exact money arithmetic and physical unit conversion.

* :class:`Money` keeps amounts as :class:`~decimal.Decimal` rounded to the
  currency's minor units (half-even by default) and allocates without
  losing cents.
* :class:`RateTable` converts between currencies using direct, inverse
  and cross rates.
* :class:`Quantity` and :func:`parse_quantity` handle lengths, masses,
  temperatures (with offsets) and compound units such as ``km/h``.
"""

from .allocation import allocate, allocate_with_minimum, split_evenly
from .currency import DEFAULT_CURRENCIES, Currency, CurrencyRegistry, get_currency
from .errors import (CurrencyMismatchError, DimensionError, MoneyUnitsError,
                     ParseError, RateNotFoundError, UnitError,
                     UnknownCurrencyError, UnknownUnitError)
from .exchange import RateTable
from .formatting import (ACCOUNTING_STYLE, CODE_STYLE, EUROPEAN_STYLE, US_STYLE,
                         MoneyStyle, format_amount, format_money, format_quantity,
                         parse_money)
from .money import Money
from .pricing import UnitPrice
from .quantity import Quantity, parse_quantity
from .units import (DEFAULT_REGISTRY, Dimension, Unit, UnitRegistry, base_unit,
                    parse_unit)

__all__ = [
    "allocate", "allocate_with_minimum", "split_evenly",
    "DEFAULT_CURRENCIES", "Currency", "CurrencyRegistry", "get_currency",
    "CurrencyMismatchError", "DimensionError", "MoneyUnitsError", "ParseError",
    "RateNotFoundError", "UnitError", "UnknownCurrencyError", "UnknownUnitError",
    "RateTable", "ACCOUNTING_STYLE", "CODE_STYLE", "EUROPEAN_STYLE", "US_STYLE",
    "MoneyStyle", "format_amount", "format_money", "format_quantity", "parse_money",
    "Money", "UnitPrice", "Quantity", "parse_quantity",
    "DEFAULT_REGISTRY", "Dimension", "Unit", "UnitRegistry", "base_unit", "parse_unit",
]

__version__ = "0.1.0"
