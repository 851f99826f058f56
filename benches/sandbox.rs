//! `cargo bench`: the same measurements as `spar bench`, printed as a report.
//! Every number comes with its baseline from the same run (one thread vs all cores,
//! sandboxed vs native `python3` on the same suite).

fn main() {
    let runtime = spar::guest::RuntimeSettings::new(None);
    let settings = spar::bench::BenchSettings {
        trivial_runs: 2000,
        suite_runs: 5,
        suite: std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpora/exprcalc"),
        host_python: runtime.host_python.clone(),
        spar_exe: Some(env!("CARGO_BIN_EXE_spar").into()),
    };
    match spar::bench::run(&runtime, &settings) {
        Ok(report) => print!("{report}"),
        Err(e) => {
            eprintln!("benchmark failed: {e}");
            std::process::exit(1);
        }
    }
}
