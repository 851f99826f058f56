//! The SSR protocol: bug artifacts, their seven consistency checks, the solver's specification
//! prompt and the export of validated artifacts as SWE-bench-style task instances.
//!
//! The protocol is described in `shared/docs/ssr-protocol.md` (Self-play SWE-RL, Meta FAIR,
//! Dec 2025). Everything here is independent of who wrote an artifact: spar's own injectors, an
//! LLM or a person produce the same five-part directory, and [`validate`] judges them alike.

pub mod artifact;
pub mod export;
pub mod validate;

pub use artifact::{ArtifactError, ArtifactMeta, BugArtifact};
pub use validate::{Check, CheckResult, ValidationReport, ValidationSettings, Validator};

/// Whether a repository path is a test file by the conventions pytest and unittest share:
/// `test_*.py`, `*_test.py`, `conftest.py`, or any Python file under a `tests`/`test` directory.
pub fn is_test_path(path: &str) -> bool {
    let mut parts: Vec<&str> = path.split('/').collect();
    let Some(name) = parts.pop() else {
        return false;
    };
    if !name.ends_with(".py") {
        return false;
    }
    name.starts_with("test_")
        || name.ends_with("_test.py")
        || name == "conftest.py"
        || parts
            .iter()
            .any(|d| *d == "tests" || *d == "test" || *d == "testing")
}

/// The file part of a pytest-style test id (`tests/test_x.py::C::m` -> `tests/test_x.py`).
pub fn test_file_of(test_id: &str) -> &str {
    test_id.split("::").next().unwrap_or(test_id)
}

/// The solver's task statement: the protocol's fixed template around the reversed
/// test-weakening patch, which restores the tests the bug breaks, and the command that grades
/// it (as [`crate::testrun::TestCommand::for_agents`] writes it). No natural-language issue.
pub fn specification(restoring_patch: &str, test_command: &str) -> String {
    format!(
        "I am improving the test suite of this repository. The patch below adds tests that \
         the current code does not pass:\n\n```diff\n{restoring_patch}```\n\n\
         The tests in this patch are correct, but the current code does not pass the tests. \
         Please fix the code so that these tests pass, without changing the tests. The tests \
         are run from the repository root (/repo) with `{test_command}`.\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_paths() {
        for yes in [
            "tests/test_a.py",
            "test_a.py",
            "pkg/a_test.py",
            "tests/helpers.py",
            "conftest.py",
        ] {
            assert!(is_test_path(yes), "{yes}");
        }
        for no in [
            "pkg/a.py",
            "pkg/testing.txt",
            "tests/data.json",
            "pkg/contest.py",
        ] {
            assert!(!is_test_path(no), "{no}");
        }
        assert_eq!(test_file_of("tests/t.py::C::m[1]"), "tests/t.py");
    }
}
