//! The command line. `args` holds the clap types; `context::Context` resolves the
//! global flags once; each command in `commands/` resolves its own flags into plain settings
//! (checking them, and building the runtime, validator or LLM client it needs once) and then
//! executes; `hints` turns the library's typed errors into what to do with these flags. This
//! is the only module that uses `anyhow`.

mod args;
mod commands;
mod context;
mod hints;
mod output;

use args::{Cli, Command};
use clap::Parser;
use commands::*;
use context::Context;
use std::process::ExitCode;

/// Exit status of commands other than `spar run` when spar itself failed or was misused.
const EXIT_HARNESS: u8 = 2;

/// Entry point of the `spar` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let harness_code = match cli.command {
        Command::Run(_) => run::EXIT_HARNESS,
        _ => EXIT_HARNESS,
    };
    match execute(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("spar: error: {e:#}");
            for hint in hints::hints_for_error(&e) {
                eprintln!("spar: hint: {hint}");
            }
            ExitCode::from(harness_code)
        }
    }
}

fn execute(cli: &Cli) -> anyhow::Result<ExitCode> {
    let ctx = Context::new(cli);
    match &cli.command {
        Command::Setup => setup::execute(&ctx),
        Command::Test(args) => test::Test::resolve(&ctx, args)?.execute(),
        Command::Run(args) => run::Run::resolve(&ctx, args)?.execute(),
        Command::Demo(args) => demo::Demo::resolve(&ctx, args)?.execute(),
        Command::Train(args) => train::Train::resolve(&ctx, args)?.execute(),
        Command::Eval(args) => eval::Eval::resolve(&ctx, args)?.execute(),
        Command::Serve(args) => serve::Serve::resolve(&ctx, args)?.execute(),
        Command::Route(args) => route::Route::resolve(args)?.execute(),
        Command::Plot(args) => plot::execute(args),
        Command::Validate(args) => validate::Validate::resolve(&ctx, args)?.execute(),
        Command::Inject(args) => inject::Inject::resolve(&ctx, args)?.execute(),
        Command::Export(args) => export::Export::resolve(&ctx, args)?.execute(),
        Command::Corpus(command) => corpus::execute(&ctx, command),
        Command::Selfplay(args) => selfplay::Selfplay::resolve(&ctx, args)?.execute(),
        Command::Bench(args) => bench::execute(&ctx, args),
        Command::BenchWorker { runs } => bench::worker(&ctx, *runs),
    }
}
