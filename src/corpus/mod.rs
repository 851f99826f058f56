//! Corpus projects: the repositories spar runs.
//!
//! The built-in corpus lives in `corpora/`, one directory per project written by this
//! project, each described by a `spar.toml` (name, description, split: `train` projects feed
//! self-play, `heldout` ones are kept for evaluating on repositories the policy never saw).
//! Real projects are imported from PyPI, local git repositories or directories into a
//! [`Store`], with their dependencies pinned and their tests sorted into usable and excluded.

mod addopts;
mod import;
pub(crate) mod store;

pub use import::{
    import, import_defaults, DefaultProject, ImportReport, ImportSettings, SourceSpec,
};
pub(crate) use store::valid_name;
pub use store::{
    default_store_dir, remove_staging_on_interrupt, Dependency, Layout, NativeBaseline,
    ProjectManifest, Source, Stats, Store, StoredProject, TestInventory, STALE_AFTER,
};

use crate::snapshot::{Snapshot, SnapshotError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The manifest file name inside a project directory.
pub const MANIFEST: &str = "spar.toml";

/// Errors reading a corpus.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    /// The corpus directory could not be listed.
    #[error("cannot list corpus directory {path}")]
    List {
        /// The corpus directory whose entries could not be read.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A manifest could not be read or parsed.
    #[error("invalid manifest {path}: {detail}")]
    Manifest {
        /// The manifest path.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A project's files could not be read.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// A store file could not be read or written.
    #[error("cannot access {path}")]
    Io {
        /// The file or directory that failed: in the store, a downloaded sdist or wheel, or
        /// the list of default projects.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// No stored project has this name.
    #[error("no project named {0:?} in the corpus store")]
    NoSuchProject(String),
    /// Another project already has this name.
    #[error("a different project named {0:?} is already in the corpus store")]
    NameTaken(String),
    /// The source argument is malformed.
    #[error("invalid source {0:?}: use pypi:NAME==VERSION, git:PATH or dir:PATH")]
    BadSource(String),
    /// A PyPI download failed.
    #[error("{project}: {source}; check that the name and version exist on PyPI and that PyPI is reachable")]
    Pip {
        /// The `NAME==VERSION` spec pip was asked to download.
        project: String,
        /// What pip said.
        #[source]
        source: crate::pip::PipError,
    },
    /// A downloaded sdist or archive is unusable.
    #[error("{project}: {detail}")]
    Archive {
        /// The `NAME==VERSION` spec whose sdist is unusable.
        project: String,
        /// What is wrong and what to do.
        detail: String,
    },
    /// A git repository could not be read.
    #[error("{path}: cannot read the git repository ({detail}); pass the top-level directory of a repository with at least one commit")]
    Git {
        /// The path given.
        path: PathBuf,
        /// What gix reported.
        detail: String,
    },
    /// The project has no tests spar can find.
    #[error("{0}: no tests found (no tests/ or test/ directory and no test_*.py files); spar needs a test suite to use a project")]
    NoTests(String),
    /// No test passed in the sandbox.
    #[error("{project}: none of its {total} tests passed in the sandbox, so it cannot serve as an oracle ({hint})")]
    NothingUsable {
        /// The name the project was being imported under.
        project: String,
        /// Tests collected.
        total: usize,
        /// The most common reason, or the guest's last output.
        hint: String,
    },
    /// The guest failed.
    #[error(transparent)]
    Guest(#[from] crate::guest::GuestError),
}

/// Whether a project may be used for training or is held out for evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Used for self-play training.
    Train,
    /// Never trained on; used for evaluation.
    Heldout,
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Split::Train => "train",
            Split::Heldout => "heldout",
        })
    }
}

/// A project's `spar.toml`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Short unique name.
    pub name: String,
    /// One sentence on what the project is.
    pub description: String,
    /// Its domain, in a few words.
    pub domain: String,
    /// Training or held-out.
    pub split: Split,
}

/// A corpus project on disk.
#[derive(Clone, Debug)]
pub struct Project {
    /// Its `spar.toml`, parsed.
    pub manifest: Manifest,
    /// The directory holding its files and `spar.toml` (e.g. `corpora/NAME`).
    pub dir: PathBuf,
}

impl Project {
    /// Reads the project's files into a snapshot (the manifest included: it is part of the
    /// repository as the guest sees it).
    pub fn snapshot(&self) -> Result<Snapshot, CorpusError> {
        Ok(Snapshot::from_dir(&self.dir)?.0)
    }
}

/// Reads the manifest of the project in `dir`.
pub fn read_manifest(dir: &Path) -> Result<Manifest, CorpusError> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path).map_err(|e| CorpusError::Manifest {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    toml::from_str(&text).map_err(|e| CorpusError::Manifest {
        path,
        detail: e.message().to_owned(),
    })
}

/// Every project (a subdirectory with a `spar.toml`) in `dir`, sorted by name.
pub fn list_projects(dir: &Path) -> Result<Vec<Project>, CorpusError> {
    let list_err = |source| CorpusError::List {
        path: dir.to_owned(),
        source,
    };
    let mut projects = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(list_err)? {
        let path = entry.map_err(list_err)?.path();
        if path.join(MANIFEST).is_file() {
            projects.push(Project {
                manifest: read_manifest(&path)?,
                dir: path,
            });
        }
    }
    projects.sort_by(|a, b| a.manifest.name.cmp(&b.manifest.name));
    Ok(projects)
}

/// A corpus project ready to run, built-in or imported: what injectors and validation need.
#[derive(Clone, Debug)]
pub struct OpenProject {
    /// Its unique name, from its manifest.
    pub name: String,
    /// Training or held-out.
    pub split: Split,
    /// Its files as a snapshot, before any bug is injected.
    pub repo: Snapshot,
    /// Import roots and dependencies for guest runs.
    pub run: crate::guest::PythonRun,
    /// The project's full test command.
    pub test_command: crate::testrun::TestCommand,
    /// Its git history, for projects imported from git.
    pub git_dir: Option<PathBuf>,
}

/// Opens project `name`: a built-in project in `builtin_dir` (`corpora/NAME`) or, failing
/// that, an imported one in `store`.
pub fn open_project(
    name: &str,
    builtin_dir: &Path,
    store: &store::Store,
) -> Result<OpenProject, CorpusError> {
    let builtin = builtin_dir.join(name);
    if builtin.join(MANIFEST).is_file() {
        let manifest = read_manifest(&builtin)?;
        let project = Project {
            manifest,
            dir: builtin,
        };
        let repo = project.snapshot()?;
        return Ok(OpenProject {
            name: project.manifest.name.clone(),
            split: project.manifest.split,
            test_command: crate::testrun::TestCommand::for_repo(&repo, None, &[]),
            repo,
            run: crate::guest::PythonRun::default(),
            git_dir: None,
        });
    }
    let stored = store.get(name)?;
    Ok(OpenProject {
        name: stored.manifest.name.clone(),
        split: stored.manifest.split,
        repo: stored.repo()?,
        run: stored.run_options()?,
        test_command: stored.manifest.test.clone(),
        git_dir: stored.git_dir(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_corpus_has_both_splits() {
        let projects =
            list_projects(&Path::new(env!("CARGO_MANIFEST_DIR")).join("corpora")).unwrap();
        assert!(projects.len() >= 6, "{projects:?}");
        assert!(
            projects
                .iter()
                .filter(|p| p.manifest.split == Split::Heldout)
                .count()
                >= 2
        );
        for p in &projects {
            assert_eq!(
                p.dir.file_name().unwrap().to_str().unwrap(),
                p.manifest.name
            );
        }
    }

    #[test]
    fn manifest_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("spar-manifest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(MANIFEST), "name = \"x\"\nsplit = \"sometimes\"\n").unwrap();
        let err = read_manifest(&dir).unwrap_err().to_string();
        assert!(err.contains("spar.toml"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
