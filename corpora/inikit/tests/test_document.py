import unittest

from inikit import (Entry, Include, ParseError, SectionHeader, ValueSyntaxError,
                    dump_document, parse_document)

SAMPLE = """\
# application settings
name = demo   ; inline comment

[server]
host = example.org
port=8080  # the port
paths =
    /var/www,
    /srv
[database]
%include "db.ini"
user = "admin"
"""


class ParserTests(unittest.TestCase):
    def setUp(self):
        self.doc = parse_document(SAMPLE, "app.ini")

    def test_sections_in_order(self):
        self.assertEqual(self.doc.sections(), ["", "server", "database"])

    def test_entry_values_and_lines(self):
        port = self.doc.find("server", "port")
        self.assertEqual(port.value, 8080)
        self.assertEqual(port.lineno, 6)
        self.assertEqual(port.comment, "  # the port")
        self.assertEqual(self.doc.get("", "name"), "demo")

    def test_continuation_lines(self):
        paths = self.doc.find("server", "paths")
        self.assertEqual(paths.raw, "\n/var/www,\n/srv")
        self.assertEqual(paths.value, "/var/www,\n/srv")
        self.assertEqual((paths.lineno, paths.end_lineno), (7, 9))

    def test_include_directive_recorded_in_section(self):
        includes = self.doc.includes()
        self.assertEqual(len(includes), 1)
        section, directive = includes[0]
        self.assertEqual((section, directive.target, directive.lineno), ("database", "db.ini", 11))
        self.assertIsInstance(directive, Include)

    def test_unmodified_round_trip_is_exact(self):
        self.assertEqual(dump_document(self.doc), SAMPLE)

    def test_round_trip_without_trailing_newline(self):
        text = "[a]\nx = 1"
        self.assertEqual(dump_document(parse_document(text)), text)

    def test_crlf_input_is_normalised(self):
        doc = parse_document("[a]\r\nx = 1\r\n")
        self.assertEqual(doc.get("a", "x"), 1)
        self.assertEqual(dump_document(doc), "[a]\nx = 1\n")


class ParserErrorTests(unittest.TestCase):
    def assertParseError(self, text, message, line, kind=ParseError):
        with self.assertRaises(kind) as ctx:
            parse_document(text, "bad.ini")
        self.assertEqual(ctx.exception.message, message)
        self.assertEqual(ctx.exception.line, line)
        self.assertEqual(str(ctx.exception), f"bad.ini:{line}: {message}")

    def test_duplicate_key_reports_both_lines(self):
        self.assertParseError("[s]\na = 1\n\n[t]\n[s]\na = 2\n",
                              "duplicate key 'a' in section [s] (first defined on line 2)", 6)

    def test_invalid_section_header(self):
        self.assertParseError("a = 1\n[bad name]\n", "invalid section header '[bad name]'", 2)

    def test_invalid_key(self):
        self.assertParseError("[s]\nmy key = 3\n", "invalid key 'my key'", 2)

    def test_line_without_equals(self):
        self.assertParseError("[s]\njust words\n",
                              "expected 'key = value', a [section] header or a comment", 2)

    def test_unknown_directive(self):
        self.assertParseError("%import x.ini\n", "unknown directive '%import'", 1)

    def test_orphan_continuation(self):
        self.assertParseError("\n   indented = 1\n",
                              "unexpected indented line (continuation without an entry)", 2)

    def test_value_syntax_error_carries_line(self):
        self.assertParseError("[s]\nok = 1\nbad = [1, 2\n", "unterminated list", 3,
                              ValueSyntaxError)


class EditingTests(unittest.TestCase):
    def test_set_existing_preserves_prefix_and_comment(self):
        doc = parse_document("[server]\nport=8080  # the port\n")
        doc.set("server", "port", 9090)
        self.assertEqual(dump_document(doc), "[server]\nport=9090  # the port\n")

    def test_set_new_key_goes_after_last_entry_of_section(self):
        doc = parse_document("[a]\nx = 1\n\n# about b\n[b]\ny = 2\n")
        doc.set("a", "z", ["p", "q r"])
        self.assertEqual(dump_document(doc),
                         "[a]\nx = 1\nz = [p, q r]\n\n# about b\n[b]\ny = 2\n")

    def test_set_in_missing_section_appends_section(self):
        doc = parse_document("[a]\nx = 1\n")
        doc.set("b", "flag", True)
        self.assertEqual(dump_document(doc), "[a]\nx = 1\n\n[b]\nflag = true\n")
        self.assertIsInstance(doc.lines[-2], SectionHeader)

    def test_set_global_key_in_document_without_globals(self):
        doc = parse_document("[a]\nx = 1\n")
        doc.set("", "version", "1.0")
        self.assertEqual(dump_document(doc), 'version = "1.0"\n[a]\nx = 1\n')

    def test_remove_key_and_section(self):
        doc = parse_document("[a]\nx = 1\ny = 2\n[b]\nz = 3\n[a]\nw = 4\n")
        self.assertTrue(doc.remove("a", "y"))
        self.assertFalse(doc.remove("a", "missing"))
        self.assertTrue(doc.remove_section("a"))
        self.assertEqual(dump_document(doc), "[b]\nz = 3\n")

    def test_set_rejects_invalid_key(self):
        doc = parse_document("")
        with self.assertRaises(ValueError):
            doc.set("a", "bad key", 1)
        self.assertEqual(dump_document(doc), "")

    def test_replaced_multiline_entry_becomes_single_line(self):
        doc = parse_document("[a]\nitems = [1,\n  2]  # two\n")
        doc.set("a", "items", [3])
        entry = doc.find("a", "items")
        self.assertIsInstance(entry, Entry)
        self.assertEqual(dump_document(doc), "[a]\nitems = [3]\n")
