//! Bug artifacts and the seven consistency checks, against the real guest: one hand-made
//! artifact per check that fails it for the right reason, a valid one, a custom in-guest
//! parser, and `git apply` compatibility of the diffs spar writes.

mod common;

use spar::diff::Patch;
use spar::guest::PythonRun;
use spar::protocol::{BugArtifact, Check, ValidationReport, ValidationSettings, Validator};
use spar::snapshot::Snapshot;
use std::process::Command;

use common::{edit, original, valid_artifact};

fn validate_with(artifact: &BugArtifact, settings: ValidationSettings) -> ValidationReport {
    let validator = Validator::new(settings);
    validator
        .validate(
            common::python(),
            artifact,
            &original(),
            &PythonRun::default(),
        )
        .unwrap()
}

fn validate(artifact: &BugArtifact) -> ValidationReport {
    validate_with(artifact, ValidationSettings::default())
}

/// Asserts that exactly `failing` checks fail (and print the report when not).
fn assert_fails(report: &ValidationReport, failing: &[Check]) {
    let got: Vec<Check> = report
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.check)
        .collect();
    assert_eq!(got, failing, "{report:#?}");
    assert_eq!(report.valid, failing.is_empty());
}

#[test]
fn a_correct_artifact_passes_all_seven_checks() {
    let artifact = valid_artifact();
    let report = validate(&artifact);
    assert_fails(&report, &[]);
    assert_eq!(report.checks.len(), 7);
    assert_eq!(
        report.fail_to_pass,
        [
            "tests/test_calc.py::test_sub",
            "tests/test_calc.py::test_sub_negative",
            "tests/test_calc.py::test_sub_table[1-1-0]",
            "tests/test_calc.py::test_sub_table[10-4-6]",
        ]
    );
    assert!(report
        .pass_to_pass
        .contains(&"tests/test_calc.py::test_add".to_owned()));
    // original, buggy, weakened, and one revert that equals the original: a memo hit.
    assert_eq!(report.test_runs, 4);
    assert_eq!(report.memo_hits, 1);
}

#[test]
fn check_1_fails_for_missing_or_uncovering_test_files() {
    let mut artifact = valid_artifact();
    artifact.test_files.push("tests/test_missing.py".into());
    let report = validate(&artifact);
    assert_fails(&report, &[Check::TestFiles]);
    assert_eq!(report.checks[0].files, ["tests/test_missing.py"]);

    let mut artifact = valid_artifact();
    artifact.test_files = vec!["calc/stats.py".into()];
    let report = validate(&artifact);
    assert!(!report.checks[0].passed);
    assert_eq!(
        report.checks[0].files,
        ["tests/test_calc.py"],
        "{report:#?}"
    );
}

#[test]
fn check_2_fails_for_a_parser_that_prints_garbage_or_crashes() {
    let mut artifact = valid_artifact();
    artifact.test_parser = Some("import sys\nsys.stdin.read()\nprint('all good!')\n".into());
    let report = validate(&artifact);
    assert!(!report.checks[1].passed, "{report:#?}");
    assert!(
        report.checks[1].detail.contains("not a JSON object"),
        "{}",
        report.checks[1].detail
    );

    artifact.test_parser = Some("raise RuntimeError('parser bug')\n".into());
    let report = validate(&artifact);
    assert!(!report.checks[1].passed);
    assert!(
        report.checks[1].detail.contains("parser bug"),
        "{}",
        report.checks[1].detail
    );
}

#[test]
fn a_custom_parser_in_the_guest_is_used() {
    let mut artifact = valid_artifact();
    artifact.test_parser = Some(
        "import json, re, sys\n\
         out = {}\n\
         for line in sys.stdin:\n\
         \x20   m = re.match(r'^(PASSED|FAILED) (\\S+)', line)\n\
         \x20   if m:\n\
         \x20       out[m.group(2)] = m.group(1).lower()\n\
         print(json.dumps(out))\n"
            .into(),
    );
    let report = validate(&artifact);
    assert_fails(&report, &[]);
    assert_eq!(report.fail_to_pass.len(), 4);
}

#[test]
fn check_3_fails_when_too_few_tests_pass_on_the_original() {
    let report = validate_with(
        &valid_artifact(),
        ValidationSettings {
            min_passing_tests: 50,
            ..ValidationSettings::default()
        },
    );
    assert_fails(&report, &[Check::OriginalPasses]);
}

#[test]
fn check_4_fails_for_too_few_files_or_a_test_file_in_the_bug() {
    let report = validate_with(
        &valid_artifact(),
        ValidationSettings {
            min_changed_files: 2,
            ..ValidationSettings::default()
        },
    );
    assert_fails(&report, &[Check::ChangedFiles]);

    let mut artifact = valid_artifact();
    let base = original();
    let buggy = edit(&base, "calc/ops.py", "return a - b", "return a + b");
    let buggy = edit(
        &buggy,
        "tests/test_calc.py",
        "assert add(2, 3) == 5",
        "assert add(2, 3) == 6",
    );
    artifact.bug_patch = Patch::between(&base, &buggy).unwrap();
    let report = validate(&artifact);
    assert!(!report.checks[3].passed);
    assert_eq!(report.checks[3].files, ["tests/test_calc.py"]);
}

#[test]
fn check_5_fails_for_a_bug_no_test_notices() {
    let mut artifact = valid_artifact();
    let base = original();
    let buggy = edit(
        &base,
        "calc/util.py",
        "max(lo, min(x, hi))",
        "min(hi, max(x, lo))",
    );
    artifact.bug_patch = Patch::between(&base, &buggy).unwrap();
    let report = validate(&artifact);
    assert!(!report.checks[4].passed, "{report:#?}");
    assert!(report.fail_to_pass.is_empty());
}

#[test]
fn check_6_fails_for_a_weakening_that_hides_nothing() {
    let mut artifact = valid_artifact();
    let base = original();
    let buggy = edit(&base, "calc/ops.py", "return a - b", "return a + b");
    let weakened = edit(
        &buggy,
        "tests/test_calc.py",
        "assert mul(4, 3) == 12",
        "assert mul(4, 3) > 0",
    );
    artifact.test_patch = Patch::between(&buggy, &weakened).unwrap();
    let report = validate(&artifact);
    assert_fails(&report, &[Check::WeakeningHides]);
}

#[test]
fn check_7_fails_for_a_decorative_file() {
    let mut artifact = valid_artifact();
    let base = original();
    let buggy = edit(&base, "calc/ops.py", "return a - b", "return a + b");
    let buggy = edit(
        &buggy,
        "calc/util.py",
        "max(lo, min(x, hi))",
        "min(hi, max(x, lo))",
    );
    artifact.bug_patch = Patch::between(&base, &buggy).unwrap();
    let report = validate(&artifact);
    assert_fails(&report, &[Check::InverseMutation]);
    assert_eq!(report.checks[6].files, ["calc/util.py"]);
}

#[test]
fn patches_that_do_not_apply_fail_checks_instead_of_crashing() {
    let mut artifact = valid_artifact();
    let elsewhere = common::repo(&[("calc/ops.py", "def other():\n    pass\n")]);
    let changed = common::repo(&[("calc/ops.py", "def other():\n    return 1\n")]);
    artifact.bug_patch = Patch::between(&elsewhere, &changed).unwrap();
    let report = validate(&artifact);
    assert!(!report.valid);
    assert!(
        report.checks[3].detail.contains("does not apply"),
        "{report:#?}"
    );
    assert!(report.checks[3].detail.contains("calc/ops.py"));
}

#[test]
fn a_test_command_that_times_out_is_a_failed_check() {
    let mut artifact = valid_artifact();
    artifact.test_command.args = vec!["-c".into(), "while True: pass".into()];
    let report = validate_with(
        &artifact,
        ValidationSettings {
            test_timeout: std::time::Duration::from_millis(500),
            ..ValidationSettings::default()
        },
    );
    assert!(!report.valid);
    assert!(report.checks[2].detail.contains("timeout"), "{report:#?}");
}

#[test]
fn diffs_are_accepted_by_git_apply() {
    let base = original();
    let artifact = valid_artifact();
    let buggy = artifact.bug_patch.apply(&base).unwrap();
    let weakened = artifact.test_patch.apply(&buggy).unwrap();
    // A creation and a deletion too.
    let changed = weakened
        .with_changes(&[
            spar::snapshot::FileChange::Written {
                path: "calc/new.py".into(),
                contents: b"X = 1".to_vec().into(),
            },
            spar::snapshot::FileChange::Deleted {
                path: "calc/util.py".into(),
            },
        ])
        .unwrap();
    let patch = Patch::between(&base, &changed).unwrap();
    let dir = std::env::temp_dir().join(format!("spar-gitapply-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let write = |tree: &Snapshot| {
        let _ = std::fs::remove_dir_all(&dir);
        for (path, contents) in tree.files() {
            let target = dir.join(path);
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::write(target, &*contents).unwrap();
        }
        std::fs::write(dir.join("change.diff"), patch.to_string()).unwrap();
    };
    let git_apply = |extra: &[&str]| {
        let out = Command::new("git")
            .args(["apply", "--check"])
            .args(extra)
            .arg("change.diff")
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git apply {extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    write(&base);
    git_apply(&[]);
    // git's result equals spar's.
    let out = Command::new("git")
        .args(["apply", "change.diff"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::remove_file(dir.join("change.diff")).unwrap();
    let (applied, _) = Snapshot::from_dir(&dir).unwrap();
    assert_eq!(applied.content_hash(), changed.content_hash());
    write(&changed);
    git_apply(&["-R"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn runs_persist_on_disk_across_validators() {
    let dir = std::env::temp_dir().join(format!("spar-disk-memo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let artifact = valid_artifact();
    let first = Validator::new(ValidationSettings::default()).with_disk_memo(dir.clone());
    let a = first
        .validate(
            common::python(),
            &artifact,
            &original(),
            &PythonRun::default(),
        )
        .unwrap();
    assert!(first.runs_executed() > 0);
    let args = vec!["-c".to_owned(), "print('hi')".to_owned()];
    let (tool, cached) = first
        .tool_run(common::python(), &original(), &args, &PythonRun::default())
        .unwrap();
    assert!(!cached);
    assert_eq!(tool.text, "hi\n");

    // A second validator (another process, as far as it knows) runs nothing.
    let second = Validator::new(ValidationSettings::default()).with_disk_memo(dir.clone());
    let b = second
        .validate(
            common::python(),
            &artifact,
            &original(),
            &PythonRun::default(),
        )
        .unwrap();
    assert_eq!(second.runs_executed(), 0);
    assert_eq!(a.fail_to_pass, b.fail_to_pass);
    assert_eq!(a.pass_to_pass, b.pass_to_pass);
    assert!(b.valid);
    let (again, cached) = second
        .tool_run(common::python(), &original(), &args, &PythonRun::default())
        .unwrap();
    assert!(cached);
    assert_eq!(again.text, "hi\n");

    // A corrupt entry is a miss, not an error.
    for entry in walk(&dir.join("tool")) {
        std::fs::write(entry, b"{not json").unwrap();
    }
    let third = Validator::new(ValidationSettings::default()).with_disk_memo(dir.clone());
    let (rerun, cached) = third
        .tool_run(common::python(), &original(), &args, &PythonRun::default())
        .unwrap();
    assert!(!cached);
    assert_eq!(rerun.text, "hi\n");
    std::fs::remove_dir_all(&dir).ok();
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
