//! `spar corpus`: import real projects and manage the corpus store.

use crate::cli::args::CorpusCommand;
use crate::cli::context::Context;
use crate::cli::output::{print_json, status};
use crate::corpus::{self, ImportSettings, SourceSpec, Split, Store};
use crate::demo;
use std::process::ExitCode;

/// Runs one `spar corpus` subcommand against the store.
pub fn execute(ctx: &Context, command: &CorpusCommand) -> anyhow::Result<ExitCode> {
    match command {
        CorpusCommand::Add {
            source,
            defaults,
            name,
            split,
            native_baseline,
        } => {
            let settings = ImportSettings {
                name: name.clone(),
                split: split.map(Split::from),
                host_python: ctx.runtime.host_python.clone(),
                progress: ctx.runtime.progress,
                native_baseline: *native_baseline,
            };
            let source = match defaults {
                true => None,
                false => Some(SourceSpec::parse(source.as_deref().unwrap_or_default())?),
            };
            add(ctx, source, &settings)
        }
        CorpusCommand::List { json } => list(&ctx.store, *json),
        CorpusCommand::Show { name, json } => {
            let project = ctx.store.get(name)?;
            if *json {
                print_json(&project.manifest)?;
            } else {
                println!("# {}", project.dir.display());
                print!("{}", toml::to_string_pretty(&project.manifest)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        CorpusCommand::Rm { name } => {
            ctx.store.remove(name)?;
            println!("removed {name}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Imports one project, or (without a source) the built-in corpus and corpora/pypi.toml.
fn add(
    ctx: &Context,
    source: Option<SourceSpec>,
    settings: &ImportSettings,
) -> anyhow::Result<ExitCode> {
    let python = ctx.python()?;
    let store = &ctx.store;
    // Ctrl-C must not leave a half-written project in the store.
    corpus::remove_staging_on_interrupt();
    if let Some(spec) = source {
        let report = corpus::import(&python, store, &spec, settings)?;
        print!("{report}");
        return Ok(ExitCode::SUCCESS);
    }
    let builtin = demo::default_corpus_dir();
    let list = builtin.join("pypi.toml");
    let results = corpus::import_defaults(&python, store, &builtin, &list, settings)?;
    let mut failed = 0;
    for (label, result) in &results {
        match result {
            Ok(report) => print!("{report}"),
            Err(e) => {
                failed += 1;
                println!("{label}: FAILED: {e}");
            }
        }
    }
    println!(
        "\n{} of {} projects in the corpus at {}",
        results.len() - failed,
        results.len(),
        store.root().display()
    );
    Ok(status(failed == 0))
}

/// The store's projects as a table (or JSON manifests).
fn list(store: &Store, json: bool) -> anyhow::Result<ExitCode> {
    let projects = store.list()?;
    if json {
        let manifests: Vec<_> = projects.iter().map(|p| &p.manifest).collect();
        print_json(&manifests)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<20} {:<26} {:<8} {:>6} {:>7} {:>13} {:>11} {:>10} {:>6}",
        "NAME",
        "SOURCE",
        "SPLIT",
        "FILES",
        "LINES",
        "TESTS USABLE",
        "SANDBOX ms",
        "NATIVE ms",
        "RATIO"
    );
    for p in &projects {
        let m = &p.manifest;
        let s = &m.stats;
        println!(
            "{:<20} {:<26} {:<8} {:>6} {:>7} {:>13} {:>11.0} {:>10} {:>6}",
            m.name,
            m.source.short(),
            m.split.to_string(),
            s.files,
            s.lines,
            format!("{}/{}", s.tests_usable, s.tests_total),
            s.sandbox_ms,
            match (s.native(), s.native_ms) {
                (corpus::NativeBaseline::Measured, Some(n)) => format!("{n:.0}"),
                (corpus::NativeBaseline::NotMeasured, _) => "not run".into(),
                _ => "failed".into(),
            },
            s.native_ms
                .map_or("-".into(), |n| format!("{:.2}x", s.sandbox_ms / n)),
        );
    }
    if projects
        .iter()
        .any(|p| p.manifest.stats.native() == corpus::NativeBaseline::NotMeasured)
    {
        println!("(NATIVE \"not run\": the native baseline runs a project's tests on the host, unsandboxed; `spar corpus add --native-baseline` measures it)");
    }
    if projects.is_empty() {
        println!("(empty: add projects with `spar corpus add pypi:NAME==VERSION` or `spar corpus add --defaults`)");
    }
    Ok(ExitCode::SUCCESS)
}
