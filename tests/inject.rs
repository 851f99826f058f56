//! The built-in injectors end to end on the real guest: inject -> validate on the built-in
//! corpus, history reverts from a git repository made here, determinism, and the CLI's
//! inject / validate / export round trip.

mod common;

use common::scratch;

use spar::corpus::{self, ImportSettings, SourceSpec, Store};
use spar::inject::{InjectError, InjectSettings, Injector, Strategy};
use spar::protocol::{BugArtifact, ValidationSettings, Validator};
use std::path::{Path, PathBuf};
use std::process::Command;

fn corpora() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpora")
}

fn builtin(name: &str) -> corpus::OpenProject {
    corpus::open_project(name, &corpora(), &Store::new(scratch("empty-store"))).unwrap()
}

fn inject(
    project: &corpus::OpenProject,
    strategy: Strategy,
    count: usize,
    seed: u64,
    out: &Path,
) -> spar::inject::InjectReport {
    let python = common::python();
    let validator = Validator::new(ValidationSettings::default());
    let injector = Injector::new(python, &validator, project).unwrap();
    injector
        .inject(&InjectSettings {
            strategy,
            count,
            seed,
            max_candidates: 60,
            out: out.to_owned(),
        })
        .unwrap()
}

/// Every written artifact loads, re-validates as valid from scratch, and its bug patch
/// carries no comment lines.
fn assert_written_artifacts_valid(
    project: &corpus::OpenProject,
    report: &spar::inject::InjectReport,
) {
    let validator = Validator::new(ValidationSettings::default());
    for written in &report.artifacts {
        let artifact = BugArtifact::load(&written.dir).unwrap();
        let v = validator
            .validate(common::python(), &artifact, &project.repo, &project.run)
            .unwrap();
        assert!(v.valid, "{}: {v:#?}", written.dir.display());
        assert!(!v.fail_to_pass.is_empty());
        let bug = artifact.bug_patch.to_string();
        assert!(
            !bug.lines().any(|l| l.starts_with('+')
                && !l.starts_with("+++")
                && l.trim_start_matches('+').trim_start().starts_with('#')),
            "injected code carries a comment:\n{bug}"
        );
        assert!(artifact
            .bug_patch
            .paths()
            .iter()
            .all(|p| !spar::protocol::is_test_path(p)));
        // The weakening deletes tests; it never comments them out.
        let weak = artifact.test_patch.to_string();
        assert!(
            !weak
                .lines()
                .any(|l| l.starts_with('+') && !l.starts_with("+++")),
            "the weakening only deletes:\n{weak}"
        );
    }
}

#[test]
fn procedural_injection_on_the_builtin_corpus_writes_valid_artifacts_deterministically() {
    let project = builtin("moneyunits");
    let out = scratch("procedural");
    let report = inject(&project, Strategy::Procedural, 2, 7, &out);
    assert_eq!(report.artifacts.len(), 2, "{report}");
    assert_written_artifacts_valid(&project, &report);
    let y = &report.yields[&Strategy::Procedural];
    assert!(y.proposed >= 2 && y.valid == 2, "{report}");
    // The same seed gives the same artifacts.
    let again = inject(
        &project,
        Strategy::Procedural,
        2,
        7,
        &scratch("procedural-again"),
    );
    let names = |r: &spar::inject::InjectReport| -> Vec<String> {
        r.artifacts
            .iter()
            .map(|a| a.dir.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(names(&report), names(&again));
}

#[test]
fn removal_injection_removes_code_and_stays_valid() {
    let project = builtin("structkit");
    let out = scratch("removal");
    let report = inject(&project, Strategy::Removal, 2, 1, &out);
    assert_eq!(report.artifacts.len(), 2, "{report}");
    assert_written_artifacts_valid(&project, &report);
    for a in &report.artifacts {
        let artifact = BugArtifact::load(&a.dir).unwrap();
        let (added, removed) = artifact.bug_patch.files[0].line_counts();
        assert!(removed > added, "a removal removes more than it adds");
    }
}

#[test]
fn mixed_without_history_falls_back_to_procedural_and_removal() {
    let project = builtin("textpatch");
    let report = inject(&project, Strategy::Mixed, 2, 3, &scratch("mixed"));
    assert_eq!(report.artifacts.len(), 2, "{report}");
    assert!(report.yields.contains_key(&Strategy::Removal));
    assert!(report.yields.contains_key(&Strategy::Procedural));
    assert!(!report.yields.contains_key(&Strategy::History));
}

use common::{git, write_tree};

#[test]
fn history_injection_reverts_a_real_past_fix() {
    let root = scratch("history");
    let repo = root.join("calchist");
    // Commit 1: `sub` wrong for negative results and not tested for them.
    let old = common::calc_repo(Some("return abs(a - b)"));
    let tests = String::from_utf8(old.file("tests/test_calc.py").unwrap().to_vec()).unwrap();
    let old_tests = tests.replace(
        "def test_sub_negative():\n    assert sub(3, 5) == -2\n\n\n",
        "",
    );
    let old = old
        .with_changes(&[spar::snapshot::FileChange::Written {
            path: "tests/test_calc.py".into(),
            contents: old_tests.into_bytes().into(),
        }])
        .unwrap();
    write_tree(&repo, &old);
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "calc: first version"]);
    // Commit 2: the fix, with its test.
    write_tree(&repo, &common::calc_repo(None));
    git(&repo, &["add", "."]);
    git(
        &repo,
        &[
            "commit",
            "-q",
            "-m",
            "sub: keep the sign of negative results",
        ],
    );

    let store = Store::new(root.join("store"));
    let settings = ImportSettings {
        name: None,
        split: None,
        host_python: std::env::var("SPAR_PYTHON").unwrap_or_else(|_| "python3".into()),
        progress: false,
        native_baseline: false,
    };
    corpus::import(
        common::python(),
        &store,
        &SourceSpec::Git(repo.clone()),
        &settings,
    )
    .unwrap();
    let project = corpus::open_project("calchist", &root.join("no-builtins"), &store).unwrap();
    assert!(project.git_dir.is_some());
    let report = inject(&project, Strategy::History, 1, 0, &root.join("out"));
    assert_eq!(report.artifacts.len(), 1, "{report}");
    assert_written_artifacts_valid(&project, &report);
    let artifact = BugArtifact::load(&report.artifacts[0].dir).unwrap();
    assert!(artifact
        .bug_patch
        .to_string()
        .contains("+    return abs(a - b)"));
    assert!(
        artifact.meta.notes[0].contains("keep the sign"),
        "{:?}",
        artifact.meta.notes
    );
    let v = Validator::new(ValidationSettings::default())
        .validate(common::python(), &artifact, &project.repo, &project.run)
        .unwrap();
    assert_eq!(v.fail_to_pass, ["tests/test_calc.py::test_sub_negative"]);

    // Without history, the strategy is refused with a clear error.
    let python = common::python();
    let plain = builtin("moneyunits");
    let validator = Validator::new(ValidationSettings::default());
    let injector = Injector::new(python, &validator, &plain).unwrap();
    let err = injector
        .inject(&InjectSettings {
            strategy: Strategy::History,
            count: 1,
            seed: 0,
            max_candidates: 5,
            out: root.join("none"),
        })
        .unwrap_err();
    assert!(matches!(err, InjectError::NoHistory(_)), "{err}");
}

fn spar() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_spar"));
    c.arg("--quiet")
        .arg("--corpus-dir")
        .arg(scratch("cli-store"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

#[test]
fn cli_inject_validate_export_round_trip() {
    let out = scratch("cli");
    let run = spar()
        .args([
            "inject",
            "--corpus",
            "inikit",
            "--strategy",
            "procedural",
            "--count",
            "1",
            "--seed",
            "5",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("procedural"), "{stdout}");
    let dirs: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(dirs.len(), 1);

    let validate = spar()
        .arg("validate")
        .arg(&dirs[0])
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        validate.status.success(),
        "{}",
        String::from_utf8_lossy(&validate.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&validate.stdout).unwrap();
    assert_eq!(report["valid"], true);
    assert_eq!(report["checks"].as_array().unwrap().len(), 7);

    let export = spar()
        .arg("export")
        .arg("--artifacts")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let text = String::from_utf8(export.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1);
    let instance: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    for key in [
        "instance_id",
        "repo",
        "base_snapshot",
        "patch",
        "test_patch",
        "FAIL_TO_PASS",
        "PASS_TO_PASS",
        "problem_statement",
    ] {
        assert!(!instance[key].is_null(), "{key} missing: {instance}");
    }
    assert!(!instance["FAIL_TO_PASS"].as_array().unwrap().is_empty());
    assert!(instance["problem_statement"]
        .as_str()
        .unwrap()
        .contains("Please fix the code"));

    // A broken artifact: a clear error naming the missing part, exit 2.
    std::fs::remove_file(dirs[0].join("test_files.txt")).unwrap();
    let bad = spar().arg("validate").arg(&dirs[0]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("missing test_files.txt"), "{stderr}");
    // An unknown project.
    let unknown = spar()
        .args(["inject", "--corpus", "nope", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(2));
}
