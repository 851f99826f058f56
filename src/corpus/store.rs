//! The corpus store: a directory with one subdirectory per imported project, holding its
//! manifest (`manifest.toml`), its files (`repo/`), its dependencies (`deps/`, unpacked and
//! precompiled) and, for git imports, its history (`git/`). Projects are written to a staging
//! directory and renamed into place, so a failed import leaves nothing behind.

use super::{CorpusError, Split};
use crate::guest::{PythonRun, REPO_MOUNT};
use crate::snapshot::Snapshot;
use crate::testrun::TestCommand;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The manifest file of a stored project.
pub const STORED_MANIFEST: &str = "manifest.toml";

/// Where an imported project came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// An sdist from PyPI.
    Pypi {
        /// `name==version`.
        spec: String,
        /// The sdist's file name.
        sdist: String,
        /// The sdist's sha256.
        sha256: String,
    },
    /// A local git repository, at its HEAD commit.
    Git {
        /// The repository's path when imported.
        path: String,
        /// The commit imported.
        head: String,
        /// Commits reachable from `head`.
        commits: usize,
    },
    /// A plain directory.
    Dir {
        /// The directory's path when imported.
        path: String,
        /// Content hash of the imported files.
        content_hash: String,
    },
}

impl Source {
    /// A short description for tables.
    pub fn short(&self) -> String {
        match self {
            Source::Pypi { spec, .. } => format!("pypi:{spec}"),
            Source::Git { head, .. } => format!("git@{}", &head[..head.len().min(10)]),
            Source::Dir { .. } => "dir".into(),
        }
    }
}

/// Where a project's code and tests are.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// Import roots relative to the repository (`"."` or `"src"`).
    pub python_path: Vec<String>,
    /// Test directories or files relative to the repository.
    pub test_paths: Vec<String>,
}

/// A pinned dependency wheel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency {
    /// The wheel's file name (it carries name and version).
    pub wheel: String,
    /// The wheel's sha256.
    pub sha256: String,
}

/// Which tests the oracle may use, and why the others may not.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TestInventory {
    /// Tests that passed in every sandbox run during import.
    pub usable: Vec<String>,
    /// Every other collected test, with the reason it is excluded.
    pub excluded: BTreeMap<String, String>,
}

/// Sizes and timings measured at import.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Stats {
    /// Files in the repository.
    pub files: usize,
    /// Lines of Python in the repository.
    pub lines: usize,
    /// Tests collected.
    pub tests_total: usize,
    /// Tests usable by the oracle.
    pub tests_usable: usize,
    /// Median wall time of the suite in the sandbox, ms.
    pub sandbox_ms: f64,
    /// Wall time of the suite under the host's Python, ms, when it could run.
    pub native_ms: Option<f64>,
    /// Tests that passed natively.
    pub native_passed: Option<usize>,
}

/// The manifest of an imported project.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProjectManifest {
    /// Unique name in the store.
    pub name: String,
    /// One line on what it is.
    pub description: String,
    /// Training or held-out.
    pub split: Split,
    /// Things about this project the sandbox cannot do, found at import.
    #[serde(default)]
    pub notes: Vec<String>,
    /// Requirements that could not be resolved to pure-Python wheels.
    #[serde(default)]
    pub unavailable_dependencies: Vec<String>,
    /// Where it came from.
    pub source: Source,
    /// Where its code and tests are.
    pub layout: Layout,
    /// How its suite is run in the guest.
    pub test: TestCommand,
    /// Counts and timings.
    pub stats: Stats,
    /// The wheels in `deps/`, pinned.
    #[serde(default)]
    pub dependencies: Vec<Dependency>,
    /// Usable and excluded tests.
    pub tests: TestInventory,
}

/// A project in the store.
#[derive(Clone, Debug)]
pub struct StoredProject {
    /// Its manifest.
    pub manifest: ProjectManifest,
    /// Its directory.
    pub dir: PathBuf,
}

impl StoredProject {
    /// The repository files.
    pub fn repo(&self) -> Result<Snapshot, CorpusError> {
        Ok(Snapshot::from_dir_verbatim(&self.dir.join("repo"))?.0)
    }

    /// Options that run this project's code in the guest: its import roots and dependencies.
    pub fn run_options(&self) -> Result<PythonRun, CorpusError> {
        let deps_dir = self.dir.join("deps");
        let deps = if deps_dir.is_dir() {
            Some(Snapshot::from_dir_verbatim(&deps_dir)?.0)
        } else {
            None
        };
        Ok(PythonRun {
            python_path: guest_python_path(&self.manifest.layout),
            deps,
            ..PythonRun::default()
        })
    }

    /// The git directory holding the project's history, for git imports.
    pub fn git_dir(&self) -> Option<PathBuf> {
        let dir = self.dir.join("git");
        dir.is_dir().then_some(dir)
    }
}

/// The guest paths of a layout's import roots.
pub(crate) fn guest_python_path(layout: &Layout) -> Vec<String> {
    layout
        .python_path
        .iter()
        .map(|p| match p.as_str() {
            "." | "" => REPO_MOUNT.to_owned(),
            p => format!("{REPO_MOUNT}/{p}"),
        })
        .collect()
}

/// The store directory.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

/// `$SPAR_DATA_DIR/corpus`, else `$XDG_DATA_HOME/spar/corpus`, else `~/.local/share/spar/corpus`.
pub fn default_store_dir() -> PathBuf {
    let data = if let Some(dir) = std::env::var_os("SPAR_DATA_DIR") {
        PathBuf::from(dir)
    } else if let Some(dir) = std::env::var_os("XDG_DATA_HOME") {
        PathBuf::from(dir).join("spar")
    } else if let Some(home) = std::env::var_os("HOME") {
        PathBuf::from(home).join(".local/share/spar")
    } else {
        std::env::temp_dir().join("spar-data")
    };
    data.join("corpus")
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CorpusError + '_ {
    move |source| CorpusError::Io {
        path: path.to_owned(),
        source,
    }
}

impl Store {
    /// The store at `root` (created on first write).
    pub fn new(root: PathBuf) -> Store {
        Store { root }
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every stored project, sorted by name.
    pub fn list(&self) -> Result<Vec<StoredProject>, CorpusError> {
        if !self.root.exists() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.root).map_err(io(&self.root))? {
            let dir = entry.map_err(io(&self.root))?.path();
            let hidden = dir
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
            if !hidden && dir.join(STORED_MANIFEST).is_file() {
                out.push(read_project(&dir)?);
            }
        }
        out.sort_by(|a, b| a.manifest.name.cmp(&b.manifest.name));
        Ok(out)
    }

    /// The project called `name`.
    pub fn get(&self, name: &str) -> Result<StoredProject, CorpusError> {
        let dir = self.root.join(name);
        if !valid_name(name) || !dir.join(STORED_MANIFEST).is_file() {
            return Err(CorpusError::NoSuchProject(name.to_owned()));
        }
        read_project(&dir)
    }

    /// Removes the project called `name`.
    pub fn remove(&self, name: &str) -> Result<(), CorpusError> {
        let project = self.get(name)?;
        // Rename first so a half-deleted project never looks like a stored one.
        let doomed = self.root.join(format!(
            ".removing-{name}-{}",
            crate::fsutil::unique_suffix()
        ));
        std::fs::rename(&project.dir, &doomed).map_err(io(&project.dir))?;
        std::fs::remove_dir_all(&doomed).map_err(io(&doomed))
    }

    /// A fresh staging directory inside the store.
    pub(crate) fn staging(&self, name: &str) -> Result<PathBuf, CorpusError> {
        let dir = self.root.join(format!(
            ".staging-{name}-{}",
            crate::fsutil::unique_suffix()
        ));
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        Ok(dir)
    }

    /// Writes the manifest into `staging` and moves it into place as the project `name`.
    pub(crate) fn commit(
        &self,
        staging: &Path,
        manifest: &ProjectManifest,
    ) -> Result<StoredProject, CorpusError> {
        let text = toml::to_string_pretty(manifest).map_err(|e| CorpusError::Manifest {
            path: staging.join(STORED_MANIFEST),
            detail: e.to_string(),
        })?;
        let path = staging.join(STORED_MANIFEST);
        std::fs::write(&path, text).map_err(io(&path))?;
        let target = self.root.join(&manifest.name);
        if target.exists() {
            return Err(CorpusError::NameTaken(manifest.name.clone()));
        }
        std::fs::rename(staging, &target).map_err(io(&target))?;
        read_project(&target)
    }
}

/// Project names are directory names: letters, digits, `-`, `_`, `.`.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn read_project(dir: &Path) -> Result<StoredProject, CorpusError> {
    let path = dir.join(STORED_MANIFEST);
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let manifest = toml::from_str(&text).map_err(|e: toml::de::Error| CorpusError::Manifest {
        path,
        detail: e.message().to_owned(),
    })?;
    Ok(StoredProject {
        manifest,
        dir: dir.to_owned(),
    })
}

/// Writes `files` under `dir`.
pub(crate) fn write_tree(dir: &Path, tree: &Snapshot) -> Result<(), CorpusError> {
    for (path, contents) in tree.files() {
        let target = dir.join(&path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&target, &*contents).map_err(io(&target))?;
    }
    std::fs::create_dir_all(dir).map_err(io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testrun::Runner;

    fn manifest(name: &str) -> ProjectManifest {
        ProjectManifest {
            name: name.into(),
            description: "a test".into(),
            split: Split::Train,
            notes: vec!["tests using threads are excluded".into()],
            unavailable_dependencies: vec![],
            source: Source::Pypi {
                spec: "x==1.0".into(),
                sdist: "x-1.0.tar.gz".into(),
                sha256: "ab".repeat(32),
            },
            layout: Layout {
                python_path: vec!["src".into()],
                test_paths: vec!["tests".into()],
            },
            test: TestCommand {
                runner: Runner::Pytest,
                args: vec!["-m".into(), "pytest".into()],
                module_prefix: String::new(),
            },
            stats: Stats::default(),
            dependencies: vec![Dependency {
                wheel: "dep-1-py3-none-any.whl".into(),
                sha256: "cd".repeat(32),
            }],
            tests: TestInventory {
                usable: vec!["tests/test_a.py::test_x".into()],
                excluded: [(
                    "tests/test_a.py::test_y[a b]".to_owned(),
                    "uses threads".to_owned(),
                )]
                .into(),
            },
        }
    }

    #[test]
    fn manifests_round_trip_through_the_store() {
        let root =
            std::env::temp_dir().join(format!("spar-store-{}", crate::fsutil::unique_suffix()));
        let store = Store::new(root.clone());
        assert!(store.list().unwrap().is_empty());
        let staging = store.staging("demo").unwrap();
        write_tree(
            &staging.join("repo"),
            &Snapshot::from_files([("a.py", b"x = 1\n".to_vec())]).unwrap(),
        )
        .unwrap();
        let stored = store.commit(&staging, &manifest("demo")).unwrap();
        assert_eq!(
            stored.manifest.tests.excluded["tests/test_a.py::test_y[a b]"],
            "uses threads"
        );
        assert_eq!(stored.manifest.source, manifest("demo").source);
        assert_eq!(&*stored.repo().unwrap().file("a.py").unwrap(), b"x = 1\n");
        assert_eq!(stored.run_options().unwrap().python_path, ["/repo/src"]);
        assert_eq!(store.list().unwrap().len(), 1);

        let again = store.staging("demo").unwrap();
        assert!(matches!(
            store.commit(&again, &manifest("demo")),
            Err(CorpusError::NameTaken(_))
        ));

        store.remove("demo").unwrap();
        assert!(matches!(
            store.get("demo"),
            Err(CorpusError::NoSuchProject(_))
        ));
        assert!(matches!(
            store.get("../etc"),
            Err(CorpusError::NoSuchProject(_))
        ));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
