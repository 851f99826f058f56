import unittest

from inikit import Field, Schema, SchemaError, SectionSchema, loads


def server_schema(**extra):
    return Schema({
        "server": SectionSchema({
            "host": Field(str, default="localhost"),
            "port": Field(int, minimum=1, maximum=65535),
            "debug": Field(bool, default=False),
            "mode": Field(str, default="prod", choices=["prod", "dev"]),
            "weights": Field(list, item=float, default=[1.0]),
        }),
        "cache": SectionSchema({"size": Field(int, default=128)}),
        **extra,
    })


class SchemaValidationTests(unittest.TestCase):
    def test_defaults_are_filled_in(self):
        result = server_schema().validate(loads("[server]\nport = 80\n"))
        self.assertEqual(result, {
            "server": {"host": "localhost", "port": 80, "debug": False,
                       "mode": "prod", "weights": [1.0]},
            "cache": {"size": 128},
        })

    def test_coercions_int_to_float_and_scalar_to_string(self):
        config = loads("[server]\nport = 1\nhost = 10\nweights = [1, 2.5]\n")
        result = server_schema().validate(config)
        self.assertEqual(result["server"]["host"], "10")
        self.assertEqual(result["server"]["weights"], [1.0, 2.5])
        self.assertIsInstance(result["server"]["weights"][0], float)

    def test_missing_required_key_points_at_section_header(self):
        with self.assertRaises(SchemaError) as ctx:
            server_schema().validate(loads("\n[server]\nhost = x\n", name="s.ini"))
        self.assertEqual(str(ctx.exception), "s.ini:2: [server] port: missing required key")

    def test_every_problem_is_reported(self):
        text = "[server]\nport = 70000\ndebug = maybe\nmode = test\nweights = [1, x]\nprot = 1\n"
        with self.assertRaises(SchemaError) as ctx:
            server_schema().validate(loads(text, name="app.ini"))
        self.assertEqual([str(issue) for issue in ctx.exception.issues], [
            "app.ini:2: [server] port: must be <= 65535; got 70000",
            "app.ini:3: [server] debug: expected boolean, got string 'maybe'",
            "app.ini:4: [server] mode: must be one of prod, dev; got test",
            "app.ini:5: [server] weights: item 2: expected float, got string 'x'",
            "app.ini:6: [server] prot: unknown key (did you mean 'port'?)",
        ])

    def test_unknown_section_and_missing_required_section(self):
        with self.assertRaises(SchemaError) as ctx:
            server_schema().validate(loads("[cahce]\nsize = 1\n", name="c.ini"))
        self.assertEqual(str(ctx.exception),
                         "c.ini: [server]: missing required section\n"
                         "c.ini:1: [cahce]: unknown section (did you mean 'cache'?)")

    def test_interpolation_errors_become_issues(self):
        with self.assertRaises(SchemaError) as ctx:
            server_schema().validate(loads("[server]\nport = ${nowhere}\n", name="i.ini"))
        issue = ctx.exception.issues[0]
        self.assertEqual((issue.key, issue.line, issue.message),
                         ("port", 2, "unknown reference ${server:nowhere}"))

    def test_optional_section_and_extra_keys(self):
        schema = Schema({
            "meta": SectionSchema({"owner": Field(str)}, optional=True),
            "plugins": SectionSchema({}, allow_extra=True),
        })
        result = schema.validate(loads("[plugins]\nauth = on\nlimit = ${auth}\n"))
        self.assertEqual(result, {"plugins": {"auth": True, "limit": True}})

    def test_custom_check_and_string_length(self):
        schema = Schema({"user": SectionSchema({
            "name": Field(str, minimum=3),
            "email": Field(str, check=lambda v: None if "@" in v else "not an e-mail address"),
        })})
        with self.assertRaises(SchemaError) as ctx:
            schema.validate(loads("[user]\nname = al\nemail = nobody\n"))
        self.assertEqual([issue.message for issue in ctx.exception.issues],
                         ["length must be >= 3; got 2", "not an e-mail address"])

    def test_load_from_sources_with_include(self):
        sources = {"base.ini": "[server]\nport = 443\n",
                   "app.ini": "%include base.ini\n[server]\ndebug = yes\n"}
        result = server_schema().load("app.ini", sources)
        self.assertEqual(result["server"]["port"], 443)
        self.assertTrue(result["server"]["debug"])


class FieldDefinitionTests(unittest.TestCase):
    def test_invalid_default_rejected(self):
        with self.assertRaises(ValueError) as ctx:
            Field(int, default="ten")
        self.assertEqual(str(ctx.exception),
                         "invalid default 'ten': expected integer, got string 'ten'")

    def test_item_type_only_for_lists(self):
        with self.assertRaises(ValueError):
            Field(str, item=int)

    def test_convert_returns_problems_without_raising(self):
        field = Field(int, minimum=0)
        self.assertEqual(field.convert(-1), (-1, ["must be >= 0; got -1"]))
        self.assertEqual(field.convert(True), (True, ["expected integer, got boolean true"]))

    def test_template_round_trips_through_validation(self):
        schema = Schema({"opts": SectionSchema({
            "label": Field(str, default="a # b"),
            "values": Field(list, default=[1, "two"]),
            "secret": Field(str, default=None),
        })})
        template = schema.template(comment="generated")
        self.assertEqual(template, '# generated\n\n[opts]\nlabel = "a # b"\nvalues = [1, two]\n')
        self.assertEqual(schema.validate(loads(template)),
                         {"opts": {"label": "a # b", "values": [1, "two"], "secret": None}})
