//! Bytecode for a repository's modules, compiled once per source text and shared by every run.
//!
//! A guest run compiles each repository module it imports, and pytest rewrites the asserts of
//! every test module and conftest first: on a small suite that is a third of the session in the
//! guest, repeated by every run of the same files. spar compiles each source once, in a run of
//! its own that executes none of the repository's code (`spar_compile.py`), keeps the pycs by
//! the source's path and content (in memory, and on disk under `bytecode/`), and mounts them
//! read-only under [`PYC_MOUNT`], where the guest's `sys.pycache_prefix` points. They are
//! checked-hash pycs: the guest compares each with the source it imports, so a pyc can make a
//! run faster but never change what it computes. Every module of a tree has its pycs before
//! the run starts, so the fuel a run uses does not depend on what the cache held before.

use crate::bytes::{ContentMemo, LeReader, SharedBytes};
use crate::fsutil::{prune_least_recently_used, touch, write_atomic};
use crate::snapshot::Snapshot;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Where runs find bytecode: `sys.pycache_prefix` (PYTHONPYCACHEPREFIX). The repository's pycs
/// are under `repo/`, the site's and the project dependencies' under `site/` and `deps/`.
pub(super) const PYC_MOUNT: &str = "/spar/pyc";

/// The bytecode kept on disk at most, in bytes; past it the least recently used entries go.
const MAX_DISK_BYTES: u64 = 1 << 30;

/// Sources remembered in memory at most; past it the memory is emptied (the disk still has
/// them).
const MAX_REMEMBERED: usize = 100_000;

/// The disk is pruned once per this many entries written.
const PRUNE_EVERY: usize = 512;

/// Project settings that change how pytest rewrites asserts: where a project sets one, runs
/// rewrite its test modules themselves.
const REWRITE_SETTINGS: &[&str] = &["enable_assertion_pass_hook"];

/// The files pytest reads its settings from.
const PYTEST_CONFIG_FILES: &[&str] = &[
    "pytest.ini",
    ".pytest.ini",
    "pyproject.toml",
    "tox.ini",
    "setup.cfg",
];

/// What one source compiles to: each pyc's path under the repository's pyc directory, and its
/// bytes. Empty when the source does not compile (the run then reports that itself).
pub(super) type Compiled = Arc<Vec<(String, SharedBytes)>>;

/// What a compile run made of its sources: each source's path, relative to the repository,
/// mapped to its pycs.
pub(super) type CompileOutput = BTreeMap<String, Vec<(String, SharedBytes)>>;

/// The bytecode cache of one interpreter and site.
pub(super) struct Bytecode {
    dir: PathBuf,
    /// Everything a pyc depends on besides its source: interpreter, site (pytest's version),
    /// spar's guest-side files (the compile script).
    base_key: String,
    /// Sources seen by this process, by their shared contents: most sources of a run are found
    /// here without hashing them.
    remembered: ContentMemo<Compiled>,
    written: AtomicUsize,
}

impl Bytecode {
    /// The cache kept under `dir` for the interpreter and site `base_key` describes.
    pub(super) fn new(dir: PathBuf, base_key: String) -> Bytecode {
        Bytecode {
            dir,
            base_key,
            remembered: ContentMemo::new(MAX_REMEMBERED, usize::MAX),
            written: AtomicUsize::new(0),
        }
    }

    /// The pycs of every module of `repo`, as the tree to mount at `PYC_MOUNT/repo`. Sources
    /// found neither in memory nor on disk are compiled together by `compile` (given them as a
    /// tree of their own); when it fails, runs compile those modules themselves.
    pub(super) fn repo_tree(
        &self,
        repo: &Snapshot,
        compile: impl FnOnce(Snapshot) -> Result<CompileOutput, String>,
    ) -> Snapshot {
        let files = repo.files();
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for (path, contents) in files.iter().filter(|(path, _)| path.ends_with(".py")) {
            if let Some(compiled) = self.remembered.get(contents) {
                found.push(compiled);
                continue;
            }
            let entry = self.entry_file(path, contents);
            match self.load(&entry, contents) {
                Some(compiled) => found.push(compiled),
                None => missing.push((path.clone(), contents.clone(), entry)),
            }
        }
        if !missing.is_empty() {
            found.extend(self.compile_missing(missing, compile));
        }
        let rewrites_in_run = rewrite_settings(&files);
        let pycs = found
            .iter()
            .flat_map(|compiled| compiled.iter())
            .filter(|(path, _)| !(rewrites_in_run && is_pytest_pyc(path)))
            .map(|(path, bytes)| (path.clone(), bytes.clone()));
        Snapshot::from_files(pycs).unwrap_or_else(|_| Snapshot::empty())
    }

    /// The entry `entry` on disk, remembered for `contents` once read.
    fn load(&self, entry: &Path, contents: &SharedBytes) -> Option<Compiled> {
        let compiled = Arc::new(decode(&std::fs::read(entry).ok()?)?);
        touch(entry);
        self.remembered.insert(contents, compiled.clone());
        Some(compiled)
    }

    fn compile_missing(
        &self,
        missing: Vec<(String, SharedBytes, PathBuf)>,
        compile: impl FnOnce(Snapshot) -> Result<CompileOutput, String>,
    ) -> Vec<Compiled> {
        let sources = Snapshot::from_files(missing.iter().map(|(p, c, _)| (p.clone(), c.clone())));
        let mut output = match sources.map_err(|e| e.to_string()).and_then(compile) {
            Ok(output) => output,
            Err(why) => {
                eprintln!("spar: warning: runs compile the repository's modules themselves: compiling them ahead failed: {why}");
                return Vec::new();
            }
        };
        missing
            .into_iter()
            .map(|(path, contents, file)| {
                let compiled = Arc::new(output.remove(&path).unwrap_or_default());
                // A cache: when it cannot be written, the next process compiles again.
                if write_atomic(&file, &encode(&compiled)).is_ok()
                    && self
                        .written
                        .fetch_add(1, Ordering::Relaxed)
                        .is_multiple_of(PRUNE_EVERY)
                {
                    prune_least_recently_used(&self.dir, "pyc", MAX_DISK_BYTES, &file);
                }
                self.remembered.insert(&contents, compiled.clone());
                compiled
            })
            .collect()
    }

    fn entry_file(&self, path: &str, contents: &[u8]) -> PathBuf {
        use sha2::{Digest, Sha256};
        let mut key = Sha256::new();
        for part in [self.base_key.as_bytes(), path.as_bytes(), contents] {
            key.update((part.len() as u64).to_le_bytes());
            key.update(part);
        }
        let name = crate::snapshot::hex(&key.finalize());
        self.dir.join(format!("{}.pyc", &name[..32]))
    }
}

/// `tree`'s `__pycache__` files where a run with `sys.pycache_prefix` set looks for them:
/// `pkg/__pycache__/m.cpython-315.pyc` becomes `pkg/m.cpython-315.pyc`.
pub(super) fn under_prefix(tree: &Snapshot) -> Snapshot {
    let pycs = tree.files().into_iter().filter_map(|(path, bytes)| {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", &path));
        let parent = match dir.rsplit_once('/') {
            Some((parent, "__pycache__")) => format!("{parent}/"),
            None if dir == "__pycache__" => String::new(),
            _ => return None,
        };
        Some((format!("{parent}{name}"), bytes))
    });
    Snapshot::from_files(pycs).unwrap_or_else(|_| Snapshot::empty())
}

/// Whether a repository of `files` sets anything in [`REWRITE_SETTINGS`] in a pytest
/// configuration file.
fn rewrite_settings(files: &[(String, SharedBytes)]) -> bool {
    files.iter().any(|(path, contents)| {
        let name = path.rsplit('/').next().unwrap_or(path);
        PYTEST_CONFIG_FILES.contains(&name)
            && REWRITE_SETTINGS.iter().any(|setting| {
                contents
                    .windows(setting.len())
                    .any(|window| window == setting.as_bytes())
            })
    })
}

fn is_pytest_pyc(path: &str) -> bool {
    path.contains("-pytest-")
}

/// An entry on disk: for each pyc, its path's length (u32) and path, its length (u64) and bytes.
fn encode(compiled: &[(String, SharedBytes)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (path, bytes) in compiled {
        out.extend_from_slice(&(path.len() as u32).to_le_bytes());
        out.extend_from_slice(path.as_bytes());
        out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    out
}

/// Reads an entry [`encode`] wrote; `None` for anything else (a damaged entry is compiled again).
fn decode(data: &[u8]) -> Option<Vec<(String, SharedBytes)>> {
    let mut reader = LeReader::new(data, 0);
    let mut compiled = Vec::new();
    while !reader.is_done() {
        let path_len = reader.u32()?;
        let path = std::str::from_utf8(reader.take(path_len)?).ok()?.to_owned();
        let len = reader.u64()?;
        compiled.push((path, reader.take(len)?.into()));
    }
    Some(compiled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> Snapshot {
        Snapshot::from_files(files.iter().map(|(p, c)| (*p, c.as_bytes().to_vec()))).unwrap()
    }

    /// A stand-in for the guest's compile run: one plain and one pytest pyc per source.
    fn compiled(sources: &Snapshot) -> CompileOutput {
        sources
            .files()
            .into_iter()
            .map(|(path, text)| {
                let stem = path.trim_end_matches(".py");
                let pycs = [".cpython-315.pyc", ".cpython-315-pytest-9.2.0.pyc"]
                    .map(|tail| (format!("{stem}{tail}"), text.clone()));
                (path, pycs.to_vec())
            })
            .collect()
    }

    fn scratch() -> PathBuf {
        std::env::temp_dir().join(format!("spar-bytecode-{}", crate::fsutil::unique_suffix()))
    }

    fn names(snapshot: &Snapshot) -> Vec<String> {
        snapshot.files().into_iter().map(|(path, _)| path).collect()
    }

    #[test]
    fn sources_are_compiled_once_then_found_in_memory_and_on_disk() {
        let dir = scratch();
        let repo = tree(&[("pkg/a.py", "A = 1"), ("README.md", "# a"), ("t.py", "T")]);
        let cache = Bytecode::new(dir.clone(), "key".into());
        let mut asked = Vec::new();
        let pycs = cache.repo_tree(&repo, |sources| {
            asked = names(&sources);
            Ok(compiled(&sources))
        });
        assert_eq!(asked, ["pkg/a.py", "t.py"]);
        assert_eq!(
            names(&pycs),
            [
                "pkg/a.cpython-315-pytest-9.2.0.pyc",
                "pkg/a.cpython-315.pyc",
                "t.cpython-315-pytest-9.2.0.pyc",
                "t.cpython-315.pyc"
            ]
        );
        let unexpected =
            |_: Snapshot| -> Result<CompileOutput, String> { panic!("compiled again") };
        assert_eq!(names(&cache.repo_tree(&repo, unexpected)), names(&pycs));
        let fresh = Bytecode::new(dir.clone(), "key".into());
        let from_disk = fresh.repo_tree(&repo, unexpected);
        assert_eq!(
            from_disk.file("t.cpython-315.pyc").as_deref(),
            Some(&b"T"[..])
        );

        // Only the changed source is compiled; another key (interpreter, site) shares nothing.
        let changed = repo.with_changes(&[crate::snapshot::FileChange::Written {
            path: "t.py".into(),
            contents: b"T2".to_vec().into(),
        }]);
        let mut asked = Vec::new();
        fresh.repo_tree(&changed.unwrap(), |sources| {
            asked = names(&sources);
            Ok(compiled(&sources))
        });
        assert_eq!(asked, ["t.py"]);
        let other = Bytecode::new(dir.clone(), "other key".into());
        let mut asked = 0;
        other.repo_tree(&repo, |sources| {
            asked = sources.files().len();
            Ok(compiled(&sources))
        });
        assert_eq!(asked, 2);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_failed_compile_leaves_runs_to_compile_and_is_tried_again() {
        let dir = scratch();
        let repo = tree(&[("a.py", "A")]);
        let cache = Bytecode::new(dir.clone(), "key".into());
        let pycs = cache.repo_tree(&repo, |_| Err("timeout".into()));
        assert!(pycs.files().is_empty());
        let mut asked = false;
        cache.repo_tree(&repo, |sources| {
            asked = true;
            Ok(compiled(&sources))
        });
        assert!(asked);
        // A source that does not compile is remembered as such: no pycs, no second try.
        let broken = tree(&[("b.py", "def (")]);
        assert!(cache
            .repo_tree(&broken, |_| Ok(CompileOutput::new()))
            .files()
            .is_empty());
        let unexpected =
            |_: Snapshot| -> Result<CompileOutput, String> { panic!("compiled again") };
        assert!(cache.repo_tree(&broken, unexpected).files().is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn projects_that_change_how_pytest_rewrites_get_no_rewritten_pycs() {
        let dir = scratch();
        let repo = tree(&[
            ("test_a.py", "def test(): assert 1"),
            (
                "pytest.ini",
                "[pytest]\nenable_assertion_pass_hook = true\n",
            ),
        ]);
        let cache = Bytecode::new(dir.clone(), "key".into());
        let pycs = cache.repo_tree(&repo, |sources| Ok(compiled(&sources)));
        assert_eq!(names(&pycs), ["test_a.cpython-315.pyc"]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn entries_round_trip_and_damaged_ones_are_refused() {
        let entry: Vec<(String, SharedBytes)> = vec![
            ("a.pyc".into(), b"one".to_vec().into()),
            ("b/c.pyc".into(), Vec::new().into()),
        ];
        let bytes = encode(&entry);
        assert_eq!(decode(&bytes), Some(entry));
        assert_eq!(decode(&[]), Some(Vec::new()));
        assert_eq!(decode(&bytes[..bytes.len() - 1]), None);
        assert_eq!(decode(&[255, 255, 255, 255, b'x']), None);
    }

    #[test]
    fn pycache_directories_move_to_where_a_pycache_prefix_points() {
        let site = tree(&[
            ("pkg/__pycache__/m.cpython-315.pyc", "1"),
            ("__pycache__/top.cpython-315.pyc", "2"),
            ("pkg/m.py", "source"),
            ("pkg/__pycache__/notes/x.pyc", "3"),
        ]);
        assert_eq!(
            names(&under_prefix(&site)),
            ["pkg/m.cpython-315.pyc", "top.cpython-315.pyc"]
        );
    }
}
