//! `spar bench`: sandbox overhead and sandboxed vs native suite time; `spar bench serve`, `spar bench route` and
//! `spar bench selfplay` for the server's and the self-play loop's throughput.

use crate::bench::{self, BenchSettings};
use crate::cli::args::{
    BenchArgs, BenchLmArgs, BenchRouteArgs, BenchSelfplayArgs, BenchServeArgs, BenchTarget,
};
use crate::cli::context::Context;
use crate::cli::output::print_json;
use crate::protocol::{ValidationSettings, Validator};
use crate::serve::bench::ServeBenchSettings;
use crate::serve::route::bench::RouteBenchSettings;
use anyhow::Context as _;
use std::process::ExitCode;
use std::sync::Arc;

/// Runs the benchmark `args` names and prints its report.
pub fn execute(ctx: &Context, args: &BenchArgs) -> anyhow::Result<ExitCode> {
    match &args.target {
        None => runtime(ctx, args),
        Some(BenchTarget::Serve(args)) => serve(ctx, args),
        Some(BenchTarget::Selfplay(args)) => selfplay(ctx, args),
        Some(BenchTarget::Route(args)) => route(ctx, args),
        Some(BenchTarget::Lm(args)) => lm(args),
    }
}

fn lm(args: &BenchLmArgs) -> anyhow::Result<ExitCode> {
    let device = crate::policy::device(args.device)?;
    let settings = crate::lm::bench::LmBenchSettings {
        shape: args.shape,
        prompt_tokens: args.prompt_tokens.max(1),
        new_tokens: args.new_tokens.max(1),
        batch: args.batch.max(1),
        train_tokens: args.train_tokens,
        lora_rank: args.lora_rank.max(1),
    };
    print_report(&crate::lm::bench::bench(&settings, &device)?, args.json)
}

/// The hidden `bench-worker` command: one worker process of the processes-vs-threads figure.
pub fn worker(ctx: &Context, runs: usize) -> anyhow::Result<ExitCode> {
    bench::worker(&ctx.runtime, runs)?;
    Ok(ExitCode::SUCCESS)
}

fn runtime(ctx: &Context, args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let settings = BenchSettings {
        trivial_runs: args.trivial_runs.max(10),
        suite_runs: args.suite_runs.max(1),
        suite: args
            .suite
            .clone()
            .unwrap_or_else(|| crate::demo::default_corpus_dir().join("exprcalc")),
        host_python: ctx.runtime.host_python.clone(),
        spar_exe: std::env::current_exe().ok(),
    };
    let report = bench::run(&ctx.runtime, &settings).context("benchmark failed")?;
    print_report(&report, args.json)
}

fn serve(ctx: &Context, args: &BenchServeArgs) -> anyhow::Result<ExitCode> {
    let project = ctx.open_project(&args.corpus)?;
    let settings = ServeBenchSettings {
        sessions: args.sessions.max(1),
        connections: args.connections.max(1),
        reads: args.reads,
        test_runs: args.test_runs.min(args.sessions.max(1)),
        workers: crate::par::cores(),
        ws_sessions: args.ws_sessions,
    };
    let report = crate::serve::bench::bench(ctx.shared_python()?, project, &settings)?;
    print_report(&report, args.json)
}

fn route(ctx: &Context, args: &BenchRouteArgs) -> anyhow::Result<ExitCode> {
    let project = ctx.open_project(&args.corpus)?;
    // The servers it starts find the guest compiled and cached.
    ctx.shared_python()?;
    let settings = RouteBenchSettings {
        spar_exe: std::env::current_exe().context("finding this spar binary")?,
        project: project.name.clone(),
        episodes: args.episodes,
        concurrency: args.concurrency,
        reads: args.reads,
        workers: crate::par::cores(),
        overhead_steps: args.overhead_steps,
        test_args: project.test_command.args.clone(),
        nonce: crate::serve::new_token(),
    };
    print_report(&crate::serve::route::bench::bench(&settings)?, args.json)
}

fn selfplay(ctx: &Context, args: &BenchSelfplayArgs) -> anyhow::Result<ExitCode> {
    let project = ctx.open_project(&args.corpus)?;
    let python = ctx.shared_python()?;
    let validator = Arc::new(Validator::new(ValidationSettings::default()));
    let out = std::env::temp_dir().join(format!("spar-bench-selfplay-{}", std::process::id()));
    let report = crate::selfplay::bench(
        python,
        validator,
        &project,
        args.artifacts,
        args.episodes,
        args.concurrency.unwrap_or(args.episodes),
        crate::par::cores(),
        args.solver.clone(),
        out.clone(),
    );
    let _ = std::fs::remove_dir_all(&out);
    print_report(&report?, args.json)
}

fn print_report<R: serde::Serialize + std::fmt::Display>(
    report: &R,
    json: bool,
) -> anyhow::Result<ExitCode> {
    if json {
        print_json(report)?;
    } else {
        print!("{report}");
    }
    Ok(ExitCode::SUCCESS)
}
