//! Validated artifacts as SWE-bench-style task instances, so other tools can use what spar
//! synthesizes.
//!
//! The buggy repository an instance starts from is the original snapshot with `bug_patch` and
//! `weakening_patch` applied (spar has no git commits, so `base_snapshot` names the original by
//! content hash). `patch` is the gold fix (the bug patch reversed) and `test_patch` restores
//! the tests the weakening removed; `problem_statement` is the protocol's specification prompt.

use super::artifact::{ArtifactError, BugArtifact};
use super::validate::ValidationReport;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One SWE-bench-style instance.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[allow(non_snake_case)]
pub struct SweBenchInstance {
    /// `project__artifact-id`.
    pub instance_id: String,
    /// The corpus project.
    pub repo: String,
    /// Content hash of the original snapshot (there are no commits).
    pub base_snapshot: String,
    /// The gold fix: applied to the buggy repository, it restores the original code.
    pub patch: String,
    /// Restores the oracle tests the weakening removed.
    pub test_patch: String,
    /// Tests that fail on the buggy repository and pass once fixed.
    pub FAIL_TO_PASS: Vec<String>,
    /// Tests that pass both before and after the fix.
    pub PASS_TO_PASS: Vec<String>,
    /// The solver's specification prompt.
    pub problem_statement: String,
    /// The bug, to rebuild the buggy repository from the original.
    pub bug_patch: String,
    /// The test weakening, applied after the bug.
    pub weakening_patch: String,
    /// Oracle test files.
    pub test_files: Vec<String>,
    /// The guest test command (`python ARGS...`).
    pub test_command: Vec<String>,
    /// The strategy that made the bug.
    pub strategy: String,
    /// The bug's order (1 for first-order bugs).
    pub order: u32,
}

/// The instance for a validated artifact.
pub fn swebench_instance(
    artifact: &BugArtifact,
    validation: &ValidationReport,
) -> SweBenchInstance {
    let restoring = artifact.test_patch.reverse().to_string();
    SweBenchInstance {
        instance_id: format!("{}__{}", artifact.meta.project, artifact.id()),
        repo: artifact.meta.project.clone(),
        base_snapshot: artifact.meta.base_snapshot.clone(),
        patch: artifact.bug_patch.reverse().to_string(),
        problem_statement: super::specification(&restoring, &artifact.test_command.for_agents()),
        test_patch: restoring,
        FAIL_TO_PASS: validation.fail_to_pass.clone(),
        PASS_TO_PASS: validation.pass_to_pass.clone(),
        bug_patch: artifact.bug_patch.to_string(),
        weakening_patch: artifact.test_patch.to_string(),
        test_files: artifact.test_files.clone(),
        test_command: artifact.test_command.args.clone(),
        strategy: artifact.meta.strategy.clone(),
        order: artifact.meta.order,
    }
}

/// Any error of the validation that [`export_swebench`] is given.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why one artifact was not exported. Each is reported and the export goes on with the rest.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The artifact directory is missing a part or holds a malformed one.
    #[error("{}: not exported: {source}", dir.display())]
    Load {
        /// The artifact directory.
        dir: PathBuf,
        /// What is wrong with it.
        #[source]
        source: ArtifactError,
    },
    /// The artifact had no stored validation and could not be validated now.
    #[error("{}: not exported: it has no {} and validating it failed: {source}", dir.display(), crate::inject::VALIDATION)]
    Validate {
        /// The artifact directory.
        dir: PathBuf,
        /// Why validation could not run (its project is not in the corpus, the runtime
        /// failed, ...).
        #[source]
        source: BoxError,
    },
    /// The artifact fails validation, so it is no task instance.
    #[error("{}: not exported: it fails validation (failed checks: {})", dir.display(), failed.join(", "))]
    Invalid {
        /// The artifact directory.
        dir: PathBuf,
        /// The checks that failed.
        failed: Vec<String>,
    },
}

/// What [`export_swebench`] did.
#[derive(Debug, Default)]
pub struct ExportSummary {
    /// Instances written.
    pub exported: usize,
    /// Artifacts not exported, each with its reason, in the order met.
    pub failed: Vec<ExportError>,
}

/// Writes one SWE-bench instance (a JSON line) to `out` per artifact in `dirs` that is valid.
/// An artifact's validation comes from its stored `validation.json`, else from `validate`.
/// A bad artifact (unreadable, unvalidatable, invalid) is passed to `on_bad` as soon as it is
/// met and the export goes on; only a failure to write `out` stops it.
pub fn export_swebench(
    dirs: &[PathBuf],
    out: &mut dyn Write,
    validate: &mut dyn FnMut(&BugArtifact) -> Result<ValidationReport, BoxError>,
    on_bad: &mut dyn FnMut(&ExportError),
) -> std::io::Result<ExportSummary> {
    let mut summary = ExportSummary::default();
    for dir in dirs {
        match instance_for(dir, validate) {
            Ok(instance) => {
                serde_json::to_writer(&mut *out, &instance)?;
                writeln!(out)?;
                summary.exported += 1;
            }
            Err(e) => {
                on_bad(&e);
                summary.failed.push(e);
            }
        }
    }
    Ok(summary)
}

/// The instance for the artifact in `dir`, or why there is none.
fn instance_for(
    dir: &Path,
    validate: &mut dyn FnMut(&BugArtifact) -> Result<ValidationReport, BoxError>,
) -> Result<SweBenchInstance, ExportError> {
    let artifact = BugArtifact::load(dir).map_err(|source| ExportError::Load {
        dir: dir.to_owned(),
        source,
    })?;
    // A stored report that does not parse is treated as absent: validating again is safe.
    let stored = std::fs::read_to_string(dir.join(crate::inject::VALIDATION))
        .ok()
        .and_then(|t| serde_json::from_str::<ValidationReport>(&t).ok());
    let validation = match stored {
        Some(v) => v,
        None => validate(&artifact).map_err(|source| ExportError::Validate {
            dir: dir.to_owned(),
            source,
        })?,
    };
    if !validation.valid {
        return Err(ExportError::Invalid {
            dir: dir.to_owned(),
            failed: validation
                .checks
                .iter()
                .filter(|c| !c.passed)
                .map(|c| c.check.as_str().to_owned())
                .collect(),
        });
    }
    Ok(swebench_instance(&artifact, &validation))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Check, CheckResult};

    fn artifact(seed: u64) -> BugArtifact {
        crate::protocol::artifact::sample_artifact(seed)
    }

    fn report(valid: bool) -> ValidationReport {
        ValidationReport {
            valid,
            checks: vec![CheckResult {
                check: Check::BugBreaksTests,
                passed: valid,
                detail: "evidence".into(),
                tests: vec![],
                files: vec![],
            }],
            fail_to_pass: vec!["tests/test_m.py::test_x".into()],
            pass_to_pass: vec![],
            test_runs: 3,
            memo_hits: 0,
            duration_ms: 1.0,
            fuel: 1,
        }
    }

    fn save(root: &Path, name: &str, seed: u64, validation: Option<bool>) -> PathBuf {
        let dir = root.join(name);
        artifact(seed).save(&dir).unwrap();
        if let Some(valid) = validation {
            let json = serde_json::to_string(&report(valid)).unwrap();
            std::fs::write(dir.join(crate::inject::VALIDATION), json).unwrap();
        }
        dir
    }

    #[test]
    fn bad_artifacts_are_reported_and_the_good_ones_still_exported() {
        let root =
            std::env::temp_dir().join(format!("spar-export-{}", crate::fsutil::unique_suffix()));
        let dirs = vec![
            save(&root, "a-good", 2, Some(true)),
            save(&root, "b-invalid", 3, Some(false)),
            save(&root, "c-broken", 4, Some(true)),
            save(&root, "d-unvalidated-fails", 5, None),
            save(&root, "e-unvalidated-valid", 6, None),
        ];
        std::fs::write(
            dirs[2].join(crate::protocol::artifact::METADATA),
            "{not json",
        )
        .unwrap();

        let mut out = Vec::new();
        let mut validated = Vec::new();
        let mut validate = |a: &BugArtifact| -> Result<ValidationReport, BoxError> {
            validated.push(a.meta.seed);
            match a.meta.seed {
                5 => Err("no project named \"demo\"".into()),
                _ => Ok(report(true)),
            }
        };
        let mut reported = Vec::new();
        let summary = export_swebench(&dirs, &mut out, &mut validate, &mut |e| {
            reported.push(e.to_string())
        })
        .unwrap();

        assert_eq!(
            validated,
            [5, 6],
            "stored reports are used, the rest validated"
        );
        assert_eq!(summary.exported, 2);
        let lines: Vec<SweBenchInstance> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert!(lines
            .iter()
            .all(|i| i.FAIL_TO_PASS == ["tests/test_m.py::test_x"]));
        assert_eq!(reported.len(), 3, "{reported:?}");
        assert!(
            reported[0].contains("b-invalid") && reported[0].contains("bug_breaks_tests"),
            "{}",
            reported[0]
        );
        assert!(reported[1].contains("c-broken"), "{}", reported[1]);
        assert!(
            reported[2].contains("d-unvalidated-fails") && reported[2].contains("no project"),
            "{}",
            reported[2]
        );
        assert!(matches!(summary.failed[0], ExportError::Invalid { .. }));
        assert!(matches!(summary.failed[1], ExportError::Load { .. }));
        assert!(matches!(summary.failed[2], ExportError::Validate { .. }));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
