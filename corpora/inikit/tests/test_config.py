import pytest

from inikit import (IncludeError, InterpolationError, Loader, MissingKeyError,
                    TypeMismatchError, load, loads, resolve_include)


def test_same_section_and_cross_section_references():
    config = loads(
        "[paths]\nroot = /opt/app\nlogs = ${root}/logs\n"
        "[logging]\nfile = ${paths:logs}/app.log\n"
    )
    assert config.get("paths", "logs") == "/opt/app/logs"
    assert config.get("logging", "file") == "/opt/app/logs/app.log"


def test_whole_reference_keeps_type():
    config = loads("[a]\nports = [80, 443]\nport = 8080\n[b]\nports = ${a:ports}\nquoted = \"${a:port}\"\nport = ${a:port}\n")
    assert config.get("b", "ports") == [80, 443]
    assert config.get("b", "port") == 8080
    assert config.get("b", "quoted") == "8080"


def test_bare_value_is_typed_after_interpolation():
    config = loads("on = yes\n[a]\nbase = 10\nscaled = ${base}00\nflag = ${:on}\n")
    assert config.get("a", "scaled") == 1000
    assert config.get("a", "flag") is True


def test_global_reference_and_dollar_escape():
    config = loads('currency = EUR\n[shop]\nlabel = "price in ${:currency}: $$5"\n')
    assert config.get("shop", "label") == "price in EUR: $5"


def test_list_items_are_interpolated():
    config = loads("[h]\nprimary = alpha\nhosts = [${primary}, beta, \"${primary}-2\"]\n")
    assert config.get("h", "hosts") == ["alpha", "beta", "alpha-2"]


def test_reference_cycle_is_reported_with_path():
    config = loads("[a]\nx = ${y}\ny = ${b:z}\n[b]\nz = pre-${a:x}\n", name="cyc.ini")
    with pytest.raises(InterpolationError) as info:
        config.get("a", "x")
    assert info.value.message == "interpolation cycle: a:x -> a:y -> b:z -> a:x"
    assert info.value.location() == "cyc.ini:2"


def test_self_reference_is_a_cycle():
    config = loads("loop = ${loop}\n")
    with pytest.raises(InterpolationError, match="interpolation cycle: loop -> loop"):
        config.get("", "loop")


def test_unknown_reference_points_at_referring_line():
    config = loads("[a]\nok = 1\nbad = ${b:missing}\n", name="m.ini")
    with pytest.raises(InterpolationError) as info:
        config.get("a", "bad")
    assert str(info.value) == "m.ini:3: unknown reference ${b:missing}"


def test_unterminated_reference():
    config = loads("[a]\nbad = ${oops\n")
    with pytest.raises(InterpolationError, match="unterminated reference"):
        config.get("a", "bad")


def test_includes_merge_and_override():
    sources = {
        "base.ini": "[server]\nhost = base.local\nport = 80\n[log]\nlevel = info\n",
        "app.ini": '%include "base.ini"\n[server]\nport = 8080\n',
    }
    config = load("app.ini", sources)
    assert config.as_dict() == {
        "server": {"host": "base.local", "port": 8080},
        "log": {"level": "info"},
    }
    assert config.origin("server", "port") == ("app.ini", 3)
    assert config.origin("server", "host") == ("base.ini", 2)
    assert config.section_origin("server") == ("base.ini", 1)


def test_include_inside_section_places_globals_there():
    sources = {
        "conf/main.ini": "[db]\n%include parts/db.ini\nname = prod\n",
        "conf/parts/db.ini": "user = admin\npassword = \"s3cret\"\n",
    }
    config = load("conf/main.ini", sources)
    assert config.section("db") == {"user": "admin", "password": "s3cret", "name": "prod"}


def test_resolve_include_paths():
    assert resolve_include("conf/main.ini", "parts/db.ini") == "conf/parts/db.ini"
    assert resolve_include("conf/main.ini", "../shared.ini") == "shared.ini"
    assert resolve_include("conf/main.ini", "/root.ini") == "root.ini"
    assert resolve_include("main.ini", "./x.ini") == "x.ini"


def test_include_cycle_detected():
    sources = {"a.ini": "%include b.ini\n", "b.ini": "x = 1\n%include a.ini\n"}
    with pytest.raises(IncludeError) as info:
        load("a.ini", sources)
    assert str(info.value) == "b.ini:2: include cycle: a.ini -> b.ini -> a.ini"


def test_missing_include_reports_location():
    with pytest.raises(IncludeError) as info:
        loads("[s]\n%include \"nope.ini\"\n", name="main.ini")
    assert str(info.value) == "main.ini:2: cannot include 'nope.ini': no such source"


def test_include_depth_limit():
    sources = {f"f{i}.ini": f"%include f{i + 1}.ini\n" for i in range(5)}
    sources["f5.ini"] = "x = 1\n"
    assert Loader(sources, max_depth=6).load("f0.ini").get("", "x") == 1
    with pytest.raises(IncludeError, match="nested deeper than 3 levels"):
        Loader(sources, max_depth=3).load("f0.ini")


def test_reference_into_included_values():
    sources = {"defaults.ini": "[net]\nhost = db.internal\n"}
    config = loads('%include defaults.ini\n[app]\ndsn = "pg://${net:host}/main"\n', sources=sources)
    assert config.get("app", "dsn") == "pg://db.internal/main"


class TestTypedAccess:
    def setup_method(self):
        self.config = loads("[s]\ncount = 3\nratio = 2\nname = 12\nflag = off\nitems = [1]\n",
                            name="typed.ini")

    def test_typed_getters(self):
        assert self.config.get_int("s", "count") == 3
        assert self.config.get_float("s", "ratio") == 2.0
        assert self.config.get_str("s", "name") == "12"
        assert self.config.get_bool("s", "flag") is False
        assert self.config.get_list("s", "items") == [1]
        assert self.config.get_int("s", "absent", 7) == 7

    def test_type_mismatch_message(self):
        with pytest.raises(TypeMismatchError) as info:
            self.config.get_int("s", "flag")
        assert str(info.value) == "typed.ini:5: s:flag: expected integer, got boolean false"

    def test_missing_key(self):
        with pytest.raises(MissingKeyError, match="no key 'nothing' in section \\[s\\]"):
            self.config.get("s", "nothing")
        assert ("s", "count") in self.config
        assert "nope" not in self.config

    def test_returned_lists_are_copies(self):
        first = self.config.get("s", "items")
        first.append(99)
        assert self.config.get("s", "items") == [1]


def test_flattened_text_round_trips():
    sources = {"inc.ini": "[x]\nwords = [\"a b\", c]\n"}
    config = loads("top = \"$$HOME\"\n%include inc.ini\n[y]\nref = ${x:words}\nn = 1.5\n",
                   sources=sources)
    text = config.to_text()
    assert text == 'top = "$$HOME"\n\n[x]\nwords = [a b, c]\n\n[y]\nref = [a b, c]\nn = 1.5\n'
    assert loads(text).as_dict() == config.as_dict()
