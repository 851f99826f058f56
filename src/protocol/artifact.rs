//! The five-part bug artifact as a directory, so artifacts from any injector are interchangeable.
//!
//! | file | content |
//! |---|---|
//! | `bug_patch.diff` | the bug: a unified diff of code files only |
//! | `test_patch.diff` | the test weakening: a unified diff of test files only |
//! | `test_files.txt` | oracle test files, one repository-relative path per line |
//! | `test_command.json` | what the guest runs: `{"runner": "pytest", "args": [...], "module_prefix": ""}` |
//! | `test_parser.py` | optional: reads the raw log on stdin, prints `{test_id: "passed"\|"failed"}` |
//! | `artifact.json` | metadata: project, base snapshot hash, injector, strategy, seed |

use crate::diff::{DiffError, Patch};
use crate::testrun::TestCommand;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// File name of the bug patch.
pub const BUG_PATCH: &str = "bug_patch.diff";
/// File name of the test-weakening patch.
pub const TEST_PATCH: &str = "test_patch.diff";
/// File name of the oracle test file list.
pub const TEST_FILES: &str = "test_files.txt";
/// File name of the test command.
pub const TEST_COMMAND: &str = "test_command.json";
/// File name of the optional in-guest test parser.
pub const TEST_PARSER: &str = "test_parser.py";
/// File name of the metadata.
pub const METADATA: &str = "artifact.json";

/// Errors reading or writing an artifact directory.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// A required part is missing.
    #[error("{dir}: missing {part}; an artifact needs bug_patch.diff, test_patch.diff, test_files.txt, test_command.json and artifact.json")]
    MissingPart {
        /// The artifact directory.
        dir: PathBuf,
        /// The missing file.
        part: &'static str,
    },
    /// A part could not be read or written.
    #[error("{path}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A patch does not parse.
    #[error("{path}: not a valid unified diff")]
    Patch {
        /// The patch file.
        path: PathBuf,
        /// What the diff parser reported.
        #[source]
        source: DiffError,
    },
    /// A JSON part does not parse.
    #[error("{path}: {detail}")]
    Json {
        /// The JSON part (`artifact.json` or `test_command.json`) that does not parse.
        path: PathBuf,
        /// What serde said.
        detail: String,
    },
    /// `test_files.txt` has a line that is not a clean relative path.
    #[error("{path}: line {line}: {text:?} is not a repository-relative path")]
    TestFile {
        /// The list's path.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The offending text.
        text: String,
    },
    /// The target directory already holds a different artifact.
    #[error("{0} already exists and holds something else; choose another directory or remove it")]
    Exists(PathBuf),
}

/// Where an artifact came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactMeta {
    /// The corpus project the bug lives in.
    pub project: String,
    /// Content hash of the original repository snapshot the patches apply to.
    pub base_snapshot: String,
    /// Who wrote it (`spar`, an agent's name, `person`).
    pub injector: String,
    /// The strategy (`procedural`, `removal`, `history`, or free text for other injectors).
    pub strategy: String,
    /// The seed the injector used.
    #[serde(default)]
    pub seed: u64,
    /// 1 for a first-order bug; higher for bugs built on failed fixes.
    #[serde(default = "first_order")]
    pub order: u32,
    /// What was done, for people and analysis; never shown to solvers.
    #[serde(default)]
    pub notes: Vec<String>,
}

fn first_order() -> u32 {
    1
}

/// A bug artifact in memory.
#[derive(Clone, Debug)]
pub struct BugArtifact {
    /// Its `artifact.json`: where the bug came from (not hashed into [`BugArtifact::id`]).
    pub meta: ArtifactMeta,
    /// The bug (code files only).
    pub bug_patch: Patch,
    /// The test weakening (test files only).
    pub test_patch: Patch,
    /// Oracle test files.
    pub test_files: Vec<String>,
    /// What the guest runs.
    pub test_command: TestCommand,
    /// Optional in-guest parser source.
    pub test_parser: Option<String>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ArtifactError + '_ {
    move |source| ArtifactError::Io {
        path: path.to_owned(),
        source,
    }
}

fn read_part(dir: &Path, part: &'static str) -> Result<String, ArtifactError> {
    let path = dir.join(part);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ArtifactError::MissingPart {
            dir: dir.to_owned(),
            part,
        }),
        Err(e) => Err(io(&path)(e)),
    }
}

fn read_patch(dir: &Path, part: &'static str) -> Result<Patch, ArtifactError> {
    let text = read_part(dir, part)?;
    if text.trim().is_empty() {
        return Ok(Patch::default());
    }
    Patch::parse(&text).map_err(|source| ArtifactError::Patch {
        path: dir.join(part),
        source,
    })
}

fn read_json<T: serde::de::DeserializeOwned>(
    dir: &Path,
    part: &'static str,
) -> Result<T, ArtifactError> {
    let text = read_part(dir, part)?;
    serde_json::from_str(&text).map_err(|e| ArtifactError::Json {
        path: dir.join(part),
        detail: e.to_string(),
    })
}

impl BugArtifact {
    /// Reads an artifact directory.
    pub fn load(dir: &Path) -> Result<BugArtifact, ArtifactError> {
        if !dir.is_dir() {
            return Err(ArtifactError::MissingPart {
                dir: dir.to_owned(),
                part: METADATA,
            });
        }
        let list_path = dir.join(TEST_FILES);
        let mut test_files = Vec::new();
        for (i, line) in read_part(dir, TEST_FILES)?.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if line.starts_with('/') || line.split('/').any(|p| p == "..") || line.contains('\\') {
                return Err(ArtifactError::TestFile {
                    path: list_path,
                    line: i + 1,
                    text: line.to_owned(),
                });
            }
            test_files.push(line.to_owned());
        }
        let parser_path = dir.join(TEST_PARSER);
        let test_parser = match std::fs::read_to_string(&parser_path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(&parser_path)(e)),
        };
        Ok(BugArtifact {
            meta: read_json(dir, METADATA)?,
            bug_patch: read_patch(dir, BUG_PATCH)?,
            test_patch: read_patch(dir, TEST_PATCH)?,
            test_files,
            test_command: read_json(dir, TEST_COMMAND)?,
            test_parser,
        })
    }

    /// The parts as `(file name, contents)`.
    fn parts(&self) -> Vec<(&'static str, String)> {
        let mut parts = vec![
            (BUG_PATCH, self.bug_patch.to_string()),
            (TEST_PATCH, self.test_patch.to_string()),
            (
                TEST_FILES,
                self.test_files.iter().map(|f| format!("{f}\n")).collect(),
            ),
            (TEST_COMMAND, json(&self.test_command)),
            (METADATA, json(&self.meta)),
        ];
        if let Some(parser) = &self.test_parser {
            parts.push((TEST_PARSER, parser.clone()));
        }
        parts
    }

    /// A short id that names the artifact by its content: project, strategy and a hash of
    /// the parts.
    pub fn id(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        for (name, text) in self.parts() {
            if name != METADATA {
                hasher.update(name.as_bytes());
                hasher.update(text.as_bytes());
            }
        }
        let hash = crate::snapshot::hex(&hasher.finalize());
        format!(
            "{}-{}-{}",
            self.meta.project,
            self.meta.strategy,
            &hash[..10]
        )
    }

    /// Writes the artifact to `dir` atomically: the parts are written to a sibling directory
    /// that is renamed into place, so a reader never sees half an artifact. Writing the same
    /// artifact again is a no-op; a different one in `dir` is an error.
    pub fn save(&self, dir: &Path) -> Result<(), ArtifactError> {
        if dir.exists() {
            return match BugArtifact::load(dir) {
                Ok(existing) if existing.parts() == self.parts() => Ok(()),
                _ => Err(ArtifactError::Exists(dir.to_owned())),
            };
        }
        let parent = dir.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        let staging = parent.join(format!(
            ".{}.partial-{}",
            dir.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("artifact"),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging).map_err(io(&staging))?;
        for (name, text) in self.parts() {
            let path = staging.join(name);
            std::fs::write(&path, text).map_err(io(&path))?;
        }
        std::fs::rename(&staging, dir).map_err(|e| {
            let _ = std::fs::remove_dir_all(&staging);
            io(dir)(e)
        })
    }
}

fn json<T: Serialize>(value: &T) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// A one-file artifact whose bug sets `x = seed`, for unit tests here and in export.
#[cfg(test)]
pub(crate) fn sample_artifact(seed: u64) -> BugArtifact {
    use crate::snapshot::Snapshot;
    use crate::testrun::{Runner, TestCommand};
    let a = Snapshot::from_files([("m.py", b"x = 1\n".to_vec())]).unwrap();
    let b = Snapshot::from_files([("m.py", format!("x = {seed}\n").into_bytes())]).unwrap();
    BugArtifact {
        meta: ArtifactMeta {
            project: "demo".into(),
            base_snapshot: a.content_hash().to_owned(),
            injector: "person".into(),
            strategy: "procedural".into(),
            seed,
            order: 1,
            notes: vec![],
        },
        bug_patch: crate::diff::Patch::between(&a, &b).unwrap(),
        test_patch: crate::diff::Patch::default(),
        test_files: vec!["tests/test_m.py".into()],
        test_command: TestCommand {
            runner: Runner::Pytest,
            args: vec!["-m".into(), "pytest".into()],
            module_prefix: String::new(),
        },
        test_parser: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BugArtifact {
        sample_artifact(2)
    }

    #[test]
    fn save_load_round_trip_and_idempotence() {
        let root = std::env::temp_dir().join(format!("spar-artifact-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let art = sample();
        let dir = root.join(art.id());
        art.save(&dir).unwrap();
        let back = BugArtifact::load(&dir).unwrap();
        assert_eq!(back.parts(), art.parts());
        art.save(&dir).unwrap();
        let mut other = sample();
        other.test_files.push("tests/test_n.py".into());
        assert!(matches!(other.save(&dir), Err(ArtifactError::Exists(_))));
        std::fs::remove_file(dir.join(TEST_COMMAND)).unwrap();
        let err = BugArtifact::load(&dir).unwrap_err();
        assert!(
            err.to_string().contains("missing test_command.json"),
            "{err}"
        );
        std::fs::write(dir.join(TEST_COMMAND), "{").unwrap();
        assert!(matches!(
            BugArtifact::load(&dir),
            Err(ArtifactError::Json { .. })
        ));
        std::fs::write(dir.join(BUG_PATCH), "garbage\n").unwrap();
        assert!(matches!(
            BugArtifact::load(&dir),
            Err(ArtifactError::Patch { .. })
        ));
        std::fs::write(dir.join(TEST_FILES), "../etc/passwd\n").unwrap();
        assert!(matches!(
            BugArtifact::load(&dir),
            Err(ArtifactError::TestFile { .. })
        ));
        std::fs::remove_dir_all(&root).unwrap();
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn part() -> impl Strategy<Value = &'static str> {
            prop_oneof![
                Just(BUG_PATCH),
                Just(TEST_PATCH),
                Just(TEST_FILES),
                Just(TEST_COMMAND),
                Just(METADATA),
                Just(TEST_PARSER),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(128))]

            /// An artifact directory with any part replaced by arbitrary bytes, or a valid
            /// part cut short, loads or fails with a typed error; what loads can be named
            /// and saved again.
            #[test]
            fn damaged_artifacts_load_or_fail_cleanly(
                damage in proptest::collection::vec(
                    (part(), proptest::collection::vec(any::<u8>(), 0..300), any::<bool>()),
                    1..4,
                ),
            ) {
                let root = std::env::temp_dir().join(format!(
                    "spar-artifact-prop-{}-{}",
                    std::process::id(),
                    crate::fsutil::unique_suffix()
                ));
                let art = sample();
                let dir = root.join("a");
                art.save(&dir).unwrap();
                for (name, bytes, cut) in damage {
                    let path = dir.join(name);
                    let bytes = match (cut, std::fs::read(&path)) {
                        (true, Ok(old)) => old[..old.len() * bytes.len() / 300].to_vec(),
                        _ => bytes,
                    };
                    std::fs::write(&path, bytes).unwrap();
                }
                if let Ok(loaded) = BugArtifact::load(&dir) {
                    let _ = loaded.id();
                    loaded.save(&root.join("b")).unwrap();
                }
                std::fs::remove_dir_all(&root).unwrap();
            }
        }
    }
}
