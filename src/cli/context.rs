//! What every command shares, resolved once from the global flags: where the guest runtime and
//! the corpus live, whether to show progress, and the corpus look-ups several commands make.

use super::args::Cli;
use crate::corpus::{self, OpenProject, Split, Store};
use crate::demo;
use crate::guest::{Python, RuntimeSettings};
use crate::protocol::{ValidationSettings, Validator};
use crate::snapshot::Snapshot;
use std::path::Path;
use std::sync::Arc;

/// The global flags, resolved: commands read these and never the clap types of `Cli`.
pub(super) struct Context {
    /// Guest runtime, cache directory and snapshot choice (`--runtime`, `--cache-dir`, ...);
    /// its `progress` is false under `--quiet` (no progress bars or fetch progress).
    pub runtime: RuntimeSettings,
    /// The store of imported projects (`--corpus-dir` or its default).
    pub store: Store,
}

impl Context {
    /// Resolves the global flags (no work beyond reading the environment for defaults).
    pub fn new(cli: &Cli) -> Context {
        let mut runtime = RuntimeSettings::new(cli.cache_dir.clone());
        runtime.progress = !cli.quiet;
        runtime.interpreter = cli.runtime;
        runtime.snapshots = !cli.no_snapshot;
        let store = Store::new(
            cli.corpus_dir
                .clone()
                .unwrap_or_else(corpus::default_store_dir),
        );
        Context { runtime, store }
    }

    /// Fetches (on first use), verifies and starts the guest runtime.
    pub fn python(&self) -> anyhow::Result<Python> {
        Ok(Python::new(&self.runtime)?)
    }

    /// The guest runtime, shared by the worker threads of a long command.
    pub fn shared_python(&self) -> anyhow::Result<Arc<Python>> {
        Ok(Arc::new(self.python()?))
    }

    /// A validator whose runs also persist in the cache (for train, eval and the demo: their
    /// held-out bugs and baselines repeat from one invocation to the next), namespaced by the
    /// guest runtime so that a new interpreter, new site packages or new guest-side files (the
    /// start-up hook, the reactor, the pytest plugin: they change what a run costs and reports)
    /// never see old results.
    pub fn persistent_validator(&self, python: &Python) -> Arc<Validator> {
        let site = python
            .site_dir()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let lib = python.lib_hash();
        let dir = self.runtime.cache_dir.join("run-memo").join(format!(
            "spar-{}-python-{}-site-{site}-lib-{}",
            env!("CARGO_PKG_VERSION"),
            python.interpreter_version(),
            &lib[..lib.len().min(16)]
        ));
        Arc::new(Validator::new(ValidationSettings::default()).with_disk_memo(dir))
    }

    /// A built-in or imported project, by name.
    pub fn open_project(&self, name: &str) -> anyhow::Result<OpenProject> {
        Ok(corpus::open_project(
            name,
            &demo::default_corpus_dir(),
            &self.store,
        )?)
    }

    /// The projects named by `--corpus`, or every built-in project of `split` when none is
    /// named. With `only_train`, a held-out project is refused with that reason.
    pub fn projects(
        &self,
        names: &[String],
        split: Split,
        only_train: Option<&str>,
    ) -> anyhow::Result<Vec<OpenProject>> {
        let names = if names.is_empty() {
            builtin_split(split)?
        } else {
            names.to_vec()
        };
        names
            .iter()
            .map(|name| {
                let project = self.open_project(name)?;
                if let (Some(purpose), Split::Heldout) = (only_train, project.split) {
                    anyhow::bail!("{name} is held out for evaluation; {purpose}");
                }
                Ok(project)
            })
            .collect()
    }
}

/// The built-in projects of one split, by name.
pub(super) fn builtin_split(split: Split) -> anyhow::Result<Vec<String>> {
    Ok(corpus::list_projects(&demo::default_corpus_dir())?
        .into_iter()
        .filter(|p| p.manifest.split == split)
        .map(|p| p.manifest.name)
        .collect())
}

/// Reads a repository from the host, saying which symbolic links the guest will not see.
pub(super) fn load_repo(path: &Path) -> anyhow::Result<Snapshot> {
    let (repo, skipped) = Snapshot::from_dir(path)?;
    if !skipped.symlinks.is_empty() {
        eprintln!(
            "spar: note: {} symbolic link(s) are not visible in the sandbox: {}",
            skipped.symlinks.len(),
            skipped.symlinks.join(", ")
        );
    }
    Ok(repo)
}
