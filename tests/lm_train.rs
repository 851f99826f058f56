//! `spar train --policy lm` on the real guest with a tiny checkpoint made in the test: the
//! language model plays injector and solver episodes through the tools, its trajectories
//! reach the trainer, metrics and adapters are written, and the run resumes.

mod common;

use spar::corpus::Split;
use spar::episode::tools::{definitions, Profile};
use spar::episode::EnvSettings;
use spar::eval::{evaluate_all, BugSet, Evaluation};
use spar::lm::agent::ActSettings;
use spar::lm::config::Family;
use spar::lm::generate::Sampling;
use spar::lm::grpo::GrpoSettings;
use spar::lm::model::LoraSettings;
use spar::lm::{tiny, Trainable};
use spar::protocol::{ValidationSettings, Validator};
use spar::train::lm::LmTrainSettings;
use spar::train::{train, PolicyChoice, StepMetrics, TrainSettings, METRICS};
use std::sync::Arc;

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("spar-lm-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn a_language_model_trains_through_the_tools_and_resumes() {
    let out = scratch("run");
    let model = scratch("model");
    // The tokenizer learns the prompt's words, so the opening is a few hundred tokens.
    let system = spar::agents::llm::system_prompt(Profile::Spar);
    let corpus = vec![spar::lm::chat::opening(
        &system,
        &definitions(Profile::Spar),
        "",
    )];
    tiny::write_checkpoint(&model, Family::Qwen2, &corpus, 600, 1).unwrap();
    let lm = LmTrainSettings {
        model: model.clone(),
        trainable: Trainable::Adapters(LoraSettings {
            rank: 4,
            alpha: 8.0,
        }),
        act: ActSettings {
            sampling: Sampling {
                temperature: 1.0,
                top_p: 1.0,
                max_turn_tokens: 16,
            },
            tools: Profile::Spar,
            max_context: 4096,
            max_batch: 8,
        },
        grpo: GrpoSettings::default(),
        max_turns: 3,
    };
    let settings = TrainSettings {
        projects: vec!["calc".into()],
        steps: 1,
        seed: 3,
        attempts: 2,
        proposals: 2,
        bugs_per_step: 1,
        seed_bugs: 1,
        workers: 2,
        checkpoint_every: 1,
        policy: PolicyChoice::Lm(lm),
        ..TrainSettings::default()
    };
    let validator = Arc::new(Validator::new(ValidationSettings::default()));
    let projects = [common::calc_project(Split::Train)];
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
    assert_eq!((summary.steps, seen.len()), (1, 1));
    let m = &seen[0];
    // Two injector episodes (random text makes no bug) and G = 2 attempts at the seed bug.
    assert_eq!((m.proposals, m.episodes, m.bugs), (2, 2, 1), "{m:?}");
    assert_eq!(m.failed_episodes, 0, "{m:?}");
    let lm = m.lm.as_ref().expect("lm metrics");
    // What the step cost, for the README (visible with --nocapture).
    eprintln!("step metrics: {}", serde_json::to_string(m).unwrap());
    assert!(lm.generated_tokens >= 4 * 16, "{lm:?}");
    assert!(
        lm.turns_per_episode >= 1.0 && lm.generate_tokens_per_s > 0.0,
        "{lm:?}"
    );
    assert!((0.0..1.0).contains(&lm.engine_share), "{lm:?}");
    // The random model's episodes all earn the same: no signal, so no update.
    assert_eq!(lm.grpo.sequences, 0, "{lm:?}");
    let checkpoint = out.join("checkpoint");
    for file in [
        "adapter_model.safetensors",
        "adapter_config.json",
        "optimizer.safetensors",
    ] {
        assert!(checkpoint.join(file).is_file(), "{file}");
    }
    let line = std::fs::read_to_string(out.join(METRICS)).unwrap();
    assert!(line.contains("\"generate_tokens_per_s\""), "{line}");

    let longer = TrainSettings {
        steps: 2,
        ..settings
    };
    let resumed = train(
        common::python_arc(),
        validator.clone(),
        &projects,
        &longer,
        &out,
        true,
        EnvSettings::default(),
        |_| {},
    )
    .unwrap();
    assert_eq!((resumed.steps, resumed.metrics[0].step), (2, 2));
    assert_eq!(
        std::fs::read_to_string(out.join(METRICS))
            .unwrap()
            .lines()
            .count(),
        2
    );

    // The run evaluates on held-out bugs next to the base model it started from.
    let PolicyChoice::Lm(lm) = &longer.policy else {
        unreachable!()
    };
    let trained = spar::train::lm::eval_agents(&out, &longer, lm).unwrap();
    let evaluation = Evaluation {
        bugs: BugSet {
            per_project: 1,
            seed: 11,
        },
        attempts: 2,
        max_tries: 2,
        seed: 0,
        workers: 2,
        untrained_seed: 0,
        baselines: vec!["untrained".into()],
    };
    let heldout = [common::calc_project(Split::Heldout)];
    let cache = scratch("cache");
    let rows = evaluate_all(
        common::python_arc(),
        validator,
        &heldout,
        Some(trained),
        &evaluation,
        &cache,
    )
    .unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r.agent.as_str()).collect();
    assert_eq!(names, ["lm (trained)", "lm (base)"]);
    assert!(
        rows.iter().all(|r| r.bugs == 1 && r.failed_episodes == 0),
        "{rows:?}"
    );
    std::fs::remove_dir_all(&cache).ok();
    std::fs::remove_dir_all(&out).ok();
    std::fs::remove_dir_all(&model).ok();
}

#[test]
fn the_cli_says_what_a_language_model_run_needs() {
    let spar = env!("CARGO_BIN_EXE_spar");
    let out = scratch("cli");
    let run = |args: &[&str]| {
        let o = std::process::Command::new(spar)
            .args(args)
            .output()
            .unwrap();
        assert!(!o.status.success());
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let dir = out.to_str().unwrap();
    let no_model = run(&["train", "--policy", "lm", "--out", dir]);
    assert!(
        no_model.contains("--policy lm needs --model DIR"),
        "{no_model}"
    );
    let empty = scratch("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let bad = run(&[
        "train",
        "--policy",
        "lm",
        "--model",
        empty.to_str().unwrap(),
        "--out",
        dir,
    ]);
    assert!(bad.contains("config.json"), "{bad}");
    let stray = run(&["train", "--model", empty.to_str().unwrap(), "--out", dir]);
    assert!(stray.contains("--model is for --policy lm"), "{stray}");
    std::fs::remove_dir_all(&empty).ok();
}
