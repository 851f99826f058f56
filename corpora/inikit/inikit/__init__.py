"""inikit -- an INI-style configuration toolkit.

Features: typed values (integers, floats, booleans, lists), ``${section:key}``
interpolation with cycle detection, ``%include`` resolved from an in-memory
mapping of sources, schema validation with defaults, and a writer that
round-trips documents.
"""

from .config import Config
from .document import Document, Entry, Include, SectionHeader, Trivia
from .errors import (IncludeError, InikitError, InterpolationError,
                     MissingKeyError, ParseError, SchemaError,
                     TypeMismatchError, ValueSyntaxError)
from .loader import Loader, load, loads, resolve_include
from .parser import parse_document
from .schema import REQUIRED, Field, Issue, Schema, SectionSchema
from .values import format_value, parse_value, to_text
from .writer import dump_document, dumps

__all__ = [
    "Config", "Document", "Entry", "Include", "SectionHeader", "Trivia",
    "IncludeError", "InikitError", "InterpolationError", "MissingKeyError",
    "ParseError", "SchemaError", "TypeMismatchError", "ValueSyntaxError",
    "Loader", "load", "loads", "resolve_include", "parse_document",
    "REQUIRED", "Field", "Issue", "Schema", "SectionSchema",
    "format_value", "parse_value", "to_text", "dump_document", "dumps",
]

__version__ = "0.1.0"
