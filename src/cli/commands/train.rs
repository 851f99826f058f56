//! `spar train`: train the policy network in both roles by self-play from sandbox rewards.

use crate::cli::args::{PolicyArg, TrainArgs};
use crate::cli::context::Context;
use crate::corpus::{OpenProject, Split};
use crate::guest::Python;
use crate::lm::agent::ActSettings;
use crate::lm::generate::Sampling;
use crate::lm::grpo::GrpoSettings;
use crate::lm::model::LoraSettings;
use crate::lm::Trainable;
use crate::policy::DeviceChoice;
use crate::protocol::Validator;
use crate::train::lm::LmTrainSettings;
use crate::train::{self, PolicyChoice, StepMetrics, TrainSettings};
use anyhow::Context as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// `spar train`, resolved.
pub struct Train {
    settings: TrainSettings,
    out: PathBuf,
    resume: bool,
    projects: Vec<OpenProject>,
    json: bool,
    progress: bool,
    python: Arc<Python>,
    validator: Arc<Validator>,
}

impl Train {
    /// The run's settings (a resumed run's own, with a new length or device), checked; the
    /// device opened and the projects found before any sandbox work.
    pub fn resolve(ctx: &Context, args: &TrainArgs) -> anyhow::Result<Train> {
        let (settings, out, resume) = match &args.resume {
            Some(dir) => {
                let mut settings = train::load_config(dir)?;
                // The run's settings stand; the length and the device may change.
                settings.steps = args.steps.unwrap_or(settings.steps);
                settings.device = args.device.unwrap_or(settings.device);
                (settings, dir.clone(), true)
            }
            None => {
                let out = args.out.clone().context("--out RUN_DIR is required")?;
                (new_run(args)?, out, false)
            }
        };
        if settings.attempts < 2 || settings.proposals == 0 || settings.steps == 0 {
            anyhow::bail!(
                "--attempts must be at least 2 (advantages are relative to the group), --proposals and --steps at least 1"
            );
        }
        crate::policy::device(settings.device)?;
        let purpose = "training uses only split = train projects";
        let projects = ctx.projects(&settings.projects, Split::Train, Some(purpose))?;
        let python = ctx.shared_python()?;
        Ok(Train {
            validator: ctx.persistent_validator(&python),
            python,
            settings,
            out,
            resume,
            projects,
            json: args.json,
            progress: ctx.runtime.progress && !args.json,
        })
    }

    /// Trains, reporting each step as a JSON line or on a progress bar, then the summary.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let bar = self
            .progress
            .then(|| train::progress_bar(self.settings.steps));
        let json = self.json;
        let on_step = |m: &StepMetrics| {
            if json {
                println!("{}", serde_json::to_string(m).unwrap_or_default());
            }
            if let Some(bar) = &bar {
                bar.set_position(m.step as u64);
                let solve = 100.0 * m.solve_rate;
                bar.set_message(format!("solve {solve:.0}% {:.1} eps/s", m.episodes_per_s));
            }
        };
        let summary = train::train(
            self.python,
            self.validator,
            &self.projects,
            &self.settings,
            &self.out,
            self.resume,
            crate::episode::EnvSettings::default(),
            on_step,
        )?;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        if !json {
            print!("{}", train::summary_table(&summary));
            println!(
                "{} steps in {:.0} s{}; checkpoint: {}; metrics: {}",
                summary.steps,
                summary.wall_s,
                if summary.interrupted {
                    " (interrupted)"
                } else {
                    ""
                },
                summary.checkpoint.display(),
                self.out.join(train::METRICS).display()
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// A new run's settings from the flags; every built-in training project when none is named.
fn new_run(args: &TrainArgs) -> anyhow::Result<TrainSettings> {
    let projects = if args.corpus.is_empty() {
        crate::cli::context::builtin_split(Split::Train)?
    } else {
        args.corpus.clone()
    };
    Ok(TrainSettings {
        projects,
        steps: args.steps.unwrap_or(20),
        seed: args.seed,
        device: args.device.unwrap_or(DeviceChoice::Cpu),
        attempts: args.attempts,
        proposals: args.proposals,
        inject_every: args.inject_every.max(1),
        bugs_per_step: args.bugs_per_step,
        max_tries: args.max_tries,
        seed_bugs: args.seed_bugs,
        lr: args.lr.unwrap_or(1e-2),
        entropy: args.entropy,
        workers: args.workers.unwrap_or_else(crate::par::cores),
        checkpoint_every: args.checkpoint_every,
        policy: policy(args)?,
        ..TrainSettings::default()
    })
}

/// The policy the flags ask for; a language model's directory is checked now.
fn policy(args: &TrainArgs) -> anyhow::Result<PolicyChoice> {
    let lm = &args.lm;
    let model = match (lm.policy, &lm.model) {
        (PolicyArg::Ranker, None) => return Ok(PolicyChoice::Ranker),
        (PolicyArg::Ranker, Some(_)) => anyhow::bail!("--model is for --policy lm"),
        (PolicyArg::Lm, None) => anyhow::bail!(
            "--policy lm needs --model DIR: a local Hugging Face checkpoint of the Qwen2/Qwen3 \
             family (for example `huggingface-cli download Qwen/Qwen2.5-0.5B-Instruct --local-dir DIR`)"
        ),
        (PolicyArg::Lm, Some(dir)) => std::path::absolute(dir)?,
    };
    crate::lm::check_dir(&model)?;
    let trainable = match lm.lora_rank {
        0 => Trainable::Full,
        rank => Trainable::Adapters(LoraSettings {
            rank,
            alpha: lm.lora_alpha,
        }),
    };
    let sampling = Sampling {
        temperature: lm.temperature,
        top_p: lm.top_p,
        max_turn_tokens: lm.max_turn_tokens,
    };
    Ok(PolicyChoice::Lm(LmTrainSettings {
        model,
        trainable,
        act: ActSettings {
            sampling,
            tools: lm.tools,
            max_context: lm.max_context,
            max_batch: lm.max_batch,
        },
        grpo: GrpoSettings {
            lr: args.lr.unwrap_or(1e-5),
            kl: lm.kl,
            temperature: lm.temperature,
            ..GrpoSettings::default()
        },
        max_turns: lm.max_turns,
    }))
}
