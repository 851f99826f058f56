//! `spar selfplay`: the self-play loop: inject, validate, solve G times, reward, higher-order
//! bugs.

use crate::agents::llm::{LlmClient, LlmSettings};
use crate::agents::AgentKind;
use crate::cli::args::SelfplayArgs;
use crate::cli::context::Context;
use crate::corpus::{OpenProject, Split};
use crate::episode::EnvSettings;
use crate::guest::Python;
use crate::inject::Strategy;
use crate::protocol::{ValidationSettings, Validator};
use crate::selfplay::{self, SelfPlaySettings};
use std::process::ExitCode;
use std::sync::Arc;

/// `spar selfplay`, resolved.
pub struct Selfplay {
    projects: Vec<OpenProject>,
    settings: SelfPlaySettings,
    json: bool,
    python: Arc<Python>,
    validator: Arc<Validator>,
}

impl Selfplay {
    /// The training projects, the injector (a strategy or an agent) and the solver, with one
    /// LLM client for every llm agent, made (and its key read) before any work.
    pub fn resolve(ctx: &Context, args: &SelfplayArgs) -> anyhow::Result<Selfplay> {
        let purpose = "self-play trains only on split = train projects";
        let projects = ctx.projects(&args.corpus, Split::Train, Some(purpose))?;
        if args.attempts == 0 || args.rounds == 0 {
            anyhow::bail!("--attempts and --rounds must be at least 1");
        }
        let (strategy, injector_agent) = injector(&args.injector)?;
        let llm = llm_client(args)?;
        let settings = SelfPlaySettings {
            rounds: args.rounds,
            strategy,
            injector_agent: injector_agent.map(|k| with_llm(k, &llm)).transpose()?,
            solver: with_llm(args.solver.clone(), &llm)?,
            attempts: args.attempts,
            artifacts_per_round: args.artifacts.max(1),
            concurrency: args.concurrency.max(1),
            workers: args.workers.unwrap_or_else(crate::par::cores),
            seed: args.seed,
            alpha: crate::episode::rewards::DEFAULT_ALPHA,
            env: EnvSettings {
                max_turns: args.max_turns.max(1),
                ..EnvSettings::default()
            },
            max_higher_order: args.max_higher_order,
            out: args.out.clone(),
            progress: ctx.runtime.progress && !args.json,
        };
        Ok(Selfplay {
            projects,
            settings,
            json: args.json,
            python: ctx.shared_python()?,
            validator: Arc::new(Validator::new(ValidationSettings::default())),
        })
    }

    /// Plays the rounds, printing each as a table row or a JSON line.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let json = self.json;
        if !json {
            println!("{}", selfplay::TABLE_HEADER);
        }
        let on_round = |round: &selfplay::RoundStats| {
            if json {
                println!("{}", serde_json::to_string(round).unwrap_or_default());
            } else {
                println!("{round}");
            }
        };
        selfplay::run(
            self.python,
            self.validator,
            &self.projects,
            &self.settings,
            on_round,
        )?;
        if !json {
            let log = self.settings.out.join("episodes.jsonl");
            println!("episodes: {}", log.display());
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// `--injector`: a built-in strategy, or an agent that proposes bugs (with the mixed
/// strategy's candidates).
fn injector(name: &str) -> anyhow::Result<(Strategy, Option<AgentKind>)> {
    if let Ok(strategy) = <Strategy as clap::ValueEnum>::from_str(name, false) {
        return Ok((strategy, None));
    }
    match name.parse::<AgentKind>() {
        Ok(AgentKind::Oracle) | Ok(AgentKind::Heuristic) => anyhow::bail!(
            "--injector {name}: the oracle and heuristic agents are solvers; inject with a strategy (procedural, removal, history, mixed) or an agent (random, replay:FILE.jsonl)"
        ),
        Ok(kind) => Ok((Strategy::Mixed, Some(kind))),
        Err(_) => anyhow::bail!(
            "unknown --injector {name:?}: use procedural, removal, history, mixed, random, llm or replay:FILE.jsonl"
        ),
    }
}

fn llm_client(args: &SelfplayArgs) -> anyhow::Result<Option<Arc<LlmClient>>> {
    match (&args.llm_base_url, &args.llm_model) {
        (Some(url), Some(model)) => {
            let mut llm = LlmSettings::new(url, model);
            llm.api_key_env = args.llm_api_key_env.clone();
            llm.tools = args.tools;
            Ok(Some(Arc::new(LlmClient::new(llm)?)))
        }
        (None, None) if args.tools != crate::episode::tools::Profile::Spar => anyhow::bail!(
            "--tools {} chooses the tools of llm agents; give --llm-base-url and --llm-model too",
            args.tools
        ),
        (None, None) => Ok(None),
        _ => anyhow::bail!("--llm-base-url and --llm-model go together"),
    }
}

/// An llm agent with the run's client; other agents as they are.
fn with_llm(kind: AgentKind, llm: &Option<Arc<LlmClient>>) -> anyhow::Result<AgentKind> {
    match (kind, llm) {
        (AgentKind::Llm(_), Some(client)) => Ok(AgentKind::Llm(Some(client.clone()))),
        (AgentKind::Llm(_), None) => Err(crate::agents::AgentError::LlmUnset.into()),
        (other, _) => Ok(other),
    }
}
