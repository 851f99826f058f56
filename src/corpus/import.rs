//! Importing projects into the [`Store`]: from PyPI sdists, local git repositories and plain
//! directories. Every import runs the same pipeline: find the code and tests, resolve the
//! project's pure-Python dependencies into pinned wheels, run the suite twice in the sandbox
//! (and, only when asked with `native_baseline`, once natively on the host), and keep as
//! oracle-usable only tests that passed in both sandbox runs. Every other test is recorded
//! with the reason it was excluded. The project's own code never runs outside the sandbox
//! unless the native baseline is asked for.

use super::addopts;
use super::store::{
    guest_python_path, valid_name, write_tree, Dependency, Layout, NativeBaseline, ProjectManifest,
    Source, Stats, Store, StoredProject, TestInventory,
};
use super::{CorpusError, Split};
use crate::fsutil::sha256_hex;
use crate::guest::{Python, PythonRun};
use crate::native::NativeEnv;
use crate::snapshot::Snapshot;
use crate::testrun::{self, Runner, TestCommand, TestReport, TestStatus};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Development tools that test extras list but suites do not need to run.
const TOOLS: &[&str] = &[
    "pytest-cov",
    "coverage",
    "pytest-xdist",
    "pytest-randomly",
    "pytest-benchmark",
    "pytest-timeout",
    "pytest-mypy",
    "pytest-flake8",
    "pytest-black",
    "pytest-ruff",
    "pytest-sugar",
    "pytest-html",
    "flake8",
    "black",
    "mypy",
    "ruff",
    "pylint",
    "isort",
    "tox",
    "nox",
    "pre-commit",
    "twine",
    "codecov",
    "check-manifest",
    "wheel",
    "setuptools",
    "build",
    "sphinx",
    "coveralls",
];

/// Where to import from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceSpec {
    /// `pypi:NAME==VERSION`, optionally with the sdist's expected sha256.
    Pypi {
        /// Project name.
        name: String,
        /// Exact version.
        version: String,
        /// The sdist must have this sha256, when given.
        sha256: Option<String>,
    },
    /// `git:PATH`.
    Git(PathBuf),
    /// `dir:PATH`.
    Dir(PathBuf),
}

impl SourceSpec {
    /// Parses `pypi:NAME==VERSION`, `git:PATH` or `dir:PATH`.
    pub fn parse(text: &str) -> Result<SourceSpec, CorpusError> {
        let bad = || CorpusError::BadSource(text.to_owned());
        let (kind, rest) = text.split_once(':').ok_or_else(bad)?;
        match kind {
            "pypi" => {
                let (name, version) = rest.split_once("==").ok_or_else(bad)?;
                let (name, version) = (name.trim(), version.trim());
                if name.is_empty() || version.is_empty() || !valid_name(name) {
                    return Err(bad());
                }
                Ok(SourceSpec::Pypi {
                    name: name.to_owned(),
                    version: version.to_owned(),
                    sha256: None,
                })
            }
            "git" if !rest.is_empty() => Ok(SourceSpec::Git(PathBuf::from(rest))),
            "dir" if !rest.is_empty() => Ok(SourceSpec::Dir(PathBuf::from(rest))),
            _ => Err(bad()),
        }
    }
}

/// How to import.
#[derive(Clone, Debug)]
pub struct ImportSettings {
    /// Name in the store (default: the project's own name).
    pub name: Option<String>,
    /// Split (default: the project's `spar.toml`, else train).
    pub split: Option<Split>,
    /// The host Python, for pip and the native baseline.
    pub host_python: String,
    /// Print steps to stderr.
    pub progress: bool,
    /// Also run the suite natively with `host_python`, to compare pass rates and timings.
    /// Off by default: it runs the project's code (its tests, its conftest) on the host,
    /// outside the sandbox, with the user's rights.
    pub native_baseline: bool,
}

/// The result of an import.
#[derive(Debug)]
pub struct ImportReport {
    /// The stored project.
    pub project: StoredProject,
    /// It was already in the store with the same source; nothing was done.
    pub already_present: bool,
}

/// What was fetched, before the common pipeline.
struct Acquired {
    name: String,
    description: String,
    split: Option<Split>,
    repo: Snapshot,
    source: Source,
    requirements: Vec<String>,
    /// `(name, version, METADATA text)` for the project's own dist-info.
    metadata: Option<(String, String, String)>,
}

/// Imports one project. Adding the same project again is a no-op; a failed import leaves
/// nothing in the store.
pub fn import(
    python: &Python,
    store: &Store,
    spec: &SourceSpec,
    settings: &ImportSettings,
) -> Result<ImportReport, CorpusError> {
    if let SourceSpec::Pypi {
        name,
        version,
        sha256: pin,
    } = spec
    {
        let stored_name = settings.name.clone().unwrap_or_else(|| name.to_lowercase());
        if let Ok(existing) = store.get(&stored_name) {
            let wanted = format!("{name}=={version}");
            return match &existing.manifest.source {
                Source::Pypi { spec, sha256, .. }
                    if spec.eq_ignore_ascii_case(&wanted)
                        && pin.as_ref().is_none_or(|p| p == sha256) =>
                {
                    Ok(ImportReport {
                        project: existing,
                        already_present: true,
                    })
                }
                _ => Err(CorpusError::NameTaken(stored_name)),
            };
        }
    }
    let staging_dir = store.staging("import")?;
    let staging = staging_dir.path();
    let result = (|| {
        let acquired = acquire(spec, staging, settings)?;
        let name = settings
            .name
            .clone()
            .unwrap_or_else(|| acquired.name.clone());
        if !valid_name(&name) {
            return Err(CorpusError::BadSource(format!(
                "{name} (not usable as a project name; pass --name)"
            )));
        }
        if let Ok(existing) = store.get(&name) {
            return if existing.manifest.source == acquired.source {
                Ok(ImportReport {
                    project: existing,
                    already_present: true,
                })
            } else {
                Err(CorpusError::NameTaken(name))
            };
        }
        let manifest = build(python, staging, name, acquired, settings)?;
        Ok(ImportReport {
            project: store.commit(staging, &manifest)?,
            already_present: false,
        })
    })();
    // Dropping the guard removes what is left of the staging directory.
    drop(staging_dir);
    result
}

fn progress(settings: &ImportSettings, name: &str, message: &str) {
    if settings.progress {
        eprintln!("spar: {name}: {message}");
    }
}

fn acquire(
    spec: &SourceSpec,
    staging: &Path,
    settings: &ImportSettings,
) -> Result<Acquired, CorpusError> {
    match spec {
        SourceSpec::Pypi {
            name,
            version,
            sha256,
        } => acquire_pypi(name, version, sha256.as_deref(), staging, settings),
        SourceSpec::Dir(path) => {
            let (repo, _) = Snapshot::from_dir(path)?;
            let source = Source::Dir {
                path: path.display().to_string(),
                content_hash: repo.content_hash().to_owned(),
            };
            Ok(local(path, repo, source))
        }
        SourceSpec::Git(path) => acquire_git(path, staging),
    }
}

/// The fields of an import from the host: name and split from `spar.toml` when present,
/// requirements from `pyproject.toml`.
fn local(path: &Path, repo: Snapshot, source: Source) -> Acquired {
    let dir_name = std::fs::canonicalize(path)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "project".into());
    let builtin = repo
        .file(super::MANIFEST)
        .and_then(|t| toml::from_str::<super::Manifest>(&String::from_utf8_lossy(&t)).ok());
    let pyproject = pyproject(&repo);
    let (name, description, split) = match builtin {
        Some(m) => (m.name, m.description, Some(m.split)),
        None => (
            pyproject.name.clone().unwrap_or(dir_name),
            pyproject.description.clone().unwrap_or_default(),
            None,
        ),
    };
    let metadata = pyproject.name.as_ref().map(|n| {
        let version = pyproject.version.clone().unwrap_or_else(|| "0".into());
        let text = format!("Metadata-Version: 2.1\nName: {n}\nVersion: {version}\n");
        (n.clone(), version, text)
    });
    Acquired {
        name: name.to_lowercase(),
        description,
        split,
        repo,
        source,
        requirements: pyproject.requirements,
        metadata,
    }
}

#[derive(Default)]
struct Pyproject {
    name: Option<String>,
    version: Option<String>,
    description: Option<String>,
    requirements: Vec<String>,
}

fn pyproject(repo: &Snapshot) -> Pyproject {
    #[derive(Deserialize)]
    struct File {
        project: Option<Project>,
    }
    #[derive(Deserialize)]
    struct Project {
        name: Option<String>,
        version: Option<String>,
        description: Option<String>,
        #[serde(default)]
        dependencies: Vec<String>,
        #[serde(default, rename = "optional-dependencies")]
        optional: BTreeMap<String, Vec<String>>,
    }
    let Some(text) = repo.file("pyproject.toml") else {
        return Pyproject::default();
    };
    let Ok(File { project: Some(p) }) = toml::from_str::<File>(&String::from_utf8_lossy(&text))
    else {
        return Pyproject::default();
    };
    let mut requirements = p.dependencies;
    for extra in ["test", "tests", "testing"] {
        requirements.extend(p.optional.get(extra).into_iter().flatten().cloned());
    }
    Pyproject {
        name: p.name,
        version: p.version,
        description: p.description,
        requirements,
    }
}

/// Downloads the sdist of `spec` into `dir`; returns its path, bytes and sha256, refused
/// when it does not match `expected_sha256`.
fn download_sdist(
    spec: &str,
    expected_sha256: Option<&str>,
    dir: &Path,
    settings: &ImportSettings,
) -> Result<(PathBuf, Vec<u8>, String), CorpusError> {
    let flags = ["--no-deps", "--no-binary", ":all:"];
    let spec = spec.to_owned();
    let files = crate::pip::download(
        &settings.host_python,
        dir,
        &flags,
        std::slice::from_ref(&spec),
    )
    .map_err(|source| CorpusError::Pip {
        project: spec.clone(),
        source,
    })?;
    let sdist = files.first().ok_or_else(|| CorpusError::Archive {
        project: spec.clone(),
        detail: "pip saved no sdist; the project may publish wheels only, which carry no tests"
            .into(),
    })?;
    let bytes = std::fs::read(sdist).map_err(|source| CorpusError::Io {
        path: sdist.clone(),
        source,
    })?;
    let sha256 = sha256_hex(&bytes);
    if let Some(expected) = expected_sha256.filter(|e| *e != sha256) {
        return Err(CorpusError::Archive {
            project: spec,
            detail: format!("the sdist has sha256 {sha256}, but its pin is {expected}; the download is corrupt or the release was replaced"),
        });
    }
    Ok((sdist.clone(), bytes, sha256))
}

/// The project's sdist from PyPI (checked against its pin), unpacked, with its metadata and
/// requirements.
fn acquire_pypi(
    name: &str,
    version: &str,
    expected_sha256: Option<&str>,
    staging: &Path,
    settings: &ImportSettings,
) -> Result<Acquired, CorpusError> {
    let spec = format!("{name}=={version}");
    progress(
        settings,
        name,
        &format!("downloading the sdist of {spec} from PyPI"),
    );
    let download_dir = staging.join("download");
    let (sdist, bytes, sha256) = download_sdist(&spec, expected_sha256, &download_dir, settings)?;
    let file_name = sdist
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let files = extract_sdist(&file_name, &bytes).map_err(|detail| CorpusError::Archive {
        project: spec.clone(),
        detail: format!("{file_name} is not a readable archive ({detail}); retry the import, the download may be corrupt"),
    })?;
    let _ = std::fs::remove_dir_all(&download_dir);
    let repo = Snapshot::from_files(files)?;
    let pkg_info = repo
        .file("PKG-INFO")
        .map(|t| String::from_utf8_lossy(&t).into_owned())
        .unwrap_or_default();
    let headers = parse_headers(&pkg_info);
    let header = |key: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.clone())
    };
    let mut requirements: Vec<String> = headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("Requires-Dist"))
        .map(|(_, v)| v.clone())
        .collect();
    if requirements.is_empty() {
        requirements = pyproject(&repo).requirements;
    }
    let metadata = (!pkg_info.is_empty()).then(|| {
        (
            header("Name").unwrap_or_else(|| name.to_owned()),
            header("Version").unwrap_or_else(|| version.to_owned()),
            pkg_info.clone(),
        )
    });
    Ok(Acquired {
        name: name.to_lowercase(),
        description: header("Summary").unwrap_or_default(),
        split: None,
        repo,
        source: Source::Pypi {
            spec,
            sdist: file_name,
            sha256,
        },
        requirements,
        metadata,
    })
}

/// `Key: value` headers of an RFC 822-style metadata file (PKG-INFO), up to the body.
fn parse_headers(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            out.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    out
}

/// The files of an sdist (`.tar.gz` or `.zip`) without its top-level directory. Members with
/// unsafe paths and links are dropped.
fn extract_sdist(file_name: &str, bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut raw: Vec<(String, Vec<u8>)> = Vec::new();
    if file_name.ends_with(".zip") {
        let mut archive =
            zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| e.to_string())?;
        for i in 0..archive.len() {
            let mut entry = archive.by_index(i).map_err(|e| e.to_string())?;
            if entry.is_dir() {
                continue;
            }
            let Some(path) = entry.enclosed_name() else {
                continue;
            };
            let mut data = Vec::new();
            entry.read_to_end(&mut data).map_err(|e| e.to_string())?;
            raw.push((path.to_string_lossy().into_owned(), data));
        }
    } else if file_name.ends_with(".tar.gz") || file_name.ends_with(".tgz") {
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
        for entry in archive.entries().map_err(|e| e.to_string())? {
            let mut entry = entry.map_err(|e| e.to_string())?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let path = entry
                .path()
                .map_err(|e| e.to_string())?
                .to_string_lossy()
                .into_owned();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).map_err(|e| e.to_string())?;
            raw.push((path, data));
        }
    } else {
        return Err("unknown archive format".into());
    }
    let mut files = Vec::new();
    for (path, data) in raw {
        let path = path.replace('\\', "/");
        let Some((_, inner)) = path.split_once('/') else {
            continue;
        };
        let safe = !inner.is_empty()
            && !inner.starts_with('/')
            && !inner.split('/').any(|c| c == ".." || c == "__pycache__")
            && !inner.ends_with(".pyc");
        if safe {
            files.push((inner.to_owned(), data));
        }
    }
    if files.is_empty() {
        return Err("it holds no files".into());
    }
    Ok(files)
}

fn acquire_git(path: &Path, staging: &Path) -> Result<Acquired, CorpusError> {
    let git_err = |detail: String| CorpusError::Git {
        path: path.to_owned(),
        detail,
    };
    let repo = gix::open(path).map_err(|e| git_err(e.to_string()))?;
    let head = repo.head_commit().map_err(|e| git_err(e.to_string()))?;
    let head_id = head.id().to_string();
    let commits = head
        .ancestors()
        .all()
        .map_err(|e| git_err(e.to_string()))?
        .filter_map(Result::ok)
        .count();
    let tree = head.tree().map_err(|e| git_err(e.to_string()))?;
    let mut recorder = gix::traverse::tree::Recorder::default();
    tree.traverse()
        .breadthfirst(&mut recorder)
        .map_err(|e| git_err(e.to_string()))?;
    let mut files = Vec::new();
    for entry in recorder.records {
        if !entry.mode.is_blob() {
            continue;
        }
        let object = repo
            .find_object(entry.oid)
            .map_err(|e| git_err(e.to_string()))?;
        files.push((entry.filepath.to_string(), object.data.clone()));
    }
    let snapshot = Snapshot::from_files(files)?;
    // The history travels with the project: later, history-aware bug injection reads it.
    let git_copy = staging.join("git");
    copy_dir(repo.git_dir(), &git_copy)
        .map_err(|e| git_err(format!("copying its history: {e}")))?;
    let source = Source::Git {
        path: path.display().to_string(),
        head: head_id,
        commits,
    };
    Ok(local(path, snapshot, source))
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Finds import roots and test locations, the same way `spar test` does
/// ([`crate::testrun::layout`]).
pub(crate) fn detect_layout(repo: &Snapshot) -> Layout {
    let found = crate::testrun::layout::ProjectLayout::detect(repo);
    Layout {
        python_path: found.python_path,
        test_paths: found.test_paths,
    }
}

/// Requirements to resolve (markers kept for pip to evaluate), and the ones skipped because
/// the base site provides them or they are development tools.
fn requirements_to_resolve(
    requirements: &[String],
    provided: &BTreeSet<String>,
) -> (Vec<String>, Vec<String>) {
    let mut keep = Vec::new();
    let mut skipped = Vec::new();
    for requirement in requirements {
        let (spec, marker) = match requirement.split_once(';') {
            Some((s, m)) => (s.trim(), m.trim().to_owned()),
            None => (requirement.trim(), String::new()),
        };
        let name: String = spec
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .collect::<String>()
            .to_lowercase()
            .replace('_', "-");
        if name.is_empty() {
            continue;
        }
        let marker = match strip_test_extra(&marker) {
            Some(m) => m,
            None => continue,
        };
        if provided.contains(&name) || TOOLS.contains(&name.as_str()) {
            skipped.push(name);
            continue;
        }
        keep.push(if marker.is_empty() {
            spec.to_owned()
        } else {
            format!("{spec}; {marker}")
        });
    }
    (keep, skipped)
}

/// Removes an `extra == "test"` clause from a marker. `None` when the requirement belongs to
/// another extra (docs, dev, ...), which the suite does not need.
fn strip_test_extra(marker: &str) -> Option<String> {
    let Some(pos) = marker.find("extra") else {
        return Some(marker.to_owned());
    };
    let rest = &marker[pos..];
    let quoted: Vec<&str> = rest.split(['"', '\'']).collect();
    let extra = quoted.get(1).copied().unwrap_or("");
    if !matches!(extra, "test" | "tests" | "testing") {
        return None;
    }
    // The clause ends after the quote that closes the extra's name; quotes are one byte, so
    // this is a character boundary (searching for the name itself could land inside an
    // earlier word such as `extra_testé`, and slice a multibyte character).
    let open_quote = rest.find(['"', '\'']).unwrap_or(0);
    let clause_end = pos + open_quote + 1 + extra.len() + 1;
    let mut remaining = format!(
        "{}{}",
        &marker[..pos],
        marker.get(clause_end..).unwrap_or("")
    );
    for joiner in [" and ", "and "] {
        remaining = remaining
            .trim()
            .trim_end_matches(joiner.trim())
            .trim()
            .to_owned();
        remaining = remaining
            .trim_start_matches(joiner.trim())
            .trim()
            .to_owned();
    }
    Some(
        remaining
            .trim_matches(|c: char| c == '(' || c == ')' || c.is_whitespace())
            .to_owned(),
    )
}

/// The guest a project's wheels are resolved for: its `major.minor` and the distributions it
/// already has.
type GuestSite<'a> = (&'a str, &'a BTreeSet<String>);

/// Downloads pure-Python wheels for `requirements` and their dependencies, for the guest's
/// Python. What the guest provides is never downloaded: a requirement that pip cannot resolve
/// because a dependency has no pure wheel (xarray needs numpy) is fetched alone, and its own
/// dependencies that the guest lacks are resolved the same way. Requirements that cannot be
/// satisfied are returned as unavailable.
fn resolve_wheels(
    host_python: &str,
    dir: &Path,
    requirements: &[String],
    (version, provided): GuestSite<'_>,
) -> (Vec<PathBuf>, Vec<String>) {
    if requirements.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let pure = [
        "--only-binary=:all:",
        "--python-version",
        version,
        "--implementation",
        "py",
        "--abi",
        "none",
        "--platform",
        "any",
    ];
    let no_deps: Vec<&str> = pure.iter().copied().chain(["--no-deps"]).collect();
    let mut unavailable = Vec::new();
    if crate::pip::download(host_python, dir, &pure, requirements).is_err() {
        let mut queue: Vec<String> = requirements.to_vec();
        let mut seen = BTreeSet::new();
        while let Some(requirement) = queue.pop() {
            if !seen.insert(requirement.clone()) {
                continue;
            }
            let one = std::slice::from_ref(&requirement);
            let Err(e) = crate::pip::download(host_python, dir, &pure, one) else {
                continue;
            };
            match crate::pip::download(host_python, dir, &no_deps, one) {
                Ok(files) => queue.extend(missing_dependencies(&files, provided)),
                Err(_) => unavailable.push(format!("{requirement} ({e})")),
            }
        }
    }
    let wheels = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "whl"))
        .filter(|p| !provided.contains(&wheel_distribution(p)))
        .collect();
    (wheels, unavailable)
}

/// A wheel file's distribution name, normalised (`Foo_Bar-1.0-py3-none-any.whl`: `foo-bar`).
fn wheel_distribution(wheel: &Path) -> String {
    let name = wheel.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let dist = name.split('-').next().unwrap_or("");
    dist.to_lowercase().replace('_', "-")
}

/// The run-time requirements (no extras) that `wheels`' metadata lists and `provided` lacks.
fn missing_dependencies(wheels: &[PathBuf], provided: &BTreeSet<String>) -> Vec<String> {
    let mut requires = Vec::new();
    for wheel in wheels {
        let files = crate::guest::unpack_wheel(wheel).unwrap_or_default();
        let metadata = files
            .iter()
            .find(|(path, _)| path.ends_with(".dist-info/METADATA"));
        let Some((_, metadata)) = metadata else {
            continue;
        };
        requires.extend(
            String::from_utf8_lossy(metadata)
                .lines()
                .filter_map(|l| l.strip_prefix("Requires-Dist:"))
                .filter(|r| !r.contains("extra"))
                .map(|r| r.trim().to_owned()),
        );
    }
    requirements_to_resolve(&requires, provided).0
}

/// Why a test that did not pass in both sandbox runs is excluded.
fn exclusion_reason(
    first: Option<TestStatus>,
    second: Option<TestStatus>,
    native: Option<TestStatus>,
    message: &str,
) -> String {
    let lower = message.to_lowercase();
    let wasi = [
        (
            &["subprocess", "fork", "spawn", "os.system", "popen"][..],
            "uses subprocesses, which WASI does not have",
        ),
        (&["thread"][..], "uses threads, which WASI does not have"),
        (
            &["socket", "_ssl", "ssl", "network", "connection"][..],
            "uses sockets or the network, which WASI does not have",
        ),
        (
            &["ctypes", "cffi", "extension module", ".so"][..],
            "needs a C extension, which the WASI interpreter cannot load",
        ),
        (
            &["signal", "sigalrm", "alarm"][..],
            "uses signals, which WASI does not have",
        ),
        (
            &[
                "function not implemented",
                "not supported",
                "errno 52",
                "errno 58",
                "enosys",
                "notsup",
            ][..],
            "uses an OS feature WASI lacks",
        ),
    ];
    let detail = if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    };
    if first == Some(TestStatus::Skipped) || second == Some(TestStatus::Skipped) {
        return "skipped in the sandbox".into();
    }
    if first == Some(TestStatus::Passed) || second == Some(TestStatus::Passed) {
        return "flaky: passed in only one of two sandbox runs".into();
    }
    if let Some((_, reason)) = wasi
        .iter()
        .find(|(keys, _)| keys.iter().any(|k| lower.contains(k)))
    {
        return format!("{reason}{detail}");
    }
    match native {
        Some(TestStatus::Passed) => format!("fails only in the sandbox{detail}"),
        Some(status) => format!(
            "does not pass natively either ({}){detail}",
            status.as_str()
        ),
        None => format!("fails in the sandbox{detail}"),
    }
}

/// Builds the project's manifest in `staging`: its dependencies, its test command, two
/// sandbox runs of its suite (and a native one when asked), and which tests are usable.
fn build(
    python: &Python,
    staging: &Path,
    name: String,
    acquired: Acquired,
    settings: &ImportSettings,
) -> Result<ProjectManifest, CorpusError> {
    let repo = &acquired.repo;
    let layout = detect_layout(repo);
    if layout.test_paths.is_empty() {
        return Err(CorpusError::NoTests(name));
    }
    let mut notes = Vec::new();
    progress(
        settings,
        &name,
        "resolving dependencies to pure-Python wheels",
    );
    let installed = install_dependencies(python, staging, &acquired, settings, &mut notes)?;
    let runner = testrun::detect_runner(repo);
    let (base, project_addopts) = base_command(repo, &layout, runner, &installed, &mut notes);
    let options = PythonRun {
        python_path: guest_python_path(&layout),
        deps: installed.deps.clone(),
        ..PythonRun::default()
    };
    progress(
        settings,
        &name,
        "running its test suite in the sandbox (twice)",
    );
    let (command, first) =
        first_sandbox_run(python, repo, &base, project_addopts, &options, &mut notes)?;
    let second = testrun::run_tests(python, repo, &command, &options)?;
    let native = settings.native_baseline.then(|| {
        let doing = "running its test suite natively, on the host, unsandboxed (--native-baseline)";
        progress(settings, &name, doing);
        run_native(
            python,
            staging,
            repo,
            &layout,
            &command,
            &installed.skipped,
            settings,
        )
    });
    let (inventory, total) = inventory(&first, &second, native.as_ref().and_then(|n| n.as_ref()));
    if inventory.usable.is_empty() {
        // Why the first test was left out says most; else how the run ended.
        let why = inventory.excluded.values().next().cloned();
        let hint = why.unwrap_or_else(|| last_lines(&first));
        return Err(CorpusError::NothingUsable {
            project: name,
            total,
            hint,
        });
    }
    notes.extend(exclusion_notes(&inventory));
    write_tree(&staging.join("repo"), repo)?;
    let stats = stats(
        repo,
        (&first, &second),
        native,
        (inventory.usable.len(), total),
    );
    Ok(ProjectManifest {
        name,
        description: acquired.description,
        split: settings.split.or(acquired.split).unwrap_or(Split::Train),
        notes,
        unavailable_dependencies: installed.unavailable,
        source: acquired.source,
        layout,
        test: command,
        stats,
        dependencies: installed.dependencies,
        tests: inventory,
    })
}

/// A project's dependencies as the guest will see them.
struct Installed {
    /// The wheels installed, pinned by hash.
    dependencies: Vec<Dependency>,
    /// The unpacked, precompiled wheels and the project's own metadata, mounted at /deps.
    deps: Option<Snapshot>,
    /// Requirements not installed: the guest provides them, or they are development tools.
    skipped: Vec<String>,
    /// Requirements with no pure-Python wheel.
    unavailable: Vec<String>,
}

/// Resolves the project's requirements to pure-Python wheels, unpacks and precompiles them
/// into `staging/deps`, with the project's own dist-info.
fn install_dependencies(
    python: &Python,
    staging: &Path,
    acquired: &Acquired,
    settings: &ImportSettings,
    notes: &mut Vec<String>,
) -> Result<Installed, CorpusError> {
    let provided = python.provided_distributions()?;
    let (requirements, skipped) = requirements_to_resolve(&acquired.requirements, provided);
    if !skipped.is_empty() {
        notes.push(format!(
            "not installed (provided by the guest or development tools): {}",
            skipped.join(", ")
        ));
    }
    let wheel_dir = staging.join("wheels");
    let target = (python.python_version(), provided);
    let (wheels, unavailable) =
        resolve_wheels(&settings.host_python, &wheel_dir, &requirements, target);
    if !unavailable.is_empty() {
        notes.push("some requirements have no pure-Python wheel (C extensions cannot load under WASI); tests that need them are excluded".into());
    }
    let mut dependencies = Vec::new();
    let mut deps_files: Vec<(String, Vec<u8>)> = Vec::new();
    for wheel in &wheels {
        let bytes = std::fs::read(wheel).map_err(|source| CorpusError::Io {
            path: wheel.clone(),
            source,
        })?;
        let file_name = wheel.file_name().map(|n| n.to_string_lossy().into_owned());
        dependencies.push(Dependency {
            wheel: file_name.unwrap_or_default(),
            sha256: sha256_hex(&bytes),
        });
        deps_files.extend(crate::guest::unpack_wheel(wheel)?);
    }
    let _ = std::fs::remove_dir_all(&wheel_dir);
    if let Some((dist, version, text)) = &acquired.metadata {
        // The project's own metadata, so `importlib.metadata.version(...)` works in its tests.
        let dist_info = format!("{}-{}.dist-info", dist.replace('-', "_"), version);
        deps_files.push((format!("{dist_info}/METADATA"), text.clone().into_bytes()));
        deps_files.push((format!("{dist_info}/RECORD"), Vec::new()));
    }
    let deps = match deps_files.is_empty() {
        true => None,
        false => {
            let compiled = python.precompile(&Snapshot::from_files(deps_files)?)?;
            write_tree(&staging.join("deps"), &compiled)?;
            Some(compiled)
        }
    };
    Ok(Installed {
        dependencies,
        deps,
        skipped,
        unavailable,
    })
}

/// The test command before the project's own pytest options, and those options that work
/// in the guest.
fn base_command(
    repo: &Snapshot,
    layout: &Layout,
    runner: Runner,
    installed: &Installed,
    notes: &mut Vec<String>,
) -> (TestCommand, Vec<String>) {
    let mut extra: Vec<String> = Vec::new();
    let mut project_addopts = Vec::new();
    if runner == Runner::Pytest {
        // The project's addopts come back later, less the options that cannot work here.
        extra.extend(["-o".to_owned(), "addopts=".to_owned()]);
        // Marks of plugins spar does not install must not fail suites that make warnings errors.
        extra.extend([
            "-W".to_owned(),
            "ignore::pytest.PytestUnknownMarkWarning".to_owned(),
        ]);
        extra.extend(layout.test_paths.iter().cloned());
        let deps = installed.deps.as_ref();
        project_addopts = guest_addopts(repo, layout, &installed.dependencies, deps, notes);
    }
    (
        TestCommand::for_repo(repo, Some(runner), &extra),
        project_addopts,
    )
}

/// One note per kind of exclusion, with its count.
fn exclusion_notes(inventory: &TestInventory) -> Vec<String> {
    let mut categories: BTreeMap<&str, usize> = BTreeMap::new();
    for reason in inventory.excluded.values() {
        let key = reason.split(':').next().unwrap_or(reason);
        *categories.entry(key).or_default() += 1;
    }
    categories
        .into_iter()
        .map(|(reason, count)| format!("{count} test(s) excluded: {reason}"))
        .collect()
}

/// The project's size, its usable and total tests, and its suite timings. `native` is None
/// when no native run was asked for, `Some(None)` when it failed.
fn stats(
    repo: &Snapshot,
    (first, second): (&TestReport, &TestReport),
    native: Option<Option<testrun::NativeRun>>,
    (tests_usable, tests_total): (usize, usize),
) -> Stats {
    let native_baseline = match &native {
        None => NativeBaseline::NotMeasured,
        Some(Some(_)) => NativeBaseline::Measured,
        Some(None) => NativeBaseline::Failed,
    };
    let native = native.flatten();
    let lines = repo
        .files()
        .iter()
        .filter(|(p, _)| p.ends_with(".py"))
        .map(|(_, c)| c.iter().filter(|b| **b == b'\n').count())
        .sum();
    Stats {
        files: repo.files().len(),
        lines,
        tests_total,
        tests_usable,
        sandbox_ms: (first.run.duration_ms + second.run.duration_ms) / 2.0,
        native_ms: native.as_ref().map(|n| n.duration.as_secs_f64() * 1e3),
        native_passed: native.as_ref().map(|n| {
            let statuses = n.tests.values();
            statuses.filter(|s| **s == TestStatus::Passed).count()
        }),
        native_baseline: Some(native_baseline),
    }
}

/// The project's pytest addopts that work in the guest; a note for each option left out.
fn guest_addopts(
    repo: &Snapshot,
    layout: &Layout,
    dependencies: &[Dependency],
    deps: Option<&Snapshot>,
    notes: &mut Vec<String>,
) -> Vec<String> {
    let found = match addopts::project_addopts(repo, &layout.test_paths) {
        Ok(Some(found)) => found,
        Ok(None) => return Vec::new(),
        Err(e) => {
            notes.push(format!("the project's pytest addopts are not used: {e}"));
            return Vec::new();
        }
    };
    let distributions: Vec<String> = dependencies
        .iter()
        .map(|d| addopts::wheel_distribution(&d.wheel))
        .collect();
    let has_module = |module: &str| {
        let base = module.replace('.', "/");
        let candidates = [format!("{base}.py"), format!("{base}/__init__.py")];
        let in_tree = |tree: &Snapshot, root: &str| {
            candidates.iter().any(|c| {
                let path = match root {
                    "." | "" => c.clone(),
                    root => format!("{root}/{c}"),
                };
                tree.file(&path).is_some()
            })
        };
        deps.is_some_and(|d| in_tree(d, ""))
            || in_tree(repo, "")
            || layout.python_path.iter().any(|root| in_tree(repo, root))
    };
    let filtered = addopts::filter(
        &found.args,
        &addopts::Installed {
            distributions: &distributions,
            has_module: &has_module,
        },
    );
    for dropped in &filtered.dropped {
        notes.push(format!(
            "pytest option `{}` from {} is not used: {}",
            dropped.args.join(" "),
            found.file,
            dropped.reason
        ));
    }
    filtered.kept
}

/// How many times a run is retried without addopts pytest refused.
const ADDOPTS_RETRIES: usize = 3;

/// The first sandbox run, with the project's addopts before spar's own options (where pytest
/// puts addopts, so spar's output options win). When pytest refuses some of them (a usage
/// error, exit status 4: an option of a plugin spar's table does not know) they are removed
/// and the run repeated; so is `--strict-markers` when marks of missing plugins fail it.
/// Returns the command that ran and its report.
fn first_sandbox_run(
    python: &Python,
    repo: &Snapshot,
    base: &TestCommand,
    mut addopts: Vec<String>,
    options: &PythonRun,
    notes: &mut Vec<String>,
) -> Result<(TestCommand, TestReport), CorpusError> {
    let mut tries = 0;
    loop {
        let command = with_addopts(base, &addopts);
        let report = testrun::run_tests(python, repo, &command, options)?;
        if addopts.is_empty() || tries == ADDOPTS_RETRIES {
            return Ok((command, report));
        }
        tries += 1;
        let (removed, why) = refused_addopts(&report, &mut addopts);
        if removed.is_empty() {
            return Ok((command, report));
        }
        notes.push(format!(
            "pytest option(s) `{}` from the project's addopts are not used: {why}",
            removed.join(" ")
        ));
    }
}

/// Removes from `addopts` what made `report`'s run fail before testing, and says why.
fn refused_addopts(report: &TestReport, addopts: &mut Vec<String>) -> (Vec<String>, &'static str) {
    let output = format!("{}\n{}", report.run.stdout, report.run.stderr);
    let strict = |addopts: &mut Vec<String>, names: &[&str]| {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        addopts::remove(addopts, &names)
    };
    if report.run.exit_code == Some(4) {
        let removed = addopts::remove(addopts, &addopts::unrecognized(&output));
        if !removed.is_empty() {
            return (removed, "pytest does not recognize them in the guest");
        }
        if output.contains("Unknown config option") {
            let removed = strict(addopts, &["--strict-config", "--strict"]);
            if !removed.is_empty() {
                return (
                    removed,
                    "the configuration names options of plugins the guest lacks",
                );
            }
        }
        // pytest refused the command line without naming a project option: run without any.
        return (
            std::mem::take(addopts),
            "pytest stopped with a usage error, so the suite runs without them",
        );
    }
    if addopts::unregistered_marker(&output) {
        let removed = strict(addopts, &["--strict-markers", "--strict"]);
        return (removed, "the suite uses marks of plugins the guest lacks");
    }
    (Vec::new(), "")
}

/// `base` with `addopts` right after `-m pytest`.
fn with_addopts(base: &TestCommand, addopts: &[String]) -> TestCommand {
    let mut command = base.clone();
    let at = match command.args.get(..2) {
        Some([m, pytest]) if m == "-m" && pytest == "pytest" => 2,
        _ => 0,
    };
    command.args.splice(at..at, addopts.iter().cloned());
    command
}

fn last_lines(report: &TestReport) -> String {
    let text = if report.run.stdout.trim().is_empty() {
        &report.run.stderr
    } else {
        &report.run.stdout
    };
    text.lines()
        .rev()
        .take(3)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The suite run natively, twice: the first run's results (and its bytecode, cached in the
/// copy as in a user's checkout) and the second, warm run's time. `None` when the native
/// environment or either run cannot start.
fn run_native(
    python: &Python,
    staging: &Path,
    repo: &Snapshot,
    layout: &Layout,
    command: &TestCommand,
    skipped: &[String],
    settings: &ImportSettings,
) -> Option<testrun::NativeRun> {
    let wheels = python.site_wheels().ok()?;
    let cache_dir = python.cache_dir();
    let env = NativeEnv::prepare(&settings.host_python, cache_dir, &wheels)
        .inspect_err(|e| progress(settings, "native baseline", &e.to_string()))
        .ok()?;
    let scratch = staging.join("native");
    let copy = scratch.join("repo");
    write_tree(&copy, repo).ok()?;
    let mut path: Vec<PathBuf> = layout.python_path.iter().map(|p| copy.join(p)).collect();
    path.push(staging.join("deps"));
    // What the guest has compiled in (numpy, pandas, ...) the host gets as its own wheels.
    let site: BTreeSet<String> = wheels.iter().map(|(w, _)| wheel_distribution(w)).collect();
    let compiled_in: Vec<String> = skipped
        .iter()
        .filter(|name| !site.contains(*name) && !TOOLS.contains(&name.as_str()))
        .cloned()
        .collect();
    if !compiled_in.is_empty() {
        let target = scratch.join("host-deps");
        crate::native::install(&settings.host_python, &target, &compiled_in)
            .inspect_err(|e| progress(settings, "native baseline", &e.to_string()))
            .ok()?;
        path.push(target);
    }
    let run = || testrun::run_tests_native(env.python(), &copy, command, &path, &scratch).ok();
    let first = run();
    let warm = first.as_ref().and_then(|_| run());
    let _ = std::fs::remove_dir_all(&scratch);
    let mut first = first?;
    first.duration = warm?.duration;
    Some(first)
}

fn inventory(
    first: &TestReport,
    second: &TestReport,
    native: Option<&testrun::NativeRun>,
) -> (TestInventory, usize) {
    let messages = testrun::pytest_messages(&first.run.stdout);
    let ids: BTreeSet<&String> = first.tests.keys().chain(second.tests.keys()).collect();
    let mut inventory = TestInventory::default();
    for id in &ids {
        let a = first.tests.get(*id).copied();
        let b = second.tests.get(*id).copied();
        if a == Some(TestStatus::Passed) && b == Some(TestStatus::Passed) {
            inventory.usable.push((*id).clone());
        } else {
            let native_status = native.and_then(|n| n.tests.get(*id).copied());
            let message = messages.get(*id).map(String::as_str).unwrap_or("");
            inventory.excluded.insert(
                (*id).clone(),
                exclusion_reason(a, b, native_status, message),
            );
        }
    }
    (inventory, ids.len())
}

/// One entry of `corpora/pypi.toml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultProject {
    /// `NAME==VERSION`.
    pub spec: String,
    /// The sdist's sha256.
    pub sha256: String,
    /// Split (default train).
    #[serde(default)]
    pub split: Option<Split>,
    /// Licence, for the record.
    pub license: String,
}

/// One project of [`import_defaults`]: its label and how its import went.
pub type DefaultResult = (String, Result<ImportReport, CorpusError>);

#[derive(Deserialize)]
struct DefaultList {
    project: Vec<DefaultProject>,
}

/// Imports the built-in corpus and every project in `list_file` (`corpora/pypi.toml`), with
/// a progress bar. Each project's result is returned; one failure does not stop the rest.
pub fn import_defaults(
    python: &Python,
    store: &Store,
    builtin_dir: &Path,
    list_file: &Path,
    settings: &ImportSettings,
) -> Result<Vec<DefaultResult>, CorpusError> {
    let text = std::fs::read_to_string(list_file).map_err(|source| CorpusError::Io {
        path: list_file.to_owned(),
        source,
    })?;
    let list: DefaultList = toml::from_str(&text).map_err(|e| CorpusError::Manifest {
        path: list_file.to_owned(),
        detail: e.message().to_owned(),
    })?;
    let mut jobs: Vec<(String, SourceSpec, Option<Split>)> = super::list_projects(builtin_dir)?
        .into_iter()
        .map(|p| (p.manifest.name.clone(), SourceSpec::Dir(p.dir), None))
        .collect();
    for entry in list.project {
        let mut spec = SourceSpec::parse(&format!("pypi:{}", entry.spec))?;
        if let SourceSpec::Pypi { sha256, .. } = &mut spec {
            *sha256 = Some(entry.sha256.clone());
        }
        jobs.push((entry.spec.clone(), spec, entry.split));
    }
    let bar = indicatif::ProgressBar::new(jobs.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} [{elapsed}] {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    if !settings.progress {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let quiet = ImportSettings {
        progress: false,
        ..settings.clone()
    };
    let mut results = Vec::new();
    for (label, spec, split) in jobs {
        bar.set_message(label.clone());
        let job_settings = ImportSettings {
            split: split.or(quiet.split),
            ..quiet.clone()
        };
        let result = import(python, store, &spec, &job_settings);
        bar.inc(1);
        results.push((label, result));
    }
    bar.finish_with_message("done");
    Ok(results)
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.project.manifest;
        let s = &m.stats;
        if self.already_present {
            return writeln!(
                f,
                "{}: already in the corpus ({}), nothing to do",
                m.name,
                m.source.short()
            );
        }
        writeln!(f, "{} ({}, {})", m.name, m.source.short(), m.split)?;
        writeln!(
            f,
            "  {} files, {} lines of Python; runner {}; import roots {:?}; tests in {:?}",
            s.files, s.lines, m.test.runner, m.layout.python_path, m.layout.test_paths
        )?;
        writeln!(f, "  {} pinned dependency wheel(s)", m.dependencies.len())?;
        writeln!(
            f,
            "  tests: {}/{} usable by the oracle ({:.0}%); sandbox {:.0} ms, native {}",
            s.tests_usable,
            s.tests_total,
            100.0 * s.tests_usable as f64 / s.tests_total.max(1) as f64,
            s.sandbox_ms,
            s.native_summary(),
        )?;
        if s.native() == NativeBaseline::NotMeasured {
            writeln!(
                f,
                "  (the native baseline runs the project's tests on the host, unsandboxed; add it with --native-baseline)"
            )?;
        }
        for note in &m.notes {
            writeln!(f, "  note: {note}")?;
        }
        for dep in &m.unavailable_dependencies {
            writeln!(f, "  unavailable: {dep}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(paths: &[&str]) -> Snapshot {
        Snapshot::from_files(paths.iter().map(|p| (*p, b"x = 1\n".to_vec()))).unwrap()
    }

    #[test]
    fn default_list_is_pinned_and_large_enough() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpora/pypi.toml");
        let list: DefaultList = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert!(list.project.len() >= 20, "{}", list.project.len());
        let mut names = BTreeSet::new();
        for p in &list.project {
            assert!(
                SourceSpec::parse(&format!("pypi:{}", p.spec)).is_ok(),
                "{}",
                p.spec
            );
            assert!(
                p.sha256.len() == 64 && p.sha256.chars().all(|c| c.is_ascii_hexdigit()),
                "{}",
                p.spec
            );
            assert!(!p.license.is_empty() && p.license != "?", "{}", p.spec);
            assert!(
                names.insert(p.spec.split("==").next().unwrap().to_owned()),
                "duplicate {}",
                p.spec
            );
        }
    }

    #[test]
    fn layouts() {
        let src = detect_layout(&repo(&["src/pkg/__init__.py", "tests/test_a.py"]));
        assert_eq!(src.python_path, ["src"]);
        assert_eq!(src.test_paths, ["tests"]);
        let flat = detect_layout(&repo(&[
            "pkg/__init__.py",
            "pkg/tests/test_a.py",
            "test_top.py",
            "docs/test_x.py",
        ]));
        assert_eq!(flat.python_path, ["."]);
        assert_eq!(flat.test_paths, ["pkg/tests", "test_top.py"]);
        let none = detect_layout(&repo(&["pkg/__init__.py"]));
        assert!(none.test_paths.is_empty());
        // A src/ directory without packages (e.g. C sources) is not an import root.
        let c = detect_layout(&repo(&[
            "src/module.c",
            "pkg/__init__.py",
            "test/test_a.py",
        ]));
        assert_eq!(
            (c.python_path, c.test_paths),
            (vec![".".to_owned()], vec!["test".to_owned()])
        );
    }

    #[test]
    fn source_specs() {
        assert_eq!(
            SourceSpec::parse("pypi:idna==3.10").unwrap(),
            SourceSpec::Pypi {
                name: "idna".into(),
                version: "3.10".into(),
                sha256: None
            }
        );
        assert_eq!(
            SourceSpec::parse("git:/tmp/r").unwrap(),
            SourceSpec::Git("/tmp/r".into())
        );
        assert_eq!(
            SourceSpec::parse("dir:.").unwrap(),
            SourceSpec::Dir(".".into())
        );
        for bad in [
            "idna",
            "pypi:idna",
            "pypi:==1",
            "svn:x",
            "dir:",
            "pypi:../x==1",
        ] {
            assert!(SourceSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn requirement_filtering() {
        let reqs: Vec<String> = [
            "six>=1.5",
            "pytest>=7; extra == \"test\"",
            "hypothesis; extra == 'tests'",
            "sphinx; extra == \"docs\"",
            "typing-extensions; python_version < \"3.8\"",
            "tomli>=1; python_version < \"3.11\" and extra == \"test\"",
            "pytest-cov; extra == \"testing\"",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let provided = ["pytest", "pluggy", "numpy"].map(String::from).into();
        let (keep, skipped) = requirements_to_resolve(&reqs, &provided);
        assert_eq!(
            keep,
            [
                "six>=1.5",
                "hypothesis",
                "typing-extensions; python_version < \"3.8\"",
                "tomli>=1; python_version < \"3.11\"",
            ]
        );
        assert_eq!(skipped, ["pytest", "pytest-cov"]);
    }

    #[test]
    fn markers_with_multibyte_text_do_not_panic() {
        // PKG-INFO is untrusted: a name searched for by bytes must not split a character.
        assert_eq!(
            strip_test_extra("extra_testé == \"test\" and python_version > \"3\""),
            Some("python_version > \"3\"".into())
        );
        assert_eq!(strip_test_extra("extra == \"tést\""), None);
        assert_eq!(strip_test_extra("extra == \"test"), Some(String::new()));
    }

    #[test]
    fn pkg_info_headers() {
        let h = parse_headers("Metadata-Version: 2.1\nName: idna\nSummary: Internationalized\n  Domain Names\nRequires-Dist: a\nRequires-Dist: b; extra == \"x\"\n\nbody: no\n");
        assert_eq!(h[1], ("Name".into(), "idna".into()));
        assert_eq!(h[2].1, "Internationalized Domain Names");
        assert_eq!(h.iter().filter(|(k, _)| k == "Requires-Dist").count(), 2);
        assert!(!h.iter().any(|(k, _)| k == "body"));
    }

    #[test]
    fn exclusion_reasons() {
        use TestStatus::*;
        assert!(exclusion_reason(
            Some(Failed),
            Some(Failed),
            Some(Passed),
            "RuntimeError: can't start new thread"
        )
        .starts_with("uses threads"));
        assert!(exclusion_reason(
            Some(Error),
            Some(Error),
            Some(Passed),
            "ModuleNotFoundError: No module named '_posixsubprocess'"
        )
        .starts_with("uses subprocesses"));
        assert_eq!(
            exclusion_reason(Some(Passed), Some(Failed), Some(Passed), ""),
            "flaky: passed in only one of two sandbox runs"
        );
        assert!(
            exclusion_reason(Some(Failed), Some(Failed), Some(Failed), "assert 1 == 2")
                .starts_with("does not pass natively either")
        );
        assert!(
            exclusion_reason(Some(Failed), Some(Failed), Some(Passed), "assert 1 == 2")
                .starts_with("fails only in the sandbox")
        );
        assert_eq!(
            exclusion_reason(Some(Skipped), Some(Skipped), None, ""),
            "skipped in the sandbox"
        );
    }

    #[test]
    fn sdist_extraction_strips_the_top_directory_and_refuses_escapes() {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, data) in [
            ("pkg-1.0/pkg/__init__.py", &b"x"[..]),
            ("pkg-1.0/PKG-INFO", b"Name: pkg\n"),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, path, data).unwrap();
        }
        let tar_bytes = builder.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar_bytes).unwrap();
        let files = extract_sdist("pkg-1.0.tar.gz", &gz.finish().unwrap()).unwrap();
        let paths: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["pkg/__init__.py", "PKG-INFO"]);
        assert!(extract_sdist("pkg-1.0.tar.gz", b"not an archive").is_err());
        assert!(extract_sdist("pkg-1.0.rar", b"").is_err());
    }
}
