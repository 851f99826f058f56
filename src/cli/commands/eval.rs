//! `spar eval`: held-out solve@1 and solve@8 of a checkpoint next to the untrained policy and
//! baselines.

use crate::cli::args::{BugsArg, EvalArgs};
use crate::cli::context::Context;
use crate::cli::output::print_json;
use crate::corpus::{OpenProject, Split};
use crate::eval::{self, BugSet, Evaluation, Trained};
use crate::guest::Python;
use crate::protocol::Validator;
use crate::train::{PolicyChoice, TrainSettings};
use std::path::Path;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// `spar eval`, resolved.
pub struct Eval {
    projects: Vec<OpenProject>,
    checkpoint: Option<Trained>,
    evaluation: Evaluation,
    cache: PathBuf,
    json: bool,
    python: Arc<Python>,
    validator: Arc<Validator>,
}

impl Eval {
    /// The held-out projects, the checkpoint and its run's settings (its `--max-tries` and
    /// seed, unless given), then the runtime.
    pub fn resolve(ctx: &Context, args: &EvalArgs) -> anyhow::Result<Eval> {
        let BugsArg::Heldout = args.bugs;
        let projects = ctx.projects(&args.corpus, Split::Heldout, None)?;
        if args.attempts == 0 || args.per_project == 0 {
            anyhow::bail!("--attempts and --per-project must be at least 1");
        }
        let (checkpoint, run) = match &args.checkpoint {
            Some(path) => {
                let (trained, run) = trained(path)?;
                (Some(trained), run)
            }
            None => (None, None),
        };
        let evaluation = Evaluation {
            bugs: BugSet {
                per_project: args.per_project,
                seed: args.bug_seed,
            },
            attempts: args.attempts,
            max_tries: args
                .max_tries
                .or(run.as_ref().map(|s| s.max_tries))
                .unwrap_or(3),
            seed: args.seed,
            workers: args.workers.unwrap_or_else(crate::par::cores),
            untrained_seed: run.as_ref().map_or(args.seed, |s| s.seed),
            baselines: args.baselines.clone(),
        };
        let python = ctx.shared_python()?;
        Ok(Eval {
            validator: ctx.persistent_validator(&python),
            python,
            projects,
            checkpoint,
            evaluation,
            cache: ctx.runtime.cache_dir.clone(),
            json: args.json,
        })
    }

    /// Evaluates every policy on the same bugs and prints the table.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let rows = eval::evaluate_all(
            self.python,
            self.validator,
            &self.projects,
            self.checkpoint,
            &self.evaluation,
            &self.cache,
        )?;
        if self.json {
            print_json(&rows)?;
        } else {
            print!("{}", eval::table(&rows));
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// The policy at `path`: a `--policy lm` run directory, or a ranker's run, checkpoint or
/// weights file; with its run's settings when known.
fn trained(path: &Path) -> anyhow::Result<(Trained, Option<TrainSettings>)> {
    if let Ok(run) = crate::train::load_config(path) {
        if let PolicyChoice::Lm(lm) = &run.policy {
            let agents = crate::train::lm::eval_agents(path, &run, lm)?;
            return Ok((agents, Some(run)));
        }
    }
    let (net, run) = crate::train::load_policy(path)?;
    Ok((Trained::Ranker(net), run))
}
