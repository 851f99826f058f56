//! The server's task pool: the bugs a reset that names none (OpenEnv's `reset(seed=...)`, a
//! generic client's dataset row) draws from, seeded, so the same seed gives the same bug.
//!
//! A pool is read from `spar serve --tasks PATH`: a directory of artifacts as `spar inject`
//! writes them (one subdirectory each, with its validation report), one such artifact
//! directory, or a JSON-lines file of SWE-bench-style instances as `spar export` writes them;
//! `spar serve --corpus PROJECT` adds procedural bugs made in that project at start-up.

use serde_json::Value;
use std::path::{Path, PathBuf};

/// Why a pool could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The path could not be read.
    #[error("reading the task pool {path}")]
    Read {
        /// The path given.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line of a JSON-lines pool is not an instance.
    #[error("{path}, line {line}: {why}")]
    Line {
        /// The file.
        path: PathBuf,
        /// The line number (1-based).
        line: usize,
        /// What is wrong with it.
        why: String,
    },
    /// The path holds no task.
    #[error("{path} holds no task: give a directory of artifacts that spar inject wrote, one artifact directory, or a .jsonl file that spar export wrote")]
    Empty {
        /// The path given.
        path: PathBuf,
    },
}

/// One bug of the pool.
#[derive(Clone, Debug, PartialEq)]
pub enum PoolTask {
    /// An artifact directory on this server.
    Artifact(PathBuf),
    /// A SWE-bench-style instance (a line of `spar export`).
    Instance(Value),
}

/// The bugs a seed-only reset draws from (empty: such resets are refused).
#[derive(Clone, Debug, Default)]
pub struct TaskPool {
    tasks: Vec<PoolTask>,
}

impl TaskPool {
    /// Reads a pool from an artifact directory, a directory of them, or a `.jsonl` file.
    pub fn load(path: &Path) -> Result<TaskPool, PoolError> {
        let read = |source| PoolError::Read {
            path: path.to_owned(),
            source,
        };
        let tasks = if path.is_dir() {
            if is_artifact(path) {
                vec![PoolTask::Artifact(path.to_owned())]
            } else {
                let mut dirs: Vec<PathBuf> = std::fs::read_dir(path)
                    .map_err(read)?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| is_artifact(p))
                    .collect();
                dirs.sort();
                dirs.into_iter().map(PoolTask::Artifact).collect()
            }
        } else {
            let text = std::fs::read_to_string(path).map_err(read)?;
            instances(path, &text)?
        };
        if tasks.is_empty() {
            return Err(PoolError::Empty {
                path: path.to_owned(),
            });
        }
        Ok(TaskPool { tasks })
    }

    /// This pool with `other`'s tasks after its own.
    pub fn extend(&mut self, other: TaskPool) {
        self.tasks.extend(other.tasks);
    }

    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether the pool has no task.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// The task for `seed`: a fixed shuffle of the pool, so nearby seeds spread over it and the
    /// same seed always gives the same task.
    pub fn draw(&self, seed: u64) -> Option<&PoolTask> {
        if self.tasks.is_empty() {
            return None;
        }
        let mixed = crate::episode::episode_seed(seed, 0, "pool", 0);
        self.tasks.get((mixed % self.tasks.len() as u64) as usize)
    }
}

/// An artifact directory: `spar inject` writes the validation report last.
fn is_artifact(dir: &Path) -> bool {
    dir.join(crate::inject::VALIDATION).is_file()
}

fn instances(path: &Path, text: &str) -> Result<Vec<PoolTask>, PoolError> {
    let mut tasks = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |why: String| PoolError::Line {
            path: path.to_owned(),
            line: i + 1,
            why,
        };
        let value: Value = serde_json::from_str(line).map_err(|e| bad(format!("not JSON: {e}")))?;
        for field in ["instance_id", "repo", "bug_patch"] {
            if !value[field].is_string() {
                return Err(bad(format!(
                    "no {field:?}: each line is an instance that spar export wrote"
                )));
            }
        }
        tasks.push(PoolTask::Instance(value));
    }
    Ok(tasks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_load_from_jsonl_and_draw_by_seed() {
        let dir = std::env::temp_dir().join(format!("spar-pool-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("tasks.jsonl");
        let line = |id: &str| {
            format!(
                "{{\"instance_id\": \"calc__{id}\", \"repo\": \"calc\", \"bug_patch\": \"\"}}\n"
            )
        };
        std::fs::write(&file, format!("{}\n{}{}", line("a"), line("b"), line("c"))).unwrap();
        let pool = TaskPool::load(&file).unwrap();
        assert_eq!(pool.len(), 3);
        let drawn: Vec<_> = (0..30).map(|s| pool.draw(s).unwrap().clone()).collect();
        assert_eq!(
            drawn,
            (0..30)
                .map(|s| pool.draw(s).unwrap().clone())
                .collect::<Vec<_>>()
        );
        for task in &pool.tasks {
            assert!(drawn.contains(task), "seeds 0..30 reach every task");
        }
        std::fs::write(&file, "{\"repo\": \"calc\"}\n").unwrap();
        let error = TaskPool::load(&file).unwrap_err().to_string();
        assert!(
            error.contains("line 1") && error.contains("instance_id"),
            "{error}"
        );
        let empty = dir.join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        assert!(matches!(
            TaskPool::load(&empty),
            Err(PoolError::Empty { .. })
        ));
        assert!(TaskPool::default().draw(1).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
