"""Exceptions raised by moneyunits."""


class MoneyUnitsError(Exception):
    """Base class for all errors of this package."""


class UnknownCurrencyError(MoneyUnitsError, LookupError):
    """A currency code or symbol is not registered."""


class CurrencyMismatchError(MoneyUnitsError, ValueError):
    """An operation mixed amounts of different currencies."""


class RateNotFoundError(MoneyUnitsError, LookupError):
    """No direct, inverse or cross rate connects two currencies."""


class UnitError(MoneyUnitsError, ValueError):
    """A unit operation is not meaningful (e.g. scaling an absolute temperature)."""


class UnknownUnitError(UnitError, LookupError):
    """A unit symbol is not registered."""


class DimensionError(UnitError):
    """Two quantities or units have incompatible dimensions."""


class ParseError(MoneyUnitsError, ValueError):
    """Text could not be parsed as money, a unit or a quantity."""
