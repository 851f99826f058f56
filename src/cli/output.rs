//! Output every command shares.

use std::io::Write;
use std::process::ExitCode;

/// One JSON document on its own line of stdout.
pub(super) fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Success when `ok`, else 1: a finding (a failing suite, an invalid artifact), not a harness
/// failure (those are errors, exit status 2).
pub(super) fn status(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
