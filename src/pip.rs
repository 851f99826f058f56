//! Downloads through the host's `pip`: the one way spar reaches PyPI.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
pub enum PipError {
    /// The host Python or its pip could not be started.
    #[error("cannot run `{python} -m pip`: install Python 3 with pip, or set SPAR_PYTHON to one that has it")]
    Missing {
        /// The Python executable tried.
        python: String,
        /// Why it could not start.
        #[source]
        source: std::io::Error,
    },
    /// pip ran and failed.
    #[error("pip could not download {specs}: {detail}")]
    Failed {
        /// What was asked for.
        specs: String,
        /// The last line pip printed.
        detail: String,
    },
}

/// Runs `python -m pip download FLAGS -d DIR SPECS...` and returns the files it saved.
pub(crate) fn download(
    python: &str,
    dir: &Path,
    flags: &[&str],
    specs: &[String],
) -> Result<Vec<PathBuf>, PipError> {
    std::fs::create_dir_all(dir).map_err(|source| PipError::Missing {
        python: python.to_owned(),
        source,
    })?;
    let output = Command::new(python)
        .args([
            "-m",
            "pip",
            "download",
            "--disable-pip-version-check",
            "--no-input",
        ])
        .args(flags)
        .arg("-d")
        .arg(dir)
        .args(specs)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| PipError::Missing {
            python: python.to_owned(),
            source,
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let detail = stderr
            .lines()
            .rfind(|l| !l.trim().is_empty())
            .unwrap_or("pip failed without a message")
            .trim()
            .to_owned();
        if detail.contains("No module named pip") {
            return Err(PipError::Missing {
                python: python.to_owned(),
                source: std::io::Error::other(detail),
            });
        }
        return Err(PipError::Failed {
            specs: specs.join(" "),
            detail,
        });
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Ok(files)
}
