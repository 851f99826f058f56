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
pub mod editor;
mod files;
pub mod record;
pub mod rewards;
pub mod shell;
pub mod tools;

use crate::corpus::OpenProject;
use crate::diff::Patch;
use crate::guest::{GuestError, Python, PythonRun};
use crate::protocol::validate::{Oracle, ValidationError};
use crate::protocol::{specification, BugArtifact, ValidationReport, Validator};
use crate::sandbox::Outcome;
use crate::snapshot::{FileChange, Snapshot};
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
            specification: specification(
                &artifact.test_patch.reverse().to_string(),
                &artifact.test_command.for_agents(),
            ),
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
    /// A command line in the episode's [`shell`] (SWE-agent's and spar's `bash`): the output a
    /// terminal would show, and the exit status when it is not 0.
    Bash {
        /// The command line.
        command: String,
    },
    /// R2E-Gym's `execute_bash`: the same shell, answered in R2E-Gym's format (exit code,
    /// `[STDOUT]` and `[STDERR]` sections).
    ExecuteBash {
        /// The command line.
        cmd: String,
    },
    /// SWE-agent's file editor (`view`, `create`, `str_replace`, `insert`, `undo_edit`).
    StrReplaceEditor(editor::EditorCall),
    /// R2E-Gym's file editor: the same commands, with R2E-Gym's messages.
    FileEditor(editor::EditorCall),
    /// R2E-Gym's `search`: a plain string, counted per Python file in a directory, or listed by
    /// line in one file.
    SearchTerm {
        /// The text to find (not a pattern).
        search_term: String,
        /// The directory or file to search (default: the repository).
        #[serde(default)]
        path: Option<String>,
    },
}

impl Action {
    /// Whether the step may run the sandbox (a `run`, grading on `submit`, or a shell line that
    /// calls Python): schedulers bound those, and let the rest through at once.
    pub fn may_run_sandbox(&self) -> bool {
        let runs_python = |line: &str| {
            line.contains("python") || line.contains("py.test") || line.contains("pytest")
        };
        match self {
            Action::Run { .. } | Action::Submit => true,
            Action::Bash { command } => runs_python(command),
            Action::ExecuteBash { cmd } => runs_python(cmd),
            _ => false,
        }
    }

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
            Action::Bash { .. } => "bash",
            Action::ExecuteBash { .. } => "execute_bash",
            Action::StrReplaceEditor(_) => "str_replace_editor",
            Action::FileEditor(_) => "file_editor",
            Action::SearchTerm { .. } => "search_term",
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

impl Observation {
    /// The text a model is shown as the tool's answer: a failed call's text says so.
    pub fn for_model(&self) -> String {
        if self.error {
            format!("error: {}", self.text)
        } else {
            self.text.clone()
        }
    }
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
    shell: shell::Shell,
    editor: editor::Editor,
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
            shell: shell::Shell::new(),
            editor: editor::Editor::default(),
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
        self.shell = shell::Shell::new();
        self.editor = editor::Editor::default();
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
        let changed = |next: Result<Snapshot, String>, state: &mut Snapshot, done: String| {
            next.map(|next| {
                *state = next;
                done
            })
        };
        Ok(match action {
            Action::ListDir { path } => files::list_dir(&self.state, path),
            Action::ReadFile { path, start, end } => {
                files::read_file(&self.state, path, *start, *end)
            }
            Action::Search { pattern, path } => {
                files::search(&self.state, pattern, path.as_deref())
            }
            Action::Edit { path, old, new } => changed(
                files::edit(&self.state, path, old, new),
                &mut self.state,
                format!("edited {path}"),
            ),
            Action::Create { path, content } => changed(
                files::write(&self.state, path, content),
                &mut self.state,
                format!("wrote {path} ({} bytes)", content.len()),
            ),
            Action::Run { args } => {
                let run = self.guest(info).run(&self.state, "", args, b"")?;
                let ending = match (run.outcome, run.exit_code) {
                    (Outcome::Completed, Some(code)) => format!("[exit code {code}]"),
                    (outcome, _) => format!("[stopped: {}]", outcome.as_str()),
                };
                // Keep the end of long logs: failures and summaries are printed last.
                let budget = self.settings.max_step_bytes.saturating_sub(64);
                Ok(format!("{}\n{ending}", tail(&run.text, budget)))
            }
            Action::Diff => match Patch::between(&self.start, &self.state) {
                Ok(p) if p.is_empty() => Ok("(no changes)".to_owned()),
                Ok(p) => Ok(p.to_string()),
                Err(e) => Err(e.to_string()),
            },
            Action::Bash { command } => Ok(bash_reply(&self.bash(command, info)?)),
            Action::ExecuteBash { cmd } => Ok(r2e_bash_reply(&self.bash(cmd, info)?)),
            Action::StrReplaceEditor(call) => {
                self.editor
                    .call(editor::Dialect::SweAgent, call, &mut self.state)
            }
            Action::FileEditor(call) => {
                let reply = self
                    .editor
                    .call(editor::Dialect::R2e, call, &mut self.state);
                let r2e = |text: String| format!("Execution output of [file_editor]:\n{text}");
                reply.map(r2e).map_err(r2e)
            }
            Action::SearchTerm { search_term, path } => Ok(format!(
                "Execution output of [search]:\n{}",
                files::search_term(&self.state, search_term, path.as_deref())
            )),
            Action::Submit => unreachable!("submit is handled by each role's step"),
        })
    }

    /// Runs a command line in the episode's shell.
    fn bash(&mut self, line: &str, info: &mut StepInfo) -> Result<shell::Captured, EpisodeError> {
        let mut guest = Guest {
            python: &self.python,
            validator: &self.validator,
            run: &self.run,
            settings: &self.settings,
            info,
        };
        let trees = shell::Trees {
            state: &mut self.state,
            start: &self.start,
        };
        self.shell.run(line, trees, &mut guest)
    }

    fn guest<'a>(&'a self, info: &'a mut StepInfo) -> Guest<'a> {
        Guest {
            python: &self.python,
            validator: &self.validator,
            run: &self.run,
            settings: &self.settings,
            info,
        }
    }
}

/// The `bash` tool's answer: what a terminal shows, and the exit status when it is not 0.
fn bash_reply(captured: &shell::Captured) -> String {
    match (captured.output.is_empty(), captured.status) {
        // SWE-agent's words for a silent success.
        (true, 0) => "Your command ran successfully and did not produce any output.".to_owned(),
        (_, 0) => captured.output.clone(),
        (_, status) => format!("{}[exit code {status}]", captured.output),
    }
}

/// R2E-Gym's `execute_bash` answer: its observation header, then the two streams, long output
/// cut to its first and last 40 lines.
fn r2e_bash_reply(captured: &shell::Captured) -> String {
    let streams = format!(
        "[STDOUT]\n\n{} \n\n[STDERR]\n\n{}\n",
        captured.stdout.trim(),
        captured.stderr.trim()
    );
    let (code, body) = match captured.status {
        0 => ("0".to_owned(), streams),
        status => (
            format!("Error: Exit code {status}"),
            format!("Error executing command:\n\n{streams}"),
        ),
    };
    let lines: Vec<&str> = body.lines().collect();
    let body = if lines.len() > 80 {
        let rule = "-".repeat(50);
        format!(
            "{}\n{rule}\n<Observation truncated in middle for saving context>\n{rule}\n{}",
            lines[..40].join("\n"),
            lines[lines.len() - 40..].join("\n")
        )
    } else {
        body
    };
    format!("Exit code: {code}\nExecution output of [execute_bash]:\n{body}")
}

/// The sandbox as a tool sees it: memoized guest runs over the episode's state, with the
/// episode's limits, counted into the step's info.
struct Guest<'a> {
    python: &'a Python,
    validator: &'a Validator,
    run: &'a PythonRun,
    settings: &'a EnvSettings,
    info: &'a mut StepInfo,
}

impl Guest<'_> {
    fn run(
        &mut self,
        state: &Snapshot,
        cwd: &str,
        args: &[String],
        stdin: &[u8],
    ) -> Result<Arc<crate::protocol::validate::ToolRun>, EpisodeError> {
        let mut options = self.run.clone();
        if !cwd.is_empty() && options.python_path.is_empty() {
            // A flat project imports from the root only because runs start there; from a
            // subdirectory it stays importable, as an installed (`pip install -e .`) one is.
            options
                .python_path
                .push(crate::guest::REPO_MOUNT.to_owned());
        }
        options.cwd = cwd.to_owned();
        options.stdin = stdin.to_vec();
        options.limits.timeout = self.settings.run_timeout;
        if self.settings.run_fuel.is_some() {
            options.limits.fuel = self.settings.run_fuel;
        }
        options.limits.max_output_bytes = 1 << 20;
        let started = Instant::now();
        let (result, from_memo) = self
            .validator
            .tool_run(self.python, state, args, &options)?;
        self.info.sandbox_runs += u32::from(!from_memo);
        self.info.fuel += result.fuel;
        self.info.sandbox_ms += started.elapsed().as_secs_f64() * 1e3;
        Ok(result)
    }
}

impl shell::Sandbox for Guest<'_> {
    type Error = EpisodeError;

    fn python(
        &mut self,
        state: &Snapshot,
        cwd: &str,
        args: &[String],
        stdin: &[u8],
    ) -> Result<shell::Captured, EpisodeError> {
        let run = self.run(state, cwd, args, stdin)?;
        let (ending, status) = match (run.outcome, run.exit_code) {
            (Outcome::Completed, Some(code)) => (String::new(), code),
            // `timeout`'s status for a run out of time; a killed process's otherwise.
            (Outcome::Timeout, _) => ("[stopped: timeout]\n".to_owned(), 124),
            (outcome, _) => (format!("[stopped: {}]\n", outcome.as_str()), 137),
        };
        let output = format!("{}{ending}", run.text);
        Ok(shell::Captured {
            stdout: output.clone(),
            output,
            stderr: String::new(),
            status,
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

#[cfg(test)]
mod tests {
    use super::*;

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
