import unittest

import pytest

from textpatch import parse_patch, render_patchset, reverse_patch, unified_diff
from textpatch.errors import ParseError, PatchError
from textpatch.model import FilePatch, Hunk, HunkLine, format_range, strip_components
from textpatch.parse import parse_hunk_header, parse_path
from textpatch.render import render_hunk

OLD = "alpha\nbeta\ngamma\ndelta\n"
NEW = "alpha\nBETA\ngamma\ndelta\nepsilon\n"

EXPECTED = (
    "--- a/greek.txt\n"
    "+++ b/greek.txt\n"
    "@@ -1,4 +1,5 @@\n"
    " alpha\n"
    "-beta\n"
    "+BETA\n"
    " gamma\n"
    " delta\n"
    "+epsilon\n"
)

MULTI = (
    "diff --git a/one.txt b/one.txt\n"
    "index 1111111..2222222 100644\n"
    "--- a/one.txt\t2024-01-01 00:00:00\n"
    "+++ b/one.txt\t2024-01-02 00:00:00\n"
    "@@ -1,2 +1,2 @@ def main():\n"
    "-x\n"
    "+y\n"
    " z\n"
    "diff --git a/two.txt b/two.txt\n"
    "--- /dev/null\n"
    "+++ b/two.txt\n"
    "@@ -0,0 +1 @@\n"
    "+hello\n"
)


def test_unified_diff_exact_output():
    assert unified_diff(OLD, NEW, "a/greek.txt", "b/greek.txt") == EXPECTED


def test_identical_texts_give_empty_diff():
    assert unified_diff(OLD, OLD) == ""


def test_missing_final_newline_is_marked():
    text = unified_diff("a\nb", "a\nc", context=1)
    assert text == (
        "--- a\n+++ b\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n"
        "+c\n\\ No newline at end of file\n"
    )


def test_adding_final_newline():
    text = unified_diff("x", "x\n", context=0)
    assert text == "--- a\n+++ b\n@@ -1 +1 @@\n-x\n\\ No newline at end of file\n+x\n"


def test_parse_then_render_round_trip():
    assert render_patchset(parse_patch(EXPECTED)) == EXPECTED
    assert render_patchset(parse_patch(MULTI)) == MULTI.replace(
        "\t2024-01-01 00:00:00", ""
    ).replace("\t2024-01-02 00:00:00", "")


def test_parse_multiple_files_and_headers():
    patchset = parse_patch(MULTI)
    assert patchset.paths() == ["b/one.txt", "b/two.txt"]
    assert patchset.paths(strip=1) == ["one.txt", "two.txt"]
    first, second = patchset.files
    assert first.header_lines == [
        "diff --git a/one.txt b/one.txt\n",
        "index 1111111..2222222 100644\n",
    ]
    assert first.hunks[0].section == "def main():"
    assert second.is_creation and not second.is_deletion
    assert second.hunks[0].lines == [HunkLine("+", "hello\n")]


def test_parse_no_newline_marker():
    patch = parse_patch("--- a\n+++ b\n@@ -1 +1 @@\n-x\n\\ No newline at end of file\n+x\n")
    assert patch.files[0].hunks[0].lines == [HunkLine("-", "x"), HunkLine("+", "x\n")]


def test_truncated_hunk_reports_line():
    with pytest.raises(ParseError) as info:
        parse_patch("--- a\n+++ b\n@@ -1,3 +1,3 @@\n x\n-y\n")
    assert info.value.lineno == 5
    assert str(info.value) == (
        "line 5: hunk @@ -1,3 +1,3 @@ is truncated: missing 1 old and 2 new lines"
    )


def test_unexpected_hunk_line():
    with pytest.raises(ParseError, match=r"line 4: unexpected line in hunk body: '\?x'"):
        parse_patch("--- a\n+++ b\n@@ -1 +1 @@\n?x\n+y\n")


def test_no_file_patches():
    with pytest.raises(ParseError, match="no file patches found"):
        parse_patch("just some text\n")


class ParserDetailsTest(unittest.TestCase):
    def test_header_without_counts(self):
        hunk = parse_hunk_header("@@ -7 +9,0 @@\n")
        self.assertEqual(
            (hunk.old_start, hunk.old_count, hunk.new_start, hunk.new_count), (7, 1, 9, 0)
        )
        self.assertEqual(hunk.old_index, 6)
        self.assertEqual(hunk.new_index, 9)

    def test_malformed_header(self):
        with self.assertRaises(ParseError) as ctx:
            parse_hunk_header("@@ -a +b @@", 12)
        self.assertEqual(ctx.exception.lineno, 12)
        self.assertEqual(ctx.exception.reason, "malformed hunk header '@@ -a +b @@'")

    def test_parse_path_strips_timestamp_and_quotes(self):
        self.assertEqual(parse_path('"dir/my file.txt"\t2020-02-02\n'), "dir/my file.txt")
        self.assertEqual(parse_path("b/x.py\n"), "b/x.py")

    def test_hunk_with_more_lines_than_declared(self):
        text = "--- a\n+++ b\n@@ -1,2 +1 @@\n x\n+y\n-z\n"
        with self.assertRaises(ParseError) as ctx:
            parse_patch(text)
        self.assertEqual(ctx.exception.lineno, 5)

    def test_overlapping_hunks_are_rejected(self):
        text = "--- a\n+++ b\n@@ -3,2 +3,2 @@\n-a\n+b\n c\n@@ -2,2 +2,2 @@\n-d\n+e\n f\n"
        with self.assertRaises(ParseError) as ctx:
            parse_patch(text)
        self.assertIn("overlaps the previous hunk", str(ctx.exception))

    def test_hunk_outside_file(self):
        with self.assertRaises(ParseError) as ctx:
            parse_patch("@@ -1 +1 @@\n-a\n+b\n")
        self.assertEqual(str(ctx.exception), "line 1: hunk header outside of a file patch")

    def test_patch_text_without_trailing_newline(self):
        patch = parse_patch("--- a\n+++ b\n@@ -1 +1 @@\n-old\n+new")
        self.assertEqual(patch.files[0].hunks[0].new_lines(), ["new\n"])

    def test_blank_line_counts_as_context(self):
        patch = parse_patch("--- a\n+++ b\n@@ -1,2 +1,2 @@\n\n-x\n+y\n")
        self.assertEqual(patch.files[0].hunks[0].old_lines(), ["\n", "x\n"])

    def test_file_header_without_hunks(self):
        with self.assertRaises(ParseError) as ctx:
            parse_patch("--- a\n+++ b\nnothing here\n")
        self.assertEqual(str(ctx.exception), "line 1: no hunks for 'b'")


class ModelTest(unittest.TestCase):
    def test_format_range(self):
        self.assertEqual(format_range(3, 1), "3")
        self.assertEqual(format_range(3, 4), "3,4")
        self.assertEqual(format_range(0, 0), "0,0")

    def test_reversed_hunk(self):
        hunk = Hunk(1, 2, 1, 3, [HunkLine(" ", "a\n"), HunkLine("-", "b\n"),
                                 HunkLine("+", "c\n"), HunkLine("+", "d\n")])
        back = hunk.reversed()
        self.assertEqual(back.header(), "@@ -1,3 +1,2 @@")
        self.assertEqual(back.old_lines(), ["a\n", "c\n", "d\n"])
        self.assertEqual(back.new_lines(), ["a\n", "b\n"])
        self.assertEqual((back.additions, back.deletions), (1, 2))

    def test_render_hunk_with_section(self):
        hunk = Hunk(4, 1, 4, 1, [HunkLine("-", "x\n"), HunkLine("+", "y\n")], "class A:")
        self.assertEqual(render_hunk(hunk), "@@ -4 +4 @@ class A:\n-x\n+y\n")

    def test_invalid_tag(self):
        with self.assertRaises(ValueError):
            HunkLine("*", "x\n")

    def test_strip_components(self):
        self.assertEqual(strip_components("a/src/lib.py", 1), "src/lib.py")
        self.assertEqual(strip_components("/dev/null", 3), "/dev/null")
        with self.assertRaises(PatchError):
            strip_components("a/b", 2)

    def test_reverse_patch_swaps_paths_and_lines(self):
        reversed_text = reverse_patch(EXPECTED)
        self.assertEqual(
            reversed_text,
            "--- b/greek.txt\n+++ a/greek.txt\n@@ -1,5 +1,4 @@\n alpha\n+beta\n-BETA\n"
            " gamma\n delta\n-epsilon\n",
        )

    def test_file_patch_reversed_creation_becomes_deletion(self):
        patch = FilePatch("/dev/null", "b/new.txt", [Hunk(0, 0, 1, 1, [HunkLine("+", "x\n")])])
        back = patch.reversed()
        self.assertTrue(back.is_deletion)
        self.assertEqual(back.display_path(1), "new.txt")
