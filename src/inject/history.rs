//! History-aware bug candidates: real past changes to non-test code, reverted onto the current
//! repository (the paper's "history-aware" strategy).
//!
//! Each commit on the first-parent line from HEAD that changed Python code files yields
//! candidates: the whole change reverted, and each changed file's part reverted on its own.
//! Reverting goes through [`Patch`] so that later edits elsewhere in a file do not matter (hunks
//! land at an offset, as with `git revert`); a change whose lines were rewritten since is skipped.

use crate::diff::Patch;
use crate::protocol::is_test_path;
use crate::snapshot::Snapshot;
use std::path::Path;

/// How many commits back the walk goes.
const MAX_COMMITS: usize = 500;

/// A past change, reverted onto the current repository.
#[derive(Clone, Debug)]
pub struct HistoryCandidate {
    /// The commit whose change is undone.
    pub commit: String,
    /// Its summary line.
    pub summary: String,
    /// The repository with the change undone.
    pub state: Snapshot,
}

/// Errors reading history.
#[derive(Debug, thiserror::Error)]
#[error("reading the git history in {path}: {detail}")]
pub struct HistoryError {
    path: String,
    detail: String,
}

/// The Python files of a commit's tree.
fn tree_files(repo: &gix::Repository, commit: &gix::Commit<'_>) -> Result<Snapshot, String> {
    let tree = commit.tree().map_err(|e| e.to_string())?;
    let mut recorder = gix::traverse::tree::Recorder::default();
    tree.traverse()
        .breadthfirst(&mut recorder)
        .map_err(|e| e.to_string())?;
    let mut files = Vec::new();
    for entry in recorder.records {
        let path = entry.filepath.to_string();
        if !entry.mode.is_blob() || !path.ends_with(".py") {
            continue;
        }
        let object = repo.find_object(entry.oid).map_err(|e| e.to_string())?;
        files.push((path, object.data.clone()));
    }
    Snapshot::from_files(files).map_err(|e| e.to_string())
}

/// Candidates from the history in `git_dir`, newest commit first, reverted onto `current`.
pub fn candidates(
    git_dir: &Path,
    current: &Snapshot,
) -> Result<Vec<HistoryCandidate>, HistoryError> {
    let err = |detail: String| HistoryError {
        path: git_dir.display().to_string(),
        detail,
    };
    let repo = gix::open(git_dir).map_err(|e| err(e.to_string()))?;
    let mut commit = repo.head_commit().map_err(|e| err(e.to_string()))?;
    let mut out = Vec::new();
    for _ in 0..MAX_COMMITS {
        let parent_id = match commit.parent_ids().next() {
            Some(id) => id.detach(),
            None => break,
        };
        let parent = repo
            .find_object(parent_id)
            .map_err(|e| err(e.to_string()))?
            .try_into_commit()
            .map_err(|e| err(e.to_string()))?;
        let after = tree_files(&repo, &commit).map_err(err)?;
        let before = tree_files(&repo, &parent).map_err(err)?;
        let change = Patch::between(&before, &after)
            .map(|p| p.filter(|path| !is_test_path(path)))
            .unwrap_or_default();
        if !change.is_empty() {
            let summary = commit
                .message()
                .ok()
                .map(|m| m.summary().to_string())
                .unwrap_or_default();
            let id = commit.id().to_string();
            let revert = change.reverse();
            let mut variants = vec![revert.clone()];
            if revert.files.len() > 1 {
                variants.extend(
                    revert
                        .paths()
                        .into_iter()
                        .map(|p| revert.filter(|q| q == p)),
                );
            }
            for variant in variants {
                // Code that moved on since is not this commit's to revert; skip it.
                if let Ok(state) = variant.apply(current) {
                    if state.content_hash() != current.content_hash() {
                        out.push(HistoryCandidate {
                            commit: id.clone(),
                            summary: summary.clone(),
                            state,
                        });
                    }
                }
            }
        }
        commit = parent;
    }
    Ok(out)
}
