//! Corpus projects: repositories spar runs, each described by a `spar.toml` manifest.
//!
//! The built-in corpus lives in `corpora/`, one directory per project written by this
//! project. A manifest names the project and its split: `train` projects feed self-play,
//! `heldout` ones are kept for evaluating on repositories the policy never saw.

use crate::snapshot::{Snapshot, SnapshotError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The manifest file name inside a project directory.
pub const MANIFEST: &str = "spar.toml";

/// Errors reading a corpus.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    /// The corpus directory could not be listed.
    #[error("cannot list corpus directory {path}; pass an existing directory with --corpus")]
    List {
        /// The directory.
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
    /// Its manifest.
    pub manifest: Manifest,
    /// Its directory.
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
