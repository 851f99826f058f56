//! The corpus store: a directory with one subdirectory per imported project, holding its
//! manifest (`manifest.toml`), its files (`repo/`), its dependencies (`deps/`, unpacked and
//! precompiled) and, for git imports, its history (`git/`). Projects are written to a staging
//! directory and renamed into place, so a failed import leaves nothing behind.
//!
//! Work directories (`.staging-*` for imports, `.removing-*` for removals) carry their owner's
//! process id and start time in their name. A process killed before it could clean up (Ctrl-C
//! before the handler ran, `kill -9`, a crash) leaves one behind; the next `corpus add` or
//! `corpus list` sees that its owner is gone and removes it.

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
            Source::Git { head, .. } => format!("git@{}", first_chars(head, 10)),
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

/// `text` cut to its first `n` characters: never inside a multibyte character, as byte slicing
/// could be (manifests are user-editable, so a "hash" may hold anything).
pub(crate) fn first_chars(text: &str, n: usize) -> &str {
    text.char_indices()
        .nth(n)
        .map_or(text, |(end, _)| &text[..end])
}

/// Whether the suite was also run natively, on the host, at import.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NativeBaseline {
    /// Not run: the default, because it runs the project's code outside the sandbox
    /// (`spar corpus add --native-baseline` opts in).
    NotMeasured,
    /// Run; `native_ms` and `native_passed` hold the results.
    Measured,
    /// Asked for, but the host's Python could not run the suite.
    Failed,
}

impl std::fmt::Display for NativeBaseline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NativeBaseline::NotMeasured => "not measured",
            NativeBaseline::Measured => "measured",
            NativeBaseline::Failed => "failed to run",
        })
    }
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
    /// Wall time of the suite under the host's Python, ms; only with `--native-baseline`.
    pub native_ms: Option<f64>,
    /// Tests that passed natively; only with `--native-baseline`.
    pub native_passed: Option<usize>,
    /// Whether the native run happened; absent in manifests written before it was optional,
    /// when it always ran (see [`Stats::native`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native_baseline: Option<NativeBaseline>,
}

impl Stats {
    /// Whether the native baseline was measured, for old manifests too.
    pub fn native(&self) -> NativeBaseline {
        self.native_baseline.unwrap_or(if self.native_ms.is_some() {
            NativeBaseline::Measured
        } else {
            NativeBaseline::Failed
        })
    }

    /// `1028 ms`, or why there is no native time.
    pub fn native_summary(&self) -> String {
        match (self.native(), self.native_ms) {
            (NativeBaseline::Measured, Some(ms)) => format!("{ms:.0} ms"),
            (status, _) => status.to_string(),
        }
    }
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
    /// Its `manifest.toml`, parsed.
    pub manifest: ProjectManifest,
    /// Its directory in the store: `manifest.toml`, `repo/`, and `deps/` and `git/` if present.
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

    /// Every stored project, sorted by name. Work directories left by dead processes are
    /// removed on the way.
    pub fn list(&self) -> Result<Vec<StoredProject>, CorpusError> {
        if !self.root.exists() {
            return Ok(Vec::new());
        }
        self.remove_stale_work_dirs();
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
        let doomed = self.root.join(work_dir_name(REMOVING, name));
        std::fs::rename(&project.dir, &doomed).map_err(io(&project.dir))?;
        std::fs::remove_dir_all(&doomed).map_err(io(&doomed))
    }

    /// A fresh staging directory inside the store, removed when the guard is dropped and on
    /// Ctrl-C (see [`remove_staging_on_interrupt`]). Stale ones are removed first.
    pub(crate) fn staging(&self, label: &str) -> Result<StagingDir, CorpusError> {
        self.remove_stale_work_dirs();
        let path = self.root.join(work_dir_name(STAGING, label));
        std::fs::create_dir_all(&path).map_err(io(&path))?;
        Ok(StagingDir::register(path))
    }

    /// Removes the work directories whose owning process is gone (or, where that cannot be
    /// told, that are older than [`STALE_AFTER`]) and returns them. Errors are ignored: a
    /// directory that cannot be removed now is tried again next time.
    pub fn remove_stale_work_dirs(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        let now = std::time::SystemTime::now();
        let mut removed = Vec::new();
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let age = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .unwrap_or_default();
            if is_stale_work_dir(&name, age) && std::fs::remove_dir_all(entry.path()).is_ok() {
                removed.push(entry.path());
            }
        }
        removed
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
        // Under the lock the Ctrl-C handler holds until the process exits: the rename happens
        // wholly before the handler looks (and the project is then no longer staging) or never.
        let mut live = LIVE_STAGING.lock().unwrap_or_else(|e| e.into_inner());
        std::fs::rename(staging, &target).map_err(io(&target))?;
        live.retain(|p| p != staging);
        drop(live);
        read_project(&target)
    }
}

/// Name prefix of import staging directories.
const STAGING: &str = ".staging-";
/// Name prefix of projects being removed.
const REMOVING: &str = ".removing-";
/// Age after which a work directory whose owner cannot be checked (no `/proc`, or a name from
/// an older spar without the owner's start time, whose process id may have been reused) is
/// taken as abandoned. Longer than any import runs.
pub const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

/// `PREFIX LABEL-PID-COUNTER-hHOST-sSTART`: the owner's process id and start time (clock ticks
/// since boot, from `/proc`), so a later process can tell whether the owner still runs, and
/// which boot and process-id namespace they belong to ([`host_tag`]), so that a process on
/// another machine or in another container sharing the store never judges them by its own
/// process table.
fn work_dir_name(prefix: &str, label: &str) -> String {
    let suffix = crate::fsutil::unique_suffix();
    match (host_tag(), process_start(std::process::id())) {
        (Some(host), Some(start)) => format!("{prefix}{label}-{suffix}-h{host}-s{start}"),
        _ => format!("{prefix}{label}-{suffix}"),
    }
}

/// This boot (the start of `/proc/sys/kernel/random/boot_id`) and process-id namespace (the
/// inode of `/proc/self/ns/pid`): process ids mean the same thing only where both match.
fn host_tag() -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let boot: String = boot
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(12)
        .collect();
    let ns = std::fs::read_link("/proc/self/ns/pid").ok()?;
    let ns: String = ns
        .to_string_lossy()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    (!boot.is_empty() && !ns.is_empty()).then(|| format!("{boot}x{ns}"))
}

/// The start time of process `pid` (field 22 of `/proc/PID/stat`), `None` when there is no
/// such process or no `/proc`.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let (_, after_name) = stat.rsplit_once(')')?;
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// Whether a directory named `name` in the store is a work directory nobody owns any more.
fn is_stale_work_dir(name: &str, age: std::time::Duration) -> bool {
    let Some(rest) = name
        .strip_prefix(STAGING)
        .or_else(|| name.strip_prefix(REMOVING))
    else {
        return false;
    };
    // LABEL-PID-COUNTER-hHOST-sSTART, or LABEL-PID-COUNTER (older spar, or no /proc).
    let mut parts = rest.rsplit('-').peekable();
    let start: Option<u64> = parts
        .next_if(|p| p.starts_with('s'))
        .and_then(|s| s[1..].parse().ok());
    let host = parts.next_if(|p| p.starts_with('h')).map(|h| &h[1..]);
    let _counter = parts.next();
    let pid: Option<u32> = parts.next().and_then(|p| p.parse().ok());
    let proc_available = std::path::Path::new("/proc/self/stat").exists();
    // Another machine's or container's process ids say nothing here: only age counts.
    let same_host = host.is_none_or(|h| host_tag().as_deref() == Some(h));
    match (pid, proc_available && same_host) {
        (Some(pid), true) => match (process_start(pid), start) {
            (None, _) => true,
            (Some(now), Some(then)) => now != then,
            (Some(_), None) => age > STALE_AFTER,
        },
        _ => age > STALE_AFTER,
    }
}

/// Staging directories this process is writing, for the interrupt handler.
static LIVE_STAGING: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// A staging directory: removed when dropped (after a commit it has moved away, and nothing
/// is left to remove) and, while it exists, by the Ctrl-C handler.
#[derive(Debug)]
pub(crate) struct StagingDir {
    path: PathBuf,
}

impl StagingDir {
    fn register(path: PathBuf) -> StagingDir {
        if let Ok(mut live) = LIVE_STAGING.lock() {
            live.push(path.clone());
        }
        StagingDir { path }
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        if let Ok(mut live) = LIVE_STAGING.lock() {
            live.retain(|p| p != &self.path);
        }
        if self.path.exists() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Installs (once) a Ctrl-C handler that removes this process's staging directories and exits
/// with status 130, so an interrupted `spar corpus add` leaves nothing in the store. Without
/// it the directories are still removed, by the next `corpus add` or `corpus list`.
pub fn remove_staging_on_interrupt() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let handler = std::thread::Builder::new().name("spar-interrupt".into());
        let _ = handler.spawn(|| {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            if runtime.block_on(tokio::signal::ctrl_c()).is_err() {
                return;
            }
            // Held until exit, so that no commit renames a directory while it is removed.
            let live = LIVE_STAGING.lock().unwrap_or_else(|e| e.into_inner());
            for dir in live.iter() {
                // The importing thread may still be writing: retry while files appear.
                for _ in 0..5 {
                    if std::fs::remove_dir_all(dir).is_ok() || !dir.exists() {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
            }
            eprintln!("spar: interrupted; the import's staging directory was removed");
            std::process::exit(130);
        });
    });
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
            &staging.path().join("repo"),
            &Snapshot::from_files([("a.py", b"x = 1\n".to_vec())]).unwrap(),
        )
        .unwrap();
        let stored = store.commit(staging.path(), &manifest("demo")).unwrap();
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
            store.commit(again.path(), &manifest("demo")),
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

    /// A pid that is certainly not running: a child that has exited and been reaped.
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    fn set_age(dir: &Path, age: std::time::Duration) {
        let then = std::time::SystemTime::now() - age;
        std::fs::File::open(dir)
            .unwrap()
            .set_modified(then)
            .unwrap();
    }

    #[test]
    fn stale_work_dirs_are_removed_and_live_ones_kept() {
        let root =
            std::env::temp_dir().join(format!("spar-stale-{}", crate::fsutil::unique_suffix()));
        let store = Store::new(root.clone());
        let me = std::process::id();
        let my_start = process_start(me).expect("tests run where /proc exists");
        let dead = dead_pid();
        let names = [
            // Owner gone.
            (format!(".staging-import-{dead}-0-s{my_start}"), true),
            // Our pid, but another start time: the pid was reused.
            (format!(".staging-import-{me}-0-s{}", my_start + 1), true),
            // An older spar's name whose owner is gone (the 101 MB leftover of a Ctrl-C).
            (format!(".staging-import-{dead}-3"), true),
            (format!(".removing-demo-{dead}-1-s5"), true),
            // Another machine's or container's: its process ids mean nothing here, so only
            // age counts (fresh: kept, even though no such process runs here).
            (format!(".staging-import-{dead}-2-hforeignx1-s5"), false),
            // Unparseable, so only age counts: old goes, fresh stays.
            (".staging-whatever".to_owned(), true),
            (".staging-fresh".to_owned(), false),
            // Live: this process.
            (format!(".staging-import-{me}-7-s{my_start}"), false),
            // Not a work directory at all.
            (".cache".to_owned(), false),
        ];
        for (name, _) in &names {
            std::fs::create_dir_all(root.join(name).join("repo")).unwrap();
        }
        set_age(&root.join(".staging-whatever"), STALE_AFTER * 2);
        set_age(&root.join(".cache"), STALE_AFTER * 2);

        // Staging a new import (what `corpus add` does) cleans up first.
        let staging = store.staging("import").unwrap();
        let name = staging
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(name.ends_with(&format!("-s{my_start}")), "{name}");
        assert!(!is_stale_work_dir(&name, std::time::Duration::ZERO));
        for (name, stale) in &names {
            assert_eq!(!root.join(name).exists(), *stale, "{name}");
        }

        // `corpus list` cleans up too; a staging directory goes when its guard is dropped.
        std::fs::create_dir_all(root.join(format!(".staging-import-{dead}-9-s1"))).unwrap();
        assert!(store.list().unwrap().is_empty());
        assert!(!root.join(format!(".staging-import-{dead}-9-s1")).exists());
        let path = staging.path().to_owned();
        drop(staging);
        assert!(!path.exists());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn short_sources_cut_by_characters() {
        assert_eq!(first_chars("abc", 10), "abc");
        assert_eq!(first_chars("ééééééééééé", 10), "éééééééééé");
        let git = Source::Git {
            path: ".".into(),
            head: "ü".repeat(12),
            commits: 1,
        };
        assert_eq!(git.short(), format!("git@{}", "ü".repeat(10)));
    }
}
