//! `spar export`: validated artifacts as SWE-bench-style task instances (JSONL).

use crate::cli::args::{ExportArgs, ExportFormat};
use crate::cli::context::Context;
use crate::cli::hints;
use crate::cli::output::status;
use crate::guest::Python;
use crate::protocol::export::{export_swebench, BoxError};
use crate::protocol::{BugArtifact, ValidationReport, ValidationSettings, Validator};
use anyhow::Context as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// `spar export`, resolved.
pub struct Export<'a> {
    ctx: &'a Context,
    dirs: Vec<PathBuf>,
}

impl Export<'_> {
    /// The artifact directories to export, sorted.
    pub fn resolve<'a>(ctx: &'a Context, args: &ExportArgs) -> anyhow::Result<Export<'a>> {
        let ExportFormat::Swebench = args.format;
        Ok(Export {
            ctx,
            dirs: artifact_dirs(&args.artifacts)?,
        })
    }

    /// Writes the instances to stdout; each artifact that cannot be exported is named on
    /// stderr with the reason, and the exit status is then 1.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        // Started on the first artifact without a stored validation; a failure to start is
        // kept and reported for each artifact that needed it.
        let mut python: Option<Result<Python, Arc<anyhow::Error>>> = None;
        let mut validate = |artifact: &BugArtifact| -> Result<ValidationReport, BoxError> {
            let python = python
                .get_or_insert_with(|| self.ctx.python().map_err(Arc::new))
                .as_ref()
                .map_err(|e| BoxError::from(format!("{e:#}")))?;
            let project = self
                .ctx
                .open_project(&artifact.meta.project)
                .map_err(BoxError::from)?;
            Validator::new(ValidationSettings::default())
                .validate(python, artifact, &project.repo, &project.run)
                .map_err(BoxError::from)
        };
        let summary = export_swebench(
            &self.dirs,
            &mut std::io::stdout().lock(),
            &mut validate,
            &mut |bad| eprintln!("spar: {}", hints::with_hints(bad)),
        )?;
        eprintln!(
            "spar: exported {} of {} artifacts",
            summary.exported,
            self.dirs.len()
        );
        if !summary.failed.is_empty() {
            let failed = summary.failed.len();
            eprintln!(
                "spar: {failed} artifact(s) not exported; each is named above with the reason"
            );
        }
        Ok(status(summary.failed.is_empty()))
    }
}

/// The artifact directories under `root` (or `root` itself when it is one), sorted.
fn artifact_dirs(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let marker = crate::protocol::artifact::METADATA;
    if root.join(marker).is_file() {
        return Ok(vec![root.to_owned()]);
    }
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(root).with_context(|| format!("reading {}", root.display()))? {
        let path = entry?.path();
        if path.join(marker).is_file() {
            dirs.push(path);
        }
    }
    dirs.sort();
    if dirs.is_empty() {
        anyhow::bail!(
            "{} holds no artifacts (directories with {marker}); write some with `spar inject`",
            root.display()
        );
    }
    Ok(dirs)
}
