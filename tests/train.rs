//! The policy on the real guest: the policy solver repairs a real bug through the tools, a
//! short training run writes metrics and checkpoints and resumes, held-out evaluation scores
//! solvers on bugs made with a fixed seed, and the curves are drawn.

mod common;

use spar::corpus::{OpenProject, Split};
use spar::episode::EnvSettings;
use spar::eval::{evaluate, evaluate_all, heldout_tasks, BugSet, Evaluation};
use spar::policy::{model, solver_factory, DecisionSink};
use spar::protocol::{ValidationSettings, Validator};
use spar::train::{load_policy, train, StepMetrics, TrainSettings, METRICS};
use std::sync::{Arc, Mutex};

fn project(split: Split) -> OpenProject {
    common::calc_project(split)
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("spar-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn the_policy_solver_repairs_a_real_bug_and_records_its_choices() {
    let validator = Arc::new(Validator::new(ValidationSettings::default()));
    let (_, _, task) = common::calc_task(&validator);
    let (varmap, _) = model::fresh(0, &candle_core::Device::Cpu).unwrap();
    let net = Arc::new(model::frozen(&varmap).unwrap());
    let sink: DecisionSink = Arc::new(Mutex::new(Vec::new()));
    // Enough tries to go through every candidate: the fix must be among them.
    let factory = solver_factory(net, 30, Some(sink.clone()));
    let row = evaluate(
        common::python_arc(),
        validator,
        std::slice::from_ref(&task),
        ("policy".into(), factory),
        2,
        7,
        2,
        &EnvSettings::default(),
    )
    .unwrap();
    assert_eq!(row.solved, vec![2], "{row:?}");
    assert_eq!(row.solve_at_1, 1.0);
    let decisions = sink.lock().unwrap();
    assert_eq!(decisions.len(), 2);
    for (key, ds) in decisions.iter() {
        assert!(key.starts_with(&task.id), "{key}");
        assert!(!ds.is_empty());
        for d in ds {
            assert!(d.chosen < d.choice.candidates.len());
            assert!(d.logp <= 0.0 && d.logp.is_finite());
        }
        // The last choice is the repair: `sub` gets its minus back.
        let last = ds.last().unwrap();
        let c = &last.choice.candidates[last.chosen];
        assert_eq!(c.path, "calc/ops.py", "{}", c.label);
    }
}

#[test]
fn training_writes_metrics_and_checkpoints_and_resumes() {
    let out = scratch("run");
    let settings = TrainSettings {
        projects: vec!["calc".into()],
        steps: 2,
        seed: 3,
        attempts: 2,
        proposals: 2,
        bugs_per_step: 1,
        max_tries: 2,
        seed_bugs: 1,
        workers: 2,
        checkpoint_every: 1,
        ..TrainSettings::default()
    };
    let validator = Arc::new(Validator::new(ValidationSettings::default()));
    let projects = [project(Split::Train)];
    let mut seen: Vec<StepMetrics> = Vec::new();
    let summary = train(
        common::python_arc(),
        validator.clone(),
        &projects,
        &settings,
        &out,
        false,
        EnvSettings::default(),
        |m| seen.push(m.clone()),
    )
    .unwrap();
    assert_eq!(summary.steps, 2);
    assert_eq!(seen.len(), 2);
    // The pool started with the one procedural seed bug, and the proposals joined it.
    let seeded: Vec<_> = std::fs::read_dir(out.join("seed-bugs"))
        .unwrap()
        .flat_map(|set| std::fs::read_dir(set.unwrap().path()).unwrap())
        .filter(|e| e.as_ref().unwrap().path().is_dir())
        .collect();
    assert_eq!(seeded.len(), 1);
    assert!(seen[0].pool >= 1);
    for (i, m) in seen.iter().enumerate() {
        assert_eq!(m.step, i + 1);
        assert_eq!(m.proposals, 2);
        assert!((0.0..=1.0).contains(&m.valid_rate.unwrap()));
        assert!((-1.0..=1.0).contains(&m.injector_reward.unwrap()));
        assert!(m.loss.is_finite());
        assert!(m.entropy_injector.is_some());
    }
    let lines = std::fs::read_to_string(out.join(METRICS)).unwrap();
    assert_eq!(lines.lines().count(), 2);
    assert!(out.join("checkpoint/model.safetensors").is_file());
    assert!(out.join("checkpoint/optimizer.safetensors").is_file());

    // A second run into the same directory is refused; resuming continues from step 2.
    let again = train(
        common::python_arc(),
        validator.clone(),
        &projects,
        &settings,
        &out,
        false,
        EnvSettings::default(),
        |_| {},
    );
    let refused = again.expect_err("refused");
    assert!(
        matches!(refused, spar::train::TrainError::RunExists { .. }),
        "{refused}"
    );
    let longer = TrainSettings {
        steps: 3,
        ..settings.clone()
    };
    let resumed = train(
        common::python_arc(),
        validator,
        &projects,
        &longer,
        &out,
        true,
        EnvSettings::default(),
        |_| {},
    )
    .unwrap();
    assert_eq!(resumed.steps, 3);
    assert_eq!(resumed.metrics.len(), 1);
    assert_eq!(resumed.metrics[0].step, 3);
    let lines = std::fs::read_to_string(out.join(METRICS)).unwrap();
    assert_eq!(lines.lines().count(), 3);

    // The checkpoint loads, differs from the untrained weights, and the curves draw.
    let (net, saved) = load_policy(&out).unwrap();
    assert_eq!(saved.unwrap().seed, 3);
    let (untrained, _) = model::fresh(3, &candle_core::Device::Cpu).unwrap();
    let untrained = model::frozen(&untrained).unwrap();
    let choice = {
        let text =
            String::from_utf8(common::original().file("calc/ops.py").unwrap().to_vec()).unwrap();
        assert!(!text.is_empty());
        spar::policy::features::solver_choice(&common::original(), "")
    };
    let all = vec![true; choice.candidates.len()];
    assert_ne!(
        model::candidate_logps(&net, &choice, &all).unwrap(),
        model::candidate_logps(&untrained, &choice, &all).unwrap()
    );
    let svg = out.join("curves.svg");
    let points = spar::plot::write_svg(&out.join(METRICS), &svg, "test").unwrap();
    assert!(points > 0);
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<polyline"));
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn heldout_evaluation_is_fixed_and_refuses_training_projects() {
    let cache = scratch("cache");
    let validator = Arc::new(Validator::new(ValidationSettings::default()));
    let bugs = BugSet {
        per_project: 1,
        seed: 11,
    };
    let heldout = [project(Split::Heldout)];
    let first = heldout_tasks(common::python(), &validator, &heldout, &bugs, &cache).unwrap();
    let again = heldout_tasks(common::python(), &validator, &heldout, &bugs, &cache).unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].id, again[0].id, "the cached bug set is reused");
    let refused = heldout_tasks(
        common::python(),
        &validator,
        &[project(Split::Train)],
        &bugs,
        &cache,
    );
    assert!(refused.is_err());

    let settings = Evaluation {
        bugs,
        attempts: 2,
        max_tries: 2,
        seed: 0,
        workers: 2,
        untrained_seed: 0,
        baselines: vec!["untrained".into(), "random".into()],
    };
    let rows = evaluate_all(
        common::python_arc(),
        validator.clone(),
        &heldout,
        None,
        &settings,
        &cache,
    )
    .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].agent, "policy (untrained)");
    for r in &rows {
        assert_eq!(r.bugs, 1);
        assert_eq!(r.failed_episodes, 0, "{r:?}");
        assert!((0.0..=1.0).contains(&r.solve_at_1));
        assert!(r.solve_at_k >= r.solve_at_1);
    }
    let bad = Evaluation {
        baselines: vec!["oracle".into()],
        ..settings
    };
    let e = evaluate_all(
        common::python_arc(),
        validator,
        &heldout,
        None,
        &bad,
        &cache,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("untrained, random or heuristic"), "{e}");
    std::fs::remove_dir_all(&cache).ok();
}
