//! Running a repository's test suite in the guest and turning its log into per-test results.
//!
//! The runner (pytest or unittest) is detected from the repository and can be overridden.
//! Results are parsed from the runner's own output (pytest `-rA -v`, unittest `-v`), so the
//! same parsers work on logs from anywhere. Test ids follow pytest node ids
//! (`tests/test_x.py::TestC::test_m`); unittest ids are mapped to the same form. A failing
//! suite is a result, not an error.

use crate::guest::{GuestError, Python, PythonRun};
use crate::sandbox::{Outcome, RunResult};
use crate::snapshot::{Entry, Snapshot};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

pub mod layout;
mod rerun;

pub use rerun::{run_suite, SuiteRun};

/// Which test runner drives a suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Runner {
    /// pytest, which also runs `unittest.TestCase` classes.
    Pytest,
    /// The standard library's `unittest` discovery.
    Unittest,
}

impl fmt::Display for Runner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Runner::Pytest => "pytest",
            Runner::Unittest => "unittest",
        })
    }
}

/// The result of one test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestStatus {
    /// Skipped or expected to fail (xfail).
    Skipped,
    /// Passed (including an unexpected pass of an xfail test).
    Passed,
    /// An assertion failed.
    Failed,
    /// The test could not run properly: an exception outside assertions, a setup or teardown
    /// failure, or a module that failed to import.
    Error,
}

impl TestStatus {
    /// When a test is reported twice (a pass, then a teardown error), the worse one wins.
    fn merge(self, other: TestStatus) -> TestStatus {
        self.max(other)
    }

    /// The name used in JSON and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            TestStatus::Skipped => "skipped",
            TestStatus::Passed => "passed",
            TestStatus::Failed => "failed",
            TestStatus::Error => "error",
        }
    }
}

/// What to run in the guest for a suite.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestCommand {
    /// The runner whose output is parsed.
    pub runner: Runner,
    /// Arguments after `python`.
    pub args: Vec<String>,
    /// For unittest: the path prefix of module names (the discovery start directory when it
    /// is not a package), so `test_x.C.m` maps to `tests/test_x.py::C::m`.
    pub module_prefix: String,
}

impl TestCommand {
    /// The command for `repo`: the given runner or the detected one, plus `extra` arguments
    /// for the runner (e.g. a test path, `-k expr`).
    pub fn for_repo(repo: &Snapshot, runner: Option<Runner>, extra: &[String]) -> TestCommand {
        let runner = runner.unwrap_or_else(|| detect_runner(repo));
        match runner {
            Runner::Pytest => {
                let mut args: Vec<String> = [
                    "-m",
                    "pytest",
                    "-rA",
                    "-v",
                    "--color=no",
                    "--tb=short",
                    // WASI has no dup(), so fd-level capture and faulthandler cannot work.
                    "--capture=sys",
                    "-p",
                    "no:faulthandler",
                    // One unimportable test module must not hide every other test's result.
                    "--continue-on-collection-errors",
                    // The cache would show up as a change to the repository.
                    "-p",
                    "no:cacheprovider",
                    // WASI has no getuid(), which pytest's default temp root needs.
                    "--basetemp=/tmp/pytest",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect();
                args.extend(extra.iter().cloned());
                TestCommand {
                    runner,
                    args,
                    module_prefix: String::new(),
                }
            }
            Runner::Unittest => {
                let start = ["tests", "test"]
                    .into_iter()
                    .find(|d| matches!(repo.get(d), Some(Entry::Dir(_))))
                    .unwrap_or(".");
                let start_is_package = repo.file(&format!("{start}/__init__.py")).is_some();
                let mut args: Vec<String> = ["-m", "unittest", "discover", "-v", "-s", start]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                let module_prefix = if start == "." || start_is_package {
                    args.extend(["-t".to_owned(), ".".to_owned()]);
                    String::new()
                } else {
                    format!("{start}/")
                };
                args.extend(extra.iter().cloned());
                TestCommand {
                    runner,
                    args,
                    module_prefix,
                }
            }
        }
    }

    /// The command as an agent would type it in the sandbox's shell: pytest's reporting and
    /// sandbox flags left out (the guest applies the sandbox's own), the rest as given.
    pub fn for_agents(&self) -> String {
        const SPAR_ONLY: &[&str] = &[
            "-rA",
            "-v",
            "--color=no",
            "--tb=short",
            "--capture=sys",
            "--continue-on-collection-errors",
            "--basetemp=/tmp/pytest",
        ];
        let mut words = vec!["python".to_owned()];
        let mut args = self.args.iter().peekable();
        while let Some(arg) = args.next() {
            let plugin_off = arg == "-p"
                && args
                    .peek()
                    .is_some_and(|p| matches!(p.as_str(), "no:faulthandler" | "no:cacheprovider"));
            if plugin_off {
                args.next();
            } else if !(self.runner == Runner::Pytest && SPAR_ONLY.contains(&arg.as_str())) {
                words.push(arg.clone());
            }
        }
        words.join(" ")
    }

    /// The same command with pytest's tracebacks left out (`--tb=no`), for runs whose log is
    /// read only for per-test results: formatting a failure's traceback costs the guest about
    /// 7 ms, and a broken candidate fix fails dozens of tests. The statuses pytest reports are
    /// the same. Other command lines (unittest, pytest not run as a module) are unchanged.
    pub fn without_tracebacks(&self) -> TestCommand {
        let mut command = self.clone();
        let Some(at) = self.pytest_options_at() else {
            return command;
        };
        let mut args = self.args[..at].to_vec();
        args.push("--tb=no".to_owned());
        let mut given = self.args[at..].iter();
        while let Some(arg) = given.next() {
            if arg == "--tb" {
                given.next();
            } else if !arg.starts_with("--tb=") {
                args.push(arg.clone());
            }
        }
        command.args = args;
        command
    }

    /// Where options for pytest go: right after `-m pytest`. `None` for unittest and for
    /// command lines that do not run pytest as a module, which run as given.
    pub(crate) fn pytest_options_at(&self) -> Option<usize> {
        if self.runner != Runner::Pytest {
            return None;
        }
        self.args
            .windows(2)
            .position(|w| w[0] == "-m" && w[1] == "pytest")
            .map(|i| i + 2)
    }

    /// Parses a log of this command into per-test results.
    pub fn parse(&self, stdout: &str, stderr: &str) -> BTreeMap<String, TestStatus> {
        match self.runner {
            Runner::Pytest => parse_pytest(stdout),
            Runner::Unittest => parse_unittest(stderr, &self.module_prefix),
        }
    }
}

fn is_test_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.ends_with(".py") && (name.starts_with("test_") || name.ends_with("_test.py"))
}

/// pytest when the repository configures pytest or writes pytest-style tests; unittest when
/// its tests are all `unittest.TestCase`s; pytest when there is nothing to tell.
pub fn detect_runner(repo: &Snapshot) -> Runner {
    let text = |path: &str| {
        repo.file(path)
            .map(|c| String::from_utf8_lossy(&c).into_owned())
            .unwrap_or_default()
    };
    if repo.file("pytest.ini").is_some()
        || text("pyproject.toml").contains("[tool.pytest")
        || text("setup.cfg").contains("[tool:pytest]")
        || text("tox.ini").contains("[pytest]")
    {
        return Runner::Pytest;
    }
    let mut saw_unittest = false;
    for (path, contents) in repo.files() {
        if path.rsplit('/').next() == Some("conftest.py") {
            return Runner::Pytest;
        }
        if !is_test_file(&path) {
            continue;
        }
        let source = String::from_utf8_lossy(&contents);
        let pytest_style = source.lines().any(|l| {
            l.starts_with("import pytest")
                || l.starts_with("from pytest")
                || l.starts_with("def test")
                || l.starts_with("async def test")
        });
        if pytest_style {
            return Runner::Pytest;
        }
        saw_unittest |= source.contains("unittest");
    }
    if saw_unittest {
        Runner::Unittest
    } else {
        Runner::Pytest
    }
}

const PYTEST_STATUSES: &[(&str, TestStatus)] = &[
    ("PASSED", TestStatus::Passed),
    ("FAILED", TestStatus::Failed),
    ("ERROR", TestStatus::Error),
    ("SKIPPED", TestStatus::Skipped),
    ("XFAIL", TestStatus::Skipped),
    ("XPASS", TestStatus::Passed),
    // pytest 9's subtests: a failing subtest fails its test.
    ("SUBPASSED", TestStatus::Passed),
    ("SUBFAILED", TestStatus::Failed),
    ("SUBSKIPPED", TestStatus::Skipped),
];

fn record(tests: &mut BTreeMap<String, TestStatus>, id: &str, status: TestStatus) {
    tests
        .entry(id.to_owned())
        .and_modify(|s| *s = s.merge(status))
        .or_insert(status);
}

/// Parses pytest output produced with `-rA -v`: the verbose per-test lines
/// (`tests/t.py::test_a PASSED [ 50%]`) and the short summary (`FAILED tests/t.py::test_b - ...`,
/// `ERROR tests/t.py - ImportError`, the latter for modules that failed to collect).
pub fn parse_pytest(log: &str) -> BTreeMap<String, TestStatus> {
    let mut tests = BTreeMap::new();
    let mut in_summary = false;
    for line in log.lines() {
        let line = line.trim_end();
        if line.starts_with('=') {
            in_summary = line.contains(" short test summary info ");
            continue;
        }
        if in_summary {
            if let Some((id, status)) = summary_line(line) {
                record(&mut tests, id, status);
            }
        } else if let Some((id, status)) = verbose_line(line) {
            record(&mut tests, id, status);
        }
    }
    tests
}

/// `tests/t.py::test_a PASSED   [ 50%]`, `tests/t.py::test_s SKIPPED (reason) [ 75%]`.
fn verbose_line(line: &str) -> Option<(&str, TestStatus)> {
    if !line.contains("::") {
        return None;
    }
    let mut best: Option<(usize, TestStatus, usize)> = None;
    for (word, status) in PYTEST_STATUSES {
        let needle = format!(" {word}");
        let mut from = 0;
        while let Some(pos) = line[from..].find(&needle).map(|p| p + from) {
            let end = pos + needle.len();
            let rest = &line[end..];
            let bounded = rest.is_empty()
                || rest.starts_with(' ')
                || (word.starts_with("SUB") && rest.starts_with('('));
            if bounded && line[..pos].contains("::") && brackets_balanced(&line[..pos]) {
                if best.is_none_or(|(p, _, _)| pos < p) {
                    best = Some((pos, *status, end));
                }
                break;
            }
            from = end;
        }
    }
    let (pos, status, end) = best?;
    let rest = line[end..].trim();
    let tail_ok = rest.is_empty() || rest.starts_with('(') || rest.starts_with('[');
    let tail_ok = tail_ok || line[pos + 1..end].starts_with("SUB");
    tail_ok.then(|| (&line[..pos], status))
}

fn brackets_balanced(s: &str) -> bool {
    s.matches('[').count() == s.matches(']').count()
}

/// `PASSED id`, `FAILED id - message`, `ERROR id - message`, `XFAIL id - reason`. pytest's
/// `SKIPPED [1] file:line: reason` names no test id; the verbose lines cover skips.
fn summary_line(line: &str) -> Option<(&str, TestStatus)> {
    let (word, rest) = line.split_once(' ')?;
    let status = PYTEST_STATUSES
        .iter()
        .find(|(w, _)| *w == word)
        .map(|(_, s)| *s)?;
    if rest.starts_with('[') {
        return None;
    }
    let id = rest.split(" - ").next().unwrap_or(rest).trim();
    (!id.is_empty()).then_some((id, status))
}

/// The one-line message pytest's short summary gives each failing or erroring test
/// (`FAILED id - message`), for explaining why a test is not usable.
pub fn pytest_messages(log: &str) -> BTreeMap<String, String> {
    let mut messages = BTreeMap::new();
    let mut in_summary = false;
    for line in log.lines() {
        if line.starts_with('=') {
            in_summary = line.contains(" short test summary info ");
            continue;
        }
        if !in_summary {
            continue;
        }
        let Some((word, rest)) = line.split_once(' ') else {
            continue;
        };
        let word = word.split('(').next().unwrap_or(word);
        if matches!(word, "FAILED" | "ERROR" | "SUBFAILED") {
            if let Some((id, message)) = rest.split_once(" - ") {
                messages
                    .entry(id.trim().to_owned())
                    .or_insert_with(|| message.trim().to_owned());
            }
        }
    }
    messages
}

/// Parses `python -m unittest -v` output (stderr). `module_prefix` is prepended to module
/// paths when discovery ran from a directory that is not a package.
pub fn parse_unittest(log: &str, module_prefix: &str) -> BTreeMap<String, TestStatus> {
    let mut tests = BTreeMap::new();
    let mut pending: Option<String> = None;
    for line in log.lines() {
        // The failure blocks after the run repeat every failure and add the ones the
        // verbose lines cannot attribute, such as `ERROR: setUpClass (test_x.C)`.
        for (prefix, status) in [
            ("ERROR: ", TestStatus::Error),
            ("FAIL: ", TestStatus::Failed),
        ] {
            if let Some(dotted) = line.strip_prefix(prefix).and_then(unittest_header) {
                record(&mut tests, &unittest_id(dotted, module_prefix), status);
            }
        }
        if let Some(id) = unittest_header(line) {
            pending = Some(id.to_owned());
        }
        let Some((_, verdict)) = line.rsplit_once(" ... ") else {
            continue;
        };
        let status = match verdict.trim() {
            "ok" => TestStatus::Passed,
            "FAIL" => TestStatus::Failed,
            "ERROR" => TestStatus::Error,
            "expected failure" => TestStatus::Skipped,
            "unexpected success" => TestStatus::Passed,
            v if v.starts_with("skipped") => TestStatus::Skipped,
            _ => continue,
        };
        if let Some(dotted) = pending.take() {
            record(&mut tests, &unittest_id(&dotted, module_prefix), status);
        }
    }
    tests
}

/// The dotted id in `test_m (pkg.test_x.C.test_m)`, `setUpClass (test_x.C)` or
/// `test_x (unittest.loader._FailedTest.test_x)`.
fn unittest_header(line: &str) -> Option<&str> {
    let (name, rest) = line.split_once(" (")?;
    if name.is_empty() || name.contains(' ') {
        return None;
    }
    let dotted = rest.split(')').next()?;
    let valid = !dotted.is_empty()
        && dotted
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '.');
    valid.then_some(dotted)
}

/// `pkg.test_x.C.test_m` -> `pkg/test_x.py::C::test_m`.
fn unittest_id(dotted: &str, module_prefix: &str) -> String {
    if let Some(module) = dotted.strip_prefix("unittest.loader._FailedTest.") {
        return format!("{module_prefix}{}.py", module.replace('.', "/"));
    }
    let parts: Vec<&str> = dotted.split('.').collect();
    // Module names are lower-case by convention and class names capitalised: find where the
    // class starts so `setUpClass (test_x.C)` maps to the class itself.
    let class_at = parts
        .iter()
        .rposition(|p| p.chars().next().is_some_and(|c| c.is_uppercase()))
        .unwrap_or(parts.len().saturating_sub(2));
    let (module, rest) = parts.split_at(class_at.max(1).min(parts.len()));
    let mut id = format!("{module_prefix}{}.py", module.join("/"));
    for part in rest {
        id.push_str("::");
        id.push_str(part);
    }
    id
}

/// The machine-readable report of a guest run, without test results (`spar run --json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunReport {
    /// How the run ended.
    pub outcome: Outcome,
    /// The guest's exit code, when it exited by itself.
    pub exit_code: Option<i32>,
    /// Host wall-clock milliseconds.
    pub duration_ms: f64,
    /// Fuel consumed.
    pub fuel: Option<u64>,
    /// Captured stdout.
    pub stdout: String,
    /// Captured stderr (with a trap's description appended, if it trapped).
    pub stderr: String,
}

impl RunReport {
    /// Summarises a sandbox result.
    pub fn from_result(result: &RunResult) -> RunReport {
        let mut stderr = String::from_utf8_lossy(&result.stderr).into_owned();
        if let Some(trap) = &result.trap {
            stderr.push_str(&format!("\n[spar: guest trapped: {trap}]\n"));
        }
        RunReport {
            outcome: result.outcome,
            exit_code: result.exit_code,
            duration_ms: result.duration.as_secs_f64() * 1e3,
            fuel: Some(result.fuel_used),
            stdout: String::from_utf8_lossy(&result.stdout).into_owned(),
            stderr,
        }
    }
}

/// The machine-readable report of a test-suite run (`spar test --json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TestReport {
    /// The run itself.
    #[serde(flatten)]
    pub run: RunReport,
    /// Per-test results by pytest-style node id.
    pub tests: BTreeMap<String, TestStatus>,
    /// Number of tests that passed.
    pub passed: usize,
    /// Number that failed.
    pub failed: usize,
    /// Number that errored.
    pub errors: usize,
    /// Number skipped.
    pub skipped: usize,
    /// The tests (or test modules) that stopped the interpreter, each reported as an error,
    /// with how the run stopped (`the run stopped: out_of_memory`); the tests after them ran
    /// in a rerun.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stopped: BTreeMap<String, String>,
    /// How many guest runs the suite took (more than one after a test stopped a run).
    #[serde(default = "one")]
    pub runs: usize,
}

fn one() -> usize {
    1
}

impl TestReport {
    /// Builds the report from a single run of `command`.
    pub fn new(command: &TestCommand, result: &RunResult) -> TestReport {
        let run = RunReport::from_result(result);
        let tests = command.parse(&run.stdout, &run.stderr);
        Self::with_tests(run, tests, BTreeMap::new(), 1)
    }

    /// Builds the report from a suite run, reruns included.
    pub fn from_suite(suite: SuiteRun) -> TestReport {
        let run = RunReport::from_result(&suite.result);
        Self::with_tests(run, suite.tests, suite.stopped, suite.runs)
    }

    fn with_tests(
        run: RunReport,
        tests: BTreeMap<String, TestStatus>,
        stopped: BTreeMap<String, String>,
        runs: usize,
    ) -> TestReport {
        let count = |s| tests.values().filter(|v| **v == s).count();
        TestReport {
            passed: count(TestStatus::Passed),
            failed: count(TestStatus::Failed),
            errors: count(TestStatus::Error),
            skipped: count(TestStatus::Skipped),
            tests,
            stopped,
            runs,
            run,
        }
    }

    /// True when the suite ran to completion, collected at least one test, and none failed or
    /// errored (skips are allowed).
    pub fn all_passed(&self) -> bool {
        self.run.outcome == Outcome::Completed
            && self.passed > 0
            && self.failed == 0
            && self.errors == 0
    }
}

/// A run of a suite with the host's own Python, for comparison with the sandbox.
pub struct NativeRun {
    /// Per-test results, parsed like the sandbox's.
    pub tests: BTreeMap<String, TestStatus>,
    /// pytest's failure messages.
    pub messages: BTreeMap<String, String>,
    /// Wall time of the whole process.
    pub duration: std::time::Duration,
}

/// Runs `command` natively with `python` (a [`crate::native::NativeEnv`]'s interpreter) in
/// `dir`, a host copy of the repository, with `python_path` as `PYTHONPATH`. Bytecode is cached
/// in the copy as a user's checkout would have it; pytest's temp files go to `scratch`.
pub fn run_tests_native(
    python: &std::path::Path,
    dir: &std::path::Path,
    command: &TestCommand,
    python_path: &[std::path::PathBuf],
    scratch: &std::path::Path,
) -> std::io::Result<NativeRun> {
    let args: Vec<String> = command
        .args
        .iter()
        .map(|a| match a.strip_prefix("--basetemp=") {
            Some(_) => format!("--basetemp={}", scratch.join("pytest").display()),
            None => a.clone(),
        })
        .collect();
    let started = std::time::Instant::now();
    let output = std::process::Command::new(python)
        .args(&args)
        .current_dir(dir)
        .env(
            "PYTHONPATH",
            std::env::join_paths(python_path).map_err(std::io::Error::other)?,
        )
        .env_remove("PYTHONDONTWRITEBYTECODE")
        .env_remove("PYTHONPYCACHEPREFIX")
        .stdin(std::process::Stdio::null())
        .output()?;
    let duration = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    Ok(NativeRun {
        tests: command.parse(&stdout, &stderr),
        messages: pytest_messages(&stdout),
        duration,
    })
}

/// Runs `command` over `repo` in the guest and parses the results; a pytest suite that one
/// test stops is continued without it ([`run_suite`]).
pub fn run_tests(
    python: &Python,
    repo: &Snapshot,
    command: &TestCommand,
    options: &PythonRun,
) -> Result<TestReport, GuestError> {
    Ok(TestReport::from_suite(run_suite(
        python, repo, command, options,
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_read_only_for_statuses_leave_tracebacks_out() {
        let words = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        let pytest = TestCommand {
            runner: Runner::Pytest,
            args: words(&[
                "-m",
                "pytest",
                "-rA",
                "--tb=short",
                "-v",
                "--tb",
                "long",
                "t.py",
            ]),
            module_prefix: String::new(),
        };
        assert_eq!(
            pytest.without_tracebacks().args,
            words(&["-m", "pytest", "--tb=no", "-rA", "-v", "t.py"])
        );
        let unittest = TestCommand {
            runner: Runner::Unittest,
            ..pytest.clone()
        };
        assert_eq!(unittest.without_tracebacks().args, unittest.args);
    }

    #[test]
    fn agents_see_the_test_command_without_spar_flags() {
        let repo = Snapshot::from_files([("tests/test_a.py", b"def test_a(): pass\n".as_slice())])
            .unwrap();
        let extra = [
            "tests/test_a.py".to_owned(),
            "-k".to_owned(),
            "a".to_owned(),
        ];
        let pytest = TestCommand::for_repo(&repo, Some(Runner::Pytest), &extra);
        assert_eq!(pytest.for_agents(), "python -m pytest tests/test_a.py -k a");
        let unittest = TestCommand::for_repo(&repo, Some(Runner::Unittest), &[]);
        assert_eq!(
            unittest.for_agents(),
            "python -m unittest discover -v -s tests"
        );
    }

    /// A real log: pytest 9.2 with `-rA -v` in the guest over a suite with a failure,
    /// parametrisation, a skip, an xfail, a teardown error, failing subtests and an
    /// unimportable module.
    const PYTEST_LOG: &str = include_str!("testrun_fixtures/pytest-rA-v.log");

    #[test]
    fn pytest_log_maps_every_test() {
        let t = parse_pytest(PYTEST_LOG);
        let expected = [
            ("tests/test_broken.py", TestStatus::Error),
            ("tests/test_calc.py::TestCase::test_m", TestStatus::Passed),
            ("tests/test_calc.py::TestCase::test_sub", TestStatus::Failed),
            ("tests/test_calc.py::test_div", TestStatus::Failed),
            ("tests/test_calc.py::test_ok", TestStatus::Passed),
            ("tests/test_calc.py::test_param[1-2]", TestStatus::Passed),
            ("tests/test_calc.py::test_param[a b-c]", TestStatus::Failed),
            ("tests/test_calc.py::test_skip", TestStatus::Skipped),
            ("tests/test_calc.py::test_teardown", TestStatus::Error),
            ("tests/test_calc.py::test_xfail", TestStatus::Skipped),
        ];
        let got: Vec<(&str, TestStatus)> = t.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn pytest_messages_come_from_the_summary() {
        let m = pytest_messages(PYTEST_LOG);
        assert_eq!(m["tests/test_calc.py::test_div"], "assert 0.5 == 0.4");
        assert_eq!(
            m["tests/test_calc.py::test_teardown"],
            "RuntimeError: teardown"
        );
        assert_eq!(
            m["tests/test_calc.py::TestCase::test_sub"],
            "AssertionError: 1 == 1"
        );
        assert!(!m.contains_key("tests/test_calc.py::test_ok"));
    }

    #[test]
    fn pytest_failing_subtest_fails_its_test() {
        // Real pytest 9.2 output: the parent reports PASSED although a subtest failed.
        let log = "tests/test_s.py::T::test_sub SUBPASSED(i=0)                              [ 66%]
tests/test_s.py::T::test_sub SUBFAILED(i=1)                              [ 66%]
tests/test_s.py::T::test_sub SUBPASSED(i=2)                              [ 66%]
tests/test_s.py::T::test_sub PASSED                                      [ 66%]
tests/test_s.py::T::test_fine SUBPASSED(i=0, j='a b')                    [ 33%]
tests/test_s.py::T::test_fine PASSED                                     [ 33%]
=========================== short test summary info ============================
PASSED tests/test_s.py::T::test_sub
PASSED tests/test_s.py::T::test_fine
SUBFAILED(i=1) tests/test_s.py::T::test_sub - AssertionError: 1 == 1
";
        let t = parse_pytest(log);
        assert_eq!(t["tests/test_s.py::T::test_sub"], TestStatus::Failed);
        assert_eq!(t["tests/test_s.py::T::test_fine"], TestStatus::Passed);
        assert_eq!(t.len(), 2, "{t:#?}");
    }

    #[test]
    fn pytest_output_lines_that_only_look_like_results_are_ignored() {
        let log = "print: see tests/x.py::y PASSED to stdout and more\n\
                   tests/t.py::test_a PASSED [ 50%]\n";
        let t = parse_pytest(log);
        assert_eq!(t.len(), 1, "{t:#?}");
        assert_eq!(t["tests/t.py::test_a"], TestStatus::Passed);
    }

    /// A real log: `python -m unittest discover -v -s tests` in the guest over a suite with a
    /// failure, an error, a skip, an expected failure, failing subtests, a docstring, a failing
    /// `setUpClass` and an unimportable module.
    const UNITTEST_LOG: &str = include_str!("testrun_fixtures/unittest-v.log");

    #[test]
    fn unittest_log_maps_to_pytest_ids() {
        let t = parse_unittest(UNITTEST_LOG, "tests/");
        let expected = [
            ("tests/test_broken.py", TestStatus::Error),
            (
                "tests/test_shapes.py::AreaTests::test_later",
                TestStatus::Skipped,
            ),
            (
                "tests/test_shapes.py::AreaTests::test_square",
                TestStatus::Passed,
            ),
            (
                "tests/test_shapes.py::AreaTests::test_sub",
                TestStatus::Failed,
            ),
            (
                "tests/test_shapes.py::AreaTests::test_triangle",
                TestStatus::Failed,
            ),
            (
                "tests/test_shapes.py::AreaTests::test_unknown",
                TestStatus::Error,
            ),
            (
                "tests/test_shapes.py::AreaTests::test_xf",
                TestStatus::Skipped,
            ),
            ("tests/test_shapes.py::SetupFails", TestStatus::Error),
        ];
        let got: Vec<(&str, TestStatus)> = t.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn unittest_ids_in_packages() {
        assert_eq!(
            unittest_id("tests.unit.test_x.TestC.test_m", ""),
            "tests/unit/test_x.py::TestC::test_m"
        );
    }

    fn repo(files: &[(&str, &str)]) -> Snapshot {
        Snapshot::from_files(files.iter().map(|(p, c)| (*p, c.as_bytes().to_vec()))).unwrap()
    }

    #[test]
    fn runner_detection() {
        let unittest_only = repo(&[(
            "tests/test_a.py",
            "import unittest\nclass T(unittest.TestCase):\n    def test_x(self): pass\n",
        )]);
        assert_eq!(detect_runner(&unittest_only), Runner::Unittest);
        let pytest_funcs = repo(&[("tests/test_a.py", "def test_x():\n    assert True\n")]);
        assert_eq!(detect_runner(&pytest_funcs), Runner::Pytest);
        let configured = repo(&[
            ("pyproject.toml", "[tool.pytest.ini_options]\n"),
            ("tests/test_a.py", "import unittest\n"),
        ]);
        assert_eq!(detect_runner(&configured), Runner::Pytest);
        let conftest = repo(&[
            ("tests/conftest.py", ""),
            ("tests/test_a.py", "import unittest\n"),
        ]);
        assert_eq!(detect_runner(&conftest), Runner::Pytest);
        assert_eq!(detect_runner(&Snapshot::empty()), Runner::Pytest);
    }

    #[test]
    fn unittest_command_depends_on_package_layout() {
        let plain = repo(&[("tests/test_a.py", "")]);
        let cmd = TestCommand::for_repo(&plain, Some(Runner::Unittest), &[]);
        assert_eq!(cmd.module_prefix, "tests/");
        assert!(!cmd.args.contains(&"-t".to_owned()));
        let package = repo(&[("tests/__init__.py", ""), ("tests/test_a.py", "")]);
        let cmd =
            TestCommand::for_repo(&package, Some(Runner::Unittest), &["-k".into(), "x".into()]);
        assert_eq!(cmd.module_prefix, "");
        assert_eq!(&cmd.args[cmd.args.len() - 4..], ["-t", ".", "-k", "x"]);
    }
}
