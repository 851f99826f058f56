//! Unified diffs between repository snapshots: render, parse, apply, reverse.
//!
//! In the paper git did this work; here the engine owns it. [`Patch::between`] renders the
//! difference of two [`Snapshot`]s as a git-style unified diff (`git apply` accepts it),
//! [`Patch::parse`] reads one back (ours, git's or a person's), [`Patch::apply`] applies it to a
//! snapshot all-or-nothing (a conflict names the file and the hunk, and the input snapshot is
//! untouched because snapshots are immutable), and [`Patch::reverse`] swaps its direction.
//! Line matching uses `similar`'s Myers diff; hunks carry three lines of context, like git.

use crate::bytes::SharedBytes;
use crate::snapshot::{FileChange, Snapshot, SnapshotError};
use std::fmt;

/// Lines of context around each hunk, as git and GNU diff use by default.
const CONTEXT: usize = 3;

/// Errors from diffing, parsing or applying patches.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// A file is not UTF-8 text, so it has no line diff.
    #[error("{0} is not UTF-8 text; binary files cannot be part of a patch")]
    Binary(String),
    /// The patch text is malformed.
    #[error("malformed patch at line {line}: {detail}")]
    Parse {
        /// 1-based line of the patch text.
        line: usize,
        /// What was wrong.
        detail: String,
    },
    /// A hunk's lines are not where the patch says, nor anywhere else in the file.
    #[error("{path}: hunk {hunk} (@@ -{old_start}) does not apply: the file's lines differ from the patch's context")]
    Conflict {
        /// The repository-relative file the hunk is for.
        path: String,
        /// 1-based hunk number within the file.
        hunk: usize,
        /// The hunk's starting line in the file it expects.
        old_start: usize,
    },
    /// The patch modifies or deletes a file the snapshot does not have.
    #[error("{0}: the patch changes this file but the repository does not have it")]
    MissingFile(String),
    /// The patch creates a file the snapshot already has.
    #[error("{0}: the patch creates this file but the repository already has it")]
    FileExists(String),
    /// The patch has two sections for one file (git never writes that; applying them in turn
    /// would depend on their order).
    #[error("{0}: the patch has more than one section for this file; give one section per file")]
    DuplicateFile(String),
    /// A path in the patch is not a clean relative path.
    #[error(transparent)]
    Path(#[from] SnapshotError),
}

/// One line of a hunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// Present in both versions.
    Context(String),
    /// Only in the old version.
    Removed(String),
    /// Only in the new version.
    Added(String),
}

/// A contiguous region of change. Lines keep their `\n`; a line without one is the last line
/// of a file that does not end in a newline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hunk {
    /// 1-based first line in the old file (the line before, when the old side is empty).
    pub old_start: usize,
    /// 1-based first line in the new file (the line before, when the new side is empty).
    pub new_start: usize,
    /// The hunk's lines in order.
    pub lines: Vec<Line>,
}

impl Hunk {
    fn old_lines(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().filter_map(|l| match l {
            Line::Context(s) | Line::Removed(s) => Some(s.as_str()),
            Line::Added(_) => None,
        })
    }

    fn new_lines(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().filter_map(|l| match l {
            Line::Context(s) | Line::Added(s) => Some(s.as_str()),
            Line::Removed(_) => None,
        })
    }

    fn reverse(&self) -> Hunk {
        Hunk {
            old_start: self.new_start,
            new_start: self.old_start,
            lines: self
                .lines
                .iter()
                .map(|l| match l {
                    Line::Context(s) => Line::Context(s.clone()),
                    Line::Removed(s) => Line::Added(s.clone()),
                    Line::Added(s) => Line::Removed(s.clone()),
                })
                .collect(),
        }
    }
}

/// The changes to one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilePatch {
    /// Path before (None when the patch creates the file).
    pub old_path: Option<String>,
    /// Path after (None when the patch deletes the file).
    pub new_path: Option<String>,
    /// Hunks in file order.
    pub hunks: Vec<Hunk>,
}

impl FilePatch {
    /// The path this patch is about (the new one, else the old one).
    pub fn path(&self) -> &str {
        self.new_path
            .as_deref()
            .or(self.old_path.as_deref())
            .unwrap_or_default()
    }

    /// Lines added and removed.
    pub fn line_counts(&self) -> (usize, usize) {
        let mut added = 0;
        let mut removed = 0;
        for line in self.hunks.iter().flat_map(|h| &h.lines) {
            match line {
                Line::Added(_) => added += 1,
                Line::Removed(_) => removed += 1,
                Line::Context(_) => {}
            }
        }
        (added, removed)
    }
}

/// A multi-file unified diff.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Patch {
    /// One entry per file, sorted by path when produced by [`Patch::between`].
    pub files: Vec<FilePatch>,
}

fn text_of<'a>(path: &str, bytes: &'a [u8]) -> Result<&'a str, DiffError> {
    std::str::from_utf8(bytes).map_err(|_| DiffError::Binary(path.to_owned()))
}

impl Patch {
    /// The patch that turns `old` into `new`.
    pub fn between(old: &Snapshot, new: &Snapshot) -> Result<Patch, DiffError> {
        let mut files = Vec::new();
        for change in new.changes_from(old) {
            let path = change.path().to_owned();
            let before = old.file(&path);
            let (before_text, after) = match &change {
                FileChange::Written { contents, .. } => (before.as_deref(), Some(&contents[..])),
                FileChange::Deleted { .. } => (before.as_deref(), None),
            };
            let before_text = before_text.map(|b| text_of(&path, b)).transpose()?;
            let after_text = after.map(|b| text_of(&path, b)).transpose()?;
            files.push(FilePatch {
                old_path: before_text.is_some().then(|| path.clone()),
                new_path: after_text.is_some().then(|| path.clone()),
                hunks: diff_text(before_text.unwrap_or(""), after_text.unwrap_or("")),
            });
        }
        Ok(Patch { files })
    }

    /// True when the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The paths the patch touches, in patch order.
    pub fn paths(&self) -> Vec<&str> {
        self.files.iter().map(FilePatch::path).collect()
    }

    /// The patch that undoes this one.
    pub fn reverse(&self) -> Patch {
        Patch {
            files: self
                .files
                .iter()
                .map(|f| FilePatch {
                    old_path: f.new_path.clone(),
                    new_path: f.old_path.clone(),
                    hunks: f.hunks.iter().map(Hunk::reverse).collect(),
                })
                .collect(),
        }
    }

    /// Only the files for which `keep(path)` holds.
    pub fn filter(&self, mut keep: impl FnMut(&str) -> bool) -> Patch {
        Patch {
            files: self
                .files
                .iter()
                .filter(|f| keep(f.path()))
                .cloned()
                .collect(),
        }
    }

    /// Applies the patch to `base`, all or nothing. Hunks apply where the patch says, or, like
    /// `git apply`, at the nearest offset where their context matches exactly.
    pub fn apply(&self, base: &Snapshot) -> Result<Snapshot, DiffError> {
        let mut changes = Vec::with_capacity(self.files.len());
        let mut seen = std::collections::HashSet::new();
        for file in &self.files {
            let path = file.path().to_owned();
            if !seen.insert(path.clone()) {
                return Err(DiffError::DuplicateFile(path));
            }
            let current = base.file(&path);
            match (&file.old_path, &file.new_path, &current) {
                (None, Some(_), Some(_)) => return Err(DiffError::FileExists(path)),
                (Some(_), _, None) => return Err(DiffError::MissingFile(path)),
                _ => {}
            }
            let text = match &current {
                Some(bytes) if file.old_path.is_some() => text_of(&path, bytes)?,
                _ => "",
            };
            let result = apply_hunks(&path, text, &file.hunks)?;
            if file.new_path.is_none() {
                if !result.is_empty() {
                    return Err(DiffError::Conflict {
                        path,
                        hunk: file.hunks.len().max(1),
                        old_start: 1,
                    });
                }
                changes.push(FileChange::Deleted { path });
            } else {
                changes.push(FileChange::Written {
                    path,
                    contents: SharedBytes::from(result.into_bytes()),
                });
            }
        }
        Ok(base.with_changes(&changes)?)
    }

    /// Parses a unified diff: git's format (`diff --git` headers, mode lines, `/dev/null`) or
    /// plain `---`/`+++` headers. Text outside file sections (a commit message) is ignored.
    pub fn parse(text: &str) -> Result<Patch, DiffError> {
        Parser::new(text).parse()
    }
}

impl fmt::Display for Patch {
    /// Renders the patch in git's format, which `git apply` and `patch -p1` accept.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for file in &self.files {
            let path = file.path();
            writeln!(f, "diff --git a/{path} b/{path}")?;
            match (&file.old_path, &file.new_path) {
                (None, Some(_)) => writeln!(f, "new file mode 100644")?,
                (Some(_), None) => writeln!(f, "deleted file mode 100644")?,
                _ => {}
            }
            if file.hunks.is_empty() {
                continue;
            }
            match &file.old_path {
                Some(p) => writeln!(f, "--- a/{p}")?,
                None => writeln!(f, "--- /dev/null")?,
            }
            match &file.new_path {
                Some(p) => writeln!(f, "+++ b/{p}")?,
                None => writeln!(f, "+++ /dev/null")?,
            }
            for hunk in &file.hunks {
                let old_len = hunk.old_lines().count();
                let new_len = hunk.new_lines().count();
                writeln!(
                    f,
                    "@@ -{} +{} @@",
                    range(hunk.old_start, old_len),
                    range(hunk.new_start, new_len)
                )?;
                for line in &hunk.lines {
                    let (sign, s) = match line {
                        Line::Context(s) => (' ', s),
                        Line::Removed(s) => ('-', s),
                        Line::Added(s) => ('+', s),
                    };
                    match s.strip_suffix('\n') {
                        Some(body) => writeln!(f, "{sign}{body}")?,
                        None => writeln!(f, "{sign}{s}\n\\ No newline at end of file")?,
                    }
                }
            }
        }
        Ok(())
    }
}

fn range(start: usize, len: usize) -> String {
    if len == 1 {
        start.to_string()
    } else {
        format!("{start},{len}")
    }
}

/// Splits text into lines that keep their terminators.
fn lines(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

/// Hunks turning `old` into `new`, with [`CONTEXT`] lines of context.
fn diff_text(old: &str, new: &str) -> Vec<Hunk> {
    let a = lines(old);
    let b = lines(new);
    let ops = similar::capture_diff_slices(similar::Algorithm::Myers, &a, &b);
    similar::group_diff_ops(ops, CONTEXT)
        .into_iter()
        .filter(|group| !group.is_empty())
        .map(|group| {
            let mut out = Vec::new();
            for op in &group {
                let (tag, old_r, new_r) = op.as_tag_tuple();
                match tag {
                    similar::DiffTag::Equal => {
                        out.extend(a[old_r].iter().map(|l| Line::Context((*l).to_owned())))
                    }
                    _ => {
                        out.extend(a[old_r].iter().map(|l| Line::Removed((*l).to_owned())));
                        out.extend(b[new_r].iter().map(|l| Line::Added((*l).to_owned())));
                    }
                }
            }
            let first = group[0].as_tag_tuple();
            let old_len = out.iter().filter(|l| !matches!(l, Line::Added(_))).count();
            let new_len = out
                .iter()
                .filter(|l| !matches!(l, Line::Removed(_)))
                .count();
            // An empty side is numbered by the line before it, as diff(1) does.
            let start = |begin: usize, len: usize| if len == 0 { begin } else { begin + 1 };
            Hunk {
                old_start: start(first.1.start, old_len),
                new_start: start(first.2.start, new_len),
                lines: out,
            }
        })
        .collect()
}

/// Applies hunks in order to `text`; each hunk is searched for near its stated position.
fn apply_hunks(path: &str, text: &str, hunks: &[Hunk]) -> Result<String, DiffError> {
    let src = lines(text);
    let mut out: Vec<&str> = Vec::with_capacity(src.len());
    let mut cursor = 0; // next unconsumed line of src
    let mut offset: isize = 0; // drift between stated and found positions so far
    for (i, hunk) in hunks.iter().enumerate() {
        let old: Vec<&str> = hunk.old_lines().collect();
        let stated = if old.is_empty() {
            hunk.old_start
        } else {
            hunk.old_start.saturating_sub(1)
        };
        let want = (stated as isize + offset).max(cursor as isize) as usize;
        let conflict = || DiffError::Conflict {
            path: path.to_owned(),
            hunk: i + 1,
            old_start: hunk.old_start,
        };
        let at = find_block(&src, &old, want, cursor).ok_or_else(conflict)?;
        offset = at as isize - stated as isize;
        out.extend_from_slice(&src[cursor..at]);
        out.extend(hunk.new_lines());
        cursor = at + old.len();
    }
    out.extend_from_slice(&src[cursor..]);
    Ok(out.concat())
}

/// The position nearest `want` (not before `floor`) where `block` occurs in `src`.
fn find_block(src: &[&str], block: &[&str], want: usize, floor: usize) -> Option<usize> {
    let fits = |at: usize| at + block.len() <= src.len() && src[at..at + block.len()] == *block;
    let last = src.len().checked_sub(block.len())?;
    let want = want.min(last);
    for delta in 0..=src.len() {
        let after = want + delta;
        if after <= last && fits(after) {
            return Some(after);
        }
        if let Some(before) = want.checked_sub(delta) {
            if before >= floor && fits(before) {
                return Some(before);
            }
        }
        if after > last && want.checked_sub(delta).is_none_or(|b| b < floor) {
            break;
        }
    }
    None
}

struct Parser<'a> {
    lines: Vec<&'a str>,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Parser {
            lines: text.lines().collect(),
            pos: 0,
        }
    }

    fn error(&self, detail: impl Into<String>) -> DiffError {
        DiffError::Parse {
            line: self.pos + 1,
            detail: detail.into(),
        }
    }

    fn parse(mut self) -> Result<Patch, DiffError> {
        let mut files = Vec::new();
        while self.pos < self.lines.len() {
            let line = self.lines[self.pos];
            if line.starts_with("diff --git ") || line.starts_with("--- ") {
                files.push(self.file()?);
            } else {
                self.pos += 1;
            }
        }
        if files.is_empty() {
            return Err(DiffError::Parse {
                line: 1,
                detail: "no file sections (expected `--- a/PATH` and `+++ b/PATH` headers)".into(),
            });
        }
        Ok(Patch { files })
    }

    fn file(&mut self) -> Result<FilePatch, DiffError> {
        let mut git = None;
        if let Some(rest) = self.lines[self.pos].strip_prefix("diff --git ") {
            // `a/x b/x`: with equal halves the path is unambiguous even if it has spaces.
            let half = rest.len() / 2;
            let path = (rest.len() % 2 == 1 && rest.as_bytes()[half] == b' ')
                .then(|| rest[half + 1..].strip_prefix("b/"))
                .flatten()
                .map(str::to_owned);
            let (mut created, mut deleted) = (false, false);
            self.pos += 1;
            while let Some(l) = self.lines.get(self.pos) {
                if l.starts_with("--- ") || l.starts_with("diff --git ") {
                    break;
                }
                if l.starts_with("rename ") || l.starts_with("copy ") {
                    return Err(self.error(
                        "renames and copies are not supported; write them as a deletion and a creation",
                    ));
                }
                if l.starts_with("Binary files") || l.starts_with("GIT binary patch") {
                    return Err(self.error("binary patches are not supported"));
                }
                created |= l.starts_with("new file mode");
                deleted |= l.starts_with("deleted file mode");
                self.pos += 1;
            }
            git = Some((path, created, deleted));
        }
        let at_headers = self
            .lines
            .get(self.pos)
            .is_some_and(|l| l.starts_with("--- "));
        if let (false, Some((path, created, deleted))) = (at_headers, &git) {
            // git writes an empty file's creation or deletion without `---`/`+++` or hunks.
            let path = match path {
                Some(p) if *created != *deleted && safe_path(p) => p.clone(),
                _ => return Err(self.error("a file section without `---`/`+++` headers (mode-only changes are not supported)")),
            };
            return Ok(FilePatch {
                old_path: (!created).then(|| path.clone()),
                new_path: (!deleted).then_some(path),
                hunks: Vec::new(),
            });
        }
        let old = self.header("--- ")?;
        let new = self.header("+++ ")?;
        if old.is_none() && new.is_none() {
            return Err(self.error("both sides are /dev/null"));
        }
        let mut hunks = Vec::new();
        while self.pos < self.lines.len() && self.lines[self.pos].starts_with("@@") {
            hunks.push(self.hunk()?);
        }
        if hunks.is_empty() {
            return Err(self.error("a file section with no hunks"));
        }
        Ok(FilePatch {
            old_path: old,
            new_path: new,
            hunks,
        })
    }

    fn header(&mut self, prefix: &str) -> Result<Option<String>, DiffError> {
        let Some(line) = self.lines.get(self.pos) else {
            return Err(self.error(format!("expected a `{prefix}` header, found the end")));
        };
        let Some(rest) = line.strip_prefix(prefix) else {
            return Err(self.error(format!("expected a `{prefix}` header")));
        };
        self.pos += 1;
        // A tab separates an optional timestamp (GNU diff).
        let name = rest.split('\t').next().unwrap_or(rest).trim_end();
        if name == "/dev/null" {
            return Ok(None);
        }
        let name = name
            .strip_prefix("a/")
            .or_else(|| name.strip_prefix("b/"))
            .unwrap_or(name);
        if !safe_path(name) {
            return Err(self.error(format!("unsafe path {name:?}")));
        }
        Ok(Some(name.to_owned()))
    }

    fn hunk(&mut self) -> Result<Hunk, DiffError> {
        let header = self.lines[self.pos];
        let (old_start, old_len, new_start, new_len) =
            parse_hunk_header(header).ok_or_else(|| self.error("bad hunk header"))?;
        self.pos += 1;
        let mut lines = Vec::new();
        let (mut old_seen, mut new_seen) = (0, 0);
        while old_seen < old_len || new_seen < new_len {
            let Some(raw) = self.lines.get(self.pos) else {
                return Err(self.error("the patch ends inside a hunk"));
            };
            let (sign, body) = match raw.chars().next() {
                Some(c @ (' ' | '-' | '+')) => (c, &raw[1..]),
                // Some tools drop the space of an empty context line.
                None => (' ', ""),
                Some(_) => {
                    return Err(self.error(format!(
                        "hunk line must start with ' ', '-' or '+' (the hunk header promised {old_len} old and {new_len} new lines)"
                    )))
                }
            };
            let text = format!("{body}\n");
            match sign {
                ' ' => {
                    old_seen += 1;
                    new_seen += 1;
                    lines.push(Line::Context(text));
                }
                '-' => {
                    old_seen += 1;
                    lines.push(Line::Removed(text));
                }
                _ => {
                    new_seen += 1;
                    lines.push(Line::Added(text));
                }
            }
            self.pos += 1;
            if old_seen > old_len || new_seen > new_len {
                return Err(self.error("hunk has more lines than its header says"));
            }
            if self
                .lines
                .get(self.pos)
                .is_some_and(|l| l.starts_with("\\ "))
            {
                if let Some(Line::Context(s) | Line::Removed(s) | Line::Added(s)) = lines.last_mut()
                {
                    s.pop();
                }
                self.pos += 1;
            }
        }
        Ok(Hunk {
            old_start,
            new_start,
            lines,
        })
    }
}

fn safe_path(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('/') && !name.split('/').any(|p| p == "..")
}

fn parse_hunk_header(line: &str) -> Option<(usize, usize, usize, usize)> {
    let rest = line.strip_prefix("@@ -")?;
    let (ranges, _) = rest.split_once(" @@")?;
    let (old, new) = ranges.split_once(" +")?;
    let parse = |r: &str| -> Option<(usize, usize)> {
        match r.split_once(',') {
            Some((s, l)) => Some((s.parse().ok()?, l.parse().ok()?)),
            None => Some((r.parse().ok()?, 1)),
        }
    };
    let (os, ol) = parse(old)?;
    let (ns, nl) = parse(new)?;
    Some((os, ol, ns, nl))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(files: &[(&str, &str)]) -> Snapshot {
        Snapshot::from_files(files.iter().map(|(p, c)| (*p, c.as_bytes().to_vec()))).unwrap()
    }

    fn text(s: &Snapshot, path: &str) -> String {
        String::from_utf8(s.file(path).unwrap().to_vec()).unwrap()
    }

    #[test]
    fn renders_git_format() {
        let a = snap(&[("m.py", "a\nb\nc\n"), ("old.py", "x\n")]);
        let b = snap(&[("m.py", "a\nB\nc\n"), ("new.py", "y")]);
        let patch = Patch::between(&a, &b).unwrap();
        assert_eq!(
            patch.to_string(),
            "diff --git a/m.py b/m.py\n--- a/m.py\n+++ b/m.py\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n\
             diff --git a/new.py b/new.py\nnew file mode 100644\n--- /dev/null\n+++ b/new.py\n@@ -0,0 +1 @@\n+y\n\\ No newline at end of file\n\
             diff --git a/old.py b/old.py\ndeleted file mode 100644\n--- a/old.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n"
        );
    }

    #[test]
    fn round_trips_through_text_and_reverses() {
        let a = snap(&[
            ("m.py", "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n"),
            ("t", "q"),
        ]);
        let b = snap(&[
            ("m.py", "1\n2\nthree\n4\n5\n6\n7\n8\n9\n10\n12\n13"),
            ("u", "z\n"),
        ]);
        let patch = Patch::between(&a, &b).unwrap();
        let parsed = Patch::parse(&patch.to_string()).unwrap();
        assert_eq!(parsed, patch);
        assert_eq!(parsed.apply(&a).unwrap().content_hash(), b.content_hash());
        let back = patch.reverse().apply(&b).unwrap();
        assert_eq!(back.content_hash(), a.content_hash());
    }

    #[test]
    fn applies_at_an_offset() {
        let a = snap(&[("m.py", "a\nb\nc\nd\n")]);
        let b = snap(&[("m.py", "a\nb\nC\nd\n")]);
        let patch = Patch::between(&a, &b).unwrap();
        let shifted = snap(&[("m.py", "new\nlines\na\nb\nc\nd\n")]);
        let out = patch.apply(&shifted).unwrap();
        assert_eq!(text(&out, "m.py"), "new\nlines\na\nb\nC\nd\n");
    }

    #[test]
    fn conflicts_name_file_and_hunk_and_change_nothing() {
        let a = snap(&[("a.py", "1\n"), ("m.py", "a\nb\nc\n")]);
        let b = snap(&[("a.py", "2\n"), ("m.py", "a\nX\nc\n")]);
        let patch = Patch::between(&a, &b).unwrap();
        let other = snap(&[("a.py", "1\n"), ("m.py", "a\nzzz\nc\n")]);
        let err = patch.apply(&other).unwrap_err();
        assert!(
            matches!(&err, DiffError::Conflict { path, hunk: 1, .. } if path == "m.py"),
            "{err}"
        );
        assert_eq!(text(&other, "a.py"), "1\n");
        let missing = snap(&[("m.py", "a\nb\nc\n")]);
        assert!(matches!(
            patch.apply(&missing),
            Err(DiffError::MissingFile(p)) if p == "a.py"
        ));
    }

    #[test]
    fn two_sections_for_one_file_are_refused() {
        let base = snap(&[("x.py", "a\n")]);
        let twice = "--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+b\n\
                     --- a/x.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-b\n";
        let err = Patch::parse(twice).unwrap().apply(&base).unwrap_err();
        assert!(
            matches!(&err, DiffError::DuplicateFile(p) if p == "x.py"),
            "{err}"
        );
    }

    #[test]
    fn malformed_patches_are_errors() {
        for bad in [
            "",
            "hello\n",
            "--- a/x\n+++ b/x\n@@ -1 +1 @@\n",
            "--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n-a\n+b\n",
            "--- a/x\n+++ b/x\n@@ bogus @@\n",
            "--- a/../etc/passwd\n+++ b/../etc/passwd\n@@ -1 +1 @@\n-a\n+b\n",
            "--- a/x\n+++ b/x\n@@ -1 +1 @@\n*a\n+b\n",
        ] {
            assert!(Patch::parse(bad).is_err(), "{bad:?} must not parse");
        }
    }

    #[test]
    fn parses_plain_diff_u_output() {
        let text = "--- m.py\t2024-01-01\n+++ m.py\t2024-01-02\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n";
        let patch = Patch::parse(text).unwrap();
        let out = patch.apply(&snap(&[("m.py", "a\nb\n")])).unwrap();
        assert_eq!(
            text_of("m.py", &out.file("m.py").unwrap()).unwrap(),
            "a\nc\n"
        );
    }

    /// A small deterministic generator for the property test: no extra dependency needed.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
        fn file(&mut self) -> String {
            let words = ["a", "b", "c", "def f():", "    return 1", "", "x = 2"];
            let n = self.next(15);
            let mut s: String = (0..n)
                .map(|_| format!("{}\n", words[self.next(words.len() as u64) as usize]))
                .collect();
            if self.next(4) == 0 {
                s.push_str("tail");
            }
            s
        }
        fn tree(&mut self) -> Snapshot {
            let mut files: Vec<(String, String)> = Vec::new();
            for i in 0..4 {
                if self.next(3) != 0 {
                    files.push((format!("d{}/f{i}.py", i % 2), self.file()));
                }
            }
            Snapshot::from_files(files.into_iter().map(|(p, c)| (p, c.into_bytes()))).unwrap()
        }
    }

    #[test]
    fn property_apply_diff_gives_target_and_reverse_gives_source() {
        let mut rng = Lcg(7);
        for case in 0..500 {
            let a = rng.tree();
            let b = if rng.next(2) == 0 {
                rng.tree()
            } else {
                // Small edits of a, the common case for bugs.
                let mut files = a.files();
                for (_, c) in files.iter_mut() {
                    let mut lines: Vec<String> = String::from_utf8(c.to_vec())
                        .unwrap()
                        .split_inclusive('\n')
                        .map(str::to_owned)
                        .collect();
                    if !lines.is_empty() {
                        let i = rng.next(lines.len() as u64) as usize;
                        lines[i] = format!("changed {case}\n");
                    }
                    *c = SharedBytes::from(lines.concat().into_bytes());
                }
                Snapshot::from_files(files).unwrap()
            };
            let patch = Patch::between(&a, &b).unwrap();
            let text = patch.to_string();
            let parsed = Patch::parse(&text).unwrap_or_else(|e| {
                if patch.is_empty() {
                    Patch::default()
                } else {
                    panic!("case {case}: {e}\n{text}")
                }
            });
            assert_eq!(parsed, patch, "case {case}");
            assert_eq!(
                parsed.apply(&a).unwrap().content_hash(),
                b.content_hash(),
                "case {case}:\n{text}"
            );
            assert_eq!(
                parsed.reverse().apply(&b).unwrap().content_hash(),
                a.content_hash(),
                "case {case} reversed"
            );
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Small trees over a few paths whose files share lines, so diffs have context,
        /// repeated lines, missing final newlines and type changes (`a` vs `a/x.py`).
        fn tree() -> impl Strategy<Value = Snapshot> {
            let line = prop_oneof![
                Just("x = 1"),
                Just("y = 2"),
                Just(""),
                Just("    return x"),
                Just("def f():"),
                Just("\\ odd"),
                Just("+- @@ -1 +1 @@"),
            ];
            let file = (proptest::collection::vec(line, 0..12), any::<bool>()).prop_map(
                |(lines, newline)| {
                    let mut text = lines.join("\n");
                    if newline && !text.is_empty() {
                        text.push('\n');
                    }
                    text
                },
            );
            let path = prop_oneof![Just("a"), Just("a/x.py"), Just("b.py"), Just("c/d/e.py")];
            proptest::collection::btree_map(path, file, 0..4).prop_map(|files| {
                let mut files: Vec<(&str, String)> = files.into_iter().collect();
                // `a` as a file and as a directory cannot both exist: keep the directory.
                if files.iter().any(|(p, _)| *p == "a/x.py") {
                    files.retain(|(p, _)| *p != "a");
                }
                Snapshot::from_files(files.into_iter().map(|(p, c)| (p, c.into_bytes()))).unwrap()
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// Rendering, parsing, applying and reversing agree for any two trees.
            #[test]
            fn between_renders_parses_applies_and_reverses(a in tree(), b in tree()) {
                let patch = Patch::between(&a, &b).unwrap();
                if patch.files.is_empty() {
                    // Equal trees: the empty patch renders as nothing, which is no patch text.
                    prop_assert_eq!(a.content_hash(), b.content_hash());
                    prop_assert!(Patch::parse(&patch.to_string()).is_err());
                    return Ok(());
                }
                let parsed = Patch::parse(&patch.to_string()).unwrap();
                prop_assert_eq!(&parsed, &patch);
                let applied = parsed.apply(&a).unwrap();
                prop_assert_eq!(applied.content_hash(), b.content_hash());
                let back = parsed.reverse().apply(&b).unwrap();
                prop_assert_eq!(back.content_hash(), a.content_hash());
            }

            /// Any text, and any valid patch with lines cut, doubled or garbled, parses to a
            /// patch or a typed error; applying what parses gives a tree or a typed error.
            #[test]
            fn damaged_patches_are_errors_not_panics(
                a in tree(),
                b in tree(),
                cuts in proptest::collection::vec((any::<prop::sample::Index>(), 0..4u8), 0..6),
                noise in ".{0,200}",
            ) {
                let text = Patch::between(&a, &b).unwrap().to_string();
                let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
                for (at, how) in cuts {
                    if lines.is_empty() {
                        break;
                    }
                    let i = at.index(lines.len());
                    match how {
                        0 => { lines.remove(i); }
                        1 => { let l = lines[i].clone(); lines.insert(i, l); }
                        2 => lines[i] = noise.clone(),
                        _ => {
                            let half = lines[i].chars().count() / 2;
                            lines[i] = lines[i].chars().take(half).collect();
                        }
                    }
                }
                for text in [lines.join("\n"), noise.clone()] {
                    if let Ok(patch) = Patch::parse(&text) {
                        let _ = patch.apply(&a);
                        let _ = patch.reverse().apply(&b);
                    }
                }
            }
        }
    }
}
