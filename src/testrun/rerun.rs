//! A suite run that survives a test stopping the interpreter.
//!
//! A test that overflows the guest's stack, allocates past the memory limit or calls
//! `os._exit` ends the whole run, and every test after it would have no result. spar's pytest
//! plugin in the guest (`spar_pytest`, passed with `-p`) notes what it collected and which test
//! is running in a file under `/tmp`; after a run that ended early, [`run_suite`] reports the
//! test that was running as an `error` whose reason says how the run stopped, and runs the
//! tests that have no result again (the plugin's `--spar-only`), until every collected test
//! has a status or the run's limits are spent. A crash while a module is imported is handled
//! the same way: the module is reported and left out (`--ignore`). The wall clock, the fuel
//! budget and the output cap are shared by all the runs: each rerun gets what is left.

use super::{TestCommand, TestStatus};
use crate::guest::{GuestError, Python, PythonRun, RUN_MOUNT};
use crate::sandbox::{Limits, Outcome, RunResult};
use crate::snapshot::Snapshot;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The guest plugin that records progress and selects the tests of a rerun.
const PLUGIN: &str = "spar_pytest";
/// Where the plugin writes, relative to [`RUN_MOUNT`] (outside `/tmp`, which suites clean).
const PROGRESS: &str = "pytest-progress";

/// A suite run: one guest run, or several when a test stopped one.
pub struct SuiteRun {
    /// The guest's result. After reruns: stdout and stderr of every run in order (with a note
    /// where each one stopped), fuel and time summed, the last run's file system. The outcome
    /// is `completed` when the last run finished its session, else how the last run ended.
    pub result: RunResult,
    /// Per-test results of all runs; a test that stopped a run is an `error`.
    pub tests: BTreeMap<String, TestStatus>,
    /// The tests (or test modules) that stopped a run, with why (`the run stopped:
    /// out_of_memory`).
    pub stopped: BTreeMap<String, String>,
    /// How many guest runs it took.
    pub runs: usize,
}

/// Runs `command` over `repo` in the guest and parses the results; pytest suites that a test
/// stops are continued without it (see the module documentation).
pub fn run_suite(
    python: &Python,
    repo: &Snapshot,
    command: &TestCommand,
    options: &PythonRun,
) -> Result<SuiteRun, GuestError> {
    // The plugin's options go where pytest's do; other command lines run once as given.
    let Some(at) = command.pytest_options_at() else {
        let result = python.run(repo, &command.args, options)?;
        let tests = parse_result(command, &result);
        return Ok(SuiteRun {
            result,
            tests,
            stopped: BTreeMap::new(),
            runs: 1,
        });
    };
    let mut state = Reruns::default();
    let mut merged: Option<RunResult> = None;
    let mut limits = options.limits;
    loop {
        let args = state.args(&command.args, at);
        let run_options = PythonRun {
            limits,
            ..options.clone()
        };
        let result = python.run(repo, &args, &run_options)?;
        let progress = Progress::read(&result);
        let parsed = parse_result(command, &result);
        let next = state.after(&result, &progress, &parsed);
        let spent = Spent::of(&result);
        merged = Some(match merged {
            None => result,
            Some(before) => merge(before, result),
        });
        let merged_now = merged.as_mut().expect("set above");
        let Some(message) = next else { break };
        let Some(left) = remaining(&options.limits, &state.spent.add(spent)) else {
            note(
                &mut merged_now.stdout,
                &format!("{message}; the run's limits are spent"),
            );
            break;
        };
        note(
            &mut merged_now.stdout,
            &format!("{message}; running them again"),
        );
        state.spent = state.spent.add(spent);
        limits = left;
    }
    let mut result = merged.expect("at least one run");
    let tests = state.finish(command, &mut result);
    Ok(SuiteRun {
        result,
        tests,
        stopped: state.stopped,
        runs: state.runs,
    })
}

fn parse_result(command: &TestCommand, result: &RunResult) -> BTreeMap<String, TestStatus> {
    command.parse(
        &String::from_utf8_lossy(&result.stdout),
        &String::from_utf8_lossy(&result.stderr),
    )
}

/// What the runs so far have settled.
#[derive(Default)]
struct Reruns {
    runs: usize,
    /// Every test the first complete collection selected.
    collected: Option<BTreeSet<String>>,
    /// Tests with a status from the runner's log.
    reported: BTreeSet<String>,
    /// Tests and modules that stopped a run, with why.
    stopped: BTreeMap<String, String>,
    /// Paths of modules that stopped a run while being imported.
    ignored: Vec<String>,
    spent: Spent,
}

impl Reruns {
    /// The command line of the next run: the plugin, the modules to leave out, and after a
    /// complete collection the tests still without a result.
    fn args(&self, args: &[String], at: usize) -> Vec<String> {
        let mut extra = vec!["-p".to_owned(), PLUGIN.to_owned()];
        extra.extend(self.ignored.iter().map(|p| format!("--ignore={p}")));
        if let (true, Some(collected)) = (self.runs > 0, &self.collected) {
            let left: Vec<&str> = self.left(collected).collect();
            extra.push(format!("--spar-only={}", left.join("\n")));
        }
        let mut all = args[..at].to_vec();
        all.extend(extra);
        all.extend(args[at..].iter().cloned());
        all
    }

    fn left<'a>(&'a self, collected: &'a BTreeSet<String>) -> impl Iterator<Item = &'a str> {
        collected
            .iter()
            .filter(|id| !self.reported.contains(*id) && !self.stopped.contains_key(*id))
            .map(String::as_str)
    }

    /// Takes in one run. Returns the note to log when another run is needed (a test stopped
    /// this one and tests are left), `None` when the suite is done or cannot go further.
    fn after(
        &mut self,
        result: &RunResult,
        progress: &Option<Progress>,
        parsed: &BTreeMap<String, TestStatus>,
    ) -> Option<String> {
        self.runs += 1;
        self.reported.extend(parsed.keys().cloned());
        let progress = progress.as_ref()?;
        // Finished tests are not run again, even when the log names none (no `-v`).
        self.reported.extend(progress.finished.iter().cloned());
        if self.collected.is_none() {
            self.collected = progress.items.clone();
        }
        // A suite that deleted the progress file (`rm -rf /tmp/*`, `--basetemp=/tmp`) and ran to
        // its end must not have a test blamed: pytest's final summary line says it finished.
        if progress.ended || pytest_finished(result) {
            return None;
        }
        let how = how_it_stopped(result);
        let (id, what) = match (&progress.running, progress.collecting.last()) {
            (Some(test), _) => (test.clone(), format!("while {test} was running")),
            // Only the first collection can blame a module: a rerun collects what the first
            // run already collected once.
            (None, Some((id, path))) if self.collected.is_none() => {
                self.ignored.push(path.clone());
                (id.clone(), format!("while {id} was being collected"))
            }
            _ => return None,
        };
        if self.stopped.contains_key(&id) {
            return None;
        }
        self.stopped.insert(id, format!("the run stopped: {how}"));
        let left = match &self.collected {
            Some(collected) => self.left(collected).count(),
            None => usize::MAX,
        };
        if left == 0 {
            return None;
        }
        let count = if left == usize::MAX {
            "the rest of the suite".to_owned()
        } else {
            format!("{left} test(s) without a result")
        };
        Some(format!("the run stopped ({how}) {what}; {count} left"))
    }

    /// Per-test results of all runs, the tests that stopped a run as errors; also writes them
    /// into the log as a short summary in pytest's form, so the log alone says it (for custom
    /// parsers and for reading), and settles the outcome.
    fn finish(
        &self,
        command: &TestCommand,
        result: &mut RunResult,
    ) -> BTreeMap<String, TestStatus> {
        if !self.stopped.is_empty() {
            let mut summary = String::from(
                "\n=========== short test summary info (spar: tests that stopped a run) ===========\n",
            );
            for (id, why) in &self.stopped {
                summary.push_str(&format!("ERROR {id} - {why}\n"));
            }
            result.stdout.extend_from_slice(summary.as_bytes());
            if result.outcome == Outcome::Completed && result.exit_code == Some(0) {
                // pytest's own code for "some tests did not pass".
                result.exit_code = Some(1);
            }
        }
        parse_result(command, result)
    }
}

/// Whether the run completed with pytest's final summary line (`3 passed, 1 skipped in
/// 0.12s`, between `=` rules without `-q`) as the last line of its output.
fn pytest_finished(result: &RunResult) -> bool {
    result.outcome == Outcome::Completed
        && ends_with_summary(&String::from_utf8_lossy(&result.stdout))
}

fn ends_with_summary(stdout: &str) -> bool {
    let Some(last) = stdout.lines().rev().find(|l| !l.trim().is_empty()) else {
        return false;
    };
    let line = last.trim().trim_matches('=').trim();
    let Some((counts, time)) = line.rsplit_once(" in ") else {
        return false;
    };
    let words = [
        "passed",
        "failed",
        "error",
        "skipped",
        "deselected",
        "xfailed",
        "xpassed",
        "warning",
        "rerun",
    ];
    (time.ends_with('s') || time.ends_with(')'))
        && (counts.starts_with("no tests ran")
            || counts.split(", ").all(|part| {
                part.split_once(' ').is_some_and(|(n, w)| {
                    n.parse::<u64>().is_ok() && words.iter().any(|x| w.starts_with(x))
                })
            }))
}

/// How a run that did not finish its session ended, in words.
fn how_it_stopped(result: &RunResult) -> String {
    match (result.outcome, result.exit_code) {
        (Outcome::Completed, Some(code)) => format!("the interpreter exited with code {code}"),
        (outcome, _) => outcome.as_str().to_owned(),
    }
}

/// What the plugin recorded in one run.
#[derive(Debug, Default, PartialEq, Eq)]
struct Progress {
    /// The selected tests, once collection finished.
    items: Option<BTreeSet<String>>,
    /// The test that started and did not finish.
    running: Option<String>,
    /// Collectors that started and did not report, innermost last, with their paths.
    collecting: Vec<(String, String)>,
    /// Whether the session finished.
    ended: bool,
    /// The tests that finished.
    finished: BTreeSet<String>,
}

impl Progress {
    /// The progress of `result`'s run; `None` when the plugin wrote nothing (it was not
    /// loaded, or the run stopped before pytest configured itself).
    fn read(result: &RunResult) -> Option<Progress> {
        let run = result.fs.snapshot_of(RUN_MOUNT)?;
        let text = run.file(PROGRESS)?;
        Some(Progress::parse(&String::from_utf8_lossy(&text)))
    }

    fn parse(text: &str) -> Progress {
        let mut progress = Progress::default();
        let mut items = BTreeSet::new();
        for line in text.lines() {
            let mut fields = line.split('\t');
            let kind = fields.next().unwrap_or("");
            let id = fields.next().unwrap_or("").to_owned();
            match kind {
                "collecting" => {
                    let path = fields.next().unwrap_or("").to_owned();
                    progress.collecting.push((id, path));
                }
                "collected" => progress.collecting.retain(|(open, _)| *open != id),
                "item" => {
                    items.insert(id);
                }
                "items-done" => progress.items = Some(std::mem::take(&mut items)),
                "start" => progress.running = Some(id),
                "finish" => {
                    progress.running = None;
                    progress.finished.insert(id);
                }
                "end" => progress.ended = true,
                _ => {}
            }
        }
        progress
    }
}

/// What the runs so far used of the limits they share.
#[derive(Clone, Copy, Debug, Default)]
struct Spent {
    time: Duration,
    fuel: u64,
    output: u64,
}

impl Spent {
    fn of(result: &RunResult) -> Spent {
        Spent {
            time: result.duration,
            fuel: result.fuel_used,
            output: (result.stdout.len() + result.stderr.len()) as u64,
        }
    }

    fn add(self, other: Spent) -> Spent {
        Spent {
            time: self.time + other.time,
            fuel: self.fuel.saturating_add(other.fuel),
            output: self.output.saturating_add(other.output),
        }
    }
}

/// The limits of the next run: what is left of the wall clock, the fuel and the output cap
/// (memory and the file system are per run). `None` when any of them is spent.
fn remaining(limits: &Limits, spent: &Spent) -> Option<Limits> {
    let timeout = limits.timeout.checked_sub(spent.time)?;
    let fuel = match limits.fuel {
        Some(fuel) => Some(fuel.checked_sub(spent.fuel).filter(|f| *f > 0)?),
        None => None,
    };
    let max_output_bytes = limits
        .max_output_bytes
        .checked_sub(spent.output)
        .filter(|b| *b > 0)?;
    (!timeout.is_zero()).then_some(Limits {
        timeout,
        fuel,
        max_output_bytes,
        ..*limits
    })
}

/// Appends `[spar: TEXT]` to a log, on a line of its own.
fn note(log: &mut Vec<u8>, text: &str) {
    if !log.is_empty() && !log.ends_with(b"\n") {
        log.push(b'\n');
    }
    log.extend_from_slice(format!("[spar: {text}]\n").as_bytes());
}

/// The runs so far and the next one as one result: logs in order (an earlier run's trap noted
/// where it happened), fuel, time and bytes written back summed, warm only if both were, the
/// later run's ending and file system.
fn merge(mut before: RunResult, after: RunResult) -> RunResult {
    if let Some(trap) = &before.trap {
        note(&mut before.stderr, &format!("guest trapped: {trap}"));
    }
    before.stdout.extend_from_slice(&after.stdout);
    before.stderr.extend_from_slice(&after.stderr);
    RunResult {
        outcome: after.outcome,
        exit_code: after.exit_code,
        stdout: before.stdout,
        stderr: before.stderr,
        duration: before.duration + after.duration,
        startup: before.startup + after.startup,
        warm: before.warm && after.warm,
        written_back: before.written_back + after.written_back,
        fuel_used: before.fuel_used.saturating_add(after.fuel_used),
        trap: after.trap,
        fs: after.fs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testrun::Runner;

    #[test]
    fn progress_names_the_running_test_and_the_open_collector() {
        let text = "collecting\ttests\t/repo/tests\n\
                    collecting\ttests/test_a.py\t/repo/tests/test_a.py\n\
                    collected\ttests/test_a.py\n\
                    collecting\ttests/test_b.py\t/repo/tests/test_b.py\n";
        let p = Progress::parse(text);
        assert_eq!(p.items, None);
        assert_eq!(
            p.collecting.last(),
            Some(&(
                "tests/test_b.py".to_owned(),
                "/repo/tests/test_b.py".to_owned()
            ))
        );
        let text = "item\tt.py::a\nitem\tt.py::b\nitems-done\nstart\tt.py::a\nfinish\tt.py::a\nstart\tt.py::b\n";
        let p = Progress::parse(text);
        assert_eq!(p.items.unwrap().len(), 2);
        assert_eq!(p.running.as_deref(), Some("t.py::b"));
        assert!(!p.ended);
        assert!(Progress::parse("items-done\nend\n").ended);
        assert!(p.finished.contains("t.py::a") && !p.finished.contains("t.py::b"));
    }

    #[test]
    fn pytest_summary_lines_are_recognised() {
        for done in [
            "..s\n8 passed, 1 skipped in 0.00s\n",
            "===== 1 failed, 2 passed, 3 warnings in 1.20s =====\n\n",
            "== no tests ran in 0.01s ==",
            "= 2 errors in 0.5s (0:00:00) =",
        ] {
            assert!(ends_with_summary(done), "{done}");
        }
        for not_done in [
            "",
            "tests/t.py::a PASSED\n",
            "the answer in 2s",
            "x passed in 1s",
        ] {
            assert!(!ends_with_summary(not_done), "{not_done}");
        }
    }

    #[test]
    fn reruns_share_the_limits() {
        let limits = Limits {
            fuel: Some(100),
            ..Limits::default()
        };
        let spent = Spent {
            time: Duration::from_secs(20),
            fuel: 60,
            output: 10,
        };
        let left = remaining(&limits, &spent).unwrap();
        assert_eq!(left.timeout, Duration::from_secs(100));
        assert_eq!(left.fuel, Some(40));
        assert_eq!(left.max_output_bytes, limits.max_output_bytes - 10);
        assert_eq!(left.memory_bytes, limits.memory_bytes);
        let all_fuel = Spent { fuel: 100, ..spent };
        assert!(remaining(&limits, &all_fuel).is_none());
        let all_time = Spent {
            time: Duration::from_secs(120),
            ..spent
        };
        assert!(remaining(&Limits::default(), &all_time).is_none());
    }

    #[test]
    fn the_plugin_goes_right_after_dash_m_pytest() {
        let command = TestCommand {
            runner: Runner::Pytest,
            args: ["-m", "pytest", "-v", "tests"].map(String::from).to_vec(),
            module_prefix: String::new(),
        };
        let at = command.pytest_options_at().unwrap();
        let mut state = Reruns::default();
        assert_eq!(
            state.args(&command.args, at),
            ["-m", "pytest", "-p", "spar_pytest", "-v", "tests"]
        );
        state.runs = 1;
        state.collected = Some(["t.py::a", "t.py::b", "t.py::c"].map(String::from).into());
        state.reported.insert("t.py::a".into());
        state
            .stopped
            .insert("t.py::b".into(), "the run stopped: trap".into());
        state.ignored.push("/repo/t2.py".into());
        assert_eq!(
            state.args(&command.args, at),
            [
                "-m",
                "pytest",
                "-p",
                "spar_pytest",
                "--ignore=/repo/t2.py",
                "--spar-only=t.py::c",
                "-v",
                "tests"
            ]
        );
        let unittest = TestCommand {
            runner: Runner::Unittest,
            ..command
        };
        assert_eq!(unittest.pytest_options_at(), None);
    }
}
