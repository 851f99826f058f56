//! `spar test`: a repository's test suite in the sandbox, with per-test results.

use crate::cli::args::TestArgs;
use crate::cli::context::{load_repo, Context};
use crate::cli::output::{print_json, status};
use crate::guest::{Python, PythonRun};
use crate::sandbox::Outcome;
use crate::snapshot::Snapshot;
use crate::testrun::{self, TestCommand, TestReport, TestStatus};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `spar test`, resolved.
pub struct Test {
    repo_dir: PathBuf,
    repo: Snapshot,
    command: TestCommand,
    options: PythonRun,
    json: bool,
    python: Python,
}

impl Test {
    /// Checks the limits, reads the repository and makes it importable as after
    /// `pip install -e .` (its import roots, and its metadata), then starts the runtime.
    pub fn resolve(ctx: &Context, args: &TestArgs) -> anyhow::Result<Test> {
        let mut options = args.limits.resolve()?;
        let repo = load_repo(&args.repo)?;
        options.python_path = testrun::layout::ProjectLayout::detect(&repo).guest_python_path();
        options.deps = testrun::layout::editable_metadata(&repo);
        Ok(Test {
            command: TestCommand::for_repo(&repo, args.runner, &args.extra),
            repo_dir: args.repo.clone(),
            repo,
            options,
            json: args.json,
            python: ctx.python()?,
        })
    }

    /// Runs the suite; exit status 1 when any test did not pass.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let report = testrun::run_tests(&self.python, &self.repo, &self.command, &self.options)?;
        if self.json {
            print_json(&report)?;
        } else {
            print_test_table(&self.repo_dir, &self.command, &report);
        }
        Ok(status(report.all_passed()))
    }
}

/// Per-test statuses, the totals, and the guest's last lines when there are no per-test results.
fn print_test_table(repo: &Path, command: &TestCommand, report: &TestReport) {
    let width = report
        .tests
        .keys()
        .map(|k| k.len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!("{:<8} {:<width$}", "STATUS", "TEST");
    for (id, status) in &report.tests {
        println!("{:<8} {id:<width$}", status.as_str());
    }
    let failing: Vec<&String> = report
        .tests
        .iter()
        .filter(|(_, s)| matches!(s, TestStatus::Failed | TestStatus::Error))
        .map(|(id, _)| id)
        .collect();
    println!();
    println!(
        "{}: {} via {} · outcome {} · exit {} · {} passed, {} failed, {} errors, {} skipped · {:.0} ms · fuel {}",
        repo.display(),
        report.tests.len(),
        command.runner,
        report.run.outcome.as_str(),
        report.run.exit_code.map_or("-".into(), |c| c.to_string()),
        report.passed,
        report.failed,
        report.errors,
        report.skipped,
        report.run.duration_ms,
        report.run.fuel.unwrap_or(0),
    );
    if report.tests.is_empty() || report.run.outcome != Outcome::Completed {
        println!("\nno per-test results; the guest's output ends with:");
        for stream in [&report.run.stdout, &report.run.stderr] {
            let lines: Vec<&str> = stream.lines().collect();
            for line in &lines[lines.len().saturating_sub(15)..] {
                println!("  {line}");
            }
        }
    } else if !failing.is_empty() {
        println!(
            "failing: {}",
            failing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!("(run with --json for the full log)");
    }
}
