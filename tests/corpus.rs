//! Importing projects into the corpus store, against the real guest (and PyPI for one test).

mod common;

use common::scratch;

use spar::corpus::{import, CorpusError, ImportSettings, Source, SourceSpec, Split, Store};
use std::path::Path;
use std::process::Command;

fn settings() -> ImportSettings {
    ImportSettings {
        name: None,
        split: None,
        host_python: std::env::var("SPAR_PYTHON").unwrap_or_else(|_| "python3".into()),
        progress: false,
        native_baseline: false,
    }
}

fn write_calc(dir: &Path, sub_body: Option<&str>) {
    common::write_tree(dir, &common::calc_repo(sub_body));
}

use common::git;

#[test]
fn imports_a_directory_idempotently() {
    let root = scratch("dir");
    let project = root.join("calcproj");
    write_calc(&project, None);
    let store = Store::new(root.join("store"));
    let spec = SourceSpec::Dir(project.clone());
    let report = import(common::python(), &store, &spec, &settings()).unwrap();
    assert!(!report.already_present);
    let m = &report.project.manifest;
    assert_eq!(m.name, "calcproj");
    assert_eq!(m.split, Split::Train);
    assert_eq!(m.stats.tests_total, 9);
    assert_eq!(m.tests.usable.len(), 8);
    assert_eq!(
        m.tests.excluded["tests/test_calc.py::test_skipped"],
        "skipped in the sandbox"
    );
    // The project's tests ran only in the sandbox: no native baseline unless asked for.
    assert_eq!(m.stats.native_ms, None);
    assert_eq!(m.stats.native(), spar::corpus::NativeBaseline::NotMeasured);
    assert_eq!(report.project.repo().unwrap().content_hash(), {
        let (s, _) = spar::snapshot::Snapshot::from_dir(&project).unwrap();
        s.content_hash().to_owned()
    });

    let again = import(common::python(), &store, &spec, &settings()).unwrap();
    assert!(again.already_present);
    assert_eq!(store.list().unwrap().len(), 1);

    // Same name, different contents: refused, and the stored project is untouched.
    write_calc(&project, Some("return a + b"));
    let err = import(common::python(), &store, &spec, &settings()).unwrap_err();
    assert!(matches!(err, CorpusError::NameTaken(_)), "{err}");
    assert_eq!(store.list().unwrap().len(), 1);
    let leftovers: Vec<_> = std::fs::read_dir(store.root())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(
        leftovers.is_empty(),
        "no staging directories are left behind"
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn imports_a_git_repository_with_its_history() {
    let root = scratch("git");
    let project = root.join("calcgit");
    write_calc(&project, Some("return a + b"));
    git(&project, &["init", "-q"]);
    git(&project, &["add", "."]);
    git(&project, &["commit", "-q", "-m", "buggy sub"]);
    write_calc(&project, None);
    git(&project, &["commit", "-q", "-am", "fix sub"]);
    // Uncommitted changes are not part of the import: HEAD is.
    std::fs::write(project.join("calc/ops.py"), "broken").unwrap();

    let store = Store::new(root.join("store"));
    let mut s = settings();
    s.split = Some(Split::Heldout);
    let report = import(
        common::python(),
        &store,
        &SourceSpec::Git(project.clone()),
        &s,
    )
    .unwrap();
    let m = &report.project.manifest;
    let Source::Git { commits, head, .. } = &m.source else {
        panic!("{:?}", m.source)
    };
    assert_eq!(*commits, 2);
    assert_eq!(head.len(), 40);
    assert_eq!(m.split, Split::Heldout);
    assert_eq!(
        m.tests.usable.len(),
        8,
        "HEAD's fixed sub passes: {:?}",
        m.tests.excluded
    );
    let git_dir = report.project.git_dir().expect("history is stored");
    let log = Command::new("git")
        .arg("--git-dir")
        .arg(&git_dir)
        .args(["log", "--format=%s"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&log.stdout), "fix sub\nbuggy sub\n");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn bad_sources_get_clear_errors_and_leave_nothing() {
    let root = scratch("bad");
    let store = Store::new(root.join("store"));
    let empty = root.join("empty");
    std::fs::create_dir_all(empty.join("pkg")).unwrap();
    std::fs::write(empty.join("pkg/__init__.py"), "").unwrap();
    let err = import(
        common::python(),
        &store,
        &SourceSpec::Dir(empty.clone()),
        &settings(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("no tests found"), "{err}");
    let err = import(
        common::python(),
        &store,
        &SourceSpec::Git(empty),
        &settings(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("cannot read the git repository"),
        "{err}"
    );
    let missing = SourceSpec::parse("pypi:spar-no-such-project-xyz==0.0.1").unwrap();
    let err = import(common::python(), &store, &missing, &settings()).unwrap_err();
    assert!(
        err.to_string().contains("spar-no-such-project-xyz==0.0.1"),
        "{err}"
    );
    assert!(store.list().unwrap().is_empty());
    let leftovers = std::fs::read_dir(store.root())
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(leftovers, 0, "a failed import leaves nothing half-written");
    std::fs::remove_dir_all(&root).unwrap();
}

/// Needs PyPI, which CI reaches.
#[test]
fn imports_a_real_pypi_project_end_to_end() {
    let root = scratch("pypi");
    let store = Store::new(root.join("store"));
    let spec = SourceSpec::parse("pypi:idna==3.10").unwrap();
    let report = import(common::python(), &store, &spec, &settings()).unwrap();
    let m = &report.project.manifest;
    let Source::Pypi { sha256, sdist, .. } = &m.source else {
        panic!()
    };
    assert_eq!(sdist, "idna-3.10.tar.gz");
    assert_eq!(
        sha256,
        "12f65c9b470abda6dc35cf8e63cc574b1c52b11df2c86030af0ac09b01b13ea9"
    );
    assert!(m.stats.tests_total >= 30);
    assert!(m.tests.usable.len() * 10 >= m.stats.tests_total * 8);
    // The stored project runs again from the store with the oracle's tests passing.
    let project = store.get("idna").unwrap();
    let repo = project.repo().unwrap();
    let report = spar::testrun::run_tests(
        common::python(),
        &repo,
        &m.test,
        &project.run_options().unwrap(),
    )
    .unwrap();
    for id in &m.tests.usable {
        assert_eq!(
            report.tests.get(id).copied(),
            Some(spar::testrun::TestStatus::Passed),
            "{id}"
        );
    }
    std::fs::remove_dir_all(&root).unwrap();
}

/// A conftest that writes a file on the host when it runs there, and a project whose pytest
/// configuration deselects slow tests and names a coverage plugin the guest lacks.
fn hostile_configured_project(dir: &Path, marker: &Path) {
    write_calc(dir, None);
    let conftest = format!(
        "import pathlib\ntry:\n    pathlib.Path({:?}).write_text('ran')\nexcept OSError:\n    pass\n",
        marker.display().to_string()
    );
    std::fs::write(dir.join("tests/conftest.py"), conftest).unwrap();
    std::fs::write(
        dir.join("tests/test_slow.py"),
        "import pytest\n\n@pytest.mark.slow\ndef test_slow():\n    assert False, 'deselected by addopts'\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("pyproject.toml"),
        "[tool.pytest.ini_options]\naddopts = \"-m 'not slow' --cov=calc --cov-report=term\"\nmarkers = [\"slow: slow tests\"]\n",
    )
    .unwrap();
}

#[test]
fn project_code_runs_on_the_host_only_when_asked_and_keeps_its_pytest_options() {
    let root = scratch("hostile");
    let project = root.join("calcconf");
    let marker = root.join("conftest-ran-on-the-host");
    hostile_configured_project(&project, &marker);
    let store = Store::new(root.join("store"));
    let report = import(
        common::python(),
        &store,
        &SourceSpec::Dir(project.clone()),
        &settings(),
    )
    .unwrap();
    assert!(
        !marker.exists(),
        "the project's conftest ran on the host without --native-baseline"
    );
    let m = &report.project.manifest;
    // `-m 'not slow'` kept: the slow test is deselected, not a failure; `--cov` left out with
    // a note, since the guest has no pytest-cov.
    assert!(
        !m.tests.usable.iter().any(|t| t.contains("test_slow"))
            && !m.tests.excluded.keys().any(|t| t.contains("test_slow")),
        "{:?}",
        m.tests
    );
    assert_eq!(m.tests.usable.len(), 8, "{:?}", m.tests);
    assert!(m.notes.iter().any(|n| n.contains("--cov")), "{:?}", m.notes);

    let asked = ImportSettings {
        name: Some("calcconf-native".into()),
        native_baseline: true,
        ..settings()
    };
    let report = import(common::python(), &store, &SourceSpec::Dir(project), &asked).unwrap();
    assert!(
        marker.exists(),
        "--native-baseline runs the suite on the host"
    );
    let stats = &report.project.manifest.stats;
    assert!(stats.native_ms.is_some(), "{stats:?}");
    std::fs::remove_dir_all(&root).unwrap();
}
