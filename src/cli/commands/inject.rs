//! `spar inject`: validated bug artifacts for a corpus project from a built-in injector.

use crate::cli::args::InjectArgs;
use crate::cli::context::Context;
use crate::cli::output::print_json;
use crate::corpus::OpenProject;
use crate::guest::Python;
use crate::inject::{InjectSettings, Injector};
use crate::protocol::Validator;
use std::process::ExitCode;

/// `spar inject`, resolved.
pub struct Inject {
    project: OpenProject,
    settings: InjectSettings,
    validator: Validator,
    json: bool,
    python: Python,
}

impl Inject {
    /// The project and the injection settings (`--max-candidates` defaults to 40 per
    /// artifact asked for).
    pub fn resolve(ctx: &Context, args: &InjectArgs) -> anyhow::Result<Inject> {
        if args.count == 0 {
            anyhow::bail!("--count must be at least 1");
        }
        Ok(Inject {
            project: ctx.open_project(&args.corpus)?,
            settings: InjectSettings {
                strategy: args.strategy,
                count: args.count,
                seed: args.seed,
                max_candidates: args.max_candidates.unwrap_or(40 * args.count),
                out: args.out.clone(),
            },
            validator: Validator::new(args.thresholds.resolve()),
            json: args.json,
            python: ctx.python()?,
        })
    }

    /// Injects; exit status 1 when fewer valid artifacts than asked for were found.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let injector = Injector::new(&self.python, &self.validator, &self.project)?;
        let report = injector.inject(&self.settings)?;
        if self.json {
            print_json(&report)?;
        } else {
            print!("{report}");
        }
        let (found, asked) = (report.artifacts.len(), self.settings.count);
        if found >= asked {
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!("spar: only {found} of {asked} artifacts were valid; raise --max-candidates or try another strategy");
        Ok(ExitCode::FAILURE)
    }
}
