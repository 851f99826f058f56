import unittest

import pytest

from textpatch import (
    apply_patch,
    apply_patchset,
    apply_with_report,
    can_apply,
    parse_patch,
    revert_file_patch,
    reverse_patch,
    unified_diff,
)
from textpatch.apply import candidate_positions, locate
from textpatch.errors import HunkConflict, MissingFileError, PatchError
from textpatch.model import FilePatch, Hunk, HunkLine

BASE = "".join(f"line {n}\n" for n in range(1, 21))


def edited(text, replacements):
    lines = text.splitlines(keepends=True)
    for index, value in replacements.items():
        lines[index] = value
    return "".join(lines)


def test_apply_restores_new_text():
    new = edited(BASE, {2: "LINE 3\n", 15: "LINE 16\n"})
    patch = unified_diff(BASE, new, "a/f", "b/f")
    assert apply_patch(BASE, patch) == new


def test_reverse_patch_restores_old_text():
    new = edited(BASE, {0: "first\n", 19: "last\n"})
    patch = unified_diff(BASE, new)
    assert apply_patch(new, reverse_patch(patch)) == BASE


def test_hunk_found_at_offset():
    new = edited(BASE, {10: "eleven\n"})
    patch = parse_patch(unified_diff(BASE, new)).files[0]
    shifted = "header 1\nheader 2\n" + BASE
    result = apply_with_report(shifted, patch)
    assert result.offsets == [2]
    assert not result.exact
    assert result.text == "header 1\nheader 2\n" + new


def test_offset_rejected_when_exact_position_required():
    new = edited(BASE, {10: "eleven\n"})
    patch = unified_diff(BASE, new)
    with pytest.raises(HunkConflict) as info:
        apply_patch("extra\n" + BASE, patch, max_offset=0)
    assert info.value.hunk_number == 1
    assert str(info.value) == (
        "hunk #1 (@@ -8,7 +8,7 @@) does not apply: "
        "line 8: expected 'line 8', found 'line 7'"
    )


def test_conflicting_context_names_hunk_and_line():
    new = edited(BASE, {4: "five\n", 14: "fifteen\n"})
    patch = unified_diff(BASE, new)
    target = edited(BASE, {13: "changed locally\n"})
    with pytest.raises(HunkConflict) as info:
        apply_patch(target, patch)
    assert info.value.hunk_number == 2
    assert info.value.detail == "line 14: expected 'line 14', found 'changed locally'"
    assert not info.value.already_applied


def test_already_applied_patch_is_detected():
    new = edited(BASE, {9: "ten\n"})
    patch = unified_diff(BASE, new)
    with pytest.raises(HunkConflict) as info:
        apply_patch(new, patch)
    assert info.value.already_applied
    assert str(info.value).endswith("(the patch appears to be already applied)")


def test_patch_beyond_end_of_text():
    patch = "--- a\n+++ b\n@@ -30,2 +30,2 @@\n x\n-y\n+z\n"
    with pytest.raises(HunkConflict, match="it starts at line 30 but the text has only 20 lines"):
        apply_patch(BASE, patch, max_offset=0)


def test_candidate_positions_order():
    assert list(candidate_positions(5, 3, 8, None)) == [5, 4, 6, 3, 7, 8]
    assert list(candidate_positions(5, 0, 10, 1)) == [5, 4, 6]
    assert list(candidate_positions(12, 0, 10, 3)) == [10, 9]


def test_locate_respects_lower_bound():
    target = ["a\n", "b\n", "a\n", "b\n"]
    assert locate(target, ["a\n", "b\n"], 0) == 0
    assert locate(target, ["a\n", "b\n"], 0, lower=1) == 2
    assert locate(target, ["c\n"], 0) is None


class ApplyFilePatchTest(unittest.TestCase):
    def test_round_trip_without_trailing_newline(self):
        old, new = "a\nb\nc", "a\nB\nc\nd"
        patch = unified_diff(old, new)
        self.assertEqual(apply_patch(old, patch), new)
        self.assertEqual(apply_patch(new, reverse_patch(patch)), old)

    def test_multiple_hunks_with_net_growth(self):
        new = edited(BASE, {1: "two\nmore\nlines\n", 17: "eighteen\n"})
        patch = unified_diff(BASE, new, context=1)
        self.assertEqual(patch.count("@@ -"), 2)
        self.assertEqual(apply_patch(BASE, patch, max_offset=0), new)

    def test_can_apply_is_a_dry_run(self):
        new = edited(BASE, {0: "start\n"})
        patch = parse_patch(unified_diff(BASE, new)).files[0]
        self.assertTrue(can_apply(BASE, patch))
        self.assertFalse(can_apply(new, patch))

    def test_revert_file_patch(self):
        new = edited(BASE, {6: "seven\n"})
        patch = parse_patch(unified_diff(BASE, new)).files[0]
        self.assertEqual(revert_file_patch(new, patch), BASE)

    def test_creation_requires_empty_target(self):
        patch = parse_patch(unified_diff("", "x\n", "/dev/null", "b/x")).files[0]
        self.assertEqual(apply_with_report("", patch).text, "x\n")
        with self.assertRaises(PatchError):
            apply_with_report("existing\n", patch)

    def test_deletion_must_remove_everything(self):
        patch = parse_patch(unified_diff("x\ny\n", "", "a/x", "/dev/null")).files[0]
        self.assertEqual(apply_with_report("x\ny\n", patch).text, "")
        with self.assertRaises(HunkConflict):
            apply_with_report("x\nz\n", patch)

    def test_inconsistent_hunk_counts_are_rejected(self):
        hunk = Hunk(1, 2, 1, 1, [HunkLine("-", "a\n"), HunkLine("+", "b\n")])
        with self.assertRaises(PatchError) as ctx:
            apply_with_report("a\n", FilePatch("a", "b", [hunk]))
        self.assertEqual(
            str(ctx.exception), "@@ -1,2 +1 @@ declares 2/1 lines but contains 1/1"
        )

    def test_single_file_api_rejects_multi_file_patch(self):
        text = unified_diff("a\n", "b\n", "a/1", "b/1") + unified_diff("c\n", "d\n", "a/2", "b/2")
        with self.assertRaises(PatchError) as ctx:
            apply_patch("a\n", text)
        self.assertEqual(str(ctx.exception), "expected a patch for exactly one file, found 2")


class ApplyPatchSetTest(unittest.TestCase):
    def setUp(self):
        self.files = {"src/app.py": "import os\nprint(1)\n", "README": "hello\n", "old.txt": "bye\n"}
        self.patch_text = (
            unified_diff(self.files["src/app.py"], "import os\nprint(2)\n", "a/src/app.py", "b/src/app.py")
            + unified_diff("", "new file\n", "/dev/null", "b/NEW")
            + unified_diff("bye\n", "", "a/old.txt", "/dev/null")
        )

    def test_create_modify_delete(self):
        result = apply_patchset(self.files, parse_patch(self.patch_text), strip=1)
        self.assertEqual(
            result,
            {"src/app.py": "import os\nprint(2)\n", "README": "hello\n", "NEW": "new file\n"},
        )

    def test_input_mapping_is_untouched_on_failure(self):
        broken = dict(self.files, **{"old.txt": "changed\n"})
        snapshot = dict(broken)
        with self.assertRaises(HunkConflict):
            apply_patchset(broken, parse_patch(self.patch_text), strip=1)
        self.assertEqual(broken, snapshot)

    def test_missing_source_file(self):
        files = {"README": "hello\n"}
        with self.assertRaises(MissingFileError) as ctx:
            apply_patchset(files, parse_patch(self.patch_text), strip=1)
        self.assertEqual(ctx.exception.path, "src/app.py")

    def test_rename_moves_content(self):
        text = unified_diff("hello\n", "hello world\n", "a/README", "b/README.md")
        result = apply_patchset(self.files, parse_patch(text), strip=1)
        self.assertEqual(sorted(result), ["README.md", "old.txt", "src/app.py"])
        self.assertEqual(result["README.md"], "hello world\n")

    def test_reversed_patchset_undoes_everything(self):
        patchset = parse_patch(self.patch_text)
        forward = apply_patchset(self.files, patchset, strip=1)
        self.assertEqual(apply_patchset(forward, patchset.reversed(), strip=1), self.files)
