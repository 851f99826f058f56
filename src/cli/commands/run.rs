//! `spar run`: any python command line in the sandbox, from the repository's root.

use crate::cli::args::RunArgs;
use crate::cli::context::{load_repo, Context};
use crate::cli::output::print_json;
use crate::guest::{Python, PythonRun};
use crate::sandbox::Outcome;
use crate::snapshot::Snapshot;
use crate::testrun::RunReport;
use std::io::Write;
use std::process::ExitCode;

/// Exit status of `spar run` when the guest hit a limit instead of exiting.
pub const EXIT_LIMIT: u8 = 124;
/// Exit status of `spar run` when spar itself failed (the guest's own codes pass through).
pub const EXIT_HARNESS: u8 = 125;

/// `spar run`, resolved.
pub struct Run {
    repo: Snapshot,
    args: Vec<String>,
    options: PythonRun,
    json: bool,
    python: Python,
}

impl Run {
    /// Checks the limits and reads the repository, then starts the runtime.
    pub fn resolve(ctx: &Context, args: &RunArgs) -> anyhow::Result<Run> {
        Ok(Run {
            options: args.limits.resolve()?,
            repo: load_repo(&args.repo)?,
            args: args.args.clone(),
            json: args.json,
            python: ctx.python()?,
        })
    }

    /// Runs the command line; the guest's exit status passes through as a POSIX shell reports
    /// it, and a limit the guest hit is [`EXIT_LIMIT`].
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let result = self.python.run(&self.repo, &self.args, &self.options)?;
        let report = RunReport::from_result(&result);
        if self.json {
            print_json(&report)?;
        } else {
            std::io::stdout().write_all(&result.stdout)?;
            std::io::stderr().write_all(report.stderr.as_bytes())?;
        }
        Ok(match (report.outcome, report.exit_code) {
            // The low 8 bits, as a shell has them (`sys.exit(300)` is 44, -1 is 255).
            (Outcome::Completed, Some(code)) => ExitCode::from((code & 0xFF) as u8),
            (outcome, _) => {
                if !self.json {
                    eprintln!("spar: the guest was stopped: {}", outcome.as_str());
                }
                ExitCode::from(EXIT_LIMIT)
            }
        })
    }
}
