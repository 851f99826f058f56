"""The merged, interpolated view of a loaded configuration."""

from __future__ import annotations

from typing import Mapping, Optional

from .document import describe_section
from .errors import MissingKeyError, TypeMismatchError
from .interpolation import Interpolator, qualified
from .values import TYPE_LABELS, describe, to_text
from .writer import dumps

_MISSING = object()


class Config:
    """Read access to sections and keys with interpolation applied.

    Instances are normally produced by :func:`inikit.load` or
    :func:`inikit.loads`.  ``table`` maps section names to mappings of
    keys to :class:`inikit.loader.SourceEntry` objects.
    """

    def __init__(self, table: Mapping[str, Mapping[str, object]], *,
                 section_origins: Optional[Mapping[str, tuple[str, int]]] = None,
                 main: str = "<string>") -> None:
        self._table = {name: dict(entries) for name, entries in table.items()}
        self._origins = dict(section_origins or {})
        self.main = main
        self._interpolator = Interpolator(self._table)

    def __repr__(self) -> str:
        return f"Config(main={self.main!r}, sections={self.sections()!r})"

    def __contains__(self, item) -> bool:
        if isinstance(item, tuple) and len(item) == 2:
            return self.has(*item)
        return self.has_section(item)

    def sections(self) -> list[str]:
        """Section names in order of first appearance."""
        return list(self._table)

    def has_section(self, name: str) -> bool:
        return name in self._table

    def has(self, section: str, key: str) -> bool:
        return key in self._table.get(section, {})

    def keys(self, section: str) -> list[str]:
        """Keys of ``section`` in definition order."""
        if section not in self._table:
            raise MissingKeyError(f"no {describe_section(section)}")
        return list(self._table[section])

    def _entry(self, section: str, key: str):
        if not self.has(section, key):
            raise MissingKeyError(f"no key {key!r} in {describe_section(section)}")
        return self._table[section][key]

    def origin(self, section: str, key: str) -> tuple[str, int]:
        """``(source, line)`` where the effective definition of a key lives."""
        entry = self._entry(section, key)
        return entry.source, entry.lineno

    def section_origin(self, section: str) -> Optional[tuple[str, int]]:
        """``(source, line)`` of the first header of ``section``, if any."""
        return self._origins.get(section)

    def raw(self, section: str, key: str) -> str:
        """The uninterpolated value text of a key."""
        return self._entry(section, key).raw

    def get(self, section: str, key: str, default=_MISSING):
        """Interpolated value of a key, or ``default`` when it is absent."""
        if not self.has(section, key):
            if default is not _MISSING:
                return default
            self._entry(section, key)
        return self._interpolator.value(section, key)

    def _typed(self, section: str, key: str, kind: type, default):
        if not self.has(section, key) and default is not _MISSING:
            return default
        value = self.get(section, key)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if kind is str and isinstance(value, (int, float)):
            return to_text(value)
        if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
            return value
        source, line = self.origin(section, key)
        raise TypeMismatchError(
            f"{qualified(section, key)}: expected {TYPE_LABELS[kind]}, got {describe(value)}",
            source=source, line=line)

    def get_int(self, section: str, key: str, default=_MISSING) -> int:
        return self._typed(section, key, int, default)

    def get_float(self, section: str, key: str, default=_MISSING) -> float:
        return self._typed(section, key, float, default)

    def get_bool(self, section: str, key: str, default=_MISSING) -> bool:
        return self._typed(section, key, bool, default)

    def get_str(self, section: str, key: str, default=_MISSING) -> str:
        return self._typed(section, key, str, default)

    def get_list(self, section: str, key: str, default=_MISSING) -> list:
        return self._typed(section, key, list, default)

    def section(self, name: str) -> dict:
        """All interpolated values of one section."""
        return {key: self.get(name, key) for key in self.keys(name)}

    def as_dict(self) -> dict:
        """Every section as ``{section: {key: value}}``."""
        return {name: self.section(name) for name in self._table}

    def to_text(self) -> str:
        """Flatten the configuration (includes and references resolved)."""
        return dumps(self.as_dict())
