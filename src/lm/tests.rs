//! The LM policy on a tiny checkpoint made in the test: its forward pass against
//! candle-transformers' Qwen2/Qwen3, the KV cache, generation and its log-probabilities,
//! checkpoints, and GRPO learning a rewarded tool call.

use super::agent::Trajectory;
use super::chat::{parse_tool_call, IM_END};
use super::config::Family;
use super::generate::{sample_turn, Sampling};
use super::grpo::{GrpoSettings, GrpoTrainer};
use super::model::{token_logprobs, KvCache, LoraSettings, Pass};
use super::{tiny, LmPolicy, Trainable};
use crate::agents::Rng;
use crate::episode::rewards::group_advantages;
use crate::episode::tools::Profile;
use crate::episode::Action;
use crate::policy::model::AdamW;
use candle_core::{Device, Tensor};
use std::path::{Path, PathBuf};

const PROMPT: &str = "<|im_start|>user\nFix the bug.<|im_end|>\n<|im_start|>assistant\n";
const CALLS: [&str; 3] = [
    r#"{"name": "run", "arguments": {"args": ["-m", "pytest"]}}"#,
    r#"{"name": "read_file", "arguments": {"path": "a.py"}}"#,
    r#"{"name": "submit", "arguments": {}}"#,
];

fn completion(call: &str) -> String {
    format!("<tool_call>\n{call}\n</tool_call>{IM_END}")
}

fn corpus() -> Vec<String> {
    let mut texts: Vec<String> = CALLS
        .iter()
        .map(|c| format!("{PROMPT}{}", completion(c)))
        .collect();
    texts.push("def add(a, b):\n    return a + b\n\nassert add(1, 2) == 3\n".into());
    texts
}

fn checkpoint(family: Family, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spar-lm-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    tiny::write_checkpoint(&dir, family, &corpus(), 400, 11).unwrap();
    dir
}

fn load(dir: &Path, trainable: Trainable) -> LmPolicy {
    LmPolicy::load(dir, &Device::Cpu, trainable, 5).unwrap()
}

fn last_logits(policy: &LmPolicy, tokens: &[u32], pass: Pass) -> Vec<f32> {
    let hidden = policy.model.forward(tokens, None, pass).unwrap();
    let last = hidden.narrow(1, tokens.len() - 1, 1).unwrap();
    policy
        .model
        .logits(&last)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// candle-transformers' model of the same family over the same weights: last-token logits.
fn reference_logits(dir: &Path, family: Family, tokens: &[u32]) -> Vec<f32> {
    use candle_transformers::models::{qwen2, qwen3};
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    cfg["sliding_window"] = 4096.into();
    cfg["max_window_layers"] = 2.into();
    let weights =
        candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap();
    let vb = candle_nn::VarBuilder::from_tensors(weights, candle_core::DType::F32, &Device::Cpu);
    let ids = Tensor::new(tokens, &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let logits = match family {
        Family::Qwen2 => {
            let cfg: qwen2::Config = serde_json::from_value(cfg).unwrap();
            qwen2::ModelForCausalLM::new(&cfg, vb)
                .unwrap()
                .forward(&ids, 0)
                .unwrap()
        }
        Family::Qwen3 => {
            let cfg: qwen3::Config = serde_json::from_value(cfg).unwrap();
            qwen3::ModelForCausalLM::new(&cfg, vb)
                .unwrap()
                .forward(&ids, 0)
                .unwrap()
        }
    };
    logits.flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn the_forward_pass_matches_candle_transformers_and_the_kv_cache() {
    for family in [Family::Qwen2, Family::Qwen3] {
        let dir = checkpoint(family, &format!("{family:?}"));
        let policy = load(&dir, Trainable::Frozen);
        let tokens = policy
            .chat
            .encode(&format!("{PROMPT}{}", completion(CALLS[1])))
            .unwrap();
        let ours = last_logits(&policy, &tokens, Pass::GENERATE);
        let theirs = reference_logits(&dir, family, &tokens);
        assert!(
            max_diff(&ours, &theirs) < 1e-4,
            "{family:?}: {}",
            max_diff(&ours, &theirs)
        );
        let differentiable = last_logits(&policy, &tokens, Pass::TRAIN);
        assert!(max_diff(&ours, &differentiable) < 1e-4, "{family:?}");
        // Token by token through a cache, after a prefix: the same last logits.
        let mut cache = KvCache::default();
        let split = tokens.len() / 2;
        policy
            .model
            .forward(&tokens[..split], Some(&mut cache), Pass::GENERATE)
            .unwrap();
        let mut hidden = None;
        for t in &tokens[split..] {
            hidden = Some(
                policy
                    .model
                    .forward(&[*t], Some(&mut cache), Pass::GENERATE)
                    .unwrap(),
            );
        }
        assert_eq!(cache.len(), tokens.len());
        let cached: Vec<f32> = policy
            .model
            .logits(&hidden.unwrap())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!(
            max_diff(&ours, &cached) < 1e-4,
            "{family:?}: {}",
            max_diff(&ours, &cached)
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}

/// Samples one turn after `PROMPT`; `(trajectory, its text)`.
fn sample(policy: &LmPolicy, sampling: &Sampling, seed: u64) -> (Trajectory, String) {
    let prompt = policy.chat.encode(PROMPT).unwrap();
    let mut cache = KvCache::default();
    let turn = sample_turn(
        &policy.model,
        &mut cache,
        &prompt,
        sampling,
        &policy.chat.stops,
        &mut Rng(seed),
    )
    .unwrap();
    let mut t = Trajectory {
        tokens: prompt.clone(),
        own: vec![false; prompt.len()],
        logprobs: vec![0.0; prompt.len()],
        turns: 1,
        fumbles: 0,
    };
    t.tokens.extend(&turn.tokens);
    t.own.extend(vec![true; turn.tokens.len()]);
    t.logprobs.extend(&turn.logprobs);
    (t, policy.chat.decode(&turn.tokens).unwrap())
}

/// Log-probabilities of the model's tokens of `t` by one teacher-forced pass.
fn recomputed(policy: &LmPolicy, t: &Trajectory, temperature: f64) -> Vec<f32> {
    let hidden = policy
        .model
        .forward(&t.tokens[..t.tokens.len() - 1], None, Pass::TRAIN)
        .unwrap();
    let logits = policy.model.logits(&hidden.squeeze(0).unwrap()).unwrap();
    let lp = token_logprobs(&logits, &t.tokens[1..], temperature)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    (1..t.tokens.len())
        .filter(|i| t.own[*i])
        .map(|i| lp[i - 1])
        .collect()
}

#[test]
fn generation_is_seeded_and_its_logprobs_are_a_forward_pass() {
    let dir = checkpoint(Family::Qwen2, "generate");
    let policy = load(&dir, Trainable::Frozen);
    let sampling = Sampling {
        temperature: 0.8,
        top_p: 0.95,
        max_turn_tokens: 24,
    };
    let (a, text) = sample(&policy, &sampling, 3);
    let (b, _) = sample(&policy, &sampling, 3);
    assert_eq!(a, b, "the same seed draws the same turn");
    assert_eq!(a.own_tokens(), 24, "random weights rarely stop: {text:?}");
    let kept: Vec<f32> = (0..a.tokens.len())
        .filter(|i| a.own[*i])
        .map(|i| a.logprobs[i])
        .collect();
    assert!(max_diff(&kept, &recomputed(&policy, &a, 0.8)) < 1e-4);
    assert!(parse_tool_call(Profile::Spar, &text).is_err(), "{text}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn adapters_and_full_weights_survive_a_checkpoint() {
    let dir = checkpoint(Family::Qwen3, "checkpoint");
    let tokens = {
        let p = load(&dir, Trainable::Frozen);
        p.chat.encode(PROMPT).unwrap()
    };
    let lora = Trainable::Adapters(LoraSettings {
        rank: 4,
        alpha: 8.0,
    });
    for trainable in [lora, Trainable::Full] {
        let policy = load(&dir, trainable);
        let before = last_logits(&policy, &tokens, Pass::GENERATE);
        supervise(&policy, &[CALLS[0]], 2, 1e-2);
        let trained = last_logits(&policy, &tokens, Pass::GENERATE);
        assert!(
            max_diff(&before, &trained) > 1e-3,
            "{trainable:?}: training changed nothing"
        );
        let out = dir.join(format!("out-{}", matches!(trainable, Trainable::Full)));
        policy.save(&out).unwrap();
        let restored = match trainable {
            Trainable::Full => load(&out, Trainable::Frozen),
            _ => {
                let fresh = load(&dir, trainable);
                fresh.restore(&out).unwrap();
                fresh
            }
        };
        let again = last_logits(&restored, &tokens, Pass::GENERATE);
        assert!(max_diff(&trained, &again) < 1e-6, "{trainable:?}");
        if trainable != Trainable::Full {
            // Adapters off: the base model, untouched.
            let base = last_logits(&policy, &tokens, Pass::REFERENCE);
            assert!(max_diff(&before, &base) < 1e-6);
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// `steps` of supervised training on `PROMPT` + each call.
fn supervise(policy: &LmPolicy, calls: &[&str], steps: usize, lr: f64) {
    let mut opt = AdamW::new(&policy.varmap, lr, 0.0).unwrap();
    let prompt = policy.chat.encode(PROMPT).unwrap();
    for _ in 0..steps {
        let mut total: Option<Tensor> = None;
        for call in calls {
            let target = policy.chat.encode(&completion(call)).unwrap();
            let all: Vec<u32> = prompt.iter().chain(&target).copied().collect();
            let hidden = policy
                .model
                .forward(&all[..all.len() - 1], None, Pass::TRAIN)
                .unwrap();
            let rows = hidden
                .squeeze(0)
                .unwrap()
                .narrow(0, prompt.len() - 1, target.len())
                .unwrap();
            let lp = token_logprobs(&policy.model.logits(&rows).unwrap(), &target, 1.0).unwrap();
            let loss = lp.mean_all().unwrap().neg().unwrap();
            total = Some(match total {
                Some(t) => (t + loss).unwrap(),
                None => loss,
            });
        }
        opt.backward_step(&total.unwrap()).unwrap();
    }
}

/// Probability of the whole completion `call` after `PROMPT`.
fn probability(policy: &LmPolicy, call: &str) -> f64 {
    let prompt = policy.chat.encode(PROMPT).unwrap();
    let target = policy.chat.encode(&completion(call)).unwrap();
    let mut t = Trajectory::default();
    t.tokens = prompt.iter().chain(&target).copied().collect();
    t.own = (0..t.tokens.len()).map(|i| i >= prompt.len()).collect();
    f64::from(recomputed(policy, &t, 1.0).iter().sum::<f32>()).exp()
}

/// The reward pays for one specific first tool call: running the tests.
fn reward(text: &str) -> f64 {
    match parse_tool_call(Profile::Spar, text) {
        Ok(Action::Run { .. }) => 1.0,
        _ => 0.0,
    }
}

/// The share of 48 turns (fixed seeds) that run the tests.
fn run_share(policy: &LmPolicy, sampling: &Sampling) -> f64 {
    (0..48)
        .map(|seed| reward(&sample(policy, sampling, seed).1))
        .sum::<f64>()
        / 48.0
}

#[test]
fn grpo_learns_the_rewarded_tool_call() {
    let dir = checkpoint(Family::Qwen2, "grpo");
    let policy = load(&dir, Trainable::Full);
    // A model that writes well-formed calls, each of the three about as often (the tiny
    // model's text is noisy: some of its calls are malformed, and earn nothing).
    supervise(&policy, &CALLS, 200, 1e-2);
    let formed: f64 = CALLS.iter().map(|c| probability(&policy, c)).sum();
    let sampling = Sampling {
        temperature: 1.0,
        top_p: 1.0,
        max_turn_tokens: 40,
    };
    let before = run_share(&policy, &sampling);
    assert!(
        formed > 0.8 && before < 0.65,
        "warm-up: runs {before:.3}, P(any call) {formed:.3}"
    );
    let settings = GrpoSettings {
        lr: 5e-4,
        ..GrpoSettings::default()
    };
    let mut trainer = GrpoTrainer::new(&policy, settings).unwrap();
    let mut seed = 100;
    for _ in 0..20 {
        let group: Vec<(Trajectory, String)> = (0..8)
            .map(|_| {
                seed += 1;
                sample(&policy, &sampling, seed)
            })
            .collect();
        // The reward pays for one specific first tool call: running the tests.
        let rewards: Vec<f64> = group.iter().map(|(_, text)| reward(text)).collect();
        let advantages = group_advantages(&rewards);
        let batch: Vec<_> = group.iter().map(|(t, _)| t).zip(advantages).collect();
        trainer.step(&policy, &batch).unwrap();
    }
    let after = run_share(&policy, &sampling);
    assert!(
        after >= 0.85 && after >= before + 0.4,
        "runs: {before:.3} -> {after:.3}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn turns_generated_together_draw_what_each_draws_alone() {
    use super::batch::Generator;
    use super::generate::Decoding;
    let dir = checkpoint(Family::Qwen3, "batch");
    let policy = std::sync::Arc::new(load(&dir, Trainable::Frozen));
    let sampling = Sampling {
        temperature: 0.9,
        top_p: 1.0,
        max_turn_tokens: 12,
    };
    let contexts: Vec<Vec<u32>> = ["Fix the bug.", "def add(a, b):", "x"]
        .iter()
        .map(|t| {
            policy
                .chat
                .encode(&format!("<|im_start|>user\n{t}<|im_end|>\n"))
                .unwrap()
        })
        .collect();
    let alone: Vec<_> = contexts
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut cache = KvCache::default();
            let stops = &policy.chat.stops;
            sample_turn(
                &policy.model,
                &mut cache,
                c,
                &sampling,
                stops,
                &mut Rng(i as u64),
            )
            .unwrap()
        })
        .collect();
    let generator = Generator::spawn(policy.clone(), 8);
    let together: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = contexts
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let (generator, stops) = (generator.clone(), policy.chat.stops.clone());
                let turn = Decoding::new(
                    c.clone(),
                    KvCache::default(),
                    sampling,
                    stops,
                    Rng(i as u64),
                );
                s.spawn(move || generator.run(turn).unwrap())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for ((a, b), c) in alone.iter().zip(&together).zip(&contexts) {
        assert_eq!(a.tokens, b.turn.tokens);
        assert!(max_diff(&a.logprobs, &b.turn.logprobs) < 1e-4);
        // The cache holds the context and every drawn token but the last (not fed yet).
        assert_eq!(b.cache.len(), c.len() + b.turn.tokens.len() - 1);
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn an_agents_conversation_is_the_trajectory_it_trains_on() {
    use super::agent::{ActSettings, LmAgent, TrajectorySink};
    use super::batch::Generator;
    use crate::episode::{Agent, Observation, View};
    use crate::snapshot::Snapshot;
    use crate::testrun::TestCommand;
    let dir = checkpoint(Family::Qwen2, "agent");
    let policy = std::sync::Arc::new(load(&dir, Trainable::Frozen));
    let generator = Generator::spawn(policy.clone(), 4);
    let settings = ActSettings {
        sampling: Sampling {
            temperature: 1.0,
            top_p: 1.0,
            max_turn_tokens: 6,
        },
        max_context: 4096,
        ..ActSettings::default()
    };
    let sink: TrajectorySink = std::sync::Arc::default();
    let mut agent = LmAgent::new(generator, settings, 9, Some(("t#0".into(), sink.clone())));
    let state = Snapshot::empty();
    let command = TestCommand::for_repo(&state, None, &[]);
    let view = View {
        specification: "",
        state: &state,
        test_command: &command,
        turn: 0,
    };
    for text in ["Fix the bug.", "a.py\nb.py", "FAILED test_a.py::test_x"] {
        let action = agent.act(
            &Observation {
                text: text.into(),
                error: false,
            },
            &view,
        );
        // Random weights write no tool call: each act fumbles and submits.
        assert!(matches!(action, Action::Submit), "{action:?}");
    }
    drop(agent);
    let (key, t) = sink.lock().unwrap().pop().unwrap();
    assert_eq!((key.as_str(), t.turns, t.fumbles), ("t#0", 9, 9));
    let text = policy.chat.decode(&t.tokens).unwrap();
    assert!(
        text.contains("<tool_response>\nerror: no tool call"),
        "{text}"
    );
    assert!(
        text.contains("<tool_response>\nFAILED test_a.py::test_x\n</tool_response>"),
        "{text}"
    );
    // Every kept log-probability is the one a teacher-forced pass over the whole
    // conversation gives: the cache saw exactly the tokens trained on.
    let kept: Vec<f32> = (0..t.tokens.len())
        .filter(|i| t.own[*i])
        .map(|i| t.logprobs[i])
        .collect();
    assert!(max_diff(&kept, &recomputed(&policy, &t, 1.0)) < 1e-3);
    std::fs::remove_dir_all(dir).unwrap();
}

/// Needs a build with `--features cuda` and a GPU.
#[cfg(feature = "cuda")]
#[test]
fn cpu_and_cuda_agree_on_logits_and_on_a_grpo_step() {
    let dir = checkpoint(Family::Qwen2, "cuda");
    let gpu = Device::new_cuda(0).expect("a CUDA GPU");
    let on = |device: &Device| LmPolicy::load(&dir, device, Trainable::Full, 5).unwrap();
    let (cpu, cuda) = (on(&Device::Cpu), on(&gpu));
    let tokens = cpu
        .chat
        .encode(&format!("{PROMPT}{}", completion(CALLS[0])))
        .unwrap();
    let agree = |what: &str| {
        let (a, b) = (
            last_logits(&cpu, &tokens, Pass::GENERATE),
            last_logits(&cuda, &tokens, Pass::GENERATE),
        );
        assert!(max_diff(&a, &b) < 1e-3, "{what}: {}", max_diff(&a, &b));
    };
    agree("forward");
    let sampling = Sampling {
        temperature: 1.0,
        top_p: 1.0,
        max_turn_tokens: 16,
    };
    let (t, _) = sample(&cpu, &sampling, 1);
    for policy in [&cpu, &cuda] {
        let settings = GrpoSettings {
            lr: 1e-3,
            ..GrpoSettings::default()
        };
        GrpoTrainer::new(policy, settings)
            .unwrap()
            .step(policy, &[(&t, 1.0)])
            .unwrap();
    }
    agree("after a GRPO step");
    std::fs::remove_dir_all(dir).unwrap();
}
