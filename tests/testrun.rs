//! Test suites run in the real guest: per-test maps for pytest and unittest, planted bugs,
//! and the built-in corpus.

mod common;

use common::{calc_repo, python, repo};
use spar::guest::PythonRun;
use spar::sandbox::Outcome;
use spar::testrun::{run_tests, Runner, TestCommand, TestStatus};
use std::collections::BTreeMap;

fn run_suite(repo: &spar::snapshot::Snapshot, runner: Option<Runner>) -> spar::testrun::TestReport {
    let command = TestCommand::for_repo(repo, runner, &[]);
    run_tests(python(), repo, &command, &PythonRun::default()).unwrap()
}

const CALC_IDS: [&str; 8] = [
    "tests/test_calc.py::test_add",
    "tests/test_calc.py::test_mean",
    "tests/test_calc.py::test_mul",
    "tests/test_calc.py::test_skipped",
    "tests/test_calc.py::test_sub",
    "tests/test_calc.py::test_sub_negative",
    "tests/test_calc.py::test_sub_table[1-1-0]",
    "tests/test_calc.py::test_sub_table[10-4-6]",
];

#[test]
fn passing_pytest_suite_maps_every_test() {
    let report = run_suite(&calc_repo(None), None);
    assert_eq!(report.run.outcome, Outcome::Completed);
    assert_eq!(report.run.exit_code, Some(0), "{}", report.run.stdout);
    let ids: Vec<&str> = report.tests.keys().map(String::as_str).collect();
    let mut expected = CALC_IDS.to_vec();
    expected.push("tests/test_calc.py::test_total");
    expected.sort();
    assert_eq!(ids, expected);
    assert_eq!(
        report.tests["tests/test_calc.py::test_skipped"],
        TestStatus::Skipped
    );
    assert_eq!(
        (report.passed, report.failed, report.errors, report.skipped),
        (8, 0, 0, 1)
    );
    assert!(report.all_passed());
}

#[test]
fn planted_bug_flips_exactly_the_tests_that_use_it() {
    let before = run_suite(&calc_repo(None), None);
    let after = run_suite(&calc_repo(Some("return a + b")), None);
    let flipped: BTreeMap<&str, (TestStatus, TestStatus)> = before
        .tests
        .iter()
        .filter_map(|(id, was)| {
            let now = after.tests[id];
            (now != *was).then_some((id.as_str(), (*was, now)))
        })
        .collect();
    let expected: BTreeMap<&str, (TestStatus, TestStatus)> = [
        "tests/test_calc.py::test_sub",
        "tests/test_calc.py::test_sub_negative",
        "tests/test_calc.py::test_sub_table[10-4-6]",
        "tests/test_calc.py::test_sub_table[1-1-0]",
    ]
    .into_iter()
    .map(|id| (id, (TestStatus::Passed, TestStatus::Failed)))
    .collect();
    assert_eq!(flipped, expected);
    assert!(!after.all_passed());
    assert_eq!(after.run.exit_code, Some(1));
}

#[test]
fn a_bug_in_one_module_fails_tests_of_another() {
    let broken = calc_repo(None)
        .with_changes(&[spar::snapshot::FileChange::Written {
            path: "calc/ops.py".into(),
            contents: common::CALC_OPS
                .replace("return a + b", "return a + b + 1")
                .into_bytes()
                .into(),
        }])
        .unwrap();
    let report = run_suite(&broken, None);
    assert_eq!(
        report.tests["tests/test_calc.py::test_total"],
        TestStatus::Failed
    );
    assert_eq!(
        report.tests["tests/test_calc.py::test_mean"],
        TestStatus::Failed
    );
    assert_eq!(
        report.tests["tests/test_calc.py::test_mul"],
        TestStatus::Passed
    );
}

#[test]
fn import_errors_are_reported_as_errors() {
    let broken = repo(&[
        ("tests/test_ok.py", "def test_fine():\n    assert True\n"),
        (
            "tests/test_broken.py",
            "import does_not_exist\n\ndef test_never():\n    pass\n",
        ),
    ]);
    let report = run_suite(&broken, None);
    assert_eq!(report.tests["tests/test_broken.py"], TestStatus::Error);
    assert_eq!(report.errors, 1);
    assert!(!report.all_passed());
}

const UNITTEST_SUITE: &str = "\
import unittest
from shapes import area


class AreaTests(unittest.TestCase):
    def test_square(self):
        self.assertEqual(area('square', 3), 9)

    def test_circle(self):
        '''Circles use pi.'''
        self.assertAlmostEqual(area('circle', 1), 3.14159, places=4)

    def test_unknown(self):
        self.assertRaises(KeyError, area, 'hexagon', 1)

    def test_broken(self):
        self.assertEqual(area('triangle', 2), 2)

    @unittest.skip('later')
    def test_later(self):
        pass


class CrashTests(unittest.TestCase):
    def test_crash(self):
        raise RuntimeError('boom')
";

#[test]
fn unittest_suites_map_to_pytest_ids() {
    let shapes = repo(&[
        (
            "shapes.py",
            "import math\nAREAS = {'square': lambda s: s * s, 'circle': lambda r: math.pi * r * r, 'triangle': lambda s: s * s}\n\ndef area(kind, size):\n    return AREAS[kind](size)\n",
        ),
        ("tests/test_shapes.py", UNITTEST_SUITE),
    ]);
    let report = run_suite(&shapes, None);
    let got: Vec<(&str, TestStatus)> = report.tests.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(
        got,
        vec![
            (
                "tests/test_shapes.py::AreaTests::test_broken",
                TestStatus::Failed
            ),
            (
                "tests/test_shapes.py::AreaTests::test_circle",
                TestStatus::Passed
            ),
            (
                "tests/test_shapes.py::AreaTests::test_later",
                TestStatus::Skipped
            ),
            (
                "tests/test_shapes.py::AreaTests::test_square",
                TestStatus::Passed
            ),
            (
                "tests/test_shapes.py::AreaTests::test_unknown",
                TestStatus::Passed
            ),
            (
                "tests/test_shapes.py::CrashTests::test_crash",
                TestStatus::Error
            ),
        ],
        "stderr: {}",
        report.run.stderr
    );
    // The same suite under pytest yields the same ids (crashes are failures to pytest).
    let under_pytest = run_suite(&shapes, Some(Runner::Pytest));
    assert_eq!(
        under_pytest.tests.keys().collect::<Vec<_>>(),
        report.tests.keys().collect::<Vec<_>>()
    );
}

#[test]
fn builtin_corpus_suites_pass_in_the_sandbox() {
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpora");
    let projects = spar::corpus::list_projects(&corpus).unwrap();
    assert!(projects.len() >= 6);
    for project in projects {
        let snapshot = project.snapshot().unwrap();
        let report = run_suite(&snapshot, None);
        assert!(
            report.all_passed() && report.tests.len() >= 40,
            "{}: {} tests, {} failed, {} errors\n{}",
            project.manifest.name,
            report.tests.len(),
            report.failed,
            report.errors,
            report.run.stdout
        );
    }
}

/// The built-in suites pass natively too, in the virtual environment every native baseline
/// runs in (made from the guest's own pinned pytest wheels), on a copy of each project.
#[test]
fn builtin_corpus_suites_pass_natively() {
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpora");
    let host = std::env::var("SPAR_PYTHON").unwrap_or_else(|_| "python3".into());
    let wheels = python().site_wheels().unwrap();
    let env = spar::native::NativeEnv::prepare(&host, python().cache_dir(), &wheels).unwrap();
    for project in spar::corpus::list_projects(&corpus).unwrap() {
        let snapshot = project.snapshot().unwrap();
        let command = TestCommand::for_repo(&snapshot, None, &[]);
        let scratch = std::env::temp_dir().join(format!(
            "spar-native-{}-{}",
            project.manifest.name,
            std::process::id()
        ));
        let copy = scratch.join("repo");
        common::write_tree(&copy, &snapshot);
        let run =
            spar::testrun::run_tests_native(env.python(), &copy, &command, &[], &scratch).unwrap();
        let _ = std::fs::remove_dir_all(&scratch);
        let failing: Vec<_> = run
            .tests
            .iter()
            .filter(|(_, s)| **s != TestStatus::Passed)
            .collect();
        assert!(
            run.tests.len() >= 40 && failing.is_empty(),
            "{}: {failing:?}",
            project.manifest.name
        );
    }
}

/// A test that stops the interpreter (os._exit, a stack overflow past CPython's guard) no
/// longer loses the suite: it is an `error` naming how the run stopped, and the tests after
/// it run in a rerun.
#[test]
fn a_test_that_stops_the_interpreter_loses_only_itself() {
    let tests = "\
import os, sys

def test_first():
    pass

def test_cleans_tmp():
    # Suites clean /tmp; spar's progress record must survive it.
    import shutil
    for name in os.listdir('/tmp'):
        shutil.rmtree(os.path.join('/tmp', name), ignore_errors=True)

def test_exits():
    os._exit(3)

def test_between():
    pass

def test_overflows():
    sys.setrecursionlimit(10**8)
    def f(n):
        return f(n + 1) + 1
    f(0)

def test_last():
    assert 1 + 1 == 3
";
    let report = run_suite(
        &repo(&[("tests/test_stop.py", tests)]),
        Some(Runner::Pytest),
    );
    let status = |name: &str| {
        report
            .tests
            .get(&format!("tests/test_stop.py::{name}"))
            .copied()
    };
    assert_eq!(status("test_first"), Some(TestStatus::Passed), "{report:?}");
    assert_eq!(status("test_exits"), Some(TestStatus::Error));
    assert_eq!(status("test_between"), Some(TestStatus::Passed));
    assert_eq!(status("test_overflows"), Some(TestStatus::Error));
    assert_eq!(status("test_last"), Some(TestStatus::Failed));
    assert_eq!(status("test_cleans_tmp"), Some(TestStatus::Passed));
    assert_eq!(report.tests.len(), 6);
    assert!(report.runs >= 3, "{}", report.runs);
    for stopper in ["test_exits", "test_overflows"] {
        let why = &report.stopped[&format!("tests/test_stop.py::{stopper}")];
        assert!(why.contains("the run stopped"), "{stopper}: {why}");
    }
}

/// `python -m pytest` with pytest's defaults (fd capture, faulthandler, a temp root that needs
/// `os.getuid`) works in the guest.
#[test]
fn plain_pytest_runs_with_its_defaults() {
    let repo = calc_repo(None)
        .with_changes(&[spar::snapshot::FileChange::Written {
            path: "tests/test_tmp.py".into(),
            contents: b"def test_tmp(tmp_path):\n    (tmp_path / 'f').write_text('x')\n"
                .to_vec()
                .into(),
        }])
        .unwrap();
    let r = python()
        .run(
            &repo,
            &["-m".into(), "pytest".into(), "-q".into()],
            &PythonRun::default(),
        )
        .unwrap();
    let out = String::from_utf8_lossy(&r.stdout);
    assert_eq!(r.outcome, Outcome::Completed, "{out}");
    assert!(out.contains("9 passed, 1 skipped"), "{out}");
}
