"""Declarative validation of a :class:`~inikit.config.Config`.

A :class:`Schema` maps section names to :class:`SectionSchema` objects,
which in turn map keys to :class:`Field` descriptions.  Validation returns a
plain dictionary with defaults filled in, or raises
:class:`~inikit.errors.SchemaError` listing every problem with its
source location.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Callable, Mapping, Optional

from .config import Config
from .errors import InikitError, SchemaError
from .loader import load
from .values import TYPE_LABELS, describe, format_value, to_text
from .writer import dumps


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED = _Required()


def _copy(value):
    return [_copy(item) for item in value] if isinstance(value, list) else value


def _coerce(value, kind: type):
    """Return ``(converted, problem)``; ``problem`` is ``None`` on success."""
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is bool and isinstance(value, bool):
        return value, None
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value, None
    if kind is float and is_number:
        return float(value), None
    if kind is str and isinstance(value, (str, int, float)):
        return to_text(value), None
    if kind is list and isinstance(value, list):
        return value, None
    return value, f"expected {TYPE_LABELS[kind]}, got {describe(value)}"


@dataclass(frozen=True)
class Issue:
    """One validation problem."""

    message: str
    section: str
    key: Optional[str] = None
    source: Optional[str] = None
    line: Optional[int] = None

    def __str__(self) -> str:
        if self.source and self.line:
            where = f"{self.source}:{self.line}: "
        elif self.source:
            where = f"{self.source}: "
        else:
            where = ""
        subject = f"[{self.section}]" if self.section else "<global>"
        if self.key is not None:
            subject += f" {self.key}"
        return f"{where}{subject}: {self.message}"


class Field:
    """Type and constraints of a single key."""

    def __init__(self, type: type = str, *, default=REQUIRED, choices=None,
                 minimum=None, maximum=None, item: Optional[type] = None,
                 check: Optional[Callable[[object], Optional[str]]] = None,
                 description: str = "") -> None:
        if type not in TYPE_LABELS:
            raise ValueError(f"unsupported field type {type!r}")
        if item is not None and type is not list:
            raise ValueError("an item type only applies to list fields")
        if item is not None and item not in TYPE_LABELS:
            raise ValueError(f"unsupported item type {item!r}")
        self.type = type
        self.default = default
        self.choices = tuple(choices) if choices is not None else None
        self.minimum = minimum
        self.maximum = maximum
        self.item = item
        self.check = check
        self.description = description
        if default is not REQUIRED and default is not None:
            _, problems = self.convert(default)
            if problems:
                raise ValueError(f"invalid default {default!r}: {problems[0]}")

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def _bounds(self, value) -> list[str]:
        problems = []
        sized = isinstance(value, (str, list))
        measure = len(value) if sized else value
        label = "length must be" if sized else "must be"
        if self.minimum is not None and measure < self.minimum:
            problems.append(f"{label} >= {self.minimum}; got {measure}")
        if self.maximum is not None and measure > self.maximum:
            problems.append(f"{label} <= {self.maximum}; got {measure}")
        return problems

    def convert(self, value) -> tuple[object, list[str]]:
        """Coerce and check ``value``; return it with a list of problems."""
        converted, problem = _coerce(value, self.type)
        if problem:
            return value, [problem]
        problems: list[str] = []
        if self.item is not None:
            items = []
            for position, element in enumerate(converted, 1):
                element, problem = _coerce(element, self.item)
                if problem:
                    problems.append(f"item {position}: {problem}")
                items.append(element)
            converted = items
        if self.choices is not None and converted not in self.choices:
            allowed = ", ".join(format_value(choice) for choice in self.choices)
            problems.append(f"must be one of {allowed}; got {format_value(converted)}")
        problems.extend(self._bounds(converted))
        if self.check is not None and not problems:
            message = self.check(converted)
            if message:
                problems.append(message)
        return converted, problems


class SectionSchema:
    """The fields of one section."""

    def __init__(self, fields: Mapping[str, Field], *, optional: bool = False,
                 allow_extra: bool = False) -> None:
        self.fields = dict(fields)
        self.optional = optional
        self.allow_extra = allow_extra

    def defaults(self) -> dict:
        return {key: _copy(field.default) for key, field in self.fields.items()
                if not field.required and field.default is not None}

    def has_required(self) -> bool:
        return any(field.required for field in self.fields.values())


def _suggest(name: str, candidates) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class Schema:
    """A whole-configuration schema."""

    def __init__(self, sections: Mapping[str, SectionSchema], *,
                 allow_extra_sections: bool = False) -> None:
        self.sections = dict(sections)
        self.allow_extra_sections = allow_extra_sections

    def defaults(self) -> dict:
        """Default values of every section, as ``{section: {key: value}}``."""
        return {name: spec.defaults() for name, spec in self.sections.items()}

    def template(self, comment: Optional[str] = None) -> str:
        """Configuration text holding every default value."""
        return dumps(self.defaults(), comment=comment)

    def load(self, name: str, sources: Mapping[str, str]) -> dict:
        """Load ``name`` from ``sources`` and validate it."""
        return self.validate(load(name, sources))

    def _validate_section(self, config: Config, name: str, spec: SectionSchema,
                          issues: list[Issue]) -> dict:
        header_source, header_line = config.section_origin(name) or (config.main, None)
        values = {}
        for key, field in spec.fields.items():
            if not config.has(name, key):
                if field.required:
                    issues.append(Issue("missing required key", name, key,
                                        header_source, header_line))
                else:
                    values[key] = _copy(field.default)
                continue
            source, line = config.origin(name, key)
            try:
                raw = config.get(name, key)
            except InikitError as exc:
                issues.append(Issue(exc.message, name, key, exc.source, exc.line))
                continue
            converted, problems = field.convert(raw)
            for problem in problems:
                issues.append(Issue(problem, name, key, source, line))
            values[key] = converted
        for key in config.keys(name):
            if key in spec.fields:
                continue
            if spec.allow_extra:
                values[key] = config.get(name, key)
            else:
                source, line = config.origin(name, key)
                issues.append(Issue("unknown key" + _suggest(key, spec.fields),
                                    name, key, source, line))
        return values

    def validate(self, config: Config) -> dict:
        """Validate ``config`` and return its values with defaults applied."""
        issues: list[Issue] = []
        result: dict = {}
        for name, spec in self.sections.items():
            if config.has_section(name):
                result[name] = self._validate_section(config, name, spec, issues)
            elif spec.optional:
                continue
            elif spec.has_required():
                issues.append(Issue("missing required section", name,
                                    source=config.main))
            else:
                result[name] = spec.defaults()
        if not self.allow_extra_sections:
            for name in config.sections():
                if name not in self.sections:
                    source, line = config.section_origin(name) or (config.main, None)
                    issues.append(Issue("unknown section" + _suggest(name, self.sections),
                                        name, source=source, line=line))
        if issues:
            raise SchemaError(issues)
        return result
