//! The shell's commands over a small tree, without a guest: `python` is answered by a
//! recorder that says what it was asked.

use super::*;

struct Recorder(Vec<(String, Vec<String>, String)>);

impl Sandbox for Recorder {
    type Error = std::convert::Infallible;
    fn python(
        &mut self,
        _: &Snapshot,
        cwd: &str,
        args: &[String],
        stdin: &[u8],
    ) -> Result<Captured, Self::Error> {
        self.0.push((
            cwd.to_owned(),
            args.to_vec(),
            String::from_utf8_lossy(stdin).into(),
        ));
        Ok(Captured {
            output: "ran\n".into(),
            stdout: "ran\n".into(),
            status: 3,
            ..Captured::default()
        })
    }
}

struct Session {
    shell: Shell,
    start: Snapshot,
    state: Snapshot,
    sandbox: Recorder,
}

impl Session {
    fn new() -> Session {
        let start = Snapshot::from_files(
            [
                ("calc/__init__.py", "from .ops import add\n"),
                (
                    "calc/ops.py",
                    "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n",
                ),
                (
                    "tests/test_ops.py",
                    "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n",
                ),
                (".hidden", "x\n"),
                ("README.md", "Calc\nadds numbers\nAdd more\n"),
            ]
            .map(|(path, text)| (path, text.as_bytes())),
        )
        .unwrap();
        Session {
            shell: Shell::new(),
            state: start.clone(),
            start,
            sandbox: Recorder(Vec::new()),
        }
    }

    fn run(&mut self, line: &str) -> (String, i32) {
        let trees = Trees {
            state: &mut self.state,
            start: &self.start,
        };
        let Ok(captured) = self.shell.run(line, trees, &mut self.sandbox);
        (captured.output, captured.status)
    }

    fn out(&mut self, line: &str) -> String {
        let (output, status) = self.run(line);
        assert_eq!(status, 0, "{line}: {output}");
        output
    }

    fn file(&self, path: &str) -> String {
        String::from_utf8(self.state.file(path).unwrap().to_vec()).unwrap()
    }
}

#[test]
fn reading_commands_print_what_coreutils_print() {
    let mut s = Session::new();
    assert_eq!(s.out("ls"), "README.md\ncalc\ntests\n");
    assert_eq!(s.out("ls -a calc"), ".\n..\n__init__.py\nops.py\n");
    assert!(s.out("ls -la").contains(".hidden"));
    assert_eq!(
        s.out("cat -n calc/ops.py | head -2"),
        "     1\tdef add(a, b):\n     2\t    return a - b\n"
    );
    assert_eq!(s.out("tail -n 1 README.md"), "Add more\n");
    assert_eq!(s.out("tail -n +2 README.md | head -1"), "adds numbers\n");
    assert_eq!(
        s.out("head -1 README.md calc/__init__.py"),
        "==> README.md <==\nCalc\n\n==> calc/__init__.py <==\nfrom .ops import add\n"
    );
    assert_eq!(s.out("wc -l README.md"), "3 README.md\n");
    assert_eq!(s.out("cat README.md | wc -l"), "3\n");
    assert_eq!(s.out("echo -n a b; echo c"), "a bc\n");
    assert_eq!(s.out("printf '%s=%d\\n' a 1 b 2"), "a=1\nb=2\n");
    assert_eq!(
        s.out("sort -r README.md | uniq -c"),
        "      1 adds numbers\n      1 Calc\n      1 Add more\n"
    );
    let (missing, status) = s.run("cat nope.py");
    assert_eq!(
        (missing.as_str(), status),
        ("cat: nope.py: No such file or directory\n", 1)
    );
}

#[test]
fn grep_and_find_cover_the_flags_agents_use() {
    let mut s = Session::new();
    assert_eq!(
        s.out("grep -rn 'return a' ."),
        "./calc/ops.py:2:    return a - b\n./calc/ops.py:6:    return a * b\n"
    );
    assert_eq!(
        s.out("grep -rl add --include='*.py'"),
        "./calc/__init__.py\n./calc/ops.py\n./tests/test_ops.py\n"
    );
    assert_eq!(
        s.out("grep -in 'add' README.md"),
        "2:adds numbers\n3:Add more\n"
    );
    assert_eq!(s.out("grep -c def calc/ops.py"), "2\n");
    assert_eq!(
        s.out("grep -E 'add|mul' -rh calc"),
        "from .ops import add\ndef add(a, b):\ndef mul(a, b):\n"
    );
    assert_eq!(
        s.out("grep 'add\\|mul' calc/ops.py"),
        "def add(a, b):\ndef mul(a, b):\n"
    );
    assert_eq!(
        s.out("grep -n -A1 'def mul' calc/ops.py"),
        "5:def mul(a, b):\n6-    return a * b\n"
    );
    assert_eq!(
        s.out("grep -w add -r tests -o"),
        "tests/test_ops.py:add\ntests/test_ops.py:add\n"
    );
    assert_eq!(s.run("grep zzz README.md"), (String::new(), 1));
    assert_eq!(s.out("grep -rL 'def ' calc"), "calc/__init__.py\n");
    assert_eq!(
        s.out("grep -m1 -n return calc/ops.py"),
        "2:    return a - b\n"
    );
    assert_eq!(s.out("grep -rnI -x 'Calc' ."), "./README.md:1:Calc\n");
    assert_eq!(s.run("grep -m x a README.md").1, 2);
    assert_eq!(
        s.run("grep -q Calc README.md && echo yes"),
        ("yes\n".into(), 0)
    );
    assert_eq!(
        s.out("find . -name '*.py' -type f"),
        "./calc/__init__.py\n./calc/ops.py\n./tests/test_ops.py\n"
    );
    assert_eq!(s.out("find calc tests -maxdepth 0"), "calc\ntests\n");
    assert_eq!(s.out("find / -type d -name calc"), "/repo/calc\n");
    assert_eq!(
        s.out("find . -type f -not -name '*.py' -maxdepth 1"),
        "./.hidden\n./README.md\n"
    );
    let (bad, status) = s.run("find . -exec rm {} ;");
    assert!(
        bad.contains("unknown predicate `-exec'") && status == 1,
        "{bad}"
    );
}

#[test]
fn writes_change_the_episode_state() {
    let mut s = Session::new();
    s.out("sed -i 's/a - b/a + b/' calc/ops.py");
    assert!(s.file("calc/ops.py").contains("return a + b"));
    assert_eq!(
        s.out("sed -n '1,2p' calc/ops.py"),
        "def add(a, b):\n    return a + b\n"
    );
    assert_eq!(s.out("sed -n '$p' calc/ops.py"), "    return a * b\n");
    assert_eq!(
        s.out("sed -E 's/(a) \\* (b)/\\2 * \\1/' calc/ops.py | tail -1"),
        "    return b * a\n"
    );
    assert_eq!(
        s.out("sed '/def mul/,$d' calc/ops.py"),
        "def add(a, b):\n    return a + b\n\n\n"
    );
    s.out("echo 'x = 1' > new.py && echo 'y = 2' >> new.py");
    assert_eq!(s.file("new.py"), "x = 1\ny = 2\n");
    s.out("cat > calc/extra.py <<'EOF'\ndef neg(a):\n    return -a\nEOF");
    assert_eq!(s.file("calc/extra.py"), "def neg(a):\n    return -a\n");
    s.out("mkdir -p scratch/deep && cd scratch/deep && touch a.txt && cp a.txt b.txt && cd /repo");
    assert_eq!(s.out("ls scratch/deep"), "a.txt\nb.txt\n");
    s.out("mv scratch/deep/b.txt c.txt && rm -r scratch");
    assert!(s.state.get("scratch").is_none() && s.state.file("c.txt").is_some());
    assert_eq!(
        s.out("git status -s"),
        "?? c.txt\n M calc/ops.py\n?? new.py\n".replace(
            " M calc/ops.py\n?? new.py\n",
            "?? calc/extra.py\n M calc/ops.py\n?? new.py\n"
        )
    );
    assert!(s
        .out("git diff calc/ops.py")
        .contains("-    return a - b\n+    return a + b\n"));
    s.out("git checkout -- calc/ops.py");
    assert_eq!(
        s.file("calc/ops.py"),
        String::from_utf8(s.start.file("calc/ops.py").unwrap().to_vec()).unwrap()
    );
    let (error, status) = s.run("echo x > missing/dir/f.py");
    assert_eq!(status, 1);
    assert!(error.contains("No such file or directory"), "{error}");
}

#[test]
fn the_working_directory_persists_and_stays_in_the_repository() {
    let mut s = Session::new();
    assert_eq!(s.out("pwd"), "/repo\n");
    s.out("cd calc");
    assert_eq!(s.out("pwd; ls"), "/repo/calc\n__init__.py\nops.py\n");
    assert_eq!(s.out("cat ../README.md | head -1"), "Calc\n");
    assert_eq!(s.shell.cwd(), "/repo/calc");
    for escape in ["cat /etc/passwd", "cd ../..", "ls /", "echo x > /tmp/f"] {
        let (output, status) = s.run(escape);
        assert_ne!(status, 0, "{escape}");
        assert!(output.contains("only the repository"), "{escape}: {output}");
    }
    assert_eq!(s.out("ls *.py"), "__init__.py\nops.py\n");
    assert_eq!(s.out("ls /repo/tests/*.py"), "/repo/tests/test_ops.py\n");
    assert_eq!(s.out("cd; pwd"), "/repo\n");
}

#[test]
fn python_runs_in_the_sandbox_from_the_working_directory() {
    let mut s = Session::new();
    let (output, status) = s.run("cd tests && echo data | python3 -c 'import sys' 2>&1 | tail -1");
    assert_eq!((output.as_str(), status), ("ran\n", 0));
    s.run("pytest -q -k add; python -m pytest tests/test_ops.py::test_add");
    let calls: Vec<_> = s
        .sandbox
        .0
        .iter()
        .map(|(cwd, args, stdin)| (cwd.as_str(), args.join(" "), stdin.as_str()))
        .collect();
    assert_eq!(
        calls,
        [
            ("tests", "-c import sys".to_owned(), "data\n"),
            ("tests", "-m pytest -q -k add".to_owned(), ""),
            (
                "tests",
                "-m pytest tests/test_ops.py::test_add".to_owned(),
                ""
            ),
        ]
    );
    let (output, status) = s.run("python x.py || echo failed with $");
    assert_eq!((output.as_str(), status), ("ran\nfailed with $\n", 0));
}

#[test]
fn unknown_commands_and_bad_syntax_answer_like_bash() {
    let mut s = Session::new();
    assert_eq!(
        s.run("vim a.py"),
        ("bash: vim: command not found\n".into(), 127)
    );
    assert_eq!(s.run("ls -Z").1, 2);
    let (output, status) = s.run("echo $HOME");
    assert_eq!(status, 2);
    assert!(output.starts_with("bash: variables"), "{output}");
    assert_eq!(s.run("false || echo recovered"), ("recovered\n".into(), 0));
    assert_eq!(s.run("false && echo never"), (String::new(), 1));
    assert_eq!(s.run("git log").1, 1);
    assert_eq!(s.run("cat nope 2>/dev/null"), (String::new(), 1));
    assert_eq!(s.run("cat nope 2>&1 | wc -l"), ("1\n".into(), 0));
}
