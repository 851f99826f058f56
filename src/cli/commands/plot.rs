//! `spar plot`: a training run's learning curves as an SVG image.

use crate::cli::args::PlotArgs;
use std::process::ExitCode;

/// Draws `RUN_DIR/metrics.jsonl` (to `RUN_DIR/curves.svg` unless `--out` says otherwise).
pub fn execute(args: &PlotArgs) -> anyhow::Result<ExitCode> {
    let metrics = args.run_dir.join(crate::train::METRICS);
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.run_dir.join("curves.svg"));
    let title = format!("spar train: {}", args.run_dir.display());
    let points = crate::plot::write_svg(&metrics, &out, &title)?;
    println!("wrote {} ({points} points)", out.display());
    Ok(ExitCode::SUCCESS)
}
