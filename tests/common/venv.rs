//! A Python virtual environment for the client tests, made on first use under the target
//! directory (`pip install` from PyPI, bounded in time) and reused by later runs: the real
//! `openenv-core` and `skyrl-gym` clients, Ray (for `spar_client.ray`), and spar's own client
//! package from this checkout.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// What the environment holds besides spar's client; a new pin makes a new environment.
pub const PINS: &[&str] = &[
    "openenv-core==0.3.0",
    "skyrl-gym==0.4.0",
    "setuptools==80.9.0",
    "ray==2.60.0",
];

/// Runs `command` to its end or `limit`, whichever comes first; panics with its output if it
/// fails, returns its stdout.
pub fn run_bounded(command: &mut Command, limit: Duration, what: &str) -> String {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    // Drain the pipes while waiting: a chatty child must not block on a full pipe.
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = std::thread::spawn(move || read_all(&mut out));
    let err = std::thread::spawn(move || read_all(&mut err));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            child.kill().ok();
            child.wait().ok();
            panic!(
                "{what}: still running after {limit:?}; killed\n{}",
                err.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    assert!(status.success(), "{what} failed ({status}):\n{out}\n{err}");
    out
}

fn read_all(pipe: &mut impl std::io::Read) -> String {
    let mut bytes = Vec::new();
    pipe.read_to_end(&mut bytes).ok();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The environment's Python, with [`PINS`] and this checkout's `clients/python` installed.
pub fn clients_python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(make).clone()
}

fn make() -> PathBuf {
    let pins = PINS.join(" ");
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("venv-clients");
    let python = venv.join("bin").join("python");
    let ready = venv.join(".ready");
    if std::fs::read_to_string(&ready).ok().as_deref() != Some(pins.as_str()) {
        let _ = std::fs::remove_dir_all(&venv);
        let host = std::env::var("SPAR_PYTHON").unwrap_or_else(|_| "python3".into());
        eprintln!(
            "client tests: installing {pins} from PyPI into {} (once; about a minute)",
            venv.display()
        );
        run_bounded(
            Command::new(&host).args(["-m", "venv"]).arg(&venv),
            Duration::from_secs(120),
            "creating the virtual environment",
        );
        run_bounded(
            Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .args(PINS),
            Duration::from_secs(900),
            "pip install of the client tests' packages",
        );
        std::fs::write(&ready, &pins).unwrap();
    }
    // The client under test is this checkout's, installed the way a user installs it, from a
    // copy: setuptools builds in place and would leave build/ and *.egg-info in the checkout.
    let package = Path::new(env!("CARGO_TARGET_TMPDIR")).join("spar-client-src");
    let _ = std::fs::remove_dir_all(&package);
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/python"),
        &package,
    );
    run_bounded(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(["--no-deps", "--no-build-isolation", "--force-reinstall"])
            .arg(&package),
        Duration::from_secs(300),
        "pip install ./clients/python",
    );
    python
}

/// Copies a source tree, leaving out what a build leaves behind.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "build" || name == "__pycache__" || name.ends_with(".egg-info") {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

/// The JSON lines of a script's stdout (verl's BaseTool prints each tool's schema as well).
pub fn checks(output: &str) -> Vec<Value> {
    output
        .lines()
        .filter(|l| l.starts_with('{') && l.ends_with('}'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The line a script printed for check `name`.
pub fn check(checks: &[Value], name: &str) -> Value {
    checks
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {checks:?}"))
        .clone()
}
