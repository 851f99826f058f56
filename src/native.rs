//! The native baseline every sandboxed/native ratio is measured against: what a user runs. A
//! virtual environment on the host with the same pytest wheels the guest has, installed the
//! normal way by pip, its interpreter called directly (never through a version manager's shim,
//! which costs a process of its own), bytecode cached beside the sources as usual.
//!
//! It runs the project's code on the host, outside the sandbox, so only commands that measure
//! (`spar bench`, an import with `--native-baseline`) ever use it.

use crate::fsutil::{sha256_hex, unique_suffix};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Why the native environment could not be made.
#[derive(Debug, thiserror::Error)]
pub enum NativeError {
    /// A step of making the environment failed.
    #[error("cannot make the native baseline's virtual environment with {python} ({step}): {detail}; install Python 3 with the venv module, or set SPAR_PYTHON to one that has it")]
    Setup {
        /// The host Python used.
        python: String,
        /// Which step failed.
        step: &'static str,
        /// What the step printed last, or why it could not start.
        detail: String,
    },
}

/// A host virtual environment with pytest installed from spar's pinned wheels.
#[derive(Clone, Debug)]
pub struct NativeEnv {
    python: PathBuf,
}

impl NativeEnv {
    /// Finds or makes the environment under `cache_dir/native/`, keyed by the host interpreter
    /// and the wheels' names, so every later call reuses it. `wheels` (each a file and the
    /// standard wheel file name pip needs) are installed offline: no index, no dependencies
    /// resolved, since they are the complete pinned set.
    pub fn prepare(
        host_python: &str,
        cache_dir: &Path,
        wheels: &[(PathBuf, String)],
    ) -> Result<NativeEnv, NativeError> {
        let executable = step(
            host_python,
            "locating the interpreter",
            Command::new(host_python).args([
                "-c",
                "import os, sys; print(os.path.realpath(sys.executable))",
            ]),
        )?;
        let names: Vec<&str> = wheels.iter().map(|(_, name)| name.as_str()).collect();
        let key = sha256_hex(format!("{executable}\n{}", names.join("\n")).as_bytes());
        let dir = cache_dir.join("native").join(&key[..16]);
        let env = NativeEnv {
            python: dir.join("bin").join("python"),
        };
        if env.python.exists() {
            return Ok(env);
        }
        // Made beside its final place and renamed, so an interrupted set-up is never found.
        let staging = dir.with_file_name(format!(".{}-{}", &key[..16], unique_suffix()));
        let made = make(&executable, &staging, wheels);
        if let Err(e) = made {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
        if std::fs::rename(&staging, &dir).is_err() {
            // Another process made the same environment first: use theirs.
            let _ = std::fs::remove_dir_all(&staging);
        }
        Ok(env)
    }

    /// The environment's interpreter, to run directly.
    pub fn python(&self) -> &Path {
        &self.python
    }
}

/// Installs `requirements` from the package index into `target` with the host's pip, as binary
/// wheels for the host: what a native baseline needs beside pytest (numpy for a project whose
/// guest has numpy compiled in).
pub fn install(
    host_python: &str,
    target: &Path,
    requirements: &[String],
) -> Result<(), NativeError> {
    step(
        host_python,
        "pip install",
        Command::new(host_python)
            .args(["-m", "pip", "install", "--disable-pip-version-check"])
            .args(["--no-input", "--only-binary=:all:", "--target"])
            .arg(target)
            .args(requirements),
    )
    .map(drop)
}

/// `python -m venv DIR` without pip, then pip (the host's, run into the new environment)
/// installs the wheels.
fn make(executable: &str, dir: &Path, wheels: &[(PathBuf, String)]) -> Result<(), NativeError> {
    let named = dir.join("wheels");
    let copied = std::fs::create_dir_all(&named).and_then(|()| {
        wheels
            .iter()
            .try_for_each(|(file, name)| std::fs::copy(file, named.join(name)).map(drop))
    });
    copied.map_err(|e| NativeError::Setup {
        python: executable.to_owned(),
        step: "copying the wheels",
        detail: e.to_string(),
    })?;
    step(
        executable,
        "python -m venv",
        Command::new(executable)
            .args(["-m", "venv", "--without-pip"])
            .arg(dir),
    )?;
    let site = step(
        executable,
        "locating site-packages",
        Command::new(dir.join("bin").join("python")).args([
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ]),
    )?;
    step(
        executable,
        "pip install",
        Command::new(executable)
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "--no-index",
                "--no-deps",
                "--no-warn-script-location",
                "--target",
                &site,
            ])
            .args(wheels.iter().map(|(_, name)| named.join(name))),
    )?;
    let _ = std::fs::remove_dir_all(&named);
    Ok(())
}

/// Runs `command` and returns its trimmed standard output, or the step's error.
fn step(python: &str, step: &'static str, command: &mut Command) -> Result<String, NativeError> {
    let failed = |detail: String| NativeError::Setup {
        python: python.to_owned(),
        step,
        detail,
    };
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| failed(e.to_string()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().rfind(|l| !l.trim().is_empty());
        return Err(failed(
            last.unwrap_or("failed without a message").to_owned(),
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}
