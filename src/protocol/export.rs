//! Validated artifacts as SWE-bench-style task instances, so other tools can use what spar
//! synthesizes.
//!
//! The buggy repository an instance starts from is the original snapshot with `bug_patch` and
//! `weakening_patch` applied (spar has no git commits, so `base_snapshot` names the original by
//! content hash). `patch` is the gold fix (the bug patch reversed) and `test_patch` restores
//! the tests the weakening removed; `problem_statement` is the protocol's specification prompt.

use super::artifact::BugArtifact;
use super::validate::ValidationReport;
use serde::{Deserialize, Serialize};

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
        problem_statement: super::specification(&restoring),
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
