import random
import unittest

import pytest

from textpatch.diff import Opcode, apply_opcodes, diff_lines, match_sequences, opcodes_from_matches, similarity
from textpatch.hunks import build_hunks, group_changes, make_file_patch
from textpatch.lcs import lcs, lcs_length, lcs_matches
from textpatch.lines import line_key, split_lines, strip_eol
from textpatch.myers import edit_distance, myers_matches


def lines_of(text):
    return split_lines(text)


def test_split_lines_keeps_terminators():
    assert split_lines("a\nb\r\nc") == ["a\n", "b\r\n", "c"]


def test_split_lines_only_breaks_on_newline():
    assert split_lines("x\fy\rz\n\n") == ["x\fy\rz\n", "\n"]
    assert split_lines("") == []


def test_strip_eol_and_line_key():
    assert strip_eol("abc\r\n") == "abc"
    assert line_key("  Foo   Bar \n", ignore_whitespace=True, ignore_case=True) == "foo bar"


def test_myers_classic_example():
    a, b = "ABCABBA", "CBABAC"
    matches = myers_matches(a, b)
    assert len(matches) == 4
    assert "".join(a[i] for i, _ in matches) == "".join(b[j] for _, j in matches)
    assert edit_distance(a, b) == 5


def test_lcs_of_strings():
    assert lcs_length("ABCBDAB", "BDCABA") == 4
    assert "".join(lcs("ABCBDAB", "BDCABA")) == "BDAB"


def test_replace_opcodes():
    ops = diff_lines(["a\n", "b\n", "c\n"], ["a\n", "x\n", "c\n"])
    assert ops == [
        Opcode("equal", 0, 1, 0, 1),
        Opcode("replace", 1, 2, 1, 2),
        Opcode("equal", 2, 3, 2, 3),
    ]


def test_delete_everything_and_insert_everything():
    assert diff_lines(["a\n", "b\n"], []) == [Opcode("delete", 0, 2, 0, 0)]
    assert diff_lines([], ["a\n"]) == [Opcode("insert", 0, 0, 0, 1)]
    assert diff_lines([], []) == []


@pytest.mark.parametrize("algorithm", ["myers", "lcs"])
def test_algorithms_find_same_number_of_matches(algorithm):
    a = lines_of("one\ntwo\nthree\nfour\nfive\nsix\n")
    b = lines_of("zero\none\nthree\nfour\n4.5\nsix\nseven\n")
    ops = diff_lines(a, b, algorithm=algorithm)
    kept = sum(op.old_size for op in ops if op.tag == "equal")
    assert kept == 4
    assert apply_opcodes(a, b, ops) == b


def test_unknown_algorithm_is_rejected():
    with pytest.raises(ValueError, match="unknown diff algorithm 'patience'"):
        diff_lines(["a"], ["b"], algorithm="patience")


def test_similarity_ratio():
    assert similarity("abcd", "abxd") == 0.75
    assert similarity("", "") == 1.0
    assert similarity("abc", "xyz") == 0.0


def test_ignore_whitespace_treats_lines_as_equal():
    ops = diff_lines(["a  b\n", "c\n"], ["a b \n", "C\n"], ignore_whitespace=True)
    assert ops == [Opcode("equal", 0, 1, 0, 1), Opcode("replace", 1, 2, 1, 2)]
    ops = diff_lines(["c\n"], ["C\n"], ignore_case=True)
    assert ops == [Opcode("equal", 0, 1, 0, 1)]


def test_opcodes_from_matches_rejects_decreasing_pairs():
    with pytest.raises(ValueError):
        opcodes_from_matches(3, 3, [(1, 1), (0, 2)])


class MyersTest(unittest.TestCase):
    def test_identical_sequences_match_fully(self):
        self.assertEqual(myers_matches("abc", "abc"), [(0, 0), (1, 1), (2, 2)])
        self.assertEqual(edit_distance("abc", "abc"), 0)

    def test_empty_sides(self):
        self.assertEqual(myers_matches("", "abc"), [])
        self.assertEqual(edit_distance("", "abc"), 3)
        self.assertEqual(edit_distance("ab", ""), 2)

    def test_agrees_with_dynamic_programming(self):
        rng = random.Random(1234)
        for _ in range(200):
            a = [rng.choice("xyz") for _ in range(rng.randint(0, 10))]
            b = [rng.choice("xyz") for _ in range(rng.randint(0, 10))]
            matches = myers_matches(a, b)
            self.assertEqual(len(matches), lcs_length(a, b))
            self.assertTrue(all(a[i] == b[j] for i, j in matches))
            self.assertEqual(edit_distance(a, b), len(a) + len(b) - 2 * len(matches))

    def test_prefix_and_suffix_are_matched_directly(self):
        self.assertEqual(
            match_sequences("xxabcyy", "xxadcyy"),
            [(0, 0), (1, 1), (2, 2), (4, 4), (5, 5), (6, 6)],
        )

    def test_lcs_matches_prefers_deleting_first(self):
        self.assertEqual(lcs_matches("ab", "ba"), [(1, 0)])
        ops = diff_lines(["a", "b"], ["b", "a"], algorithm="lcs")
        self.assertEqual([op.tag for op in ops], ["delete", "equal", "insert"])


class HunkBuildingTest(unittest.TestCase):
    def setUp(self):
        self.old = [f"{n}\n" for n in range(1, 13)]
        self.new = list(self.old)
        self.new[1] = "two\n"
        self.new[7] = "eight\n"

    def test_distant_changes_get_separate_hunks(self):
        ops = diff_lines(self.old, self.new)
        self.assertEqual(len(group_changes(ops, 2)), 2)
        self.assertEqual(len(group_changes(ops, 3)), 1)

    def test_hunk_ranges(self):
        hunks = build_hunks(self.old, self.new, diff_lines(self.old, self.new), context=2)
        headers = [hunk.header() for hunk in hunks]
        self.assertEqual(headers, ["@@ -1,4 +1,4 @@", "@@ -6,5 +6,5 @@"])
        self.assertEqual(hunks[0].old_lines(), ["1\n", "2\n", "3\n", "4\n"])
        self.assertEqual(hunks[0].new_lines(), ["1\n", "two\n", "3\n", "4\n"])

    def test_zero_context_hunk(self):
        hunks = build_hunks(self.old, self.new, diff_lines(self.old, self.new), context=0)
        self.assertEqual([h.header() for h in hunks], ["@@ -2 +2 @@", "@@ -8 +8 @@"])

    def test_identical_inputs_produce_no_hunks(self):
        patch = make_file_patch(self.old, list(self.old), "a/f", "b/f")
        self.assertEqual(patch.hunks, [])
        self.assertEqual((patch.additions, patch.deletions), (0, 0))

    def test_negative_context_is_rejected(self):
        with self.assertRaises(ValueError):
            build_hunks(self.old, self.new, diff_lines(self.old, self.new), context=-1)

    def test_pure_insertion_header_uses_line_before(self):
        patch = make_file_patch(["a\n", "b\n"], ["a\n", "new\n", "b\n"], context=0)
        self.assertEqual(patch.hunks[0].header(), "@@ -1,0 +2 @@")
        self.assertEqual(patch.hunks[0].old_index, 1)
