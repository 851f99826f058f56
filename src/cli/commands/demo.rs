//! `spar demo`: the built-in suites in the sandbox, a short self-play training run, and
//! held-out solve rates before and after it.

use crate::cli::args::DemoArgs;
use crate::cli::context::Context;
use crate::corpus::OpenProject;
use crate::demo::{self, DemoSettings};
use crate::guest::Python;
use crate::protocol::Validator;
use crate::train::TrainSettings;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// `spar demo`, resolved.
pub struct Demo {
    corpus: PathBuf,
    train: Vec<OpenProject>,
    heldout: Vec<OpenProject>,
    settings: TrainSettings,
    out: PathBuf,
    cache: PathBuf,
    progress: bool,
    python: Arc<Python>,
    validator: Arc<Validator>,
}

impl Demo {
    /// Splits the corpus, picks the demo's training settings and a fresh run directory, and
    /// starts the runtime.
    pub fn resolve(ctx: &Context, args: &DemoArgs) -> anyhow::Result<Demo> {
        let corpus = args.corpus.clone().unwrap_or_else(demo::default_corpus_dir);
        let (train, heldout) = demo::split_projects(&corpus, &ctx.store)?;
        let out = args.out.clone().unwrap_or_else(|| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let name = format!("{now}-seed{}", args.seed);
            ctx.runtime.cache_dir.join("demo-runs").join(name)
        });
        let python = ctx.shared_python()?;
        Ok(Demo {
            settings: demo::train_settings(&train, args.steps, args.seed),
            validator: ctx.persistent_validator(&python),
            python,
            corpus,
            train,
            heldout,
            out,
            cache: ctx.runtime.cache_dir.clone(),
            progress: ctx.runtime.progress,
        })
    }

    /// The three parts in order; the demo stops after the first when a suite fails.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        println!("1. The built-in corpus's test suites in the sandbox");
        let corpus = self.corpus.clone();
        let summary = demo::run(&self.python, &DemoSettings { corpus })?;
        print!("{summary}");
        if !summary.all_passed() {
            return Ok(ExitCode::FAILURE);
        }
        println!(
            "\n2. Self-play training: {} steps on {} (run directory {})",
            self.settings.steps,
            self.settings.projects.join(", "),
            self.out.display()
        );
        let report = demo::self_play(
            self.python,
            self.validator,
            &self.train,
            &self.heldout,
            &self.settings,
            &self.out,
            &self.cache,
            self.progress,
        )?;
        print!("{report}");
        Ok(ExitCode::SUCCESS)
    }
}
