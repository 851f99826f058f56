"""Turn two line sequences into a list of edit operations."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .lcs import lcs_matches
from .lines import line_key
from .myers import myers_matches

Matcher = Callable[[Sequence, Sequence], list[tuple[int, int]]]

ALGORITHMS: dict[str, Matcher] = {
    "myers": myers_matches,
    "lcs": lcs_matches,
}


@dataclass(frozen=True)
class Opcode:
    """One edit operation: ``a[i1:i2]`` becomes ``b[j1:j2]``.

    ``tag`` is one of ``"equal"``, ``"delete"``, ``"insert"`` or
    ``"replace"``.
    """

    tag: str
    i1: int
    i2: int
    j1: int
    j2: int

    @property
    def old_size(self) -> int:
        return self.i2 - self.i1

    @property
    def new_size(self) -> int:
        return self.j2 - self.j1


def _common_prefix(a: Sequence, b: Sequence) -> int:
    limit = min(len(a), len(b))
    size = 0
    while size < limit and a[size] == b[size]:
        size += 1
    return size


def _common_suffix(a: Sequence, b: Sequence, prefix: int) -> int:
    limit = min(len(a), len(b)) - prefix
    size = 0
    while size < limit and a[len(a) - 1 - size] == b[len(b) - 1 - size]:
        size += 1
    return size


def get_matcher(algorithm: str) -> Matcher:
    """Look up a matching function by name."""
    try:
        return ALGORITHMS[algorithm]
    except KeyError:
        known = ", ".join(sorted(ALGORITHMS))
        raise ValueError(f"unknown diff algorithm {algorithm!r} (known: {known})") from None


def match_sequences(a: Sequence, b: Sequence, algorithm: str = "myers") -> list[tuple[int, int]]:
    """Matched index pairs for ``a`` and ``b``.

    The common prefix and suffix are matched directly and only the middle
    part is handed to the selected algorithm.
    """
    matcher = get_matcher(algorithm)
    prefix = _common_prefix(a, b)
    suffix = _common_suffix(a, b, prefix)
    middle_a = a[prefix:len(a) - suffix]
    middle_b = b[prefix:len(b) - suffix]
    matches = [(i, i) for i in range(prefix)]
    matches.extend((i + prefix, j + prefix) for i, j in matcher(middle_a, middle_b))
    tail_a = len(a) - suffix
    tail_b = len(b) - suffix
    matches.extend((tail_a + offset, tail_b + offset) for offset in range(suffix))
    return matches


def _change(i1: int, i2: int, j1: int, j2: int) -> Opcode:
    if i1 < i2 and j1 < j2:
        tag = "replace"
    elif i1 < i2:
        tag = "delete"
    else:
        tag = "insert"
    return Opcode(tag, i1, i2, j1, j2)


def opcodes_from_matches(n: int, m: int, matches: list[tuple[int, int]]) -> list[Opcode]:
    """Convert matched pairs into a compact list of :class:`Opcode`."""
    ops: list[Opcode] = []
    i = j = 0
    run_start: tuple[int, int] | None = None
    run_length = 0
    for mi, mj in matches:
        if mi < i or mj < j:
            raise ValueError("matches must be strictly increasing")
        if mi > i or mj > j:
            if run_length:
                ops.append(Opcode("equal", run_start[0], i, run_start[1], j))
                run_length = 0
            ops.append(_change(i, mi, j, mj))
        if run_length == 0:
            run_start = (mi, mj)
        run_length += 1
        i, j = mi + 1, mj + 1
    if run_length:
        ops.append(Opcode("equal", run_start[0], i, run_start[1], j))
    if i < n or j < m:
        ops.append(_change(i, n, j, m))
    return ops


def diff_lines(
    a: Sequence[str],
    b: Sequence[str],
    algorithm: str = "myers",
    ignore_whitespace: bool = False,
    ignore_case: bool = False,
) -> list[Opcode]:
    """Compute the opcodes transforming line list ``a`` into ``b``."""
    if ignore_whitespace or ignore_case:
        ka = [line_key(line, ignore_whitespace, ignore_case) for line in a]
        kb = [line_key(line, ignore_whitespace, ignore_case) for line in b]
    else:
        ka, kb = list(a), list(b)
    return opcodes_from_matches(len(a), len(b), match_sequences(ka, kb, algorithm))


def similarity(a: Sequence, b: Sequence, algorithm: str = "myers") -> float:
    """Ratio ``2 * matches / (len(a) + len(b))`` in the range 0..1."""
    total = len(a) + len(b)
    if total == 0:
        return 1.0
    return 2 * len(match_sequences(a, b, algorithm)) / total


def apply_opcodes(a: Sequence, b: Sequence, opcodes: list[Opcode]) -> list:
    """Rebuild ``b`` from ``a`` and the opcodes, using ``b`` only for new items."""
    result: list = []
    for op in opcodes:
        if op.tag == "equal":
            result.extend(a[op.i1:op.i2])
        else:
            result.extend(b[op.j1:op.j2])
    return result
