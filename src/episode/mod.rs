//! Solver episodes: a Gymnasium-shaped environment over the sandbox, grading and rewards.
//!
//! A [`Task`] is a validated bug artifact made concrete: the original repository, the buggy
//! state the solver starts from (original + bug + weakening, plus an earlier failed fix for a
//! higher-order bug), the oracle tests and the specification prompt. A [`SolverEnv`] runs one
//! attempt: [`SolverEnv::reset`] returns the specification, [`SolverEnv::step`] takes one
//! [`Action`] (the agent's tools) and returns a [`Step`] with `terminated` and `truncated`
//! reported separately. `submit` grades: the oracle test files are restored to their original
//! text (editing tests gains nothing), the artifact's test command runs, and the reward is +1
//! when every FAIL_TO_PASS and PASS_TO_PASS test passes, else -1.
//!
//! Episodes are deterministic: the guest's clock and randomness are seeded from the episode
//! seed, so the same task, seed and actions give the same observations and rewards. An
//! episode's state is a [`Snapshot`] overlay over the task's shared trees, not a copy.

pub mod agent;
pub mod record;
pub mod rewards;
pub mod tools;

use crate::corpus::OpenProject;
use crate::diff::Patch;
use crate::guest::{GuestError, Python, PythonRun};
use crate::protocol::validate::{Oracle, ValidationError};
use crate::protocol::{specification, BugArtifact, ValidationReport, Validator};
use crate::sandbox::Outcome;
use crate::snapshot::{Entry, FileChange, Snapshot};
use crate::testrun::{TestCommand, TestStatus};
pub use agent::{Agent, Assignment, View};
pub use record::{episode_seed, EpisodeRecord, EpisodeSpec};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The highest bug order: a first-order bug, plus one failed fix on top of it.
pub const MAX_ORDER: u32 = 2;

/// Errors that stop an episode: harness failures, not a solver's mistakes.
#[derive(Debug, thiserror::Error)]
pub enum EpisodeError {
    /// The artifact's patches do not apply to the original (it was not validated against it).
    #[error("building the buggy state of {task}")]
    Build {
        /// Id of the task being built (the artifact's or the instance's).
        task: String,
        /// Why the bug patch or the test weakening did not apply.
        #[source]
        source: crate::diff::DiffError,
    },
    /// The artifact did not pass validation.
    #[error("{0} is not a valid artifact")]
    Invalid(String),
    /// `step` after the episode ended, or before `reset`.
    #[error("the episode has ended; call reset to start another")]
    Ended,
    /// The guest failed.
    #[error(transparent)]
    Guest(#[from] GuestError),
    /// Turning an injector's submission into an artifact failed as a harness error.
    #[error("building the injected artifact")]
    Inject(#[source] Box<crate::inject::InjectError>),
    /// A grading run failed as a harness error.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// An artifact directory could not be read.
    #[error("reading the artifact in {dir}")]
    Load {
        /// The directory that should hold the artifact's parts.
        dir: std::path::PathBuf,
        /// What is wrong with its parts (missing, unreadable or malformed).
        #[source]
        source: Box<crate::protocol::ArtifactError>,
    },
    /// An artifact directory has no readable validation report (`spar inject` writes one).
    #[error("{path} is missing or unreadable")]
    NoValidation {
        /// The report it should hold.
        path: std::path::PathBuf,
    },
    /// A SWE-bench-style instance was made from other contents of the project it names.
    #[error("{id} was made from another snapshot of {project} ({made_from}, here {here}); export it again from this corpus")]
    InstanceSnapshot {
        /// The instance id, without its `REPO__` prefix.
        id: String,
        /// The project it names.
        project: String,
        /// The content hash it was made from.
        made_from: String,
        /// The content hash of the project here.
        here: String,
    },
    /// One of a SWE-bench-style instance's patches does not parse.
    #[error("{id}: its {field}")]
    InstancePatch {
        /// The instance id, without its `REPO__` prefix.
        id: String,
        /// The field holding the patch.
        field: &'static str,
        /// Why it does not parse.
        #[source]
        source: crate::diff::DiffError,
    },
}

/// One bug for solvers: everything an attempt needs, shared by all attempts.
#[derive(Clone, Debug)]
pub struct Task {
    /// Unique id: the artifact id, with `+hoN` for higher-order bugs.
    pub id: String,
    /// The corpus project.
    pub project: String,
    /// 1 for first-order bugs, 2 for bugs built on a failed fix.
    pub order: u32,
    /// The original repository.
    pub original: Snapshot,
    /// What the solver starts from.
    pub buggy: Snapshot,
    /// Import roots and dependencies for guest runs.
    pub run: PythonRun,
    /// The artifact's test command.
    pub command: TestCommand,
    /// The artifact's in-guest parser, if any.
    pub parser: Option<String>,
    /// Oracle test files, restored to the original's text before grading.
    pub test_files: Vec<String>,
    /// Tests that must go from failing to passing.
    pub fail_to_pass: Vec<String>,
    /// Tests that must keep passing.
    pub pass_to_pass: Vec<String>,
    /// The prompt the solver sees.
    pub specification: String,
    /// The bug (original -> original + bug); agents that know the answer use its reverse.
    pub bug_patch: Patch,
}

impl Task {
    /// A first-order task from a validated artifact.
    pub fn from_artifact(
        artifact: &BugArtifact,
        validation: &ValidationReport,
        original: Snapshot,
        run: PythonRun,
    ) -> Result<Task, EpisodeError> {
        let id = artifact.id();
        if !validation.valid {
            return Err(EpisodeError::Invalid(id));
        }
        let build = |source| EpisodeError::Build {
            task: id.clone(),
            source,
        };
        let buggy = artifact.bug_patch.apply(&original).map_err(build)?;
        let buggy = artifact.test_patch.apply(&buggy).map_err(build)?;
        Ok(Task {
            project: artifact.meta.project.clone(),
            order: artifact.meta.order.max(1),
            specification: specification(&artifact.test_patch.reverse().to_string()),
            original,
            buggy,
            run,
            command: artifact.test_command.clone(),
            parser: artifact.test_parser.clone(),
            test_files: artifact.test_files.clone(),
            fail_to_pass: validation.fail_to_pass.clone(),
            pass_to_pass: validation.pass_to_pass.clone(),
            bug_patch: artifact.bug_patch.clone(),
            id,
        })
    }

    /// A first-order task from a SWE-bench-style instance that `spar export` wrote, over
    /// `project` (its `repo`). The instance must have been made from this very snapshot of the
    /// project: its `base_snapshot` is checked.
    pub fn from_instance(
        instance: &crate::protocol::export::SweBenchInstance,
        project: &crate::corpus::OpenProject,
    ) -> Result<Task, EpisodeError> {
        let id = instance
            .instance_id
            .strip_prefix(&format!("{}__", instance.repo))
            .unwrap_or(&instance.instance_id)
            .to_owned();
        let base = project.repo.content_hash();
        if instance.base_snapshot != base {
            return Err(EpisodeError::InstanceSnapshot {
                id,
                project: project.name.clone(),
                made_from: instance.base_snapshot.clone(),
                here: base.to_owned(),
            });
        }
        let parse = |field: &'static str, text: &str| {
            Patch::parse(text).map_err(|source| EpisodeError::InstancePatch {
                id: id.clone(),
                field,
                source,
            })
        };
        let bug_patch = parse("bug_patch", &instance.bug_patch)?;
        let weakening = parse("weakening_patch", &instance.weakening_patch)?;
        let build = |source| EpisodeError::Build {
            task: id.clone(),
            source,
        };
        let buggy = bug_patch.apply(&project.repo).map_err(build)?;
        let buggy = weakening.apply(&buggy).map_err(build)?;
        // The instance keeps the arguments; the runner and its module prefix are the project's.
        let command = crate::testrun::TestCommand {
            args: instance.test_command.clone(),
            ..project.test_command.clone()
        };
        Ok(Task {
            project: project.name.clone(),
            order: instance.order.max(1),
            original: project.repo.clone(),
            buggy,
            run: project.run.clone(),
            command,
            parser: None,
            test_files: instance.test_files.clone(),
            fail_to_pass: instance.FAIL_TO_PASS.clone(),
            pass_to_pass: instance.PASS_TO_PASS.clone(),
            specification: instance.problem_statement.clone(),
            bug_patch,
            id,
        })
    }

    /// A higher-order task: this bug plus a failed attempt's changes. It reuses this task's
    /// tests and specification and is not re-validated. `None` beyond [`MAX_ORDER`], or when
    /// the attempt changed no code.
    pub fn higher_order(&self, failed_state: &Snapshot, attempt: usize) -> Option<Task> {
        if self.order >= MAX_ORDER {
            return None;
        }
        // The visible tests stay as the solver found them; only its code changes carry over.
        let code_changes: Vec<FileChange> = failed_state
            .changes_from(&self.buggy)
            .into_iter()
            .filter(|c| !self.test_files.iter().any(|t| t == c.path()))
            .collect();
        if code_changes.is_empty() {
            return None;
        }
        let buggy = self.buggy.with_changes(&code_changes).ok()?;
        let mut task = self.clone();
        task.order += 1;
        task.id = format!("{}+ho{attempt}", self.id);
        task.buggy = buggy;
        Some(task)
    }

    /// The state graded for a solver's final `state`: the oracle test files restored to the
    /// original's text (or removed if the original lacks them).
    /// Whatever the solver put at a test file's path or above it (a directory there, a file
    /// where a parent directory belongs) is removed first, so the restore always applies: a
    /// solver cannot keep its own test files by blocking theirs.
    pub fn grading_state(&self, state: &Snapshot) -> Snapshot {
        let mut restore: Vec<FileChange> = Vec::new();
        for path in &self.test_files {
            let ancestors = path.match_indices('/').map(|(at, _)| &path[..at]);
            for ancestor in ancestors.filter(|a| state.file(a).is_some()) {
                restore.push(FileChange::Deleted {
                    path: ancestor.to_owned(),
                });
            }
            restore.push(FileChange::Deleted { path: path.clone() });
            if let Some(contents) = self.original.file(path) {
                restore.push(FileChange::Written {
                    path: path.clone(),
                    contents,
                });
            }
        }
        // Deletions run first and clear every path the restore writes, so this fails only for
        // a test path the snapshot refuses; then the unrepaired bug is graded, never the
        // solver's own tests.
        state
            .with_changes(&restore)
            .unwrap_or_else(|_| self.buggy.clone())
    }

    /// Runs the oracle on the grading state of `state`: +1 when every FAIL_TO_PASS and
    /// PASS_TO_PASS test passes, else -1, with the tests that did not pass.
    pub fn grade(
        &self,
        python: &Python,
        validator: &Validator,
        state: &Snapshot,
    ) -> Result<Grade, EpisodeError> {
        let graded = self.grading_state(state);
        let oracle = Oracle {
            command: &self.command,
            parser: self.parser.as_deref(),
            test_files: &self.test_files,
            run: &self.run,
        };
        let (result, from_memo) = validator.run_noting_memo(python, &graded, &oracle)?;
        let not_passing: Vec<String> = self
            .fail_to_pass
            .iter()
            .chain(&self.pass_to_pass)
            .filter(|t| result.tests.get(*t) != Some(&TestStatus::Passed))
            .cloned()
            .collect();
        Ok(Grade {
            solved: not_passing.is_empty() && result.outcome == Outcome::Completed,
            not_passing,
            fuel: result.fuel,
            from_memo,
        })
    }
}

/// The verdict on a submission.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grade {
    /// Every FAIL_TO_PASS and PASS_TO_PASS test passed.
    pub solved: bool,
    /// Those that did not.
    pub not_passing: Vec<String>,
    /// Fuel of the grading run.
    pub fuel: u64,
    /// The grading state had been run before (by validation or another attempt): no new run.
    pub from_memo: bool,
}

/// The solver's tools: one call per step. The JSON form is `{"tool": "read_file", ...}`, one to
/// one with an LLM's function calls.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "tool", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// List a directory (`""` or `.` is the repository root).
    ListDir {
        /// Repository-relative directory.
        path: String,
    },
    /// Read a file, optionally only lines `start..=end` (1-based).
    ReadFile {
        /// Repository-relative file.
        path: String,
        /// First line (1-based).
        #[serde(default)]
        start: Option<usize>,
        /// Last line, inclusive.
        #[serde(default)]
        end: Option<usize>,
    },
    /// Search the repository's text files with a regular expression.
    Search {
        /// The pattern (Rust regex syntax, which for common use is Python's).
        pattern: String,
        /// Only files under this path.
        #[serde(default)]
        path: Option<String>,
    },
    /// Replace the one occurrence of `old` in a file with `new`.
    Edit {
        /// Repository-relative file.
        path: String,
        /// Text that occurs exactly once in the file.
        old: String,
        /// The text put in `old`'s place (empty deletes it).
        new: String,
    },
    /// Create a file, or replace one's whole contents.
    Create {
        /// Repository-relative file.
        path: String,
        /// The whole new text of the file.
        content: String,
    },
    /// Run `python ARGS...` in the sandbox over the current files (e.g. the tests); files the
    /// run writes are discarded.
    Run {
        /// Arguments after `python`.
        args: Vec<String>,
    },
    /// The current changes, as a unified diff against the starting state.
    Diff,
    /// Submit the current state for grading; ends the episode.
    Submit,
}

impl Action {
    /// The tool's name.
    pub fn tool(&self) -> &'static str {
        match self {
            Action::ListDir { .. } => "list_dir",
            Action::ReadFile { .. } => "read_file",
            Action::Search { .. } => "search",
            Action::Edit { .. } => "edit",
            Action::Create { .. } => "create",
            Action::Run { .. } => "run",
            Action::Diff => "diff",
            Action::Submit => "submit",
        }
    }
}

/// What the solver sees after a step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// The tool's output (or the specification, after reset).
    pub text: String,
    /// True when the tool call failed (bad path, ambiguous edit, ...); the episode goes on.
    pub error: bool,
}

/// Facts about a step for logs and schedulers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StepInfo {
    /// The turn just taken (1-based).
    pub turn: u32,
    /// Sandbox runs this step made (a `run`, or grading).
    pub sandbox_runs: u32,
    /// Their fuel.
    pub fuel: u64,
    /// Their wall time, ms.
    pub sandbox_ms: f64,
    /// The grade, after `submit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grade: Option<Grade>,
    /// Why the episode was truncated, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncation: Option<String>,
}

/// The result of one step, Gymnasium's `(observation, reward, terminated, truncated, info)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// What the agent sees next.
    pub observation: Observation,
    /// 0 until the end; +1 or -1 on `submit`; -1 when truncated (an unsubmitted attempt
    /// fixes nothing).
    pub reward: f64,
    /// The agent submitted.
    pub terminated: bool,
    /// A turn or observation budget ran out first.
    pub truncated: bool,
    /// The step's sandbox runs, fuel and time, the grade after `submit`, why it was truncated.
    pub info: StepInfo,
}

impl Step {
    /// The step that ends an episode by `submit`.
    fn submitted(text: String, reward: f64, info: StepInfo) -> Step {
        Step {
            observation: Observation { text, error: false },
            reward,
            terminated: true,
            truncated: false,
            info,
        }
    }
}

/// Budgets of one attempt.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EnvSettings {
    /// Turns before truncation (the paper's scaffold: 128).
    pub max_turns: u32,
    /// Bytes of observations over the episode before truncation: the context budget
    /// (about 4 bytes a token; default 512 KiB, the paper's 131k tokens).
    pub max_observation_bytes: usize,
    /// Bytes of one observation; longer output is cut with a marker.
    pub max_step_bytes: usize,
    /// Wall-clock limit of one `run`.
    pub run_timeout: Duration,
    /// Fuel (about one per wasm instruction) one `run` may use. Unlike the wall-clock limit
    /// it ends a looping run at the same point on any machine and under any load, so the
    /// run's result is deterministic and memoizable; trainers set it from the suites' cost.
    #[serde(default)]
    pub run_fuel: Option<u64>,
}

impl Default for EnvSettings {
    fn default() -> Self {
        EnvSettings {
            max_turns: 128,
            max_observation_bytes: 512 << 10,
            max_step_bytes: 16 << 10,
            run_timeout: Duration::from_secs(90),
            run_fuel: None,
        }
    }
}

/// Gymnasium's `Env` shape, shared by both roles: `reset` starts an episode from what
/// [`Env::Start`] names (Gymnasium's reset options: a task, or a project) and a seed, `step`
/// takes one action. The same start, seed and actions give the same episode.
pub trait Env: Send {
    /// What an episode starts from.
    type Start;
    /// Starts an episode; returns the first observation (the prompt).
    fn reset(&mut self, start: Self::Start, seed: u64) -> Observation;
    /// Takes one action.
    fn step(&mut self, action: &Action) -> Result<Step, EpisodeError>;
    /// What the agent may look at now.
    fn view(&self) -> View<'_>;
    /// The current repository state.
    fn state(&self) -> &Snapshot;
}

/// What both roles' environments share: the working tree, the tools over it, the budgets.
struct Workspace {
    python: Arc<Python>,
    validator: Arc<Validator>,
    settings: EnvSettings,
    start: Snapshot,
    state: Snapshot,
    run: PythonRun,
    prompt: String,
    command: TestCommand,
    seed: u64,
    turn: u32,
    observed: usize,
    done: bool,
}

impl Workspace {
    fn new(python: Arc<Python>, validator: Arc<Validator>, settings: EnvSettings) -> Self {
        Workspace {
            python,
            validator,
            settings,
            start: Snapshot::empty(),
            state: Snapshot::empty(),
            run: PythonRun::default(),
            prompt: String::new(),
            // Until the first reset; cheaper than asking which runner an empty tree has.
            command: TestCommand {
                runner: crate::testrun::Runner::Pytest,
                args: Vec::new(),
                module_prefix: String::new(),
            },
            seed: 0,
            turn: 0,
            observed: 0,
            done: true,
        }
    }

    fn reset(
        &mut self,
        start: Snapshot,
        (run, command): (PythonRun, TestCommand),
        seed: u64,
        prompt: String,
    ) -> Observation {
        self.start = start.clone();
        self.state = start;
        self.run = run;
        self.command = command;
        self.prompt = prompt.clone();
        self.seed = seed;
        self.turn = 0;
        self.done = false;
        self.observed = prompt.len();
        Observation {
            text: prompt,
            error: false,
        }
    }

    fn view(&self) -> View<'_> {
        View {
            specification: &self.prompt,
            state: &self.state,
            test_command: &self.command,
            turn: self.turn,
        }
    }

    /// Counts the turn; errors when the episode is over.
    fn begin_step(&mut self) -> Result<StepInfo, EpisodeError> {
        if self.done {
            return Err(EpisodeError::Ended);
        }
        self.turn += 1;
        Ok(StepInfo {
            turn: self.turn,
            ..StepInfo::default()
        })
    }

    /// A tool step's result, truncating when a budget runs out.
    fn tool_step(&mut self, action: &Action, mut info: StepInfo) -> Result<Step, EpisodeError> {
        let (text, error) = match self.tool(action, &mut info)? {
            Ok(text) => (text, false),
            Err(text) => (text, true),
        };
        let text = cap(text, self.settings.max_step_bytes);
        self.observed += text.len();
        let truncation = if self.turn >= self.settings.max_turns {
            Some(format!("turn limit ({}) reached", self.settings.max_turns))
        } else if self.observed >= self.settings.max_observation_bytes {
            Some(format!(
                "observation budget ({} bytes) used up",
                self.settings.max_observation_bytes
            ))
        } else {
            None
        };
        let truncated = truncation.is_some();
        self.done = truncated;
        info.truncation = truncation;
        Ok(Step {
            observation: Observation { text, error },
            reward: if truncated { -1.0 } else { 0.0 },
            terminated: false,
            truncated,
            info,
        })
    }

    /// Runs a tool; `Ok(Err(text))` is a failed tool call the agent should see.
    fn tool(
        &mut self,
        action: &Action,
        info: &mut StepInfo,
    ) -> Result<Result<String, String>, EpisodeError> {
        Ok(match action {
            Action::ListDir { path } => list_dir(&self.state, path),
            Action::ReadFile { path, start, end } => read_file(&self.state, path, *start, *end),
            Action::Search { pattern, path } => search(&self.state, pattern, path.as_deref()),
            Action::Edit { path, old, new } => match edit(&self.state, path, old, new) {
                Ok(next) => {
                    self.state = next;
                    Ok(format!("edited {path}"))
                }
                Err(e) => Err(e),
            },
            Action::Create { path, content } => match write(&self.state, path, content) {
                Ok(next) => {
                    self.state = next;
                    Ok(format!("wrote {path} ({} bytes)", content.len()))
                }
                Err(e) => Err(e),
            },
            Action::Run { args } => {
                let mut options = self.run.clone();
                options.limits.timeout = self.settings.run_timeout;
                if self.settings.run_fuel.is_some() {
                    options.limits.fuel = self.settings.run_fuel;
                }
                options.limits.max_output_bytes = 1 << 20;
                let started = Instant::now();
                let (result, from_memo) =
                    self.validator
                        .tool_run(&self.python, &self.state, args, &options)?;
                info.sandbox_runs = u32::from(!from_memo);
                info.fuel = result.fuel;
                info.sandbox_ms = started.elapsed().as_secs_f64() * 1e3;
                let text = &result.text;
                let ending = match (result.outcome, result.exit_code) {
                    (Outcome::Completed, Some(code)) => format!("[exit code {code}]"),
                    (outcome, _) => format!("[stopped: {}]", outcome.as_str()),
                };
                // Keep the end of long logs: failures and summaries are printed last.
                Ok(format!(
                    "{}\n{ending}",
                    tail(text, self.settings.max_step_bytes.saturating_sub(64))
                ))
            }
            Action::Diff => match Patch::between(&self.start, &self.state) {
                Ok(p) if p.is_empty() => Ok("(no changes)".to_owned()),
                Ok(p) => Ok(p.to_string()),
                Err(e) => Err(e.to_string()),
            },
            Action::Submit => unreachable!("submit is handled by each role's step"),
        })
    }
}

/// One solver attempt on one task.
pub struct SolverEnv {
    work: Workspace,
    validator: Arc<Validator>,
    task: Option<Arc<Task>>,
}

impl SolverEnv {
    /// An environment that grades with `validator` (whose memo makes identical final states
    /// cost one run across all attempts).
    pub fn new(python: Arc<Python>, validator: Arc<Validator>, settings: EnvSettings) -> Self {
        SolverEnv {
            work: Workspace::new(python, validator.clone(), settings),
            validator,
            task: None,
        }
    }

    /// The task of the current attempt.
    pub fn task(&self) -> Option<&Arc<Task>> {
        self.task.as_ref()
    }
}

impl Env for SolverEnv {
    /// The bug to repair.
    type Start = Arc<Task>;

    /// Starts an attempt on `task` with `seed`; returns the specification.
    fn reset(&mut self, task: Arc<Task>, seed: u64) -> Observation {
        let observation = self.work.reset(
            task.buggy.clone(),
            (task.run.clone(), task.command.clone()),
            seed,
            task.specification.clone(),
        );
        self.task = Some(task);
        observation
    }

    fn step(&mut self, action: &Action) -> Result<Step, EpisodeError> {
        let mut info = self.work.begin_step()?;
        let task = self.task.clone().ok_or(EpisodeError::Ended)?;
        if *action != Action::Submit {
            return self.work.tool_step(action, info);
        }
        let started = Instant::now();
        let grade = task.grade(&self.work.python, &self.validator, &self.work.state)?;
        self.work.done = true;
        info.sandbox_runs = u32::from(!grade.from_memo);
        info.fuel = grade.fuel;
        info.sandbox_ms = started.elapsed().as_secs_f64() * 1e3;
        let reward = if grade.solved { 1.0 } else { -1.0 };
        let text = if grade.solved {
            "submitted: all oracle tests pass".to_owned()
        } else {
            format!(
                "submitted: {} oracle tests do not pass",
                grade.not_passing.len()
            )
        };
        info.grade = Some(grade);
        Ok(Step::submitted(text, reward, info))
    }

    fn view(&self) -> View<'_> {
        self.work.view()
    }

    fn state(&self) -> &Snapshot {
        &self.work.state
    }
}

/// The injector's instructions: the protocol's rules, adapted to spar's automatic weakening.
pub const INJECTOR_PROMPT: &str = "You are improving the robustness of a test suite by \
introducing a realistic bug into this repository's code. Explore it with the tools, change code \
files (never test files) so that some existing tests fail, and submit. Rules: do not add \
comments that reveal the bug; do not leave the original code in comments; change only code the \
tests exercise; keep the project importable. On submit, the tests your bug breaks are deleted \
from the visible test files, and the artifact is checked for consistency. You are rewarded when \
the bug is valid and hard but not impossible for a solver: -1 for an invalid artifact, -0.8 when \
every or no solver attempt fixes it, 1 - 1.8 s for a solve rate s in between.\n";

/// One injector episode: explore a project with the solver's tools, change code, and submit
/// the change as a bug. Submitting weakens the tests and validates the artifact at once; the
/// reward is -1 for an invalid artifact, and otherwise 0 until solver attempts give the solve
/// rate that [`rewards::injector_reward`] turns into the injector's reward.
pub struct InjectorEnv {
    work: Workspace,
    validator: Arc<Validator>,
    project: Option<Arc<OpenProject>>,
    name: String,
    injected: Option<Injected>,
}

/// A valid artifact an injector episode submitted.
#[derive(Clone, Debug)]
pub struct Injected {
    /// The artifact built from the state the agent submitted, with the tests weakened.
    pub artifact: BugArtifact,
    /// The report that found it valid: its fail-to-pass and pass-to-pass tests, runs, fuel.
    pub validation: ValidationReport,
}

impl InjectorEnv {
    /// An injector environment; `name` is recorded as the artifacts' injector.
    pub fn new(
        python: Arc<Python>,
        validator: Arc<Validator>,
        settings: EnvSettings,
        name: &str,
    ) -> Self {
        InjectorEnv {
            work: Workspace::new(python, validator.clone(), settings),
            validator,
            project: None,
            name: name.to_owned(),
            injected: None,
        }
    }

    /// The valid artifact the episode submitted, once (None before `submit`, or when the
    /// submission was not valid).
    pub fn take_injected(&mut self) -> Option<Injected> {
        self.injected.take()
    }
}

impl Env for InjectorEnv {
    /// The project to inject a bug into.
    type Start = Arc<OpenProject>;

    /// Starts an episode in `project`; returns the injector's instructions.
    fn reset(&mut self, project: Arc<OpenProject>, seed: u64) -> Observation {
        let prompt = format!("{INJECTOR_PROMPT}\nThe repository is {}.\n", project.name);
        let observation = self.work.reset(
            project.repo.clone(),
            (project.run.clone(), project.test_command.clone()),
            seed,
            prompt,
        );
        self.project = Some(project);
        self.injected = None;
        observation
    }

    /// Takes one action; `submit` weakens the tests and validates the artifact at once.
    fn step(&mut self, action: &Action) -> Result<Step, EpisodeError> {
        let mut info = self.work.begin_step()?;
        let project = self.project.clone().ok_or(EpisodeError::Ended)?;
        if *action != Action::Submit {
            return self.work.tool_step(action, info);
        }
        self.work.done = true;
        let started = Instant::now();
        let runs_before = self.validator.runs_executed();
        let inject_err = |e| EpisodeError::Inject(Box::new(e));
        let injector = crate::inject::Injector::new(&self.work.python, &self.validator, &project)
            .map_err(inject_err)?;
        let name = format!("agent:{}", self.name);
        let outcome = injector
            .artifact_from_state(&self.work.state, &name, self.work.seed)
            .map_err(inject_err)?;
        info.sandbox_runs = (self.validator.runs_executed() - runs_before) as u32;
        info.sandbox_ms = started.elapsed().as_secs_f64() * 1e3;
        let (text, reward) = match outcome {
            Ok((artifact, validation)) => {
                info.fuel = validation.fuel;
                let text = format!(
                    "submitted: a valid artifact that breaks {} tests; the reward follows from the solvers' attempts",
                    validation.fail_to_pass.len()
                );
                self.injected = Some(Injected {
                    artifact,
                    validation,
                });
                (text, 0.0)
            }
            Err(why) => (format!("submitted: not a valid artifact: {why}"), -1.0),
        };
        Ok(Step::submitted(text, reward, info))
    }

    fn view(&self) -> View<'_> {
        self.work.view()
    }

    fn state(&self) -> &Snapshot {
        &self.work.state
    }
}

fn cap(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("\n[... output cut]");
    }
    text
}

fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

fn clean(path: &str) -> Result<String, String> {
    let trimmed = path
        .trim()
        .trim_start_matches("./")
        .trim_start_matches("/repo/");
    let trimmed = trimmed.trim_matches('/');
    if trimmed.split('/').any(|p| p == "..")
        || path.trim().starts_with('/') && !path.trim().starts_with("/repo")
    {
        return Err(format!(
            "{path}: use a path inside the repository, relative to its root"
        ));
    }
    Ok(if trimmed == "." {
        String::new()
    } else {
        trimmed.to_owned()
    })
}

fn text_file(state: &Snapshot, path: &str) -> Result<(String, String), String> {
    let path = clean(path)?;
    match state.get(&path) {
        Some(Entry::File(c)) => String::from_utf8(c.to_vec())
            .map(|t| (path.clone(), t))
            .map_err(|_| format!("{path} is not a text file")),
        Some(Entry::Dir(_)) => Err(format!("{path} is a directory; use list_dir")),
        None => Err(format!("{path}: no such file")),
    }
}

fn list_dir(state: &Snapshot, path: &str) -> Result<String, String> {
    let path = clean(path)?;
    match state.get(&path) {
        Some(Entry::Dir(dir)) => Ok(dir
            .entries()
            .iter()
            .map(|(name, e)| match e {
                Entry::Dir(_) => format!("{name}/\n"),
                Entry::File(c) => format!("{name} ({} bytes)\n", c.len()),
            })
            .collect()),
        Some(Entry::File(_)) => Err(format!("{path} is a file; use read_file")),
        None => Err(format!("{path}: no such directory")),
    }
}

fn read_file(
    state: &Snapshot,
    path: &str,
    start: Option<usize>,
    end: Option<usize>,
) -> Result<String, String> {
    let (_, text) = text_file(state, path)?;
    let lines: Vec<&str> = text.lines().collect();
    let first = start.unwrap_or(1).max(1);
    let last = end.unwrap_or(lines.len()).min(lines.len());
    if first > last.max(1) && !lines.is_empty() {
        return Err(format!(
            "{path} has {} lines; lines {first}..={last} are empty",
            lines.len()
        ));
    }
    Ok(lines
        .iter()
        .enumerate()
        .skip(first - 1)
        .take(last.saturating_sub(first - 1))
        .map(|(i, l)| format!("{:>5}  {l}\n", i + 1))
        .collect())
}

fn search(state: &Snapshot, pattern: &str, under: Option<&str>) -> Result<String, String> {
    let re = regex::Regex::new(pattern).map_err(|e| format!("bad pattern: {e}"))?;
    let prefix = under.map(clean).transpose()?.unwrap_or_default();
    let mut out = String::new();
    let mut hits = 0;
    for (path, contents) in state.files() {
        if !(prefix.is_empty() || path == prefix || path.starts_with(&format!("{prefix}/"))) {
            continue;
        }
        let Ok(text) = std::str::from_utf8(&contents) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            if re.is_match(line) {
                hits += 1;
                if hits <= 200 {
                    out.push_str(&format!("{path}:{}: {line}\n", i + 1));
                }
            }
        }
    }
    if hits > 200 {
        out.push_str(&format!("[{} more matches]\n", hits - 200));
    }
    Ok(if hits == 0 {
        "no matches".to_owned()
    } else {
        out
    })
}

fn write(state: &Snapshot, path: &str, content: &str) -> Result<Snapshot, String> {
    let path = clean(path)?;
    if path.is_empty() || matches!(state.get(&path), Some(Entry::Dir(_))) {
        return Err(format!("{path}: is a directory"));
    }
    state
        .with_changes(&[FileChange::Written {
            path,
            contents: Arc::from(content.as_bytes()),
        }])
        .map_err(|e| e.to_string())
}

fn edit(state: &Snapshot, path: &str, old: &str, new: &str) -> Result<Snapshot, String> {
    let (path, text) = text_file(state, path)?;
    if old.is_empty() {
        return Err("old text is empty; give text that occurs exactly once".to_owned());
    }
    match text.matches(old).count() {
        0 => Err(format!(
            "{path}: the old text does not occur; read the file and copy it exactly"
        )),
        1 => write(state, &path, &text.replacen(old, new, 1)),
        n => Err(format!(
            "{path}: the old text occurs {n} times; include more lines around it so it is unique"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> Snapshot {
        Snapshot::from_files([
            (
                "pkg/a.py",
                b"def f():\n    return 1\n\ndef g():\n    return 1\n".to_vec(),
            ),
            ("README", b"hello\n".to_vec()),
        ])
        .unwrap()
    }

    #[test]
    fn creating_under_a_file_is_refused_and_keeps_the_file() {
        // A real file system says ENOTDIR; the file must not be replaced by a directory.
        let s = repo();
        let err = write(&s, "README/x.py", "x = 1\n").unwrap_err();
        assert!(err.contains("README is a file, not a directory"), "{err}");
        assert_eq!(s.file("README").unwrap().as_ref(), b"hello\n");
        let err = write(&s, "pkg", "x = 1\n").unwrap_err();
        assert!(err.contains("is a directory"), "{err}");
    }

    #[test]
    fn tools_over_snapshots() {
        let s = repo();
        assert_eq!(list_dir(&s, ".").unwrap(), "README (6 bytes)\npkg/\n");
        assert_eq!(
            read_file(&s, "pkg/a.py", Some(2), Some(2)).unwrap(),
            "    2      return 1\n"
        );
        assert!(read_file(&s, "nope.py", None, None)
            .unwrap_err()
            .contains("no such file"));
        assert!(read_file(&s, "../etc/passwd", None, None).is_err());
        let hits = search(&s, r"def \w+", Some("pkg")).unwrap();
        assert_eq!(hits, "pkg/a.py:1: def f():\npkg/a.py:4: def g():\n");
        assert!(search(&s, "(", None).unwrap_err().contains("bad pattern"));
        let err = edit(&s, "pkg/a.py", "return 1", "return 2").unwrap_err();
        assert!(err.contains("occurs 2 times"), "{err}");
        let next = edit(
            &s,
            "pkg/a.py",
            "def g():\n    return 1",
            "def g():\n    return 2",
        )
        .unwrap();
        assert!(std::str::from_utf8(&next.file("pkg/a.py").unwrap())
            .unwrap()
            .ends_with("return 2\n"));
        assert!(edit(&s, "pkg/a.py", "zzz", "y")
            .unwrap_err()
            .contains("does not occur"));
        assert!(write(&s, "pkg", "x").is_err());
    }

    #[test]
    fn actions_have_a_json_form() {
        let a: Action =
            serde_json::from_str(r#"{"tool":"read_file","path":"a.py","start":3}"#).unwrap();
        assert_eq!(
            a,
            Action::ReadFile {
                path: "a.py".into(),
                start: Some(3),
                end: None
            }
        );
        assert_eq!(
            serde_json::to_string(&Action::Submit).unwrap(),
            r#"{"tool":"submit"}"#
        );
        assert!(serde_json::from_str::<Action>(r#"{"tool":"rm","path":"/"}"#).is_err());
        assert!(serde_json::from_str::<Action>(r#"{"tool":"edit","path":"a"}"#).is_err());
    }

    #[test]
    fn capping_keeps_char_boundaries() {
        assert_eq!(cap("ééé".into(), 3), "é\n[... output cut]");
        assert_eq!(tail("abcdef", 2), "ef");
    }
}
