//! spar's built-in bug injectors: procedural mutations, code removal, history reverts, and the
//! paper's best mix of removal and history.
//!
//! Every strategy proposes candidate buggy states of a corpus project; the pipeline then runs
//! the project's suite on each (in the sandbox, memoized), keeps candidates that break tests,
//! weakens the visible tests by deleting the failing test functions (never commenting them
//! out), writes the five-part artifact and runs the seven checks. Only valid artifacts are
//! written; every discarded candidate is counted with the reason, per strategy.
//!
//! Sites come from coverage measured in the guest (`spar_cover`), so mutations land on lines
//! the tests execute. The same project, strategy and seed give the same artifacts.

pub mod history;

use crate::bytes::SharedBytes;
use crate::corpus::OpenProject;
use crate::diff::Patch;
use crate::guest::{GuestError, Python, PythonRun};
use crate::protocol::validate::{Oracle, OracleRun, ValidationError};
use crate::protocol::{
    is_test_path, test_file_of, ArtifactMeta, BugArtifact, ValidationReport, Validator,
};
use crate::pyedit::{self, TestRef};
use crate::snapshot::{FileChange, Snapshot};
use crate::testrun::{Runner, TestCommand, TestStatus};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// How candidate bugs are made.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Mutation operators on the parse tree, at covered sites.
    Procedural,
    /// A whole function body or code hunk removed; the solver must re-implement it.
    Removal,
    /// A real past change to code reverted (projects imported from git).
    History,
    /// Removal or history, 50/50 per artifact (procedural where there is no history).
    Mixed,
}

impl Strategy {
    /// The strategy's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Procedural => "procedural",
            Strategy::Removal => "removal",
            Strategy::History => "history",
            Strategy::Mixed => "mixed",
        }
    }
}

/// Errors that stop an injection session (a bad candidate is counted, not an error).
#[derive(Debug, thiserror::Error)]
pub enum InjectError {
    /// The original repository's suite does not pass, so no bug could be told apart.
    #[error("{project}: no test passes on the original repository ({detail})")]
    NoPassingTests {
        /// Name of the project whose baseline run had no passing test.
        project: String,
        /// The run's outcome.
        detail: String,
    },
    /// History was asked for but the project has none.
    #[error("{0}: the history strategy needs a project imported from git, with its history")]
    NoHistory(String),
    /// The history could not be read.
    #[error(transparent)]
    History(#[from] history::HistoryError),
    /// Coverage could not be measured.
    #[error("measuring coverage in the guest: no coverage written (outcome {outcome}): {stderr}")]
    Coverage {
        /// How the coverage run ended.
        outcome: &'static str,
        /// The last line of its stderr.
        stderr: String,
    },
    /// The coverage the guest wrote does not parse.
    #[error("reading the coverage the guest wrote")]
    CoverageReport(#[source] serde_json::Error),
    /// The guest failed.
    #[error(transparent)]
    Guest(#[from] GuestError),
    /// A test run failed as a harness error.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// Writing an artifact failed.
    #[error(transparent)]
    Artifact(#[from] crate::protocol::ArtifactError),
}

/// What to inject.
#[derive(Clone, Debug)]
pub struct InjectSettings {
    /// How candidates are made; [`Strategy::Mixed`] draws on two concrete strategies.
    pub strategy: Strategy,
    /// How many valid artifacts to write.
    pub count: usize,
    /// Seed of the candidate order.
    pub seed: u64,
    /// Give up after this many candidates (default 40 per requested artifact).
    pub max_candidates: usize,
    /// Where artifacts go (one directory each, named by [`BugArtifact::id`]).
    pub out: PathBuf,
}

/// Counts for one strategy.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Yield {
    /// Candidates tried.
    pub proposed: usize,
    /// Candidates that broke no test.
    pub no_failing_test: usize,
    /// Candidates whose failures the weakening could not hide.
    pub weakening_failed: usize,
    /// Artifacts that failed a consistency check.
    pub invalid: usize,
    /// Valid artifacts written.
    pub valid: usize,
    /// Total validation time of artifacts that reached validation, ms.
    pub validation_ms: f64,
    /// Artifacts that reached validation.
    pub validated: usize,
}

/// One written artifact.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Written {
    /// Where its parts were written: [`InjectSettings::out`] joined with [`BugArtifact::id`].
    pub dir: PathBuf,
    /// The concrete strategy that made it (never [`Strategy::Mixed`]).
    pub strategy: Strategy,
    /// Tests it breaks.
    pub fail_to_pass: usize,
    /// Validation time, ms.
    pub validation_ms: f64,
}

/// What an injection session did.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct InjectReport {
    /// Name of the project injected into.
    pub project: String,
    /// Artifacts written, in order.
    pub artifacts: Vec<Written>,
    /// Counts per concrete strategy.
    pub yields: BTreeMap<Strategy, Yield>,
    /// Test-command runs executed in the guest (memo hits excluded).
    pub test_runs: usize,
    /// Wall time, ms.
    pub duration_ms: f64,
}

/// File name of the validation report written beside each artifact's parts.
pub const VALIDATION: &str = "validation.json";

/// A proposed buggy state.
#[derive(Clone, Debug)]
struct Candidate {
    strategy: Strategy,
    state: Snapshot,
    notes: Vec<String>,
}

/// A small deterministic generator (SplitMix64): candidate order must depend on the seed
/// alone, on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// Lines each repository file executes while the suite runs, measured in the guest.
pub fn coverage(
    python: &Python,
    project: &OpenProject,
) -> Result<BTreeMap<String, BTreeSet<u32>>, InjectError> {
    const OUT: &str = "/tmp/spar-coverage.json";
    let mut args = vec!["-m".to_owned(), "spar_cover".to_owned(), OUT.to_owned()];
    args.extend(project.test_command.args.iter().cloned());
    let result = python.run(&project.repo, &args, &project.run)?;
    let data = result
        .fs
        .snapshot_of("/tmp")
        .and_then(|tmp| tmp.file("spar-coverage.json"))
        .ok_or_else(|| {
            let stderr = String::from_utf8_lossy(&result.stderr);
            InjectError::Coverage {
                outcome: result.outcome.as_str(),
                stderr: stderr.lines().last().unwrap_or_default().to_owned(),
            }
        })?;
    serde_json::from_slice(&data).map_err(InjectError::CoverageReport)
}

/// The project's code files (Python, not tests) as text.
fn code_files(repo: &Snapshot) -> Vec<(String, String)> {
    repo.files()
        .into_iter()
        .filter(|(p, _)| p.ends_with(".py") && !is_test_path(p) && !p.ends_with("setup.py"))
        .filter_map(|(p, c)| Some((p, String::from_utf8(c.to_vec()).ok()?)))
        .collect()
}

fn with_file(repo: &Snapshot, path: &str, text: String) -> Snapshot {
    repo.with_changes(&[FileChange::Written {
        path: path.to_owned(),
        contents: SharedBytes::from(text.into_bytes()),
    }])
    .unwrap_or_else(|_| repo.clone())
}

fn procedural_candidates(
    project: &OpenProject,
    covered: &BTreeMap<String, BTreeSet<u32>>,
    files_per_bug: usize,
    rng: &mut Rng,
) -> Vec<Candidate> {
    // Per file, the covered mutation sites.
    let mut per_file: Vec<(String, String, Vec<pyedit::Mutation>)> = Vec::new();
    for (path, text) in code_files(&project.repo) {
        let Some(lines) = covered.get(&path) else {
            continue;
        };
        let Ok(mut muts) = pyedit::mutations(&text) else {
            continue;
        };
        muts.retain(|m| lines.contains(&m.line));
        rng.shuffle(&mut muts);
        if !muts.is_empty() {
            per_file.push((path, text, muts));
        }
    }
    let mut out = Vec::new();
    if per_file.len() < files_per_bug.max(1) {
        return out;
    }
    // Round-robin over operators keeps one abundant operator from crowding out the rest.
    let mut all: Vec<(usize, pyedit::Mutation)> = per_file
        .iter()
        .enumerate()
        .flat_map(|(i, (_, _, m))| m.iter().cloned().map(move |m| (i, m)))
        .collect();
    rng.shuffle(&mut all);
    let mut by_op: BTreeMap<pyedit::Operator, Vec<(usize, pyedit::Mutation)>> = BTreeMap::new();
    for (i, m) in all {
        by_op.entry(m.operator).or_default().push((i, m));
    }
    let mut order = Vec::new();
    while by_op.values().any(|v| !v.is_empty()) {
        for v in by_op.values_mut() {
            if let Some(x) = v.pop() {
                order.push(x);
            }
        }
    }
    for (first_file, first) in order {
        let mut picks = vec![(first_file, first)];
        // Further mutations in other files, to reach the requested number of files.
        let mut others: Vec<usize> = (0..per_file.len()).filter(|i| *i != first_file).collect();
        rng.shuffle(&mut others);
        for i in others.into_iter().take(files_per_bug.saturating_sub(1)) {
            let muts = &per_file[i].2;
            picks.push((i, muts[rng.below(muts.len())].clone()));
        }
        let mut state = project.repo.clone();
        let mut notes = Vec::new();
        for (i, m) in &picks {
            let (path, text, _) = &per_file[*i];
            state = with_file(&state, path, m.edit.apply(text));
            notes.push(format!(
                "{} at {path}:{} in {}",
                m.operator.as_str(),
                m.line,
                m.enclosing_function.as_deref().unwrap_or("<module>")
            ));
        }
        out.push(Candidate {
            strategy: Strategy::Procedural,
            state,
            notes,
        });
    }
    out
}

fn removal_candidates(
    project: &OpenProject,
    covered: &BTreeMap<String, BTreeSet<u32>>,
    rng: &mut Rng,
) -> Vec<Candidate> {
    let mut out = Vec::new();
    for (path, text) in code_files(&project.repo) {
        let Some(lines) = covered.get(&path) else {
            continue;
        };
        let Ok(removals) = pyedit::removals(&text) else {
            continue;
        };
        for r in removals {
            if !(r.first_line..=r.last_line).any(|l| lines.contains(&l)) {
                continue;
            }
            out.push(Candidate {
                strategy: Strategy::Removal,
                state: with_file(&project.repo, &path, r.edit.apply(&text)),
                notes: vec![format!(
                    "removed {:?} of {} at {path}:{}-{}",
                    r.kind, r.qualname, r.first_line, r.last_line
                )],
            });
        }
    }
    rng.shuffle(&mut out);
    out
}

fn history_candidates(project: &OpenProject, rng: &mut Rng) -> Result<Vec<Candidate>, InjectError> {
    let Some(git_dir) = &project.git_dir else {
        return Ok(Vec::new());
    };
    let mut out: Vec<Candidate> = history::candidates(git_dir, &project.repo)?
        .into_iter()
        .map(|c| Candidate {
            strategy: Strategy::History,
            state: c.state,
            notes: vec![format!(
                "reverted {} ({})",
                &c.commit[..10.min(c.commit.len())],
                c.summary
            )],
        })
        .collect();
    rng.shuffle(&mut out);
    Ok(out)
}

/// The test command an artifact runs: the project's runner restricted to the oracle files
/// (pytest takes them as arguments; unittest discovery runs whole and is filtered).
pub fn oracle_command(project: &OpenProject, test_files: &[String]) -> TestCommand {
    let mut command = project.test_command.clone();
    if command.runner == Runner::Pytest {
        command.args.retain(|a| {
            a.starts_with('-')
                || project.repo.get(a.trim_end_matches('/')).is_none()
                || a == "pytest"
        });
        command.args.extend(test_files.iter().cloned());
    }
    command
}

/// Test references for deleting `tests` (pytest-style ids) from their files.
fn test_refs(tests: &[String]) -> BTreeMap<String, Vec<TestRef>> {
    let mut out: BTreeMap<String, Vec<TestRef>> = BTreeMap::new();
    for id in tests {
        let mut parts: Vec<&str> = id.split("::").collect();
        if parts.len() < 2 {
            continue;
        }
        let file = parts.remove(0);
        let name = parts.pop().unwrap_or_default();
        let name = name.split('[').next().unwrap_or(name).to_owned();
        let class_name = parts.last().map(|c| c.to_string());
        let refs = out.entry(file.to_owned()).or_default();
        if !refs
            .iter()
            .any(|r| r.name == name && r.class_name == class_name)
        {
            refs.push(TestRef { class_name, name });
        }
    }
    out
}

/// Builds the artifact for a candidate, or says why it is discarded.
enum Built {
    Artifact(Box<BugArtifact>),
    NoFailingTest,
    WeakeningFailed,
}

/// Runs injection sessions for one project.
pub struct Injector<'a> {
    python: &'a Python,
    validator: &'a Validator,
    project: &'a OpenProject,
    all_test_files: Vec<String>,
    passing: BTreeSet<String>,
    /// The project's run options with the fuel cap changed states run under (as in
    /// [`Validator::validate`]), so that a bug that loops ends as soon there as here.
    changed_run: PythonRun,
}

impl<'a> Injector<'a> {
    /// Prepares injection into `project`: runs its suite once to know which tests pass.
    pub fn new(
        python: &'a Python,
        validator: &'a Validator,
        project: &'a OpenProject,
    ) -> Result<Self, InjectError> {
        let all_test_files: Vec<String> = project
            .repo
            .files()
            .into_iter()
            .map(|(p, _)| p)
            .filter(|p| is_test_path(p))
            .collect();
        let mut injector = Injector {
            python,
            validator,
            project,
            all_test_files,
            passing: BTreeSet::new(),
            changed_run: project.run.clone(),
        };
        let baseline = injector.full_run(&project.repo, &project.run)?;
        injector.changed_run = validator.fuel_capped(&project.run, &baseline);
        injector.passing = baseline
            .tests
            .iter()
            .filter(|(_, s)| **s == TestStatus::Passed)
            .map(|(t, _)| t.clone())
            .collect();
        if injector.passing.is_empty() {
            return Err(InjectError::NoPassingTests {
                project: project.name.clone(),
                detail: format!("{} results", baseline.tests.len()),
            });
        }
        Ok(injector)
    }

    fn full_run(&self, state: &Snapshot, run: &PythonRun) -> Result<Arc<OracleRun>, InjectError> {
        let oracle = Oracle {
            command: &self.project.test_command,
            parser: None,
            test_files: &self.all_test_files,
            run,
        };
        Ok(self.validator.run(self.python, state, &oracle)?)
    }

    fn build(&self, candidate: &Candidate, seed: u64) -> Result<Built, InjectError> {
        self.build_as(candidate, candidate.strategy.as_str(), seed)
    }

    /// Turns a buggy state that someone else made (an agent playing the injector role) into a
    /// validated artifact: the same weakening and checks as the built-in strategies. `Ok(Err)`
    /// says why there is no valid artifact.
    pub fn artifact_from_state(
        &self,
        state: &Snapshot,
        injector: &str,
        seed: u64,
    ) -> Result<Result<(BugArtifact, ValidationReport), String>, InjectError> {
        let candidate = Candidate {
            strategy: Strategy::Procedural,
            state: state.clone(),
            notes: Vec::new(),
        };
        let artifact = match self.build_as(&candidate, injector, seed)? {
            Built::Artifact(a) => *a,
            Built::NoFailingTest => return Ok(Err("the change breaks no test".into())),
            Built::WeakeningFailed => {
                return Ok(Err(
                    "deleting the broken tests does not leave the visible tests passing".into(),
                ))
            }
        };
        let report = self.validator.validate(
            self.python,
            &artifact,
            &self.project.repo,
            &self.project.run,
        )?;
        if !report.valid {
            let failed: Vec<&str> = report
                .checks
                .iter()
                .filter(|c| !c.passed)
                .map(|c| c.check.as_str())
                .collect();
            return Ok(Err(format!("failed checks: {}", failed.join(", "))));
        }
        Ok(Ok((artifact, report)))
    }

    /// Whether the visible suite of the weakened buggy repository is green: else the bug
    /// is not hidden.
    fn hides(
        &self,
        weakened: &Snapshot,
        command: &TestCommand,
        test_files: &[String],
    ) -> Result<bool, InjectError> {
        let oracle = Oracle {
            command,
            parser: None,
            test_files,
            run: &self.changed_run,
        };
        let after = self.validator.run(self.python, weakened, &oracle)?;
        let statuses = || after.tests.values();
        Ok(statuses().any(|s| *s == TestStatus::Passed)
            && statuses().all(|s| matches!(s, TestStatus::Passed | TestStatus::Skipped)))
    }

    fn build_as(
        &self,
        candidate: &Candidate,
        strategy: &str,
        seed: u64,
    ) -> Result<Built, InjectError> {
        let results = self
            .full_run(&candidate.state, &self.changed_run)?
            .tests
            .clone();
        let broken: Vec<String> = self
            .passing
            .iter()
            .filter(|t| results.get(*t) != Some(&TestStatus::Passed))
            .cloned()
            .collect();
        if broken.is_empty() {
            return Ok(Built::NoFailingTest);
        }
        let test_files: Vec<String> = broken
            .iter()
            .map(|t| test_file_of(t).to_owned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let Some(weakened) = weaken(&candidate.state, &broken) else {
            return Ok(Built::WeakeningFailed);
        };
        let command = oracle_command(self.project, &test_files);
        if !self.hides(&weakened, &command, &test_files)? {
            return Ok(Built::WeakeningFailed);
        }
        let bug_patch = match Patch::between(&self.project.repo, &candidate.state) {
            Ok(p) => p,
            Err(_) => return Ok(Built::WeakeningFailed),
        };
        let test_patch = match Patch::between(&candidate.state, &weakened) {
            Ok(p) => p,
            Err(_) => return Ok(Built::WeakeningFailed),
        };
        Ok(Built::Artifact(Box::new(BugArtifact {
            meta: ArtifactMeta {
                project: self.project.name.clone(),
                base_snapshot: self.project.repo.content_hash().to_owned(),
                injector: "spar".into(),
                strategy: strategy.into(),
                seed,
                order: 1,
                notes: candidate.notes.clone(),
            },
            bug_patch,
            test_patch,
            test_command: command,
            test_files,
            test_parser: None,
        })))
    }

    /// Proposes candidates with `settings.strategy`, keeps and writes the valid ones.
    pub fn inject(&self, settings: &InjectSettings) -> Result<InjectReport, InjectError> {
        let started = Instant::now();
        let runs_before = self.validator.runs_executed();
        let mut rng = Rng(settings.seed ^ 0x5350_4152);
        let has_history = self.project.git_dir.is_some();
        if settings.strategy == Strategy::History && !has_history {
            return Err(InjectError::NoHistory(self.project.name.clone()));
        }
        let wanted: Vec<Strategy> = match settings.strategy {
            Strategy::Mixed if has_history => vec![Strategy::Removal, Strategy::History],
            Strategy::Mixed => vec![Strategy::Removal, Strategy::Procedural],
            s => vec![s],
        };
        let order = self.candidates(&wanted, settings.max_candidates.max(1), &mut rng)?;
        let mut report = InjectReport {
            project: self.project.name.clone(),
            ..InjectReport::default()
        };
        for s in &wanted {
            report.yields.entry(*s).or_default();
        }
        let workers = self.validator.settings().workers.max(1);
        for batch in order.chunks(workers) {
            if report.artifacts.len() >= settings.count {
                break;
            }
            let outcomes = crate::par::map(batch, workers, |c| {
                self.build_and_validate(c, settings.seed)
            });
            for (candidate, outcome) in batch.iter().zip(outcomes) {
                let (built, validation) = outcome?;
                report.record(candidate.strategy, built, validation, settings)?;
            }
        }
        report.test_runs = self.validator.runs_executed() - runs_before;
        report.duration_ms = started.elapsed().as_secs_f64() * 1e3;
        Ok(report)
    }

    /// Up to `max` candidates, drawn from the `wanted` strategies' queues in a seeded order
    /// (a strategy that runs dry gives way to the others).
    fn candidates(
        &self,
        wanted: &[Strategy],
        max: usize,
        rng: &mut Rng,
    ) -> Result<Vec<Candidate>, InjectError> {
        let covered = coverage(self.python, self.project)?;
        let files_per_bug = self.validator.settings().min_changed_files.max(1);
        let mut queues: BTreeMap<Strategy, std::collections::VecDeque<Candidate>> = BTreeMap::new();
        for s in wanted {
            let list = match s {
                Strategy::Procedural => {
                    procedural_candidates(self.project, &covered, files_per_bug, rng)
                }
                Strategy::Removal => removal_candidates(self.project, &covered, rng),
                Strategy::History => history_candidates(self.project, rng)?,
                Strategy::Mixed => Vec::new(),
            };
            queues.insert(*s, list.into());
        }
        let mut order = Vec::new();
        while order.len() < max && queues.values().any(|q| !q.is_empty()) {
            let s = wanted[rng.below(wanted.len())];
            let q = queues.get_mut(&s).expect("queue per wanted strategy");
            let next = q.pop_front();
            let next = next.or_else(|| queues.values_mut().find_map(|q| q.pop_front()));
            order.extend(next);
        }
        Ok(order)
    }

    /// A candidate's artifact and, when one could be built, its validation.
    fn build_and_validate(
        &self,
        candidate: &Candidate,
        seed: u64,
    ) -> Result<(Built, Option<ValidationReport>), InjectError> {
        let built = self.build(candidate, seed)?;
        let validation = match &built {
            Built::Artifact(a) => Some(self.validator.validate(
                self.python,
                a,
                &self.project.repo,
                &self.project.run,
            )?),
            _ => None,
        };
        Ok((built, validation))
    }
}

impl InjectReport {
    /// Counts one candidate's outcome in its strategy's yield; writes it when it is valid and
    /// more artifacts are wanted.
    fn record(
        &mut self,
        strategy: Strategy,
        built: Built,
        validation: Option<ValidationReport>,
        settings: &InjectSettings,
    ) -> Result<(), InjectError> {
        let y = self.yields.entry(strategy).or_default();
        y.proposed += 1;
        match (built, validation) {
            (Built::NoFailingTest, _) => y.no_failing_test += 1,
            (Built::WeakeningFailed, _) => y.weakening_failed += 1,
            (Built::Artifact(_), None) => y.invalid += 1,
            (Built::Artifact(artifact), Some(v)) => {
                y.validated += 1;
                y.validation_ms += v.duration_ms;
                if !v.valid {
                    y.invalid += 1;
                } else if self.artifacts.len() < settings.count {
                    y.valid += 1;
                    let dir = settings.out.join(artifact.id());
                    write_artifact(&artifact, &v, &dir)?;
                    self.artifacts.push(Written {
                        dir,
                        strategy,
                        fail_to_pass: v.fail_to_pass.len(),
                        validation_ms: v.duration_ms,
                    });
                }
            }
        }
        Ok(())
    }
}

/// `state` with the `broken` tests deleted from their files (the weakening); None when a
/// file cannot be read or edited.
fn weaken(state: &Snapshot, broken: &[String]) -> Option<Snapshot> {
    let mut weakened = state.clone();
    for (file, refs) in test_refs(broken) {
        let text = state
            .file(&file)
            .and_then(|c| String::from_utf8(c.to_vec()).ok())?;
        let new = pyedit::remove_tests(&text, &refs).ok()?;
        weakened = with_file(&weakened, &file, new);
    }
    Some(weakened)
}

/// [`procedural_bug_set`] for each of `projects`, in their order, made one project a core:
/// each project's injector validates only a core's worth of candidates at a time and waits for
/// the slowest of them, so projects side by side keep the cores busy.
pub fn procedural_bug_sets(
    python: &Python,
    validator: &Validator,
    projects: &[OpenProject],
    count: usize,
    seed: u64,
    root: &Path,
) -> Result<Vec<Vec<PathBuf>>, InjectError> {
    crate::par::map(projects, crate::par::cores(), |project| {
        procedural_bug_set(python, validator, project, count, seed, root)
    })
    .into_iter()
    .collect()
}

/// `count` procedural bugs in `project` made with `seed`, as artifact directories, made once and
/// kept under `root/PROJECT-HASH-seedS-nN/` (a bug set that evaluations and training runs can
/// share). Fewer than `count` come back when the project offers fewer valid bugs.
pub fn procedural_bug_set(
    python: &Python,
    validator: &Validator,
    project: &OpenProject,
    count: usize,
    seed: u64,
    root: &Path,
) -> Result<Vec<PathBuf>, InjectError> {
    let dir = root.join(format!(
        "{}-{}-seed{seed}-n{count}",
        project.name,
        // By characters: a byte slice of a string can split a multibyte character and panic.
        project
            .repo
            .content_hash()
            .chars()
            .take(12)
            .collect::<String>(),
    ));
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| InjectError::Artifact(crate::protocol::ArtifactError::Io { path, source })
    };
    if !dir.join("complete").is_file() {
        let tmp = dir.with_extension("tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        let injector = Injector::new(python, validator, project)?;
        injector.inject(&InjectSettings {
            strategy: Strategy::Procedural,
            count,
            seed,
            max_candidates: 40 * count.max(1),
            out: tmp.clone(),
        })?;
        std::fs::write(tmp.join("complete"), b"").map_err(io(&tmp))?;
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(&tmp, &dir).map_err(io(&dir))?;
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(io(&dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// Writes an artifact and its validation report.
pub fn write_artifact(
    artifact: &BugArtifact,
    validation: &ValidationReport,
    dir: &Path,
) -> Result<(), InjectError> {
    artifact.save(dir)?;
    let path = dir.join(VALIDATION);
    let text = serde_json::to_string_pretty(validation).unwrap_or_default();
    std::fs::write(&path, text).map_err(|source| {
        InjectError::Artifact(crate::protocol::ArtifactError::Io { path, source })
    })
}

impl std::fmt::Display for InjectReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:<11} {:>8} {:>9} {:>9} {:>8} {:>6} {:>7} {:>14}",
            "STRATEGY",
            "PROPOSED",
            "NO-FAIL",
            "UNHIDDEN",
            "INVALID",
            "VALID",
            "YIELD",
            "VALIDATE ms/art"
        )?;
        for (s, y) in &self.yields {
            writeln!(
                f,
                "{:<11} {:>8} {:>9} {:>9} {:>8} {:>6} {:>6.0}% {:>14.0}",
                s.as_str(),
                y.proposed,
                y.no_failing_test,
                y.weakening_failed,
                y.invalid,
                y.valid,
                100.0 * y.valid as f64 / y.proposed.max(1) as f64,
                y.validation_ms / y.validated.max(1) as f64,
            )?;
        }
        writeln!(
            f,
            "{}: {} artifacts written · {} test runs · {:.1} s",
            self.project,
            self.artifacts.len(),
            self.test_runs,
            self.duration_ms / 1e3
        )?;
        for a in &self.artifacts {
            writeln!(
                f,
                "  {} ({} failing tests)",
                a.dir.display(),
                a.fail_to_pass
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_deterministic_and_shuffles_everything() {
        let mut a = Rng(1);
        let mut b = Rng(1);
        let mut x: Vec<u32> = (0..50).collect();
        let mut y = x.clone();
        a.shuffle(&mut x);
        b.shuffle(&mut y);
        assert_eq!(x, y);
        assert_ne!(x, (0..50).collect::<Vec<_>>());
        x.sort();
        assert_eq!(x, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn test_refs_strip_parameters_and_group_by_file() {
        let refs = test_refs(&[
            "tests/t.py::test_a[1]".into(),
            "tests/t.py::test_a[2]".into(),
            "tests/t.py::C::test_b".into(),
            "tests/u.py::test_c".into(),
            "tests/u.py".into(),
        ]);
        assert_eq!(refs.len(), 2);
        assert_eq!(refs["tests/t.py"].len(), 2);
        assert_eq!(refs["tests/t.py"][1].class_name.as_deref(), Some("C"));
        assert_eq!(refs["tests/u.py"][0].name, "test_c");
    }
}
