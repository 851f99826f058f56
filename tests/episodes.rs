//! Solver episodes on the real guest: determinism, truncation vs termination, grading that
//! restores oracle tests, higher-order bugs, and the scheduler with oracle, random and
//! crashing agents.

mod common;

use spar::agents::{Agent, AgentError, AgentFactory, AgentKind, Assignment, View};
use spar::episode::{
    episode_seed, Action, Env, EnvSettings, EpisodeSpec, Observation, SolverEnv, Step, Task,
};
use spar::guest::Python;
use spar::protocol::{ValidationSettings, Validator};
use spar::rollout::Scheduler;
use std::sync::Arc;

fn python() -> Arc<Python> {
    common::python_arc()
}

/// The calc task (`sub` broken, its tests weakened away) and the validator that validated it.
fn task() -> (Arc<Task>, Arc<Validator>) {
    let validator = Arc::new(Validator::new(ValidationSettings::default()));
    let (_, _, task) = common::calc_task(&validator);
    (task, validator)
}

fn play(env: &mut SolverEnv, actions: &[Action]) -> Vec<Step> {
    actions.iter().map(|a| env.step(a).unwrap()).collect()
}

const FIX: &str = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n";

#[test]
fn the_same_seed_and_actions_give_the_same_episode() {
    let (task, validator) = task();
    let actions = vec![
        Action::ListDir { path: ".".into() },
        Action::Search {
            pattern: "def sub".into(),
            path: None,
        },
        Action::Run {
            args: vec!["-c".into(), "import random; print(random.random())".into()],
        },
        Action::Edit {
            path: "calc/ops.py".into(),
            old: "return a + b\n\n\ndef mul".into(),
            new: "return a - b\n\n\ndef mul".into(),
        },
        Action::Diff,
        Action::Submit,
    ];
    let mut a = SolverEnv::new(python(), validator.clone(), EnvSettings::default());
    let mut b = SolverEnv::new(python(), validator, EnvSettings::default());
    let first_a = a.reset(task.clone(), 42);
    let first_b = b.reset(task.clone(), 42);
    assert_eq!(first_a, first_b);
    assert!(first_a.text.contains("Please fix the code"));
    assert!(
        first_a.text.contains("+def test_sub():"),
        "the spec restores the removed tests"
    );
    let sa = play(&mut a, &actions);
    let sb = play(&mut b, &actions);
    let obs = |s: &[Step]| {
        s.iter()
            .map(|x| (x.observation.clone(), x.reward, x.terminated, x.truncated))
            .collect::<Vec<_>>()
    };
    assert_eq!(obs(&sa), obs(&sb));
    assert!(
        sa[1]
            .observation
            .text
            .contains("calc/ops.py:5: def sub(a, b):"),
        "{}",
        sa[1].observation.text
    );
    assert!(
        sa[4].observation.text.contains("+    return a - b"),
        "{}",
        sa[4].observation.text
    );
    let last = sa.last().unwrap();
    assert!(last.terminated && !last.truncated);
    assert_eq!(last.reward, 1.0);
    assert!(matches!(
        a.step(&Action::Diff),
        Err(spar::episode::EpisodeError::Ended)
    ));
    // A `run` is seeded from what it runs (files, arguments, options), not from the episode:
    // another episode seed and another validator (no shared memo) see the same output, which
    // is what makes runs memoizable across attempts.
    let mut c = SolverEnv::new(python(), task_validator(), EnvSettings::default());
    c.reset(task, 43);
    let sc = play(&mut c, &actions[..3]);
    assert_eq!(sc[2].observation, sa[2].observation);
    assert_eq!(sc[2].info.sandbox_runs, 1, "a fresh validator ran it");
}

fn task_validator() -> Arc<Validator> {
    Arc::new(Validator::new(ValidationSettings::default()))
}

#[test]
fn budgets_truncate_and_submit_terminates() {
    let (task, validator) = task();
    let mut env = SolverEnv::new(
        python(),
        validator.clone(),
        EnvSettings {
            max_turns: 3,
            ..EnvSettings::default()
        },
    );
    env.reset(task.clone(), 0);
    let steps = play(
        &mut env,
        &[
            Action::Diff,
            Action::ReadFile {
                path: "missing.py".into(),
                start: None,
                end: None,
            },
            Action::Diff,
        ],
    );
    assert!(!steps[0].truncated && !steps[1].truncated);
    assert!(
        steps[1].observation.error,
        "a bad tool call is an observation, not an error"
    );
    assert!(steps[2].truncated && !steps[2].terminated);
    assert_eq!(steps[2].reward, -1.0);
    assert!(steps[2]
        .info
        .truncation
        .as_deref()
        .unwrap()
        .contains("turn limit"));

    let mut env = SolverEnv::new(
        python(),
        validator,
        EnvSettings {
            max_observation_bytes: 100,
            ..EnvSettings::default()
        },
    );
    env.reset(task, 0);
    let step = env
        .step(&Action::ReadFile {
            path: "tests/test_calc.py".into(),
            start: None,
            end: None,
        })
        .unwrap();
    assert!(step.truncated);
    assert!(step.info.truncation.unwrap().contains("observation budget"));
}

#[test]
fn grading_restores_oracle_tests_so_editing_them_gains_nothing() {
    let (task, validator) = task();
    let mut env = SolverEnv::new(python(), validator.clone(), EnvSettings::default());
    env.reset(task.clone(), 0);
    // The visible suite already passes; deleting more tests or rewriting them does not help.
    let steps = play(
        &mut env,
        &[
            Action::Create {
                path: "tests/test_calc.py".into(),
                content: "def test_nothing():\n    pass\n".into(),
            },
            Action::Submit,
        ],
    );
    assert_eq!(steps[1].reward, -1.0);
    let grade = steps[1].info.grade.as_ref().unwrap();
    assert!(
        grade
            .not_passing
            .contains(&"tests/test_calc.py::test_sub".to_owned()),
        "{grade:?}"
    );

    // The true fix, with a vandalised test file, still gets +1.
    let mut env = SolverEnv::new(python(), validator, EnvSettings::default());
    env.reset(task, 0);
    let steps = play(
        &mut env,
        &[
            Action::Create {
                path: "calc/ops.py".into(),
                content: FIX.into(),
            },
            Action::Create {
                path: "tests/test_calc.py".into(),
                content: "x = 1\n".into(),
            },
            Action::Submit,
        ],
    );
    assert_eq!(steps[2].reward, 1.0);
}

/// A solver cannot keep its own test files by putting a directory where a test file belongs,
/// or a file where its directory belongs: grading removes both and restores the oracle's file.
#[test]
fn grading_restores_test_files_over_whatever_blocks_them() {
    use spar::snapshot::FileChange;
    let (task, _) = task();
    let test_file = "tests/test_calc.py";
    let original = task.original.file(test_file).unwrap();
    let as_dir = task
        .buggy
        .with_changes(&[
            FileChange::Deleted {
                path: test_file.into(),
            },
            FileChange::Written {
                path: format!("{test_file}/x.py"),
                contents: b"x = 1\n".to_vec().into(),
            },
        ])
        .unwrap();
    let mut blocking_parent = task.buggy.clone();
    for (path, _) in task.buggy.files() {
        if path.starts_with("tests/") {
            blocking_parent = blocking_parent
                .with_changes(&[FileChange::Deleted { path }])
                .unwrap();
        }
    }
    let blocking_parent = blocking_parent
        .with_changes(&[FileChange::Written {
            path: "tests".into(),
            contents: b"not a directory\n".to_vec().into(),
        }])
        .unwrap();
    for state in [as_dir, blocking_parent] {
        let graded = task.grading_state(&state);
        assert_eq!(graded.file(test_file).as_deref(), Some(&*original));
    }
}

#[test]
fn higher_order_bugs_build_on_a_failed_attempt() {
    let (task, validator) = task();
    let mut env = SolverEnv::new(python(), validator.clone(), EnvSettings::default());
    env.reset(task.clone(), 0);
    let wrong = FIX.replace("return a - b", "return abs(a - b)");
    let steps = play(
        &mut env,
        &[
            Action::Create {
                path: "calc/ops.py".into(),
                content: wrong.clone(),
            },
            Action::Submit,
        ],
    );
    assert_eq!(steps[1].reward, -1.0);
    let higher = task
        .higher_order(env.state(), 3)
        .expect("a failed attempt with code changes");
    assert_eq!(higher.order, 2);
    assert_eq!(higher.id, format!("{}+ho3", task.id));
    assert_eq!(
        &*higher.buggy.file("calc/ops.py").unwrap(),
        wrong.as_bytes()
    );
    assert_eq!(higher.specification, task.specification);
    assert_eq!(higher.fail_to_pass, task.fail_to_pass);
    assert!(
        higher.higher_order(&higher.buggy, 0).is_none(),
        "order is capped at 2"
    );
    assert!(
        task.higher_order(&task.buggy, 0).is_none(),
        "no code change, no new bug"
    );
    // The oracle solves the higher-order bug too.
    let higher = Arc::new(higher);
    let mut oracle = AgentKind::Oracle
        .make(Assignment::Solve(&higher), 0, 0)
        .unwrap();
    let mut env = SolverEnv::new(python(), validator, EnvSettings::default());
    let mut obs = env.reset(higher.clone(), 0);
    loop {
        let step = env.step(&oracle.act(&obs, &env.view())).unwrap();
        if step.terminated || step.truncated {
            assert_eq!(step.reward, 1.0);
            break;
        }
        obs = step.observation;
    }
}

struct Panicker;

impl Agent for Panicker {
    fn name(&self) -> &str {
        "panicker"
    }
    fn act(&mut self, _: &Observation, _: &View) -> Action {
        panic!("this agent is broken")
    }
}

fn specs(task: &Arc<Task>, n: usize) -> Vec<EpisodeSpec> {
    (0..n)
        .map(|attempt| EpisodeSpec {
            task: task.clone(),
            attempt,
            seed: episode_seed(1, 0, &task.id, attempt),
            round: 1,
        })
        .collect()
}

#[test]
fn scheduler_oracle_solves_all_random_far_fewer_and_a_crash_stops_nothing() {
    let (task, validator) = task();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let scheduler = Scheduler::new(python(), validator, 2);
    // Hundreds of oracle episodes in flight at once; identical final states are graded once.
    let records = runtime.block_on(scheduler.run_episodes(
        specs(&task, 300),
        ("oracle".into(), AgentKind::Oracle.factory()),
        EnvSettings::default(),
        300,
        None,
    ));
    assert_eq!(records.len(), 300);
    assert!(records
        .iter()
        .all(|r| r.solved && r.reward == 1.0 && r.error.is_none()));
    let stats = scheduler.take_stats();
    assert!(stats.peak_in_flight > 1, "{}", stats.peak_in_flight);

    let random = runtime.block_on(scheduler.run_episodes(
        specs(&task, 8),
        ("random".into(), AgentKind::Random.factory()),
        EnvSettings::default(),
        8,
        None,
    ));
    let solved = random.iter().filter(|r| r.solved).count();
    assert!(solved <= 2, "random solved {solved} of 8");
    // Same seeds, same episodes.
    let again = runtime.block_on(scheduler.run_episodes(
        specs(&task, 8),
        ("random".into(), AgentKind::Random.factory()),
        EnvSettings::default(),
        8,
        None,
    ));
    let key = |rs: &[spar::episode::EpisodeRecord]| {
        rs.iter()
            .map(|r| (r.actions.clone(), r.reward))
            .collect::<Vec<_>>()
    };
    assert_eq!(key(&random), key(&again));

    // Cancelled: every episode comes back, truncated, with the reason.
    let cancelled = Scheduler::new(python(), task_validator(), 2);
    cancelled
        .cancel_flag()
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let records = runtime.block_on(cancelled.run_episodes(
        specs(&task, 5),
        ("oracle".into(), AgentKind::Oracle.factory()),
        EnvSettings::default(),
        5,
        None,
    ));
    assert_eq!(records.len(), 5);
    assert!(records
        .iter()
        .all(|r| r.truncated && r.error.as_deref() == Some("cancelled")));

    // Attempt 1 crashes; the others finish and are graded.
    let factory: AgentFactory = Arc::new(
        |assignment: Assignment, seed, attempt| -> Result<Box<dyn Agent>, AgentError> {
            if attempt == 1 {
                Ok(Box::new(Panicker))
            } else {
                AgentKind::Oracle.make(assignment, seed, attempt)
            }
        },
    );
    let mixed = runtime.block_on(scheduler.run_episodes(
        specs(&task, 4),
        ("mixed".into(), factory),
        EnvSettings::default(),
        4,
        None,
    ));
    assert_eq!(mixed.len(), 4);
    assert!(
        mixed[1].error.as_deref().unwrap().contains("crashed"),
        "{:?}",
        mixed[1].error
    );
    for i in [0, 2, 3] {
        assert!(mixed[i].solved, "{:?}", mixed[i].error);
    }
}

#[test]
fn cli_selfplay_writes_rounds_and_episodes() {
    let out = common::scratch("selfplay").join("out");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_spar"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "--quiet",
            "selfplay",
            "--corpus",
            "moneyunits",
            "--rounds",
            "1",
            "--injector",
            "procedural",
        ])
        .args([
            "--solver",
            "oracle",
            "--attempts",
            "2",
            "--artifacts",
            "1",
            "--json",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let round: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(round["valid"], 1);
    assert_eq!(round["episodes"], 2);
    assert_eq!(round["solve_rate"], 1.0);
    assert_eq!(round["injector_reward"], -0.8, "s = 1 is trivial");
    let episodes = std::fs::read_to_string(out.join("episodes.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = episodes
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for e in &lines {
        assert_eq!(e["reward"], 1.0);
        assert_eq!(e["terminated"], true);
        assert!(e["actions"].as_array().unwrap().last().unwrap()["tool"] == "submit");
    }
    // A held-out project is refused for training.
    let heldout = std::process::Command::new(env!("CARGO_BIN_EXE_spar"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["--quiet", "selfplay", "--corpus", "datefmt", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(heldout.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&heldout.stderr).contains("held out"));
}

fn calc_project() -> Arc<spar::corpus::OpenProject> {
    Arc::new(common::calc_project(spar::corpus::Split::Train))
}

#[test]
fn injector_episodes_submit_bugs_through_the_same_tools() {
    use spar::episode::InjectorEnv;
    let validator = task_validator();
    let mut env = InjectorEnv::new(
        python(),
        validator.clone(),
        EnvSettings::default(),
        "scripted",
    );
    let prompt = env.reset(calc_project(), 7);
    assert!(prompt.text.contains("introducing a realistic bug"));
    let read = env
        .step(&Action::ReadFile {
            path: "calc/ops.py".into(),
            start: Some(5),
            end: Some(6),
        })
        .unwrap();
    assert!(read.observation.text.contains("return a - b"));
    env.step(&Action::Edit {
        path: "calc/ops.py".into(),
        old: "return a - b".into(),
        new: "return b - a".into(),
    })
    .unwrap();
    let step = env.step(&Action::Submit).unwrap();
    assert!(step.terminated);
    assert_eq!(step.reward, 0.0, "valid: the reward waits for the solvers");
    let injected = env.take_injected().expect("a valid artifact");
    assert!(env.take_injected().is_none(), "handed over once");
    assert!(injected.validation.valid);
    assert_eq!(injected.artifact.meta.injector, "spar");
    assert_eq!(injected.artifact.meta.strategy, "agent:scripted");
    assert!(injected
        .validation
        .fail_to_pass
        .contains(&"tests/test_calc.py::test_sub".to_owned()));
    // The weakening was automatic: the artifact's test patch deletes the broken tests.
    assert!(injected
        .artifact
        .test_patch
        .to_string()
        .contains("-def test_sub():"));

    // A submission that breaks nothing is invalid: -1 at once.
    let mut env = InjectorEnv::new(python(), validator.clone(), EnvSettings::default(), "lazy");
    env.reset(calc_project(), 7);
    let step = env.step(&Action::Submit).unwrap();
    assert_eq!(step.reward, -1.0);
    assert!(env.take_injected().is_none());
    assert!(
        step.observation.text.contains("breaks no test"),
        "{}",
        step.observation.text
    );

    // Touching a test file is a rule violation: invalid.
    let mut env = InjectorEnv::new(python(), validator, EnvSettings::default(), "cheater");
    env.reset(calc_project(), 7);
    env.step(&Action::Edit {
        path: "calc/ops.py".into(),
        old: "return a - b".into(),
        new: "return b - a".into(),
    })
    .unwrap();
    env.step(&Action::Edit {
        path: "tests/test_calc.py".into(),
        old: "assert add(2, 3) == 5".into(),
        new: "assert add(2, 3) == 6".into(),
    })
    .unwrap();
    let step = env.step(&Action::Submit).unwrap();
    assert_eq!(step.reward, -1.0, "{}", step.observation.text);
    assert!(env.take_injected().is_none());
}

#[test]
fn cli_selfplay_with_an_agent_in_the_injector_role() {
    let out = common::scratch("selfplay-inj").join("out");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_spar"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "--quiet",
            "selfplay",
            "--corpus",
            "moneyunits",
            "--rounds",
            "1",
            "--injector",
            "random",
        ])
        .args([
            "--solver",
            "oracle",
            "--attempts",
            "1",
            "--artifacts",
            "2",
            "--json",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let round: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(round["proposed"], 2);
    let episodes = std::fs::read_to_string(out.join("episodes.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = episodes
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let injectors: Vec<&serde_json::Value> =
        records.iter().filter(|r| r["role"] == "injector").collect();
    assert_eq!(injectors.len(), 2);
    for r in &injectors {
        let reward = r["reward"].as_f64().unwrap();
        // Invalid: -1; valid and solved by every oracle attempt: -alpha.
        assert!(reward == -1.0 || reward == -0.8, "{r}");
        assert_eq!(
            r["actions"].as_array().unwrap().last().unwrap()["tool"],
            "submit"
        );
    }
    let solvers = records.iter().filter(|r| r["role"] == "solver").count();
    assert_eq!(solvers as u64, round["valid"].as_u64().unwrap());
    // A solver is not an injector.
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_spar"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "--quiet",
            "selfplay",
            "--corpus",
            "moneyunits",
            "--injector",
            "oracle",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("are solvers"));
}
