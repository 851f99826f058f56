//! The seven consistency checks of a first-order bug artifact, run in the sandbox.
//!
//! One validation needs the original state, the buggy state, the buggy state with the tests
//! weakened, and the buggy state with each modified file reverted on its own: 3 + n test runs.
//! They are independent, so they run concurrently; a [`Validator`] memoizes every run on the
//! hash of (repository state, command, parser, oracle files), so an identical state is never
//! run twice, within one validation or across the artifacts of one injection session.

use super::artifact::BugArtifact;
use super::{is_test_path, test_file_of};
use crate::diff::DiffError;
use crate::guest::{GuestError, Python, PythonRun};
use crate::sandbox::Outcome;
use crate::snapshot::Snapshot;
use crate::testrun::{TestCommand, TestStatus};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Thresholds and limits of validation. The paper leaves the thresholds as parameters.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ValidationSettings {
    /// Check 3 needs strictly more passing oracle tests than this on the original (default 1).
    pub min_passing_tests: usize,
    /// Check 4 needs at least this many code files changed by the bug (default 1).
    pub min_changed_files: usize,
    /// Check 5 needs at least this many tests to go from pass to fail (default 1).
    pub min_failing_tests: usize,
    /// Wall-clock limit of one test-command run (default 90 s, as in the paper).
    pub test_timeout: Duration,
    /// Concurrent test runs (default: the number of cores).
    pub workers: usize,
    /// The runs of changed states (buggy, weakened, partly reverted) may use at most this many
    /// times the original run's fuel, and never less than [`MIN_FUEL_CAP`] (default 20). A bug
    /// that makes a test loop forever then ends, deterministically, within seconds rather than
    /// at the wall-clock limit; a run that reaches the cap is a timeout, as it would be there.
    #[serde(default = "default_fuel_ratio")]
    pub max_fuel_ratio: u64,
}

fn default_fuel_ratio() -> u64 {
    20
}

/// The least fuel a changed state's run may use, whatever the original used: about a second
/// of guest work.
pub const MIN_FUEL_CAP: u64 = 20_000_000_000;

impl Default for ValidationSettings {
    fn default() -> Self {
        ValidationSettings {
            min_passing_tests: 1,
            min_changed_files: 1,
            min_failing_tests: 1,
            test_timeout: Duration::from_secs(90),
            workers: crate::par::cores(),
            max_fuel_ratio: default_fuel_ratio(),
        }
    }
}

/// The seven checks, in the protocol's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// Check 1: oracle test files exist in the original and cover every file the weakening touches.
    TestFiles,
    /// Check 2: the parser turns the raw log into a test map.
    Parser,
    /// Check 3: more than `min_passing_tests` oracle tests pass on the original.
    OriginalPasses,
    /// 4. The bug patch changes at least `min_changed_files` code files and no test file.
    ChangedFiles,
    /// Check 5: at least `min_failing_tests` tests go from pass to fail under the bug.
    BugBreaksTests,
    /// Check 6: some tests that fail in the buggy state pass (or are gone) after the weakening.
    WeakeningHides,
    /// 7. Reverting any one modified file alone makes some failing test pass again.
    InverseMutation,
}

impl Check {
    /// Every check in order.
    pub const ALL: [Check; 7] = [
        Check::TestFiles,
        Check::Parser,
        Check::OriginalPasses,
        Check::ChangedFiles,
        Check::BugBreaksTests,
        Check::WeakeningHides,
        Check::InverseMutation,
    ];

    /// The check's name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Check::TestFiles => "test_files",
            Check::Parser => "parser",
            Check::OriginalPasses => "original_passes",
            Check::ChangedFiles => "changed_files",
            Check::BugBreaksTests => "bug_breaks_tests",
            Check::WeakeningHides => "weakening_hides",
            Check::InverseMutation => "inverse_mutation",
        }
    }
}

/// One check's verdict and its evidence.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckResult {
    /// Which check.
    pub check: Check,
    /// Whether it passed.
    pub passed: bool,
    /// One line on why.
    pub detail: String,
    /// Tests that are the evidence (e.g. those that broke).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<String>,
    /// Files that are the evidence (e.g. the decorative one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
}

/// The full verdict on an artifact.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ValidationReport {
    /// True when all seven checks passed.
    pub valid: bool,
    /// The checks in order.
    pub checks: Vec<CheckResult>,
    /// Oracle tests that pass on the original and fail under the bug (SWE-bench's FAIL_TO_PASS).
    pub fail_to_pass: Vec<String>,
    /// Oracle tests that pass on the original and under the bug (PASS_TO_PASS).
    pub pass_to_pass: Vec<String>,
    /// Test-command runs this validation asked for.
    pub test_runs: usize,
    /// Of those, how many were answered from the memo without running.
    pub memo_hits: usize,
    /// Wall time of the validation, ms.
    pub duration_ms: f64,
    /// Guest fuel of the runs actually executed.
    pub fuel: u64,
}

/// Harness failures during validation (a failing artifact is a report, not an error).
#[derive(Debug, thiserror::Error)]
pub enum ValidationError {
    /// The guest could not run (shared: every validation waiting on the same memoized run
    /// gets the one error).
    #[error("running the test command in the guest failed")]
    Run(#[source] Arc<GuestError>),
}

/// The parsed result of one run of an artifact's test command.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OracleRun {
    /// How the guest run ended.
    pub outcome: Outcome,
    /// Per-test results restricted to the oracle test files.
    pub tests: BTreeMap<String, TestStatus>,
    /// Why the parser failed, if it did.
    pub parser_error: Option<String>,
    /// Fuel of the run (and of the parser run).
    pub fuel: u64,
}

impl OracleRun {
    /// Tests that passed.
    pub fn passing(&self) -> BTreeSet<&str> {
        self.tests
            .iter()
            .filter(|(_, s)| **s == TestStatus::Passed)
            .map(|(t, _)| t.as_str())
            .collect()
    }
}

type Memo = Mutex<HashMap<String, Arc<OnceLock<Result<Arc<OracleRun>, Arc<GuestError>>>>>>;

/// What a `python ARGS...` tool run printed, as an episode's `run` tool shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ToolRun {
    /// stdout then stderr, lossily decoded.
    pub text: String,
    /// How the guest run ended.
    pub outcome: Outcome,
    /// The exit code, when the guest exited by itself.
    pub exit_code: Option<i32>,
    /// Fuel of the run.
    pub fuel: u64,
    /// Wall time of the run that produced it, ms.
    pub ms: f64,
}

type ToolMemo = Mutex<HashMap<String, Arc<OnceLock<Result<Arc<ToolRun>, Arc<GuestError>>>>>>;

/// Tool-run logs kept at most, in bytes: enough for every state a training run tries, bounded
/// so that a long run cannot grow without limit (runs past it execute every time).
const TOOL_MEMO_BYTES: usize = 256 << 20;

/// Runs artifacts' test commands with memoization, and validates artifacts.
pub struct Validator {
    settings: ValidationSettings,
    memo: Memo,
    tool_memo: ToolMemo,
    tool_memo_bytes: AtomicUsize,
    disk: Option<std::path::PathBuf>,
    tool_executed: AtomicUsize,
    executed: AtomicUsize,
    answered: AtomicUsize,
}

/// What one artifact's runs are about: the command, parser and oracle files, and the project's
/// guest options.
pub struct Oracle<'a> {
    /// The test command.
    pub command: &'a TestCommand,
    /// The optional in-guest parser.
    pub parser: Option<&'a str>,
    /// Oracle test files: results outside them are ignored (with the built-in parsers).
    pub test_files: &'a [String],
    /// Import roots and dependencies of the project.
    pub run: &'a PythonRun,
}

impl Validator {
    /// A validator with an empty memo.
    pub fn new(settings: ValidationSettings) -> Self {
        Validator {
            settings,
            memo: Mutex::new(HashMap::new()),
            tool_memo: Mutex::new(HashMap::new()),
            tool_memo_bytes: AtomicUsize::new(0),
            disk: None,
            tool_executed: AtomicUsize::new(0),
            executed: AtomicUsize::new(0),
            answered: AtomicUsize::new(0),
        }
    }

    /// Also keeps run results in `dir`, across processes: a run is a pure function of its key
    /// (files, command, options; the guest seeded from the key), so a later `spar eval` or a
    /// second training seed reads the runs an earlier one made instead of repeating them.
    /// `dir` must be specific to the guest runtime (interpreter and site packages). Runs that
    /// hit the wall-clock limit are not kept: how far they got depends on the machine's load.
    pub fn with_disk_memo(mut self, dir: std::path::PathBuf) -> Self {
        self.disk = Some(dir);
        self
    }

    fn disk_path(&self, kind: &str, key: &str) -> Option<std::path::PathBuf> {
        let dir = self.disk.as_ref()?;
        Some(dir.join(kind).join(&key[..2]).join(format!("{key}.json")))
    }

    fn disk_get<T: serde::de::DeserializeOwned>(&self, kind: &str, key: &str) -> Option<T> {
        let text = std::fs::read(self.disk_path(kind, key)?).ok()?;
        // An unreadable entry (a crash mid-write elsewhere) is a miss, and is rewritten.
        serde_json::from_slice(&text).ok()
    }

    fn disk_put<T: Serialize>(&self, kind: &str, key: &str, value: &T) {
        let Some(path) = self.disk_path(kind, key) else {
            return;
        };
        let Ok(json) = serde_json::to_vec(value) else {
            return;
        };
        // Best effort: the memo is an accelerator; a failed write only costs a later rerun.
        let _ = crate::fsutil::write_atomic(&path, &json);
    }

    /// The settings.
    pub fn settings(&self) -> &ValidationSettings {
        &self.settings
    }

    /// Test-command runs executed so far (memo hits excluded).
    pub fn runs_executed(&self) -> usize {
        self.executed.load(Ordering::Relaxed)
    }

    /// Tool runs ([`Validator::tool_run`]) executed so far (memo hits excluded).
    pub fn tool_runs_executed(&self) -> usize {
        self.tool_executed.load(Ordering::Relaxed)
    }

    /// Runs the oracle on `state`, or answers from the memo.
    pub fn run(
        &self,
        python: &Python,
        state: &Snapshot,
        oracle: &Oracle,
    ) -> Result<Arc<OracleRun>, ValidationError> {
        Ok(self.run_noting_memo(python, state, oracle)?.0)
    }

    /// Like [`Validator::run`], and says whether the answer came from the memo.
    pub fn run_noting_memo(
        &self,
        python: &Python,
        state: &Snapshot,
        oracle: &Oracle,
    ) -> Result<(Arc<OracleRun>, bool), ValidationError> {
        self.answered.fetch_add(1, Ordering::Relaxed);
        let mut executed_here = false;
        let key = memo_key(state, oracle);
        let cell = self
            .memo
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.clone())
            .or_default()
            .clone();
        let result = cell.get_or_init(|| {
            if let Some(run) = self.disk_get::<OracleRun>("oracle", &key) {
                return Ok(Arc::new(run));
            }
            executed_here = true;
            self.executed.fetch_add(1, Ordering::Relaxed);
            let result = self.execute(python, state, oracle);
            if let Ok(run) = &result {
                if run.outcome != Outcome::Timeout {
                    self.disk_put("oracle", &key, run);
                }
            }
            result.map(Arc::new).map_err(Arc::new)
        });
        let run = result.clone().map_err(ValidationError::Run)?;
        let from_memo = !executed_here;
        if oracle.parser.is_some() {
            return Ok((run, from_memo));
        }
        // The memo keeps whole logs' results, so runs that differ only in which files are
        // the oracle share one execution.
        let files: BTreeSet<&str> = oracle.test_files.iter().map(String::as_str).collect();
        let filtered = Arc::new(OracleRun {
            tests: run
                .tests
                .iter()
                .filter(|(id, _)| files.contains(test_file_of(id)))
                .map(|(id, s)| (id.clone(), *s))
                .collect(),
            ..(*run).clone()
        });
        Ok((filtered, from_memo))
    }

    /// Runs `python ARGS...` over `state` for an agent's `run` tool, or answers from the memo
    /// (the second value). The guest is seeded from the run's own key, so a run is a pure
    /// function of the files, the arguments and the options, and the memo is exact: the G
    /// attempts at one bug share the run of its starting state, and states that two attempts
    /// both reach run once.
    pub fn tool_run(
        &self,
        python: &Python,
        state: &Snapshot,
        args: &[String],
        options: &PythonRun,
    ) -> Result<(Arc<ToolRun>, bool), ValidationError> {
        let key = tool_key(state, args, options);
        let seed = u64::from_str_radix(&key[..16], 16).unwrap_or_default();
        let run = || -> Result<Arc<ToolRun>, Arc<GuestError>> {
            self.tool_executed.fetch_add(1, Ordering::Relaxed);
            let mut options = options.clone();
            options.determinism = crate::sandbox::Determinism::Seeded { seed };
            let result = python.run(state, args, &options).map_err(Arc::new)?;
            let mut text = String::from_utf8_lossy(&result.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&result.stderr));
            Ok(Arc::new(ToolRun {
                text,
                outcome: result.outcome,
                exit_code: result.exit_code,
                fuel: result.fuel_used,
                ms: result.duration.as_secs_f64() * 1e3,
            }))
        };
        // Runs ended by the wall clock are not memoized: how far they got depends on the load.
        let deterministic = |r: &ToolRun| {
            r.outcome != Outcome::Timeout || options.limits.fuel.is_some_and(|f| r.fuel >= f)
        };
        let full = self.tool_memo_bytes.load(Ordering::Relaxed) > TOOL_MEMO_BYTES;
        let cell = {
            let mut memo = self.tool_memo.lock().unwrap_or_else(|e| e.into_inner());
            match memo.get(&key) {
                Some(cell) => cell.clone(),
                // Past the cap, known runs are still answered; new ones are not kept in memory.
                None if full => Arc::default(),
                None => memo.entry(key.clone()).or_default().clone(),
            }
        };
        let mut executed_here = false;
        let result = cell.get_or_init(|| {
            let result = match self.disk_get::<ToolRun>("tool", &key) {
                Some(known) => Ok(Arc::new(known)),
                None => {
                    executed_here = true;
                    let result = run();
                    if let Ok(r) = &result {
                        if deterministic(r) {
                            self.disk_put("tool", &key, &**r);
                        }
                    }
                    result
                }
            };
            if let Ok(r) = &result {
                self.tool_memo_bytes
                    .fetch_add(r.text.len() + 128, Ordering::Relaxed);
            }
            result
        });
        let run = result.clone().map_err(ValidationError::Run)?;
        if !deterministic(&run) {
            self.tool_memo
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key);
        }
        Ok((run, !executed_here))
    }

    fn execute(
        &self,
        python: &Python,
        state: &Snapshot,
        oracle: &Oracle,
    ) -> Result<OracleRun, GuestError> {
        let mut options = oracle.run.clone();
        options.limits.timeout = self.settings.test_timeout;
        // The built-in parser reads only per-test statuses, so failures need no tracebacks;
        // an artifact's own parser gets the log the test script prints.
        let quiet = oracle.command.without_tracebacks();
        let command = match oracle.parser {
            None => &quiet,
            Some(_) => oracle.command,
        };
        // The shared suite runner: a test that stops the interpreter is an error and the
        // tests after it still run.
        let suite = crate::testrun::run_suite(python, state, command, &options)?;
        let result = suite.result;
        let stdout = String::from_utf8_lossy(&result.stdout);
        let stderr = String::from_utf8_lossy(&result.stderr);
        let mut fuel = result.fuel_used;
        let (tests, parser_error) = match oracle.parser {
            None => (suite.tests, None),
            Some(parser) => {
                let tree = Snapshot::from_files([("test_parser.py", parser.as_bytes().to_vec())])
                    .map_err(GuestError::Snapshot)?;
                let mut parse_options = PythonRun {
                    stdin: format!("{stdout}{stderr}").into_bytes(),
                    ..PythonRun::default()
                };
                // The parser is artifact code like the tests: it gets the same wall-clock limit.
                parse_options.limits.timeout = self.settings.test_timeout;
                let parsed =
                    python.run(&tree, &["/repo/test_parser.py".to_owned()], &parse_options)?;
                fuel += parsed.fuel_used;
                match parse_parser_output(&parsed) {
                    Ok(tests) => (tests, None),
                    Err(e) => (BTreeMap::new(), Some(e)),
                }
            }
        };
        Ok(OracleRun {
            outcome: result.outcome,
            tests,
            parser_error,
            fuel,
        })
    }

    /// The options changed states run with: `run`'s, with the fuel capped relative to what the
    /// original's run used (see [`ValidationSettings::max_fuel_ratio`]).
    pub fn fuel_capped(&self, run: &PythonRun, original: &OracleRun) -> PythonRun {
        let cap = original
            .fuel
            .saturating_mul(self.settings.max_fuel_ratio)
            .max(MIN_FUEL_CAP);
        let mut capped = run.clone();
        if original.outcome == Outcome::Completed {
            capped.limits.fuel = Some(run.limits.fuel.map_or(cap, |fuel| fuel.min(cap)));
        }
        capped
    }

    /// Runs all seven checks on `artifact` against the `original` repository.
    pub fn validate(
        &self,
        python: &Python,
        artifact: &BugArtifact,
        original: &Snapshot,
        run: &PythonRun,
    ) -> Result<ValidationReport, ValidationError> {
        let started = Instant::now();
        let executed_before = self.executed.load(Ordering::Relaxed);
        let states = States::build(artifact, original);
        let runs = self.run_states(python, artifact, &states, run)?;
        let (broken, still_passing) = runs.split_by_bug();
        let s = &self.settings;
        let checks = vec![
            check_test_files(artifact, original),
            check_parser(&runs.original),
            check_original_passes(&runs.original, s),
            check_changed_files(artifact, &states, s),
            check_bug_breaks_tests(&runs, &broken, s),
            check_weakening_hides(artifact, &states, &runs, &broken),
            check_inverse_mutation(&states, &runs, &broken),
        ];
        let test_runs = runs.count();
        let executed = self.executed.load(Ordering::Relaxed) - executed_before;
        Ok(ValidationReport {
            valid: checks.iter().all(|c| c.passed),
            checks,
            fail_to_pass: broken,
            pass_to_pass: still_passing,
            test_runs,
            memo_hits: test_runs.saturating_sub(executed),
            duration_ms: started.elapsed().as_secs_f64() * 1e3,
            fuel: runs.fuel(),
        })
    }

    /// Runs the original first (its fuel caps the others), then every other state at once.
    fn run_states(
        &self,
        python: &Python,
        artifact: &BugArtifact,
        states: &States,
        run: &PythonRun,
    ) -> Result<Runs, ValidationError> {
        let oracle = Oracle {
            command: &artifact.test_command,
            parser: artifact.test_parser.as_deref(),
            test_files: &artifact.test_files,
            run,
        };
        let original = self.run(python, states.original, &oracle)?;
        let capped = self.fuel_capped(run, &original);
        let changed = Oracle {
            run: &capped,
            ..oracle
        };
        let others = states.changed();
        let mut results = crate::par::map(&others, self.settings.workers, |s| {
            self.run(python, s, &changed)
        })
        .into_iter();
        let mut next = || results.next().expect("one run per state");
        let buggy = states.buggy.as_ref().ok().map(|_| next()).transpose()?;
        let weakened = match &states.weakened {
            Some(Ok(_)) => Some(next()?),
            _ => None,
        };
        let mut reverted = Vec::new();
        for (file, state) in &states.reverted {
            let run = match state {
                Ok(_) => Ok(next()?),
                Err(e) => Err(e.clone()),
            };
            reverted.push((file.clone(), run));
        }
        Ok(Runs {
            original,
            buggy,
            weakened,
            reverted,
        })
    }
}

/// The repository states one validation runs: the original, the buggy state, the buggy state
/// with the tests weakened, and the buggy state with each modified file reverted on its own.
struct States<'a> {
    original: &'a Snapshot,
    /// The files the bug patch changes.
    bug_files: Vec<String>,
    buggy: Result<Snapshot, DiffError>,
    /// None when there is no buggy state to weaken.
    weakened: Option<Result<Snapshot, DiffError>>,
    /// Per modified file, the bug without that file's change (or why it does not apply).
    reverted: Vec<(String, Result<Snapshot, String>)>,
}

impl<'a> States<'a> {
    fn build(artifact: &BugArtifact, original: &'a Snapshot) -> States<'a> {
        let bug_files: Vec<String> = artifact
            .bug_patch
            .paths()
            .iter()
            .map(|p| p.to_string())
            .collect();
        let buggy = artifact.bug_patch.apply(original);
        let weakened = buggy.as_ref().ok().map(|b| artifact.test_patch.apply(b));
        let reverted = match &buggy {
            Ok(_) => bug_files
                .iter()
                .map(|file| {
                    let partial = artifact.bug_patch.filter(|p| p != file);
                    (
                        file.clone(),
                        partial.apply(original).map_err(|e| e.to_string()),
                    )
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        States {
            original,
            bug_files,
            buggy,
            weakened,
            reverted,
        }
    }

    /// The states other than the original that exist, in the order [`Runs`] takes them.
    fn changed(&self) -> Vec<&Snapshot> {
        let weakened = self.weakened.as_ref().and_then(|w| w.as_ref().ok());
        let reverted = self.reverted.iter().filter_map(|(_, s)| s.as_ref().ok());
        self.buggy.iter().chain(weakened).chain(reverted).collect()
    }
}

/// The oracle's runs of the [`States`] that exist.
struct Runs {
    original: Arc<OracleRun>,
    buggy: Option<Arc<OracleRun>>,
    weakened: Option<Arc<OracleRun>>,
    reverted: Vec<(String, Result<Arc<OracleRun>, String>)>,
}

impl Runs {
    fn all(&self) -> impl Iterator<Item = &Arc<OracleRun>> {
        let reverted = self.reverted.iter().filter_map(|(_, r)| r.as_ref().ok());
        std::iter::once(&self.original)
            .chain(&self.buggy)
            .chain(&self.weakened)
            .chain(reverted)
    }

    fn count(&self) -> usize {
        self.all().count()
    }

    fn fuel(&self) -> u64 {
        self.all().map(|r| r.fuel).sum()
    }

    /// The tests passing on the original that fail under the bug (FAIL_TO_PASS), and those
    /// that still pass (PASS_TO_PASS); both empty without a buggy run.
    fn split_by_bug(&self) -> (Vec<String>, Vec<String>) {
        let Some(buggy) = &self.buggy else {
            return (Vec::new(), Vec::new());
        };
        let passing = buggy.passing();
        let (still, broken): (Vec<&str>, Vec<&str>) = self
            .original
            .passing()
            .into_iter()
            .partition(|t| passing.contains(t));
        let owned = |v: Vec<&str>| v.into_iter().map(str::to_owned).collect();
        (owned(broken), owned(still))
    }
}

/// Check 1: oracle test files exist in the original and cover every file the weakening touches.
fn check_test_files(artifact: &BugArtifact, original: &Snapshot) -> CheckResult {
    let check = Check::TestFiles;
    let missing: Vec<String> = artifact
        .test_files
        .iter()
        .filter(|f| original.file(f).is_none())
        .cloned()
        .collect();
    let listed: BTreeSet<&str> = artifact.test_files.iter().map(String::as_str).collect();
    let uncovered: Vec<String> = artifact
        .test_patch
        .paths()
        .into_iter()
        .filter(|p| !listed.contains(p))
        .map(str::to_owned)
        .collect();
    if artifact.test_files.is_empty() {
        fail(check, "test_files.txt lists no test files")
    } else if !missing.is_empty() {
        let why = "oracle test files missing from the original repository";
        with_files(fail(check, why), missing)
    } else if !uncovered.is_empty() {
        let why = "the weakening touches files that are not oracle test files";
        with_files(fail(check, why), uncovered)
    } else {
        let n = artifact.test_files.len();
        let why = format!("{n} oracle test files, all present; they cover the weakening");
        with_files(pass(check, why), artifact.test_files.clone())
    }
}

/// Check 2: the parser turns the original's raw log into a test map.
fn check_parser(original: &OracleRun) -> CheckResult {
    let check = Check::Parser;
    match (&original.parser_error, original.tests.len()) {
        (Some(e), _) => fail(check, format!("the test parser failed on the original's log: {e}")),
        (None, 0) => fail(
            check,
            format!(
                "no test results parsed from the original's log (run outcome: {}); check the test command and the oracle files",
                original.outcome.as_str()
            ),
        ),
        (None, n) => pass(check, format!("{n} test results parsed from the original's log")),
    }
}

/// Check 3: more than `min_passing_tests` oracle tests pass on the original.
fn check_original_passes(original: &OracleRun, s: &ValidationSettings) -> CheckResult {
    let check = Check::OriginalPasses;
    let (n, min) = (original.passing().len(), s.min_passing_tests);
    if original.outcome != Outcome::Completed {
        let outcome = original.outcome.as_str();
        fail(
            check,
            format!("the original's test run ended with {outcome}"),
        )
    } else if n > min {
        pass(
            check,
            format!("{n} oracle tests pass on the original (more than {min})"),
        )
    } else {
        fail(
            check,
            format!("{n} oracle tests pass on the original; more than {min} needed"),
        )
    }
}

/// Check 4: the bug patch applies and changes at least `min_changed_files` code files and
/// no test file.
fn check_changed_files(
    artifact: &BugArtifact,
    states: &States,
    s: &ValidationSettings,
) -> CheckResult {
    let check = Check::ChangedFiles;
    let files = &states.bug_files;
    let listed: BTreeSet<&str> = artifact.test_files.iter().map(String::as_str).collect();
    let test_files: Vec<String> = files
        .iter()
        .filter(|f| listed.contains(f.as_str()) || is_test_path(f))
        .cloned()
        .collect();
    if let Err(e) = &states.buggy {
        fail(
            check,
            format!("the bug patch does not apply to the original: {e}"),
        )
    } else if !test_files.is_empty() {
        let why = "the bug patch touches test files (rule violation)";
        with_files(fail(check, why), test_files)
    } else if files.len() < s.min_changed_files {
        let why = format!(
            "{} files changed; at least {} needed",
            files.len(),
            s.min_changed_files
        );
        with_files(fail(check, why), files.clone())
    } else {
        let why = format!("{} code files changed", files.len());
        with_files(pass(check, why), files.clone())
    }
}

/// Check 5: at least `min_failing_tests` tests go from pass to fail under the bug.
fn check_bug_breaks_tests(runs: &Runs, broken: &[String], s: &ValidationSettings) -> CheckResult {
    let check = Check::BugBreaksTests;
    let (n, min) = (broken.len(), s.min_failing_tests);
    if runs.buggy.is_none() {
        return fail(check, "the buggy state could not be built");
    }
    let result = if n >= min {
        pass(check, format!("{n} tests go from pass to fail"))
    } else {
        fail(
            check,
            format!("{n} tests go from pass to fail; at least {min} needed"),
        )
    };
    CheckResult {
        tests: broken.to_vec(),
        ..result
    }
}

/// Check 6: some tests that fail in the buggy state pass (or are gone) after the weakening.
fn check_weakening_hides(
    artifact: &BugArtifact,
    states: &States,
    runs: &Runs,
    broken: &[String],
) -> CheckResult {
    let check = Check::WeakeningHides;
    let weakened = match (&states.weakened, &runs.weakened) {
        (None, _) => return fail(check, "the buggy state could not be built"),
        (Some(Err(e)), _) => {
            let why = format!("the weakening patch does not apply to the buggy state: {e}");
            return fail(check, why);
        }
        (Some(Ok(_)), None) => return fail(check, "no run of the weakened state"),
        (Some(Ok(_)), Some(w)) => w,
    };
    if artifact.test_patch.is_empty() {
        return fail(check, "the weakening patch is empty");
    }
    let passing = weakened.passing();
    let hidden: Vec<String> = broken
        .iter()
        .filter(|t| passing.contains(t.as_str()) || !weakened.tests.contains_key(*t))
        .cloned()
        .collect();
    if hidden.is_empty() {
        return fail(
            check,
            "no failing test passes or disappears after the weakening",
        );
    }
    let why = format!(
        "{} of {} failing tests pass or are removed after the weakening",
        hidden.len(),
        broken.len()
    );
    CheckResult {
        tests: hidden,
        ..pass(check, why)
    }
}

/// Check 7, inverse mutation testing: reverting any one modified file alone makes some
/// failing test pass again (no file of the bug is decoration).
fn check_inverse_mutation(states: &States, runs: &Runs, broken: &[String]) -> CheckResult {
    let check = Check::InverseMutation;
    let mut decorative = Vec::new();
    let mut evidence = Vec::new();
    let mut problems = Vec::new();
    for (file, run) in &runs.reverted {
        match run {
            Ok(run) => {
                let passing = run.passing();
                let flipped: Vec<&str> = broken
                    .iter()
                    .map(String::as_str)
                    .filter(|t| passing.contains(t))
                    .collect();
                if flipped.is_empty() {
                    decorative.push(file.clone());
                } else {
                    evidence.push(format!("{file}: {}", flipped.join(", ")));
                }
            }
            Err(e) => problems.push(format!("{file}: {e}")),
        }
    }
    if states.buggy.is_err() {
        fail(check, "the buggy state could not be built")
    } else if broken.is_empty() {
        fail(check, "no failing tests to flip back")
    } else if !problems.is_empty() {
        let why = format!(
            "reverting a file alone does not apply: {}",
            problems.join("; ")
        );
        fail(check, why)
    } else if !decorative.is_empty() {
        let why =
            "reverting these files alone makes no failing test pass: they are decoration, not bug";
        with_files(fail(check, why), decorative)
    } else {
        let n = states.bug_files.len();
        let why = format!("each of the {n} modified files alone flips failing tests back");
        CheckResult {
            tests: evidence,
            ..with_files(pass(check, why), states.bug_files.clone())
        }
    }
}

fn with_files(result: CheckResult, files: Vec<String>) -> CheckResult {
    CheckResult { files, ..result }
}

fn pass(check: Check, detail: impl Into<String>) -> CheckResult {
    CheckResult {
        check,
        passed: true,
        detail: detail.into(),
        tests: Vec::new(),
        files: Vec::new(),
    }
}

fn fail(check: Check, detail: impl Into<String>) -> CheckResult {
    CheckResult {
        passed: false,
        ..pass(check, detail)
    }
}

/// An error with all its sources, `outer: inner: ...`, for messages that outlive the error.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn memo_key(state: &Snapshot, oracle: &Oracle) -> String {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(state.content_hash().as_bytes());
    field(
        serde_json::to_string(oracle.command)
            .unwrap_or_default()
            .as_bytes(),
    );
    field(oracle.parser.unwrap_or("\0builtin").as_bytes());
    for p in &oracle.run.python_path {
        field(p.as_bytes());
    }
    if let Some(deps) = &oracle.run.deps {
        field(deps.content_hash().as_bytes());
    }
    crate::snapshot::hex(&h.finalize())
}

fn tool_key(state: &Snapshot, args: &[String], run: &PythonRun) -> String {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(state.content_hash().as_bytes());
    for a in args {
        field(a.as_bytes());
    }
    field(b"\0cwd");
    field(run.cwd.as_bytes());
    field(b"\0path");
    for p in &run.python_path {
        field(p.as_bytes());
    }
    if let Some(deps) = &run.deps {
        field(deps.content_hash().as_bytes());
    }
    field(format!("{:?}", run.limits).as_bytes());
    field(&run.stdin);
    crate::snapshot::hex(&h.finalize())
}

/// Reads a custom parser's stdout: one JSON object of test id to status.
fn parse_parser_output(
    result: &crate::sandbox::RunResult,
) -> Result<BTreeMap<String, TestStatus>, String> {
    if result.outcome != Outcome::Completed || result.exit_code != Some(0) {
        let stderr = String::from_utf8_lossy(&result.stderr);
        let last = stderr.lines().last().unwrap_or("").to_owned();
        return Err(format!(
            "it ended with {} (exit code {:?}): {last}",
            result.outcome.as_str(),
            result.exit_code
        ));
    }
    let stdout = String::from_utf8_lossy(&result.stdout);
    let map: BTreeMap<String, serde_json::Value> = serde_json::from_str(stdout.trim())
        .map_err(|e| format!("its output is not a JSON object of test ids to statuses: {e}"))?;
    map.into_iter()
        .map(|(id, v)| {
            let status = match v.as_str() {
                Some("passed") => TestStatus::Passed,
                Some("failed") => TestStatus::Failed,
                Some("error") => TestStatus::Error,
                Some("skipped") => TestStatus::Skipped,
                _ => {
                    return Err(format!(
                        "test {id:?} has status {v}; use \"passed\" or \"failed\""
                    ))
                }
            };
            Ok((id, status))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn original(outcome: Outcome, fuel: u64) -> OracleRun {
        OracleRun {
            outcome,
            tests: BTreeMap::new(),
            parser_error: None,
            fuel,
        }
    }

    #[test]
    fn changed_states_run_under_a_cap_relative_to_the_original() {
        let validator = Validator::new(ValidationSettings::default());
        let run = PythonRun::default();
        let cap = |o: &OracleRun, run: &PythonRun| validator.fuel_capped(run, o).limits.fuel;
        assert_eq!(
            cap(&original(Outcome::Completed, 1 << 40), &run),
            Some(20 << 40)
        );
        assert_eq!(
            cap(&original(Outcome::Completed, 1000), &run),
            Some(MIN_FUEL_CAP)
        );
        // A tighter cap of the caller's stays; an original that did not finish sets none.
        let mut tight = PythonRun::default();
        tight.limits.fuel = Some(5);
        assert_eq!(cap(&original(Outcome::Completed, 1 << 40), &tight), Some(5));
        assert_eq!(cap(&original(Outcome::Timeout, 1 << 40), &run), None);
    }
}
