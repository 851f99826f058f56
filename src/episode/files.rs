//! The spar profile's file tools over a snapshot (`list_dir`, `read_file`, `search`, `edit`,
//! `create`) and R2E-Gym's `search`: pure functions of the tree, no guest.

use crate::bytes::SharedBytes;
use crate::snapshot::{Entry, FileChange, Snapshot};

/// Whether the repository-relative `path` is `dir` or below it (`""` is the root, above
/// everything).
pub(super) fn within(path: &str, dir: &str) -> bool {
    dir.is_empty()
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

pub(super) fn clean(path: &str) -> Result<String, String> {
    let trimmed = path
        .trim()
        .trim_start_matches("./")
        .trim_start_matches("/repo/");
    let trimmed = trimmed.trim_matches('/');
    if trimmed.split('/').any(|p| p == "..")
        || path.trim().starts_with('/') && !path.trim().starts_with("/repo")
    {
        return Err(format!(
            "{path}: use a path inside the repository, relative to its root"
        ));
    }
    Ok(if trimmed == "." {
        String::new()
    } else {
        trimmed.to_owned()
    })
}

fn text_file(state: &Snapshot, path: &str) -> Result<(String, String), String> {
    let path = clean(path)?;
    match state.get(&path) {
        Some(Entry::File(c)) => String::from_utf8(c.to_vec())
            .map(|t| (path.clone(), t))
            .map_err(|_| format!("{path} is not a text file")),
        Some(Entry::Dir(_)) => Err(format!("{path} is a directory; use list_dir")),
        None => Err(format!("{path}: no such file")),
    }
}

pub(super) fn list_dir(state: &Snapshot, path: &str) -> Result<String, String> {
    let path = clean(path)?;
    match state.get(&path) {
        Some(Entry::Dir(dir)) => Ok(dir
            .entries()
            .iter()
            .map(|(name, e)| match e {
                Entry::Dir(_) => format!("{name}/\n"),
                Entry::File(c) => format!("{name} ({} bytes)\n", c.len()),
            })
            .collect()),
        Some(Entry::File(_)) => Err(format!("{path} is a file; use read_file")),
        None => Err(format!("{path}: no such directory")),
    }
}

pub(super) fn read_file(
    state: &Snapshot,
    path: &str,
    start: Option<usize>,
    end: Option<usize>,
) -> Result<String, String> {
    let (_, text) = text_file(state, path)?;
    let lines: Vec<&str> = text.lines().collect();
    let first = start.unwrap_or(1).max(1);
    let last = end.unwrap_or(lines.len()).min(lines.len());
    if first > last.max(1) && !lines.is_empty() {
        return Err(format!(
            "{path} has {} lines; lines {first}..={last} are empty",
            lines.len()
        ));
    }
    Ok(lines
        .iter()
        .enumerate()
        .skip(first - 1)
        .take(last.saturating_sub(first - 1))
        .map(|(i, l)| format!("{:>5}  {l}\n", i + 1))
        .collect())
}

pub(super) fn search(
    state: &Snapshot,
    pattern: &str,
    under: Option<&str>,
) -> Result<String, String> {
    let re = regex::Regex::new(pattern).map_err(|e| format!("bad pattern: {e}"))?;
    let prefix = under.map(clean).transpose()?.unwrap_or_default();
    let mut out = String::new();
    let mut hits = 0;
    for (path, contents) in state.files() {
        if !within(&path, &prefix) {
            continue;
        }
        let Ok(text) = std::str::from_utf8(&contents) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            if re.is_match(line) {
                hits += 1;
                if hits <= 200 {
                    out.push_str(&format!("{path}:{}: {line}\n", i + 1));
                }
            }
        }
    }
    if hits > 200 {
        out.push_str(&format!("[{} more matches]\n", hits - 200));
    }
    Ok(if hits == 0 {
        "no matches".to_owned()
    } else {
        out
    })
}

pub(super) fn write(state: &Snapshot, path: &str, content: &str) -> Result<Snapshot, String> {
    let path = clean(path)?;
    if path.is_empty() || matches!(state.get(&path), Some(Entry::Dir(_))) {
        return Err(format!("{path}: is a directory"));
    }
    state
        .with_changes(&[FileChange::Written {
            path,
            contents: SharedBytes::from(content.as_bytes()),
        }])
        .map_err(|e| e.to_string())
}

pub(super) fn edit(state: &Snapshot, path: &str, old: &str, new: &str) -> Result<Snapshot, String> {
    let (path, text) = text_file(state, path)?;
    if old.is_empty() {
        return Err("old text is empty; give text that occurs exactly once".to_owned());
    }
    match text.matches(old).count() {
        0 => Err(format!(
            "{path}: the old text does not occur; read the file and copy it exactly"
        )),
        1 => write(state, &path, &text.replacen(old, new, 1)),
        n => Err(format!(
            "{path}: the old text occurs {n} times; include more lines around it so it is unique"
        )),
    }
}

/// R2E-Gym's `search`: in a directory, the Python files (not hidden) with lines containing
/// `term`, counted per file; in a file, its matching lines (`N:text`). At most 100 files.
pub(super) fn search_term(state: &Snapshot, term: &str, path: Option<&str>) -> String {
    let shown = path.unwrap_or(".");
    let Ok(at) = clean(shown) else {
        return format!("Directory '{shown}' not found or not a directory.");
    };
    match state.get(&at) {
        Some(Entry::File(contents)) => {
            let text = String::from_utf8_lossy(&contents);
            let hits: Vec<String> = text
                .lines()
                .enumerate()
                .filter(|(_, l)| l.contains(term))
                .map(|(i, l)| format!("{}:{l}", i + 1))
                .collect();
            if hits.is_empty() {
                format!("No matches found for \"{term}\" in {shown}")
            } else {
                format!("Matches for \"{term}\" in {shown}:\n{}", hits.join("\n"))
            }
        }
        Some(Entry::Dir(_)) => {
            let counts: Vec<(String, usize)> = state
                .files()
                .into_iter()
                .filter(|(p, _)| within(p, &at) && p.ends_with(".py"))
                .filter(|(p, _)| !p.split('/').any(|part| part.starts_with('.')))
                .map(|(p, c)| {
                    (
                        p,
                        String::from_utf8_lossy(&c)
                            .lines()
                            .filter(|l| l.contains(term))
                            .count(),
                    )
                })
                .filter(|(_, n)| *n > 0)
                .collect();
            let total: usize = counts.iter().map(|(_, n)| n).sum();
            if counts.is_empty() {
                format!("No matches found for \"{term}\" in {shown}")
            } else if counts.len() > 100 {
                format!("More than {} files matched for \"{term}\" in {shown}. Please narrow your search.", counts.len())
            } else {
                let files: String = counts
                    .iter()
                    .map(|(p, n)| format!("./{p} ({n} matches)\n"))
                    .collect();
                format!("Found {total} matches for \"{term}\" in {shown}:\n{files}End of matches for \"{term}\" in {shown}")
            }
        }
        None => format!("Directory '{shown}' not found or not a directory."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> Snapshot {
        Snapshot::from_files([
            (
                "pkg/a.py",
                b"def f():\n    return 1\n\ndef g():\n    return 1\n".to_vec(),
            ),
            ("README", b"hello\n".to_vec()),
        ])
        .unwrap()
    }

    #[test]
    fn creating_under_a_file_is_refused_and_keeps_the_file() {
        // A real file system says ENOTDIR; the file must not be replaced by a directory.
        let s = repo();
        let err = write(&s, "README/x.py", "x = 1\n").unwrap_err();
        assert!(err.contains("README is a file, not a directory"), "{err}");
        assert_eq!(s.file("README").unwrap().as_ref(), b"hello\n");
        let err = write(&s, "pkg", "x = 1\n").unwrap_err();
        assert!(err.contains("is a directory"), "{err}");
    }

    #[test]
    fn tools_over_snapshots() {
        let s = repo();
        assert_eq!(list_dir(&s, ".").unwrap(), "README (6 bytes)\npkg/\n");
        assert_eq!(
            read_file(&s, "pkg/a.py", Some(2), Some(2)).unwrap(),
            "    2      return 1\n"
        );
        assert!(read_file(&s, "nope.py", None, None)
            .unwrap_err()
            .contains("no such file"));
        assert!(read_file(&s, "../etc/passwd", None, None).is_err());
        let hits = search(&s, r"def \w+", Some("pkg")).unwrap();
        assert_eq!(hits, "pkg/a.py:1: def f():\npkg/a.py:4: def g():\n");
        assert!(search(&s, "(", None).unwrap_err().contains("bad pattern"));
        let err = edit(&s, "pkg/a.py", "return 1", "return 2").unwrap_err();
        assert!(err.contains("occurs 2 times"), "{err}");
        let next = edit(
            &s,
            "pkg/a.py",
            "def g():\n    return 1",
            "def g():\n    return 2",
        )
        .unwrap();
        assert!(std::str::from_utf8(&next.file("pkg/a.py").unwrap())
            .unwrap()
            .ends_with("return 2\n"));
        assert!(edit(&s, "pkg/a.py", "zzz", "y")
            .unwrap_err()
            .contains("does not occur"));
        assert!(write(&s, "pkg", "x").is_err());
    }

    #[test]
    fn r2e_search_counts_lines_per_python_file() {
        let s = repo();
        assert_eq!(
            search_term(&s, "return 1", None),
            "Found 2 matches for \"return 1\" in .:\n./pkg/a.py (2 matches)\nEnd of matches for \"return 1\" in ."
        );
        assert_eq!(
            search_term(&s, "def g", Some("pkg/a.py")),
            "Matches for \"def g\" in pkg/a.py:\n4:def g():"
        );
        assert_eq!(
            search_term(&s, "hello", None),
            "No matches found for \"hello\" in ."
        );
        assert_eq!(
            search_term(&s, "x", Some("nope")),
            "Directory 'nope' not found or not a directory."
        );
    }
}
