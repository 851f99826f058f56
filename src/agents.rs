//! Agents that play the solver role through the environment's tools, and the built-in ones:
//! `oracle` (applies the true fix: proves the pipeline end to end), `random` (random edits
//! from the repair operators), `heuristic` (localizes from failing-test tracebacks and tries
//! inverse mutation operators there: the baseline a learned policy must beat) and `replay`
//! (actions from a JSONL file). Learned policies plug into the same [`Agent`] trait.
//!
//! Agents see what a tool-using agent could read: the specification, the last observation and
//! the current files (as `list_dir`/`read_file` would show them, without spending turns). Only
//! the oracle is given the answer, by construction.

pub mod llm;

use crate::diff::Patch;
pub use crate::episode::agent::{Agent, Assignment, View};
use crate::episode::{Action, Observation, Task};
use crate::protocol::is_test_path;
use crate::pyedit;
use crate::snapshot::Snapshot;
use crate::testrun::TestCommand;
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

/// The built-in agents, by name.
#[derive(Clone, Debug)]
pub enum AgentKind {
    /// Applies the true fix.
    Oracle,
    /// Random repair-operator edits.
    Random,
    /// Traceback localization plus inverse mutations.
    Heuristic,
    /// Actions replayed from a JSONL file.
    Replay(PathBuf),
    /// An LLM behind an OpenAI-compatible endpoint; the client comes from the `--llm-*`
    /// settings (`None` until they are given).
    Llm(Option<std::sync::Arc<llm::LlmClient>>),
}

impl PartialEq for AgentKind {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for AgentKind {}

impl std::str::FromStr for AgentKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "oracle" => Ok(AgentKind::Oracle),
            "random" => Ok(AgentKind::Random),
            "heuristic" => Ok(AgentKind::Heuristic),
            "llm" => Ok(AgentKind::Llm(None)),
            _ => match s.strip_prefix("replay:") {
                Some(path) if !path.is_empty() => Ok(AgentKind::Replay(PathBuf::from(path))),
                _ => Err(format!(
                    "unknown agent {s:?}: use oracle, random, heuristic, llm or replay:FILE.jsonl"
                )),
            },
        }
    }
}

impl std::fmt::Display for AgentKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AgentKind::Oracle => f.write_str("oracle"),
            AgentKind::Random => f.write_str("random"),
            AgentKind::Heuristic => f.write_str("heuristic"),
            AgentKind::Replay(p) => write!(f, "replay:{}", p.display()),
            AgentKind::Llm(_) => f.write_str("llm"),
        }
    }
}

/// Errors making an agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A solver-only agent (it knows or looks for the answer) was asked to inject.
    #[error("the {0} agent is a solver; it cannot play the injector")]
    SolverOnly(String),
    /// `llm` without an endpoint.
    #[error("the llm agent needs an OpenAI-compatible chat-completions endpoint and a model")]
    LlmUnset,
    /// The replay file could not be read.
    #[error("reading replay file {path}")]
    Read {
        /// The replay file that could not be read.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A replay line is not an action.
    #[error("{path}:{line}: not an action or an episode record with \"actions\"")]
    Replay {
        /// The replay file holding the line.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// Where the JSON stops fitting.
        #[source]
        source: serde_json::Error,
    },
}

/// Makes a fresh agent for one episode: `(what for, seed, attempt index)`. Learned policies
/// plug into the scheduler through this.
pub type AgentFactory = std::sync::Arc<
    dyn Fn(Assignment, u64, usize) -> Result<Box<dyn Agent>, AgentError> + Send + Sync,
>;

impl AgentKind {
    /// A factory for agents of this kind.
    pub fn factory(&self) -> AgentFactory {
        let kind = self.clone();
        std::sync::Arc::new(move |assignment: Assignment, seed, index| {
            kind.make(assignment, seed, index)
        })
    }

    /// A fresh agent of this kind for one episode. `index` picks the episode of a replay file
    /// (line `index` modulo the number of lines).
    pub fn make(
        &self,
        assignment: Assignment,
        seed: u64,
        index: usize,
    ) -> Result<Box<dyn Agent>, AgentError> {
        Ok(match (self, assignment) {
            (AgentKind::Oracle, Assignment::Solve(task)) => Box::new(OracleAgent::new(task)),
            (AgentKind::Oracle | AgentKind::Heuristic, Assignment::Inject(_)) => {
                return Err(AgentError::SolverOnly(self.to_string()))
            }
            (AgentKind::Random, _) => Box::new(RandomAgent::new(seed)),
            (AgentKind::Heuristic, _) => Box::new(HeuristicAgent::new(seed)),
            (AgentKind::Replay(path), _) => Box::new(ReplayAgent::from_file(path, index)?),
            (AgentKind::Llm(Some(client)), _) => Box::new(llm::LlmAgent::new(client.clone())),
            (AgentKind::Llm(None), _) => return Err(AgentError::LlmUnset),
        })
    }
}

/// Applies the true fix: every code file the bug (or a failed fix on top of it) changed gets
/// its original text back.
pub struct OracleAgent {
    original: Snapshot,
    plan: Option<VecDeque<Action>>,
}

impl OracleAgent {
    /// The oracle for `task`.
    pub fn new(task: &Task) -> Self {
        OracleAgent {
            original: task.original.clone(),
            plan: None,
        }
    }
}

impl Agent for OracleAgent {
    fn name(&self) -> &str {
        "oracle"
    }

    fn act(&mut self, _: &Observation, view: &View) -> Action {
        let original = &self.original;
        let plan = self.plan.get_or_insert_with(|| {
            original
                .changes_from(view.state)
                .into_iter()
                .filter(|c| !is_test_path(c.path()))
                .filter_map(|c| match c {
                    crate::snapshot::FileChange::Written { path, contents } => {
                        Some(Action::Create {
                            path,
                            content: String::from_utf8_lossy(&contents).into_owned(),
                        })
                    }
                    // The tools cannot delete; a file the bug added is left (it breaks nothing
                    // the oracle tests see, or validation would have said so).
                    crate::snapshot::FileChange::Deleted { .. } => None,
                })
                .collect()
        });
        plan.pop_front().unwrap_or(Action::Submit)
    }
}

/// SplitMix64: agents' and policies' choices depend on the seed alone, on every platform.
pub struct Rng(pub u64);

impl Rng {
    /// A uniform float in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.below(1 << 53) as f64) / (1u64 << 53) as f64
    }

    /// A uniform integer in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) % n.max(1) as u64) as usize
    }
}

pub(crate) fn code_files(state: &Snapshot) -> Vec<(String, String)> {
    state
        .files()
        .into_iter()
        .filter(|(p, _)| p.ends_with(".py") && !is_test_path(p))
        .filter_map(|(p, c)| Some((p, String::from_utf8(c.to_vec()).ok()?)))
        .collect()
}

/// One to three random repair-operator edits anywhere in the code, then submit.
pub struct RandomAgent {
    rng: Rng,
    edits_left: Option<usize>,
}

impl RandomAgent {
    /// A random agent with `seed`.
    pub fn new(seed: u64) -> Self {
        RandomAgent {
            rng: Rng(seed ^ 0x52_41_4E_44),
            edits_left: None,
        }
    }
}

impl Agent for RandomAgent {
    fn name(&self) -> &str {
        "random"
    }

    fn act(&mut self, _: &Observation, view: &View) -> Action {
        let rng = &mut self.rng;
        let left = self.edits_left.get_or_insert_with(|| 1 + rng.below(3));
        if *left == 0 {
            return Action::Submit;
        }
        *left -= 1;
        let files = code_files(view.state);
        if files.is_empty() {
            return Action::Submit;
        }
        let (path, text) = &files[self.rng.below(files.len())];
        match pyedit::mutations(text) {
            Ok(m) if !m.is_empty() => {
                let m = &m[self.rng.below(m.len())];
                Action::Create {
                    path: path.clone(),
                    content: m.edit.apply(text),
                }
            }
            _ => Action::Submit,
        }
    }
}

/// The `python` arguments that run the task's tests with a compact failure report.
fn test_args(command: &TestCommand) -> Vec<String> {
    let mut args = command.args.clone();
    if command.runner == crate::testrun::Runner::Pytest {
        args.retain(|a| a != "-rA" && a != "-v" && !a.starts_with("--tb"));
        args.extend(["-q".to_owned(), "-rfE".to_owned(), "--tb=short".to_owned()]);
    }
    args
}

/// Failing tests in a run's output (pytest's `FAILED`/`ERROR` summary lines, unittest's
/// `FAIL:`/`ERROR:` headers). A run the sandbox stopped (time, fuel, memory) counts as worse
/// than any count: its missing summary must not read as "fewer failures".
fn failures(output: &str) -> usize {
    if output.contains("\n[stopped: ") || output.starts_with("[stopped: ") {
        return usize::MAX;
    }
    output
        .lines()
        .filter(|l| {
            l.starts_with("FAILED ")
                || l.starts_with("ERROR ")
                || l.starts_with("FAIL: ")
                || l.starts_with("ERROR: ")
        })
        .count()
}

/// Code locations in tracebacks, most frequent first (pytest's `path.py:N: in f` and
/// Python's `File "/repo/path.py", line N`).
pub(crate) fn traceback_sites(output: &str) -> Vec<(String, u32)> {
    let short = regex::Regex::new(r"^(\S+\.py):(\d+): ").expect("valid regex");
    let long = regex::Regex::new(r#"File "/repo/(\S+\.py)", line (\d+)"#).expect("valid regex");
    let mut counts: BTreeMap<(String, u32), usize> = BTreeMap::new();
    for line in output.lines() {
        let line = line.trim();
        let caps = short.captures(line).or_else(|| long.captures(line));
        if let Some(c) = caps {
            let path = c[1].trim_start_matches("/repo/").to_owned();
            if is_test_path(&path) || path.starts_with('/') {
                continue;
            }
            if let Ok(n) = c[2].parse() {
                *counts.entry((path, n)).or_default() += 1;
            }
        }
    }
    let mut sites: Vec<((String, u32), usize)> = counts.into_iter().collect();
    sites.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    sites.into_iter().map(|(s, _)| s).collect()
}

/// Names of functions and methods called on the source lines a traceback shows
/// (`x = obj.total(a)` gives `total`), dunder methods for operators left out.
pub(crate) fn called_names(output: &str) -> Vec<String> {
    let call = regex::Regex::new(r"([A-Za-z_][A-Za-z0-9_]*)\(").expect("valid regex");
    let mut names: Vec<String> = Vec::new();
    for line in output
        .lines()
        .filter(|l| l.starts_with("    ") && !l.trim_start().starts_with('^'))
    {
        for c in call.captures_iter(line) {
            let name = c[1].to_owned();
            if ![
                "assert",
                "assertEqual",
                "assertTrue",
                "assertRaises",
                "Fraction",
                "Decimal",
                "len",
                "str",
                "int",
                "float",
                "list",
                "dict",
                "set",
                "tuple",
                "sum",
                "print",
                "raises",
                "isinstance",
            ]
            .contains(&name.as_str())
                && !names.contains(&name)
            {
                names.push(name);
            }
        }
    }
    names
}

/// The restoring patch inside a specification prompt.
pub(crate) fn spec_patch(specification: &str) -> Option<Patch> {
    let start = specification.find("```diff\n")? + "```diff\n".len();
    let end = specification[start..].find("```")? + start;
    Patch::parse(&specification[start..end]).ok()
}

/// The `create` actions that bring back the tests the bug broke: the specification's patch
/// applied to the visible test files.
fn restore_tests(view: &View) -> VecDeque<Action> {
    let Some(restored) = spec_patch(view.specification).and_then(|p| p.apply(view.state).ok())
    else {
        return VecDeque::new();
    };
    restored
        .changes_from(view.state)
        .into_iter()
        .filter_map(|change| match change {
            crate::snapshot::FileChange::Written { path, contents } => Some(Action::Create {
                path,
                content: String::from_utf8_lossy(&contents).into_owned(),
            }),
            crate::snapshot::FileChange::Deleted { .. } => None,
        })
        .collect()
}

#[derive(Debug)]
enum Phase {
    RestoreTests(VecDeque<Action>),
    Baseline,
    Trying,
    Done,
}

/// One repair try: a file, its new text, and the text to go back to.
pub(crate) struct Try {
    /// The repository-relative file the repair rewrites.
    pub(crate) path: String,
    /// Its text with the repair.
    pub(crate) content: String,
    /// Its text before.
    pub(crate) previous: String,
}

/// Where a [`TryLoop`] gets its repairs from.
pub(crate) trait Chooser {
    /// Plans from a failing run's output (the baseline, and again after progress).
    fn plan(&mut self, output: &str, view: &View);
    /// The next repair to try, or `None` when there is none left.
    fn next(&mut self, view: &View) -> Option<Try>;
}

/// The loop both trying solvers (heuristic and policy) share: restore the specification's
/// tests, run them, then write a repair, run the tests, keep the repair when fewer tests fail
/// (and plan again from the new output), revert it otherwise, and submit once the tests pass
/// or `max_tries` repairs were tried.
pub(crate) struct TryLoop {
    phase: Phase,
    best_failures: usize,
    /// The file text to go back to if the current try does not help.
    pending: Option<(String, String)>,
    reverting: bool,
    tries: usize,
    max_tries: usize,
}

impl TryLoop {
    /// A loop that tries at most `max_tries` repairs.
    pub(crate) fn new(max_tries: usize) -> Self {
        TryLoop {
            phase: Phase::RestoreTests(VecDeque::new()),
            best_failures: usize::MAX,
            pending: None,
            reverting: false,
            tries: 0,
            max_tries,
        }
    }

    fn run_tests(view: &View) -> Action {
        Action::Run {
            args: test_args(view.test_command),
        }
    }

    fn next_try(&mut self, chooser: &mut impl Chooser, view: &View) -> Action {
        if self.tries < self.max_tries {
            if let Some(t) = chooser.next(view) {
                self.tries += 1;
                self.pending = Some((t.path.clone(), t.previous));
                return Action::Create {
                    path: t.path,
                    content: t.content,
                };
            }
        }
        self.phase = Phase::Done;
        Action::Submit
    }

    /// The next action, given the last observation.
    pub(crate) fn act(
        &mut self,
        chooser: &mut impl Chooser,
        observation: &Observation,
        view: &View,
    ) -> Action {
        match &mut self.phase {
            Phase::RestoreTests(queue) => {
                if view.turn == 0 {
                    *queue = restore_tests(view);
                }
                if let Some(a) = queue.pop_front() {
                    return a;
                }
                self.phase = Phase::Baseline;
                Self::run_tests(view)
            }
            Phase::Baseline => {
                self.best_failures = failures(&observation.text);
                if self.best_failures == 0 && observation.text.contains("[exit code 0]") {
                    self.phase = Phase::Done;
                    return Action::Submit;
                }
                chooser.plan(&observation.text, view);
                self.phase = Phase::Trying;
                self.next_try(chooser, view)
            }
            Phase::Trying => {
                if std::mem::take(&mut self.reverting) || observation.error {
                    return self.next_try(chooser, view);
                }
                if observation.text.starts_with("wrote ") {
                    return Self::run_tests(view);
                }
                let now = failures(&observation.text);
                if now == 0 && observation.text.contains("[exit code 0]") {
                    self.phase = Phase::Done;
                    return Action::Submit;
                }
                if now < self.best_failures {
                    // Progress (a second bug, or half of one): keep the edit, plan again from
                    // the new output.
                    self.best_failures = now;
                    self.pending = None;
                    chooser.plan(&observation.text, view);
                    return self.next_try(chooser, view);
                }
                if let Some((path, content)) = self.pending.take() {
                    self.reverting = true;
                    return Action::Create { path, content };
                }
                self.next_try(chooser, view)
            }
            Phase::Done => Action::Submit,
        }
    }
}

/// The heuristic's repairs: inverse mutation operators near traceback frames, nearest first.
struct HeuristicChooser {
    rng: Rng,
    candidates: VecDeque<(String, String)>,
}

impl Chooser for HeuristicChooser {
    fn plan(&mut self, output: &str, view: &View) {
        let sites = traceback_sites(output);
        let mut seen = std::collections::BTreeSet::new();
        let mut found = Vec::new();
        for (path, line) in sites.iter().take(8) {
            let Some(text) = view
                .state
                .file(path)
                .and_then(|c| String::from_utf8(c.to_vec()).ok())
            else {
                continue;
            };
            let Ok(muts) = pyedit::mutations(&text) else {
                continue;
            };
            let mut near: Vec<&pyedit::Mutation> = muts
                .iter()
                .filter(|m| m.line.abs_diff(*line) <= 2)
                .collect();
            // Nearest first; the seed orders equals.
            let salt = self.rng.below(1 << 16) as u32;
            near.sort_by_key(|m| (m.line.abs_diff(*line), (m.edit.start as u32) ^ salt));
            for m in near {
                let content = m.edit.apply(&text);
                if seen.insert((path.clone(), content.clone())) {
                    found.push((path.clone(), content));
                }
            }
        }
        // Failures inside builtins leave no code frame: fall back to the functions the
        // failing tests call, by name.
        let called = called_names(output);
        for (path, text) in code_files(view.state) {
            let Ok(muts) = pyedit::mutations(&text) else {
                continue;
            };
            for m in muts {
                let Some(func) = &m.enclosing_function else {
                    continue;
                };
                let short = func.rsplit('.').next().unwrap_or(func);
                if called.iter().any(|c| c == short) {
                    let content = m.edit.apply(&text);
                    if seen.insert((path.clone(), content.clone())) {
                        found.push((path.clone(), content));
                    }
                }
            }
        }
        self.candidates = found.into();
    }

    fn next(&mut self, view: &View) -> Option<Try> {
        while let Some((path, content)) = self.candidates.pop_front() {
            if let Some(previous) = view
                .state
                .file(&path)
                .and_then(|c| String::from_utf8(c.to_vec()).ok())
            {
                return Some(Try {
                    path,
                    content,
                    previous,
                });
            }
        }
        None
    }
}

/// Localizes from tracebacks and tries inverse mutation operators near them, keeping an edit
/// when fewer tests fail and submitting when none do.
pub struct HeuristicAgent {
    chooser: HeuristicChooser,
    tries: TryLoop,
}

impl HeuristicAgent {
    /// A heuristic agent; `seed` breaks ties among candidates.
    pub fn new(seed: u64) -> Self {
        HeuristicAgent {
            chooser: HeuristicChooser {
                rng: Rng(seed ^ 0x48_45_55_52),
                candidates: VecDeque::new(),
            },
            tries: TryLoop::new(40),
        }
    }
}

impl Agent for HeuristicAgent {
    fn name(&self) -> &str {
        "heuristic"
    }

    fn act(&mut self, observation: &Observation, view: &View) -> Action {
        self.tries.act(&mut self.chooser, observation, view)
    }
}

/// Actions replayed from a JSONL file: each line an action (`{"tool": ...}`) or an episode
/// record with an `"actions"` array (as `spar selfplay` writes); then `submit`.
pub struct ReplayAgent {
    actions: VecDeque<Action>,
}

impl ReplayAgent {
    /// Reads the file; `index` picks the episode record when the file holds several.
    pub fn from_file(path: &Path, index: usize) -> Result<Self, AgentError> {
        let text = std::fs::read_to_string(path).map_err(|source| AgentError::Read {
            path: path.to_owned(),
            source,
        })?;
        let lines: Vec<(usize, &str)> = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .collect();
        let bad = |line: usize, source| AgentError::Replay {
            path: path.to_owned(),
            line: line + 1,
            source,
        };
        let mut records = Vec::new();
        let mut loose = Vec::new();
        for (i, line) in &lines {
            let value: serde_json::Value = serde_json::from_str(line).map_err(|e| bad(*i, e))?;
            if let Some(actions) = value.get("actions") {
                let actions: Vec<Action> =
                    serde_json::from_value(actions.clone()).map_err(|e| bad(*i, e))?;
                records.push(actions);
            } else {
                loose.push(serde_json::from_value::<Action>(value).map_err(|e| bad(*i, e))?);
            }
        }
        let actions = if records.is_empty() {
            loose
        } else {
            records.swap_remove(index % records.len())
        };
        Ok(ReplayAgent {
            actions: actions.into(),
        })
    }
}

impl Agent for ReplayAgent {
    fn name(&self) -> &str {
        "replay"
    }

    fn act(&mut self, _: &Observation, _: &View) -> Action {
        self.actions.pop_front().unwrap_or(Action::Submit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceback_sites_skip_tests_and_rank_by_frequency() {
        let log = "tests/test_a.py:10: in test_x\n    assert f(1) == 2\npkg/a.py:3: in f\n    return g(x)\npkg/b.py:7: AssertionError\n  File \"/repo/pkg/a.py\", line 3, in f\n";
        assert_eq!(
            traceback_sites(log),
            [("pkg/a.py".to_owned(), 3), ("pkg/b.py".to_owned(), 7)]
        );
    }

    #[test]
    fn failures_are_counted_from_summaries() {
        assert_eq!(
            failures("FAILED tests/t.py::a - x\nERROR tests/t.py::b\nok\n"),
            2
        );
        assert_eq!(failures("FAIL: test_x (t.C)\n"), 1);
        assert_eq!(failures("collecting...\n[stopped: timeout]"), usize::MAX);
    }

    #[test]
    fn agent_names_parse() {
        assert_eq!("oracle".parse::<AgentKind>().unwrap(), AgentKind::Oracle);
        assert_eq!(
            "replay:x.jsonl".parse::<AgentKind>().unwrap(),
            AgentKind::Replay("x.jsonl".into())
        );
        assert!("genius"
            .parse::<AgentKind>()
            .unwrap_err()
            .contains("heuristic"));
    }

    #[test]
    fn replay_reads_actions_and_records() {
        let dir = std::env::temp_dir().join(format!("spar-replay-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("a.jsonl");
        std::fs::write(
            &file,
            "{\"tool\":\"diff\"}\n{\"tool\":\"list_dir\",\"path\":\".\"}\n",
        )
        .unwrap();
        let mut a = ReplayAgent::from_file(&file, 0).unwrap();
        assert_eq!(a.actions.len(), 2);
        assert_eq!(a.actions.pop_front(), Some(Action::Diff));
        std::fs::write(
            &file,
            "{\"actions\":[{\"tool\":\"submit\"}]}\n{\"actions\":[{\"tool\":\"diff\"}]}\n",
        )
        .unwrap();
        let b = ReplayAgent::from_file(&file, 1).unwrap();
        assert_eq!(b.actions, [Action::Diff]);
        std::fs::write(&file, "{\"tool\":\"explode\"}\n").unwrap();
        let err = ReplayAgent::from_file(&file, 0).err().unwrap().to_string();
        assert!(err.contains(":1:"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
