import unittest

from textpatch import diffstat, format_diffstat, parse_patch, unified_diff
from textpatch.model import PatchSet
from textpatch.stats import FileStat, summary_line


def build_patchset():
    text = (
        unified_diff("a\nb\nc\n", "a\nB\nc\nd\n", "a/src/main.py", "b/src/main.py")
        + unified_diff("x\ny\n", "", "a/gone.txt", "/dev/null")
    )
    return parse_patch(text)


def test_diffstat_counts_per_file():
    assert diffstat(build_patchset(), strip=1) == [
        FileStat("src/main.py", 2, 1),
        FileStat("gone.txt", 0, 2),
    ]


def test_format_diffstat_table():
    assert format_diffstat(build_patchset(), strip=1) == (
        " src/main.py | 3 ++-\n"
        " gone.txt    | 2 --\n"
        " 2 files changed, 2 insertions(+), 3 deletions(-)\n"
    )


def test_summary_line_singular_forms():
    assert summary_line([FileStat("f", 1, 1)]) == "1 file changed, 1 insertion(+), 1 deletion(-)"
    assert summary_line([FileStat("f", 0, 0)]) == "1 file changed"


class DiffstatScalingTest(unittest.TestCase):
    def test_large_changes_are_scaled(self):
        old = "".join(f"{n}\n" for n in range(100))
        new = old + "".join(f"extra {n}\n" for n in range(50))
        patchset = parse_patch(
            unified_diff(old, new, "a/big", "b/big") + unified_diff("q\n", "r\n", "a/small", "b/small")
        )
        self.assertEqual(
            format_diffstat(patchset, strip=1, width=10),
            " big   | 50 ++++++++++\n small |  2 +-\n"
            " 2 files changed, 51 insertions(+), 1 deletion(-)\n",
        )

    def test_empty_patchset(self):
        self.assertEqual(format_diffstat(PatchSet()), "0 files changed\n")

    def test_stat_matches_hunk_line_tags(self):
        patch = build_patchset().files[0]
        tags = [line.tag for hunk in patch.hunks for line in hunk.lines]
        self.assertEqual(tags, [" ", "-", "+", " ", "+"])
        self.assertEqual(diffstat(PatchSet([patch]))[0].changed, 3)
