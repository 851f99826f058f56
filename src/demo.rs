//! `spar demo`: the laptop-scale demo. First every built-in project's test suite runs in the
//! sandbox, concurrently, and is summarised; then a short self-play training run on the
//! training projects, and held-out solve rates of the policy before and after it, with the
//! learning curves drawn.

use crate::corpus::{self, CorpusError, Split};
use crate::guest::{GuestError, Python, PythonRun};
use crate::testrun::{self, Runner, TestCommand, TestReport};
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Errors that stop the demo (a failing suite does not: it shows in the summary).
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The corpus could not be read.
    #[error(transparent)]
    Corpus(#[from] CorpusError),
    /// The guest runtime failed.
    #[error(transparent)]
    Guest(#[from] GuestError),
    /// Training failed.
    #[error(transparent)]
    Train(#[from] crate::train::TrainError),
    /// Evaluation failed.
    #[error(transparent)]
    Eval(#[from] crate::eval::EvalError),
    /// The plot could not be drawn.
    #[error(transparent)]
    Plot(#[from] crate::plot::PlotError),
    /// The corpus directory holds no projects.
    #[error("no corpus projects (directories with a spar.toml) in {0}")]
    Empty(PathBuf),
}

/// What the demo runs.
#[derive(Clone, Debug)]
pub struct DemoSettings {
    /// Directory of corpus projects.
    pub corpus: PathBuf,
}

/// `./corpora` when run from a checkout, else the corpus spar was built from.
pub fn default_corpus_dir() -> PathBuf {
    let local = PathBuf::from("corpora");
    if local.is_dir() {
        local
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpora")
    }
}

/// The training and the held-out projects of the corpus directory `dir` (its projects' data
/// may live in `store`).
pub fn split_projects(
    dir: &std::path::Path,
    store: &corpus::Store,
) -> Result<(Vec<corpus::OpenProject>, Vec<corpus::OpenProject>), DemoError> {
    let mut train = Vec::new();
    let mut heldout = Vec::new();
    for p in corpus::list_projects(dir)? {
        let project = corpus::open_project(&p.manifest.name, dir, store)?;
        match project.split {
            Split::Train => train.push(project),
            Split::Heldout => heldout.push(project),
        }
    }
    Ok((train, heldout))
}

/// The demo's training run: `spar train`'s defaults, but new bugs only every 4th step (new
/// bugs are what costs sandbox time; the solver trains on the bugs found so far in between)
/// and two starting bugs a project (enough to learn from, few enough to explore in a demo's
/// time).
pub fn train_settings(
    train: &[corpus::OpenProject],
    steps: usize,
    seed: u64,
) -> crate::train::TrainSettings {
    crate::train::TrainSettings {
        projects: train.iter().map(|p| p.name.clone()).collect(),
        steps,
        seed,
        inject_every: 4,
        seed_bugs: 2,
        ..crate::train::TrainSettings::default()
    }
}

/// One project's row.
#[derive(Debug)]
pub struct ProjectRun {
    /// Project name.
    pub name: String,
    /// Whether it trains or is held out, from its `spar.toml`.
    pub split: Split,
    /// The runner used.
    pub runner: Runner,
    /// The suite's results.
    pub report: TestReport,
}

/// The demo's result.
#[derive(Debug)]
pub struct DemoSummary {
    /// One entry per project.
    pub projects: Vec<ProjectRun>,
    /// Wall time of the whole demo.
    pub wall: Duration,
}

impl DemoSummary {
    /// Whether every project's suite passed.
    pub fn all_passed(&self) -> bool {
        self.projects.iter().all(|p| p.report.all_passed())
    }
}

/// Runs every project's suite, as many at once as there are cores.
pub fn run(python: &Python, settings: &DemoSettings) -> Result<DemoSummary, DemoError> {
    let started = Instant::now();
    let projects = corpus::list_projects(&settings.corpus)?;
    if projects.is_empty() {
        return Err(DemoError::Empty(settings.corpus.clone()));
    }
    let results = crate::par::map(&projects, crate::par::cores(), |project| {
        let repo = project.snapshot()?;
        let command = TestCommand::for_repo(&repo, None, &[]);
        let report = testrun::run_tests(python, &repo, &command, &PythonRun::default())?;
        Ok::<_, DemoError>(ProjectRun {
            name: project.manifest.name.clone(),
            split: project.manifest.split,
            runner: command.runner,
            report,
        })
    });
    Ok(DemoSummary {
        projects: results.into_iter().collect::<Result<_, _>>()?,
        wall: started.elapsed(),
    })
}

impl fmt::Display for DemoSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<12} {:<8} {:<9} {:>6} {:>7} {:>7} {:>7} {:>8} {:>10} {:>14}",
            "PROJECT",
            "SPLIT",
            "RUNNER",
            "TESTS",
            "PASSED",
            "FAILED",
            "ERRORS",
            "SKIPPED",
            "TIME (ms)",
            "FUEL"
        )?;
        for p in &self.projects {
            let r = &p.report;
            writeln!(
                f,
                "{:<12} {:<8} {:<9} {:>6} {:>7} {:>7} {:>7} {:>8} {:>10.0} {:>14}",
                p.name,
                p.split.to_string(),
                p.runner.to_string(),
                r.tests.len(),
                r.passed,
                r.failed,
                r.errors,
                r.skipped,
                r.run.duration_ms,
                r.run.fuel.unwrap_or(0)
            )?;
        }
        let total: usize = self.projects.iter().map(|p| p.report.tests.len()).sum();
        let passed: usize = self.projects.iter().map(|p| p.report.passed).sum();
        writeln!(
            f,
            "\n{} projects, {passed}/{total} tests passed in the sandbox, {:.1} s wall",
            self.projects.len(),
            self.wall.as_secs_f64()
        )?;
        for p in self.projects.iter().filter(|p| !p.report.all_passed()) {
            writeln!(
                f,
                "{}: outcome {}, exit {:?}; run `spar test corpora/{}` for details",
                p.name,
                p.report.run.outcome.as_str(),
                p.report.run.exit_code,
                p.name
            )?;
        }
        Ok(())
    }
}

/// What the self-play part of the demo found.
#[derive(Debug)]
pub struct SelfPlayDemo {
    /// The training run.
    pub train: crate::train::TrainSummary,
    /// Held-out results: trained, then untrained.
    pub eval: Vec<crate::eval::EvalRow>,
    /// The learning curves.
    pub plot: PathBuf,
    /// The run directory.
    pub run_dir: PathBuf,
}

/// Trains for `settings.steps` steps on `train`, evaluates the trained and the untrained
/// policy on `heldout`'s fixed bugs, and draws the curves. `random` is left to `spar eval`: it
/// solves nothing, and its broken fixes run to the fuel cap, which made it a quarter of the
/// demo's time (98 of 378 s).
#[allow(clippy::too_many_arguments)]
pub fn self_play(
    python: std::sync::Arc<Python>,
    validator: std::sync::Arc<crate::protocol::Validator>,
    train: &[corpus::OpenProject],
    heldout: &[corpus::OpenProject],
    settings: &crate::train::TrainSettings,
    out: &std::path::Path,
    cache: &std::path::Path,
    progress: bool,
) -> Result<SelfPlayDemo, DemoError> {
    let bar = progress.then(|| crate::train::progress_bar(settings.steps));
    let summary = crate::train::train(
        python.clone(),
        validator.clone(),
        train,
        settings,
        out,
        false,
        crate::episode::EnvSettings::default(),
        |m| {
            if let Some(bar) = &bar {
                bar.set_position(m.step as u64);
                bar.set_message(format!("solve {:.0}%", 100.0 * m.solve_rate));
            }
        },
    )?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let (net, _) = crate::train::load_policy(out)?;
    let evaluation = crate::eval::Evaluation {
        // `spar eval`'s set: 8 bugs per held-out project, enough for the before/after table
        // to mean something, and cached after the first run.
        bugs: crate::eval::BugSet::default(),
        attempts: settings.attempts,
        max_tries: settings.max_tries,
        seed: settings.seed,
        workers: settings.workers,
        untrained_seed: settings.seed,
        baselines: vec!["untrained".into()],
    };
    let eval = crate::eval::evaluate_all(
        python,
        validator,
        heldout,
        Some(crate::eval::Trained::Ranker(net)),
        &evaluation,
        cache,
    )?;
    let plot = out.join("curves.svg");
    crate::plot::write_svg(
        &out.join(crate::train::METRICS),
        &plot,
        "spar demo: self-play training",
    )?;
    Ok(SelfPlayDemo {
        train: summary,
        eval,
        plot,
        run_dir: out.to_owned(),
    })
}

impl fmt::Display for SelfPlayDemo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::train::summary_table(&self.train))?;
        writeln!(
            f,
            "{} steps in {:.0} s\n\n3. Held-out bugs (never trained on), before and after training:",
            self.train.steps, self.train.wall_s
        )?;
        f.write_str(&crate::eval::table(&self.eval))?;
        writeln!(f, "\nlearning curves: {}", self.plot.display())?;
        writeln!(
            f,
            "run directory: {} (spar eval --checkpoint {} adds the random and heuristic baselines)",
            self.run_dir.display(),
            self.run_dir.display()
        )
    }
}
