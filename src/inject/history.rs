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

/// Any error of the git library, whose many error types are all reported alike.
type GitError = Box<dyn std::error::Error + Send + Sync>;

/// Errors reading history.
#[derive(Debug, thiserror::Error)]
#[error("reading the git history in {path}")]
pub struct HistoryError {
    path: String,
    #[source]
    source: GitError,
}

/// The Python files of a commit's tree.
fn tree_files(repo: &gix::Repository, commit: &gix::Commit<'_>) -> Result<Snapshot, GitError> {
    let tree = commit.tree()?;
    let mut recorder = gix::traverse::tree::Recorder::default();
    tree.traverse().breadthfirst(&mut recorder)?;
    let mut files = Vec::new();
    for entry in recorder.records {
        let path = entry.filepath.to_string();
        if !entry.mode.is_blob() || !path.ends_with(".py") {
            continue;
        }
        let object = repo.find_object(entry.oid)?;
        files.push((path, object.data.clone()));
    }
    Ok(Snapshot::from_files(files)?)
}

/// Candidates from the history in `git_dir`, newest commit first, reverted onto `current`.
pub fn candidates(
    git_dir: &Path,
    current: &Snapshot,
) -> Result<Vec<HistoryCandidate>, HistoryError> {
    let err = |source: GitError| HistoryError {
        path: git_dir.display().to_string(),
        source,
    };
    let repo = gix::open(git_dir).map_err(|e| err(e.into()))?;
    let mut commit = repo.head_commit().map_err(|e| err(e.into()))?;
    let mut out = Vec::new();
    for _ in 0..MAX_COMMITS {
        let parent_id = match commit.parent_ids().next() {
            Some(id) => id.detach(),
            None => break,
        };
        let parent = repo
            .find_object(parent_id)
            .map_err(|e| err(e.into()))?
            .try_into_commit()
            .map_err(|e| err(e.into()))?;
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
