//! Which guest image a run resumes from, and what its prelude imports.
//!
//! The base image has the interpreter started and pytest imported with its default plugins. A
//! repository that imports third-party modules (numpy, pandas, a wheel in `/deps`) gets an
//! image of its own with those imported as well, so no run pays for them again: in the 3.15
//! guest `import pandas` costs about 1.3 s and `import scipy.stats` 2.6 s. The modules are read
//! from the repository's import lines. A prelude never imports the repository's own modules:
//! any name the repository defines anywhere in its tree is left out, so a module cached in
//! `sys.modules` at capture can never stand in for the repository's file of the same name.

use crate::bytes::{ContentMemo, SharedBytes};
use crate::fsutil::{prune_least_recently_used, sha256_hex, touch, write_atomic};
use crate::sandbox::GuestImage;
use crate::snapshot::Snapshot;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// At most this many modules are imported by one prelude; runs import the rest themselves.
const MAX_PRELOAD: usize = 256;

/// The images kept on disk at most, in bytes: every set of project dependencies gets an image
/// (tens to hundreds of MB with pandas or scipy), so without a bound the cache only grows. Past
/// it the least recently used images go; a run that needs one again captures it again.
const MAX_DISK_BYTES: u64 = 4 << 30;

/// The import lines of the Python files runs have seen, remembered per file: an episode's runs
/// differ from the last by a few files, and reading every file's lines again cost each run of a
/// 98-file tree 3.7 ms (0.3 ms for exprcalc's). Files are known by their bytes, as in the
/// bytecode cache ([`ContentMemo`]).
pub(super) struct ImportScan {
    /// The modules each file's import lines name.
    files: ContentMemo<Arc<[String]>>,
    /// Files read so far (for tests: how many lookups missed).
    reads: AtomicUsize,
}

/// The file bytes [`ImportScan`] keeps alive at most; past it, it starts again empty.
const MAX_SCANNED_BYTES: usize = 64 << 20;

impl Default for ImportScan {
    fn default() -> ImportScan {
        ImportScan {
            files: ContentMemo::new(usize::MAX, MAX_SCANNED_BYTES),
            reads: AtomicUsize::new(0),
        }
    }
}

impl ImportScan {
    /// The third-party modules `repo`'s Python files import (`import a.b`, `from a.b import
    /// c`), as sorted dotted names. Relative imports, `__future__` and every top-level name that
    /// the repository itself defines (a module file or a directory anywhere in it) are left
    /// out; the guest leaves out the standard library and skips modules that are not installed.
    pub(super) fn third_party_imports(&self, repo: &Snapshot) -> Vec<String> {
        let files = repo.files();
        let own: HashSet<&str> = files.iter().flat_map(|(path, _)| own_names(path)).collect();
        let mut found = BTreeSet::new();
        for (path, bytes) in &files {
            if !path.ends_with(".py") {
                continue;
            }
            for module in self.imports_of(bytes).iter() {
                let top = module.split('.').next().unwrap_or_default();
                if top != "__future__" && !own.contains(top) {
                    found.insert(module.clone());
                }
            }
        }
        found.into_iter().take(MAX_PRELOAD).collect()
    }

    /// The modules the import lines of one file name, read once per file contents.
    fn imports_of(&self, bytes: &SharedBytes) -> Arc<[String]> {
        if let Some(modules) = self.files.get(bytes) {
            return modules;
        }
        let modules: Arc<[String]> = std::str::from_utf8(bytes)
            .map(|text| {
                imported_modules(text)
                    .into_iter()
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.files.insert(bytes, modules.clone());
        modules
    }
}

/// The names a repository path could be imported by: each directory, and the file's stem.
fn own_names(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').map(|part| {
        [".py", ".pyi", ".pyc"]
            .iter()
            .find_map(|ext| part.strip_suffix(ext))
            .unwrap_or(part)
    })
}

/// The modules named by the import statements that start a line of `text` (a line-based
/// reading: good enough to choose what to preload, where a miss only costs time).
fn imported_modules(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for line in text.lines() {
        let code = line.split('#').next().unwrap_or_default();
        for statement in code.split(';').map(str::trim) {
            if let Some(rest) = statement.strip_prefix("import ") {
                out.extend(
                    rest.split(',')
                        .filter_map(|item| item.split_whitespace().next())
                        .filter(|name| is_dotted_name(name)),
                );
            } else if let Some(rest) = statement.strip_prefix("from ") {
                let mut words = rest.split_whitespace();
                if let (Some(name), Some("import")) = (words.next(), words.next()) {
                    if is_dotted_name(name) {
                        out.push(name);
                    }
                }
            }
        }
    }
    out
}

fn is_dotted_name(name: &str) -> bool {
    name.split('.').all(|part| {
        let mut chars = part.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// The module a prelude could not import and why, from the last line the prelude printed
/// on stderr (`spar-preload-failed: NAME: ERROR`; see spar_reactor.py).
pub(super) fn failed_preload(stderr: &str) -> Option<(&str, &str)> {
    let line = stderr
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix("spar-preload-failed: "))?;
    line.split_once(": ")
}

/// Why a capture failed, and whether another try could succeed.
pub(super) struct CaptureFailure {
    /// What went wrong, for the warning.
    pub(super) why: String,
    /// The prelude itself raised: with the same inputs it always will, so the failure is kept
    /// on disk and later processes do not try again.
    pub(super) permanent: bool,
}

/// The images of one interpreter: captured at most once per process for each key, and kept on
/// disk between processes, named by a hash of everything the captured memory depends on.
pub(super) struct Images {
    dir: PathBuf,
    /// Everything every image of this interpreter depends on (interpreter, site, spar's
    /// guest-side files, the capture run's layout, the Wasmtime version).
    base_key: String,
    by_key: Mutex<HashMap<String, Arc<ImageSlot>>>,
}

/// One key's image: filled once, by whichever run needs it first; `None` when capture failed.
type ImageSlot = OnceLock<Option<Arc<GuestImage>>>;

impl Images {
    /// Images kept under `dir`, for the interpreter and layout `base_key` describes.
    pub(super) fn new(dir: PathBuf, base_key: String) -> Images {
        Images {
            dir,
            base_key,
            by_key: Mutex::new(HashMap::new()),
        }
    }

    /// The image for `parts` (the prelude and the trees it imports from): from this process's
    /// memory, else from disk, else made by `capture` and stored. `None`, with a warning on
    /// stderr once per process, when capture fails.
    pub(super) fn get(
        &self,
        parts: &[&str],
        capture: impl FnOnce() -> Result<GuestImage, CaptureFailure>,
    ) -> Option<Arc<GuestImage>> {
        let name = sha256_hex(
            [self.base_key.as_str(), &parts.join("\n")]
                .join("\n")
                .as_bytes(),
        );
        let slot = {
            let mut by_key = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
            by_key.entry(name.clone()).or_default().clone()
        };
        slot.get_or_init(|| self.load_or_capture(&name[..32], capture))
            .clone()
    }

    /// The interpreter's standard-library module names: kept on disk beside the images (they
    /// depend only on the interpreter, which is part of every image's key), else asked of the
    /// guest by `ask` and kept. Asking is a whole guest run, which every process that chose an
    /// image for a repository importing anything paid before its own run (12 ms of a 37 ms
    /// `spar test` of a small unittest suite). Empty, and asked again next time, when `ask`
    /// fails.
    pub(super) fn stdlib_names(
        &self,
        ask: impl FnOnce() -> Option<BTreeSet<String>>,
    ) -> BTreeSet<String> {
        let key = sha256_hex(self.base_key.as_bytes());
        let file = self.dir.join(format!("stdlib-{}.names", &key[..32]));
        if let Ok(text) = std::fs::read_to_string(&file) {
            let names: BTreeSet<String> = text.lines().map(str::to_owned).collect();
            if text.ends_with('\n') && !names.is_empty() {
                return names;
            }
        }
        let Some(names) = ask() else {
            return BTreeSet::new();
        };
        let text: String = names.iter().map(|name| format!("{name}\n")).collect();
        // A cache: when it cannot be written, the next process asks again.
        let _ = write_atomic(&file, text.as_bytes());
        names
    }

    fn load_or_capture(
        &self,
        name: &str,
        capture: impl FnOnce() -> Result<GuestImage, CaptureFailure>,
    ) -> Option<Arc<GuestImage>> {
        let image_file = self.dir.join(format!("{name}.img"));
        let failed_file = self.dir.join(format!("{name}.failed"));
        if let Some(image) = SharedBytes::map_cache_file(&image_file)
            .ok()
            .and_then(GuestImage::from_bytes)
        {
            touch(&image_file);
            return Some(Arc::new(image));
        }
        let failure = match std::fs::read_to_string(&failed_file) {
            Ok(why) => why,
            Err(_) => match capture() {
                Ok(image) => {
                    // A cache: when it cannot be written, the next process captures again.
                    if write_atomic(&image_file, &image.to_bytes()).is_ok() {
                        prune_least_recently_used(&self.dir, "img", MAX_DISK_BYTES, &image_file);
                    }
                    return Some(Arc::new(image));
                }
                Err(failure) => {
                    if failure.permanent {
                        let _ = write_atomic(&failed_file, failure.why.as_bytes());
                    }
                    failure.why
                }
            },
        };
        eprintln!("spar: warning: guest runs start without this snapshot: {failure}");
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(files: &[(&str, &str)]) -> Snapshot {
        Snapshot::from_files(
            files
                .iter()
                .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec())),
        )
        .expect("a valid tree")
    }

    #[test]
    fn third_party_imports_leave_out_the_repositorys_own_names() {
        let tree = repo(&[
            (
                "src/calc/core.py",
                "import numpy as np, scipy.stats\nfrom pandas.api import types  # x\n\
                 from . import util\nfrom calc import util\nimport helpers\n\
                 from __future__ import annotations\nimport os; import yaml\n",
            ),
            ("tests/helpers.py", "import calc.core\n"),
            (
                "tests/test_core.py",
                "    from numpy.testing import assert_allclose\n",
            ),
            ("docs/notes.txt", "import requests\n"),
        ]);
        assert_eq!(
            ImportScan::default().third_party_imports(&tree),
            [
                "numpy",
                "numpy.testing",
                "os",
                "pandas.api",
                "scipy.stats",
                "yaml"
            ]
        );
    }

    #[test]
    fn each_files_imports_are_read_once_and_an_edit_is_read_again() {
        let tree = repo(&[
            ("a.py", "import numpy\n"),
            ("b.py", "import yaml\n"),
            ("notes.txt", "import requests\n"),
        ]);
        let scan = ImportScan::default();
        let reads = || scan.reads.load(Ordering::Relaxed);
        assert_eq!(scan.third_party_imports(&tree), ["numpy", "yaml"]);
        assert_eq!(reads(), 2);
        assert_eq!(scan.third_party_imports(&tree), ["numpy", "yaml"]);
        assert_eq!(reads(), 2, "the same files are not read again");
        let edited = tree
            .with_changes(&[crate::snapshot::FileChange::Written {
                path: "b.py".into(),
                contents: b"import pandas\n".to_vec().into(),
            }])
            .unwrap();
        assert_eq!(scan.third_party_imports(&edited), ["numpy", "pandas"]);
        assert_eq!(reads(), 3, "only the edited file is read");
    }

    #[test]
    fn imported_modules_read_only_well_formed_import_lines() {
        let text = "import a.b as c, d\nfrom e.f import (g,\n    h)\nfrom 1x import y\n\
                    important = 1\nfrom_here = 2\nimport\nfrom x\nprint('import z')\n";
        assert_eq!(imported_modules(text), ["a.b", "d", "e.f"]);
    }

    #[test]
    fn the_module_a_prelude_could_not_import_is_read_from_its_last_marker() {
        let stderr = "warning\nspar-preload-failed: matplotlib: NotADirectoryError: [Errno 54] x\n";
        assert_eq!(
            failed_preload(stderr),
            Some(("matplotlib", "NotADirectoryError: [Errno 54] x"))
        );
        assert_eq!(failed_preload("Traceback ...\nValueError: y\n"), None);
    }

    #[test]
    fn a_failed_capture_is_kept_only_when_it_would_fail_again() {
        let dir = std::env::temp_dir().join(format!(
            "spar-images-test-{}",
            crate::fsutil::unique_suffix()
        ));
        let images = Images::new(dir.clone(), "base".into());
        let failing = |permanent| {
            move || {
                Err(CaptureFailure {
                    why: "ImportError".into(),
                    permanent,
                })
            }
        };
        assert!(images.get(&["transient"], failing(false)).is_none());
        assert!(images.get(&["always"], failing(true)).is_none());
        let fresh = Images::new(dir.clone(), "base".into());
        let mut tried = Vec::new();
        for key in ["transient", "always"] {
            let _ = fresh.get(&[key], || {
                tried.push(key);
                failing(false)()
            });
        }
        assert_eq!(tried, ["transient"]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn stdlib_names_are_asked_once_per_interpreter_and_kept_on_disk() {
        let dir = std::env::temp_dir().join(format!(
            "spar-images-test-{}",
            crate::fsutil::unique_suffix()
        ));
        let names: BTreeSet<String> = ["os", "sys"].map(String::from).into();
        let asks = std::cell::Cell::new(0);
        let ask = |answer: Option<&BTreeSet<String>>| {
            asks.set(asks.get() + 1);
            answer.cloned()
        };
        let images = Images::new(dir.clone(), "base".into());
        assert!(images.stdlib_names(|| ask(None)).is_empty());
        assert_eq!(images.stdlib_names(|| ask(Some(&names))), names);
        let next_process = Images::new(dir.clone(), "base".into());
        assert_eq!(next_process.stdlib_names(|| ask(None)), names);
        assert_eq!(
            asks.get(),
            2,
            "a failed ask is not kept; a kept answer is not asked again"
        );
        let other_interpreter = Images::new(dir.clone(), "other".into());
        assert!(other_interpreter.stdlib_names(|| ask(None)).is_empty());
        // A cut-off file is asked again rather than trusted.
        let file = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "names"))
            .unwrap();
        std::fs::write(&file, "os\nsy").unwrap();
        assert_eq!(
            Images::new(dir.clone(), "base".into()).stdlib_names(|| ask(Some(&names))),
            names
        );
        assert_eq!(asks.get(), 4);
        let _ = std::fs::remove_dir_all(dir);
    }
}
