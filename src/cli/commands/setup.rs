//! `spar setup`: fetch, verify and prepare the guest runtime now instead of on first use.

use crate::cli::context::Context;
use std::process::ExitCode;

/// Starts the runtime once (fetching and compiling what is missing) and says where it lives.
pub fn execute(ctx: &Context) -> anyhow::Result<ExitCode> {
    let python = ctx.python()?;
    println!(
        "CPython {} for WASI is ready; cache: {}; site packages: {}",
        python.interpreter_version(),
        ctx.runtime.cache_dir.display(),
        python.site_dir().display()
    );
    Ok(ExitCode::SUCCESS)
}
