//! `spar validate`: the seven SSR consistency checks on a bug artifact directory.

use crate::cli::args::ValidateArgs;
use crate::cli::context::Context;
use crate::cli::output::{print_json, status};
use crate::guest::{Python, PythonRun};
use crate::protocol::{BugArtifact, ValidationReport, Validator};
use crate::snapshot::Snapshot;
use anyhow::Context as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `spar validate`, resolved.
pub struct Validate {
    dir: PathBuf,
    artifact: BugArtifact,
    original: Snapshot,
    run: PythonRun,
    validator: Validator,
    json: bool,
    python: Python,
}

impl Validate {
    /// Loads the artifact and its repository (`--repo`, else its project in the corpus),
    /// warning when the artifact was made on other contents.
    pub fn resolve(ctx: &Context, args: &ValidateArgs) -> anyhow::Result<Validate> {
        let artifact = BugArtifact::load(&args.artifact)?;
        let python = ctx.python()?;
        let (original, run) = match &args.repo {
            Some(dir) => {
                let (repo, _) = Snapshot::from_dir(dir)
                    .with_context(|| format!("reading {}", dir.display()))?;
                (repo, PythonRun::default())
            }
            None => {
                let project = ctx.open_project(&artifact.meta.project)?;
                (project.repo, project.run)
            }
        };
        if original.content_hash() != artifact.meta.base_snapshot {
            eprintln!(
                "spar: warning: the repository's content hash {} differs from the artifact's base_snapshot {}; the patches may not apply",
                &original.content_hash()[..12],
                // The artifact is untrusted text: cut by characters, not bytes.
                artifact.meta.base_snapshot.chars().take(12).collect::<String>()
            );
        }
        Ok(Validate {
            dir: args.artifact.clone(),
            artifact,
            original,
            run,
            validator: Validator::new(args.thresholds.resolve()),
            json: args.json,
            python,
        })
    }

    /// Runs the checks; exit status 1 when the artifact is invalid.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let report =
            self.validator
                .validate(&self.python, &self.artifact, &self.original, &self.run)?;
        if self.json {
            print_json(&report)?;
        } else {
            print_validation(&self.dir, &report);
        }
        Ok(status(report.valid))
    }
}

/// The seven checks of a validation, one line each with its evidence, and the verdict.
fn print_validation(dir: &Path, report: &ValidationReport) {
    for (i, check) in report.checks.iter().enumerate() {
        println!(
            "{} {}. {:<17} {}",
            if check.passed { "pass" } else { "FAIL" },
            i + 1,
            check.check.as_str(),
            check.detail
        );
        for file in &check.files {
            println!("         file  {file}");
        }
        for test in check.tests.iter().take(10) {
            println!("         test  {test}");
        }
        if check.tests.len() > 10 {
            println!(
                "         ... {} more (--json lists all)",
                check.tests.len() - 10
            );
        }
    }
    println!(
        "{}: {} · {} test runs ({} from the memo) · {:.0} ms",
        dir.display(),
        if report.valid { "VALID" } else { "INVALID" },
        report.test_runs,
        report.memo_hits,
        report.duration_ms
    );
}
