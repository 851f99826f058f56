//! The file editor of SWE-agent (`str_replace_editor`) and R2E-Gym (`file_editor`): `view`,
//! `create`, `str_replace`, `insert` and `undo_edit` over the episode's tree, with the argument
//! names, messages and line-number formats of the originals, so a model trained with either
//! acts in spar unchanged (and the other way round).
//!
//! Known differences, on purpose: undo works (SWE-agent's main line never saves the history);
//! R2E-Gym's condensed view of long Python files and its refusal to view non-Python files are
//! not reproduced (the whole file is shown, or the requested range).

use crate::bytes::SharedBytes;
use crate::snapshot::{Entry, FileChange, Snapshot};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Whose messages the editor speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// SWE-agent's `str_replace_editor` (also SkyRL's and OpenHands').
    SweAgent,
    /// R2E-Gym's `file_editor` (also rLLM's).
    R2e,
}

/// One editor call, with the originals' argument names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditorCall {
    /// `view`, `create`, `str_replace`, `insert` or `undo_edit`.
    pub command: String,
    /// Absolute path under `/repo`.
    pub path: String,
    /// `create`'s contents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_text: Option<String>,
    /// `str_replace`'s text to find, exactly once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_str: Option<String>,
    /// `str_replace`'s replacement (absent: delete), or `insert`'s text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_str: Option<String>,
    /// `insert`: the line after which `new_str` goes (0: the top).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insert_line: Option<i64>,
    /// `view`: `[first, last]`, 1-based and inclusive; `last` -1 is the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view_range: Option<Vec<i64>>,
    /// R2E-Gym's condensed view; accepted, and the full view is shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concise: Option<bool>,
}

/// SWE-agent cuts a viewed file at this many characters (R2E-Gym: [`R2E_MAX_RESPONSE`]).
const MAX_RESPONSE: usize = 16_000;
const R2E_MAX_RESPONSE: usize = 10_000;
const SNIPPET_LINES: usize = 4;
const TRUNCATED: &str = "<response clipped><NOTE>To save on context only part of this file has been shown to you. You should retry this tool after you have searched inside the file with `grep -n` in order to find the line numbers of what you are looking for.</NOTE>";

/// The editor of one episode: the earlier contents of each file it changed, for `undo_edit`
/// (`None`: the file did not exist).
#[derive(Clone, Debug, Default)]
pub struct Editor {
    history: BTreeMap<String, Vec<Option<SharedBytes>>>,
}

/// What a call did: its message, and whether it failed.
type Reply = Result<String, String>;

impl Editor {
    /// Runs one call over `state`; `Err` is an error message the agent sees.
    pub fn call(&mut self, dialect: Dialect, call: &EditorCall, state: &mut Snapshot) -> Reply {
        let say = Say(dialect);
        let shown = call.path.as_str();
        let Some(path) = resolve(dialect, &call.path)? else {
            return Err(say.missing(shown));
        };
        let entry = state.get(&path);
        match (call.command.as_str(), &entry) {
            ("create", Some(_)) => return Err(say.exists(shown)),
            ("create", _) | ("view", Some(_)) => {}
            (_, Some(Entry::Dir(_))) if is_command(&call.command) => {
                return Err(say.directory(shown))
            }
            (command, None) if is_command(command) => return Err(say.missing(shown)),
            _ => {}
        }
        match call.command.as_str() {
            "view" => match entry {
                Some(Entry::Dir(_)) => view_dir(dialect, call, state, &path),
                _ => view_file(dialect, call, &text_of(state, &path)),
            },
            "create" => self.create(dialect, call, state, &path),
            "str_replace" => self.replace(dialect, call, state, &path),
            "insert" => self.insert(dialect, call, state, &path),
            "undo_edit" => self.undo(dialect, call, state, &path),
            other => Err(say.unknown(other)),
        }
    }

    fn save(
        &mut self,
        state: &mut Snapshot,
        path: &str,
        text: Option<String>,
    ) -> Result<(), String> {
        self.history
            .entry(path.to_owned())
            .or_default()
            .push(state.file(path));
        let change = match text {
            Some(text) => FileChange::Written {
                path: path.to_owned(),
                contents: SharedBytes::from(text.into_bytes()),
            },
            None => FileChange::Deleted {
                path: path.to_owned(),
            },
        };
        *state = state
            .with_changes(&[change])
            .map_err(|e| format!("Ran into {e} while trying to write to /repo/{path}"))?;
        Ok(())
    }

    fn create(
        &mut self,
        dialect: Dialect,
        call: &EditorCall,
        state: &mut Snapshot,
        path: &str,
    ) -> Reply {
        let Some(text) = &call.file_text else {
            return Err(Say(dialect).required("file_text", "create"));
        };
        let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
        if dialect == Dialect::SweAgent && !matches!(state.get(parent), Some(Entry::Dir(_))) {
            return Err(format!(
                "The parent directory /repo/{parent} does not exist. Please create it first."
            ));
        }
        self.save(state, path, Some(text.clone()))?;
        Ok(match dialect {
            Dialect::SweAgent => format!("File created successfully at: {}", call.path),
            Dialect::R2e => format!(
                "File created at {}. {}Review the file and make sure that it is as expected. Edit the file if necessary.",
                call.path,
                numbered(text, &call.path, 1)
            ),
        })
    }

    fn replace(
        &mut self,
        dialect: Dialect,
        call: &EditorCall,
        state: &mut Snapshot,
        path: &str,
    ) -> Reply {
        let say = Say(dialect);
        let Some(old) = &call.old_str else {
            return Err(say.required("old_str", "str_replace"));
        };
        let expand = dialect == Dialect::SweAgent;
        let tabs = |t: &str| if expand { expand_tabs(t) } else { t.to_owned() };
        let (text, old, new) = (
            tabs(&text_of(state, path)),
            tabs(old),
            tabs(call.new_str.as_deref().unwrap_or("")),
        );
        match text.matches(old.as_str()).count() {
            0 => return Err(say.no_match(&old, &call.path)),
            1 => {}
            _ => {
                let lines: Vec<usize> = text
                    .split('\n')
                    .enumerate()
                    .filter(|(_, l)| l.contains(old.as_str()))
                    .map(|(i, _)| i + 1)
                    .collect();
                return Err(say.many_matches(&old, &call.path, &lines));
            }
        }
        if dialect == Dialect::SweAgent && old == new {
            return Err(format!(
                "No replacement was performed, old_str `{old}` is the same as new_str `{new}`."
            ));
        }
        let edited = text.replacen(old.as_str(), &new, 1);
        self.save(state, path, Some(edited.clone()))?;
        let at = text
            .split(old.as_str())
            .next()
            .unwrap_or("")
            .matches('\n')
            .count();
        let lines: Vec<&str> = edited.split('\n').collect();
        let (first, last) = match dialect {
            Dialect::SweAgent => {
                let first = at.saturating_sub(SNIPPET_LINES).max(1);
                (
                    first,
                    (at + SNIPPET_LINES + new.matches('\n').count()).min(edited.lines().count()),
                )
            }
            Dialect::R2e => {
                let first = at.saturating_sub(SNIPPET_LINES) + 1;
                (
                    first,
                    (at + SNIPPET_LINES + new.matches('\n').count() + 1).min(lines.len()),
                )
            }
        };
        let snippet = lines[first - 1..last.max(first - 1)].join("\n");
        Ok(format!(
            "The file {} has been edited. {}Review the changes and make sure they are as expected. Edit the file again if necessary.",
            call.path,
            numbered(&snippet, &format!("a snippet of {}", call.path), first)
        ))
    }

    fn insert(
        &mut self,
        dialect: Dialect,
        call: &EditorCall,
        state: &mut Snapshot,
        path: &str,
    ) -> Reply {
        let say = Say(dialect);
        let Some(line) = call.insert_line else {
            return Err(say.required("insert_line", "insert"));
        };
        let Some(new) = &call.new_str else {
            return Err(say.required("new_str", "insert"));
        };
        let expand = dialect == Dialect::SweAgent;
        let text = if expand {
            expand_tabs(&text_of(state, path))
        } else {
            text_of(state, path)
        };
        let new = if expand {
            expand_tabs(new)
        } else {
            new.clone()
        };
        let lines: Vec<&str> = text.split('\n').collect();
        let at = match usize::try_from(line) {
            Ok(at) if at <= lines.len() => at,
            _ => return Err(say.bad_insert_line(line, lines.len())),
        };
        let new_lines: Vec<&str> = new.split('\n').collect();
        let edited = [&lines[..at], &new_lines, &lines[at..]].concat().join("\n");
        let snippet = [
            &lines[at.saturating_sub(SNIPPET_LINES)..at],
            &new_lines,
            &lines[at..(at + SNIPPET_LINES).min(lines.len())],
        ]
        .concat()
        .join("\n");
        self.save(state, path, Some(edited))?;
        Ok(format!(
            "The file {} has been edited. {}Review the changes and make sure they are as expected (correct indentation, no duplicate lines, etc). Edit the file again if necessary.",
            call.path,
            numbered(&snippet, "a snippet of the edited file", (at + 1).saturating_sub(SNIPPET_LINES).max(1))
        ))
    }

    fn undo(
        &mut self,
        dialect: Dialect,
        call: &EditorCall,
        state: &mut Snapshot,
        path: &str,
    ) -> Reply {
        let Some(previous) = self.history.get_mut(path).and_then(Vec::pop) else {
            return Err(match dialect {
                Dialect::SweAgent => format!("No edit history found for {}.", call.path),
                Dialect::R2e => {
                    format!("ERROR: No previous edits found for {} to undo.", call.path)
                }
            });
        };
        let change = match &previous {
            Some(contents) => FileChange::Written {
                path: path.to_owned(),
                contents: contents.clone(),
            },
            None => FileChange::Deleted {
                path: path.to_owned(),
            },
        };
        *state = state.with_changes(&[change]).map_err(|e| e.to_string())?;
        let text = previous
            .map(|c| String::from_utf8_lossy(&c).into_owned())
            .unwrap_or_default();
        Ok(format!(
            "Last edit to {} undone successfully. {}",
            call.path,
            numbered(&text, &call.path, 1)
        ))
    }
}

fn is_command(command: &str) -> bool {
    matches!(
        command,
        "view" | "create" | "str_replace" | "insert" | "undo_edit"
    )
}

/// The repository-relative path of an editor path; `Ok(None)` for a path outside the
/// repository (it does not exist there).
fn resolve(dialect: Dialect, path: &str) -> Result<Option<String>, String> {
    if dialect == Dialect::SweAgent && !path.starts_with('/') {
        return Err(format!(
            "The path {path} is not an absolute path, it should start with `/`. Maybe you meant /repo/{}?",
            path.trim_start_matches("./")
        ));
    }
    // R2E-Gym resolves relative paths from the repository root, its working directory.
    Ok(super::shell::resolve("", path))
}

fn text_of(state: &Snapshot, path: &str) -> String {
    state
        .file(path)
        .map(|c| String::from_utf8_lossy(&c).into_owned())
        .unwrap_or_default()
}

fn view_file(dialect: Dialect, call: &EditorCall, text: &str) -> Reply {
    let (limit, first_number) = match dialect {
        Dialect::SweAgent => (MAX_RESPONSE, 1),
        Dialect::R2e => (R2E_MAX_RESPONSE, 1),
    };
    let lines: Vec<&str> = match dialect {
        Dialect::SweAgent => text.split('\n').collect(),
        Dialect::R2e => text.lines().collect(),
    };
    let (first, last) = match &call.view_range {
        None => (first_number, lines.len()),
        Some(range) => view_range(dialect, range, lines.len())?,
    };
    let shown = lines[first - 1..last].join("\n");
    Ok(match dialect {
        Dialect::SweAgent => numbered(&truncate(&shown, limit), &call.path, first),
        Dialect::R2e => {
            let body: Vec<String> = shown
                .split('\n')
                .enumerate()
                .map(|(i, l)| format!("{:6} {l}", i + first))
                .collect();
            truncate(
                &format!(
                    "Here's the result of running `cat -n` on the file: {}:\n{}",
                    call.path,
                    body.join("\n")
                ),
                limit,
            ) + "\n"
        }
    })
}

/// Checks a `view_range` against a file of `n` lines; returns the 1-based inclusive range.
fn view_range(dialect: Dialect, range: &[i64], n: usize) -> Result<(usize, usize), String> {
    let shown = format!(
        "[{}]",
        range
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let [first, last] = range else {
        return Err("Invalid `view_range`. It should be a list of two integers.".to_owned());
    };
    let n_i = n as i64;
    if *first < 1 || *first > n_i {
        return Err(match dialect {
            Dialect::SweAgent => format!("Invalid `view_range`: {shown}. Its first element `{first}` should be within the range of lines of the file: [1, {n}]"),
            Dialect::R2e => format!("ERROR: Invalid view_range {shown}: start line must be in [1, {n}]"),
        });
    }
    let last = if *last == -1 { n_i } else { *last };
    if last > n_i || last < *first {
        return Err(match dialect {
            Dialect::SweAgent if last > n_i => format!("Invalid `view_range`: {shown}. Its second element `{last}` should be smaller than the number of lines in the file: `{n}`"),
            Dialect::SweAgent => format!("Invalid `view_range`: {shown}. Its second element `{last}` should be larger or equal than its first `{first}`"),
            Dialect::R2e => format!("ERROR: Invalid view_range {shown}: end must be >= start and <= {n}, or -1 to view until end."),
        });
    }
    Ok((*first as usize, last as usize))
}

/// `find PATH -maxdepth 2 -not -path '*/.*'`, as both editors list a directory (R2E-Gym: only
/// directories and Python files).
fn view_dir(dialect: Dialect, call: &EditorCall, state: &Snapshot, path: &str) -> Reply {
    if call.view_range.is_some() {
        return Err(
            "The `view_range` parameter is not allowed when `path` points to a directory."
                .to_owned(),
        );
    }
    let root = call.path.trim_end_matches('/');
    let mut listing = format!("{root}\n");
    if let Some(Entry::Dir(dir)) = state.get(path) {
        list_level(dialect, root, &dir, 1, &mut listing);
    }
    Ok(match dialect {
        Dialect::SweAgent => format!("Here's the files and directories up to 2 levels deep in {}, excluding hidden items:\n{listing}\n\n", call.path),
        Dialect::R2e => truncate(&format!("Here's the files and directories up to 2 levels deep in {}, excluding hidden:\n{listing}", call.path), R2E_MAX_RESPONSE) + "\n",
    })
}

fn list_level(
    dialect: Dialect,
    prefix: &str,
    dir: &crate::snapshot::Dir,
    depth: usize,
    listing: &mut String,
) {
    for (name, entry) in dir.entries().iter().filter(|(n, _)| !n.starts_with('.')) {
        let is_dir = matches!(entry, Entry::Dir(_));
        if dialect == Dialect::R2e && !is_dir && !name.ends_with(".py") {
            continue;
        }
        listing.push_str(&format!("{prefix}/{name}\n"));
        if let (Entry::Dir(sub), true) = (entry, depth < 2) {
            list_level(
                dialect,
                &format!("{prefix}/{name}"),
                sub,
                depth + 1,
                listing,
            );
        }
    }
}

/// SWE-agent's `_make_output`: `cat -n`-style lines (`{:6}\t`) under a header.
fn numbered(text: &str, descriptor: &str, first: usize) -> String {
    let text = expand_tabs(&truncate(text, MAX_RESPONSE));
    let lines: Vec<String> = text
        .split('\n')
        .enumerate()
        .map(|(i, l)| format!("{:6}\t{l}", i + first))
        .collect();
    format!(
        "Here's the result of running `cat -n` on {descriptor}:\n{}\n",
        lines.join("\n")
    )
}

fn truncate(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((cut, _)) => format!("{}{TRUNCATED}", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Python's `str.expandtabs()`: tabs to the next multiple of 8 columns, per line.
fn expand_tabs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut column = 0;
    for c in text.chars() {
        match c {
            '\t' => {
                let spaces = 8 - column % 8;
                out.extend(std::iter::repeat_n(' ', spaces));
                column += spaces;
            }
            '\n' | '\r' => {
                out.push(c);
                column = 0;
            }
            _ => {
                out.push(c);
                column += 1;
            }
        }
    }
    out
}

/// The two editors' error messages.
struct Say(Dialect);

impl Say {
    fn exists(&self, path: &str) -> String {
        match self.0 {
            Dialect::SweAgent => format!(
                "File already exists at: {path}. Cannot overwrite files using command `create`."
            ),
            Dialect::R2e => {
                format!("ERROR: File already exists at: {path}. Cannot overwrite with 'create'.")
            }
        }
    }

    fn missing(&self, path: &str) -> String {
        match self.0 {
            Dialect::SweAgent => {
                format!("The path {path} does not exist. Please provide a valid path.")
            }
            Dialect::R2e => format!("ERROR: The path '{path}' does not exist."),
        }
    }

    fn directory(&self, path: &str) -> String {
        match self.0 {
            Dialect::SweAgent => format!("The path {path} is a directory and only the `view` command can be used on directories"),
            Dialect::R2e => format!("ERROR: The path '{path}' is a directory. Only 'view' can be used on directories."),
        }
    }

    fn unknown(&self, command: &str) -> String {
        match self.0 {
            Dialect::SweAgent => format!("Unrecognized command {command}. The allowed commands for the str_replace_editor tool are: \"view\", \"create\", \"str_replace\", \"insert\", \"undo_edit\""),
            Dialect::R2e => format!("ERROR: Unrecognized command '{command}'. Allowed commands: view, create, str_replace, insert, undo_edit."),
        }
    }

    fn required(&self, parameter: &str, command: &str) -> String {
        match (self.0, parameter) {
            (Dialect::SweAgent, _) => {
                format!("Parameter `{parameter}` is required for command: {command}")
            }
            (Dialect::R2e, "file_text") => {
                "ERROR: Cannot create file without 'file_text' parameter.".to_owned()
            }
            (Dialect::R2e, _) => {
                format!("ERROR: Missing required parameter '{parameter}' for '{command}'.")
            }
        }
    }

    fn no_match(&self, old: &str, path: &str) -> String {
        match self.0 {
            Dialect::SweAgent => format!(
                "No replacement was performed, old_str `{old}` did not appear verbatim in {path}."
            ),
            Dialect::R2e => {
                format!("ERROR: No occurrences of '{old}' found in {path} for replacement.")
            }
        }
    }

    fn many_matches(&self, old: &str, path: &str, lines: &[usize]) -> String {
        let lines = format!(
            "[{}]",
            lines
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
        match self.0 {
            Dialect::SweAgent => format!("No replacement was performed. Multiple occurrences of old_str `{old}` in lines {lines}. Please ensure it is unique"),
            Dialect::R2e => format!("ERROR: Multiple occurrences of '{old}' found in {path}. Please ensure it is unique before using str_replace."),
        }
    }

    fn bad_insert_line(&self, line: i64, n: usize) -> String {
        match self.0 {
            Dialect::SweAgent => format!("Invalid `insert_line` parameter: {line}. It should be within the range of lines of the file: [0, {n}]"),
            Dialect::R2e => format!("ERROR: Invalid insert_line {line}. Must be in [0, {n}]."),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(command: &str, path: &str) -> EditorCall {
        EditorCall {
            command: command.into(),
            path: path.into(),
            file_text: None,
            old_str: None,
            new_str: None,
            insert_line: None,
            view_range: None,
            concise: None,
        }
    }

    fn tree() -> Snapshot {
        Snapshot::from_files([
            ("pkg/a.py", "def f():\n\treturn 1\n".as_bytes()),
            ("pkg/.h", b"x"),
            ("top.txt", b"t\n"),
        ])
        .unwrap()
    }

    #[test]
    fn views_read_as_swe_agent_prints_them() {
        let (mut editor, mut state) = (Editor::default(), tree());
        let view = editor
            .call(
                Dialect::SweAgent,
                &call("view", "/repo/pkg/a.py"),
                &mut state,
            )
            .unwrap();
        assert_eq!(view, "Here's the result of running `cat -n` on /repo/pkg/a.py:\n     1\tdef f():\n     2\t        return 1\n     3\t\n");
        let mut ranged = call("view", "/repo/pkg/a.py");
        ranged.view_range = Some(vec![2, -1]);
        assert!(editor
            .call(Dialect::SweAgent, &ranged, &mut state)
            .unwrap()
            .ends_with("     2\t        return 1\n     3\t\n"));
        ranged.view_range = Some(vec![0, 2]);
        assert_eq!(
            editor.call(Dialect::SweAgent, &ranged, &mut state).unwrap_err(),
            "Invalid `view_range`: [0, 2]. Its first element `0` should be within the range of lines of the file: [1, 3]"
        );
        let listing = editor
            .call(Dialect::SweAgent, &call("view", "/repo"), &mut state)
            .unwrap();
        assert_eq!(listing, "Here's the files and directories up to 2 levels deep in /repo, excluding hidden items:\n/repo\n/repo/pkg\n/repo/pkg/a.py\n/repo/top.txt\n\n\n");
        let r2e = editor
            .call(Dialect::R2e, &call("view", "/repo/pkg/a.py"), &mut state)
            .unwrap();
        assert_eq!(r2e, "Here's the result of running `cat -n` on the file: /repo/pkg/a.py:\n     1 def f():\n     2 \treturn 1\n");
        assert_eq!(
            editor.call(Dialect::SweAgent, &call("view", "pkg/a.py"), &mut state).unwrap_err(),
            "The path pkg/a.py is not an absolute path, it should start with `/`. Maybe you meant /repo/pkg/a.py?"
        );
        assert_eq!(
            editor
                .call(Dialect::SweAgent, &call("view", "/etc/passwd"), &mut state)
                .unwrap_err(),
            "The path /etc/passwd does not exist. Please provide a valid path."
        );
    }

    #[test]
    fn edits_show_a_snippet_and_undo_restores() {
        let (mut editor, mut state) = (Editor::default(), tree());
        let mut replace = call("str_replace", "/repo/pkg/a.py");
        replace.old_str = Some("return 1".into());
        replace.new_str = Some("return 2".into());
        let reply = editor
            .call(Dialect::SweAgent, &replace, &mut state)
            .unwrap();
        assert_eq!(reply, "The file /repo/pkg/a.py has been edited. Here's the result of running `cat -n` on a snippet of /repo/pkg/a.py:\n     1\tdef f():\n     2\t        return 2\nReview the changes and make sure they are as expected. Edit the file again if necessary.");
        assert_eq!(
            &*state.file("pkg/a.py").unwrap(),
            b"def f():\n        return 2\n"
        );
        assert!(editor
            .call(Dialect::SweAgent, &replace, &mut state)
            .unwrap_err()
            .contains("did not appear verbatim"));
        let mut insert = call("insert", "/repo/pkg/a.py");
        insert.insert_line = Some(0);
        insert.new_str = Some("import os".into());
        editor.call(Dialect::SweAgent, &insert, &mut state).unwrap();
        assert!(state
            .file("pkg/a.py")
            .unwrap()
            .starts_with(b"import os\ndef f"));
        insert.insert_line = Some(9);
        assert_eq!(
            editor.call(Dialect::SweAgent, &insert, &mut state).unwrap_err(),
            "Invalid `insert_line` parameter: 9. It should be within the range of lines of the file: [0, 4]"
        );
        let mut create = call("create", "/repo/pkg/b.py");
        create.file_text = Some("x = 1\n".into());
        assert_eq!(
            editor.call(Dialect::SweAgent, &create, &mut state).unwrap(),
            "File created successfully at: /repo/pkg/b.py"
        );
        assert!(editor
            .call(Dialect::SweAgent, &create, &mut state)
            .unwrap_err()
            .starts_with("File already exists"));
        let undo = call("undo_edit", "/repo/pkg/a.py");
        editor.call(Dialect::SweAgent, &undo, &mut state).unwrap();
        editor.call(Dialect::SweAgent, &undo, &mut state).unwrap();
        assert_eq!(&*state.file("pkg/a.py").unwrap(), b"def f():\n\treturn 1\n");
        assert_eq!(
            editor
                .call(Dialect::SweAgent, &undo, &mut state)
                .unwrap_err(),
            "No edit history found for /repo/pkg/a.py."
        );
        editor
            .call(
                Dialect::SweAgent,
                &call("undo_edit", "/repo/pkg/b.py"),
                &mut state,
            )
            .unwrap();
        assert!(state.file("pkg/b.py").is_none());
        let mut twice = call("str_replace", "/repo/pkg/a.py");
        twice.old_str = Some("f".into());
        assert_eq!(
            editor.call(Dialect::R2e, &twice, &mut state).unwrap_err(),
            "ERROR: Multiple occurrences of 'f' found in /repo/pkg/a.py. Please ensure it is unique before using str_replace."
        );
    }
}
