//! The `bash` tool: a shell over the episode's copy-on-write tree.
//!
//! Every published SWE environment gives its agent a shell, so spar gives one too, without a
//! host shell: the command line is parsed here ([`parse`]) and each command is implemented over
//! the episode's [`Snapshot`] ([`commands`]): `ls`, `cat`, `grep`, `find`, `sed`, `echo` with
//! redirections, `git diff`, ... Writes (`>`, `sed -i`, `rm`) change the episode's state like the
//! editor tools do; `python`, `python3` and `pytest` run in the sandbox over the current state
//! from the shell's working directory. The working directory persists between calls. Nothing
//! outside the repository (mounted at `/repo`, as in the sandbox) can be read or written, and
//! no host process ever starts.
//!
//! The parser is spar's own: the maintained bash parser (`brush-parser`) brings `insta`,
//! `cached`, `bon` and a PEG generator at run time for a grammar of which this tool uses a
//! small part; the part it uses (quoting, pipes, lists, redirections, here-documents) is one
//! tested module, and everything else is refused by name.

mod commands;
pub mod parse;
mod sed;

use crate::bytes::SharedBytes;
use crate::guest::REPO_MOUNT;
use crate::snapshot::{Entry, FileChange, Snapshot};
use parse::{AndOr, Command, Join, Redirect, Streams};
use std::collections::BTreeSet;

/// What a command line printed (stdout and stderr in the order the commands ran) and the exit
/// status of its last pipeline.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Captured {
    /// The output a terminal would show: both streams, in the order they were written.
    pub output: String,
    /// What reached standard output alone (a `python` run's stderr is counted here: the sandbox
    /// hands back both streams as one).
    pub stdout: String,
    /// What reached standard error alone.
    pub stderr: String,
    /// 0 for success; 127 for an unknown command; 2 for a syntax error.
    pub status: i32,
}

/// Where `python` runs: the episode's sandbox.
pub trait Sandbox {
    /// A harness failure (not a failing script: that is a status).
    type Error;
    /// Runs `python ARGS...` over `state`, starting in `cwd` (repository-relative), with
    /// `stdin`. The output is the run's stdout followed by its stderr.
    fn python(
        &mut self,
        state: &Snapshot,
        cwd: &str,
        args: &[String],
        stdin: &[u8],
    ) -> Result<Captured, Self::Error>;
}

/// One episode's shell: its working directory, and the directories `mkdir` made that hold no
/// file yet (a snapshot keeps only directories with files in them).
#[derive(Clone, Debug, Default)]
pub struct Shell {
    cwd: String,
    made_dirs: BTreeSet<String>,
}

/// The file trees a command works on: the current state, and the episode's start (what
/// `git diff` compares against).
pub struct Trees<'a> {
    /// The episode's state; commands that write replace it.
    pub state: &'a mut Snapshot,
    /// The state the episode started from.
    pub start: &'a Snapshot,
}

impl Shell {
    /// A shell at the repository root.
    pub fn new() -> Shell {
        Shell::default()
    }

    /// The working directory as the agent sees it (`/repo/...`).
    pub fn cwd(&self) -> String {
        guest_path(&self.cwd)
    }

    /// Runs a command line: and-or lists in order, each a set of pipelines.
    pub fn run<S: Sandbox>(
        &mut self,
        line: &str,
        trees: Trees<'_>,
        sandbox: &mut S,
    ) -> Result<Captured, S::Error> {
        let lists = match parse::parse(line) {
            Ok(lists) => lists,
            Err(e) => {
                return Ok(Captured {
                    output: format!("{e}\n"),
                    stderr: format!("{e}\n"),
                    status: 2,
                    ..Captured::default()
                })
            }
        };
        let mut run = Run {
            shell: self,
            state: trees.state,
            start: trees.start,
            output: Vec::new(),
            stdout: Vec::new(),
            stderr: Vec::new(),
        };
        let mut status = 0;
        for list in &lists {
            status = run.and_or(list, sandbox)?;
        }
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        Ok(Captured {
            output: text(&run.output),
            stdout: text(&run.stdout),
            stderr: text(&run.stderr),
            status,
        })
    }
}

/// `/repo` joined with a repository-relative path.
fn guest_path(path: &str) -> String {
    if path.is_empty() {
        REPO_MOUNT.to_owned()
    } else {
        format!("{REPO_MOUNT}/{path}")
    }
}

/// One command line being run.
struct Run<'a> {
    shell: &'a mut Shell,
    state: &'a mut Snapshot,
    start: &'a Snapshot,
    output: Vec<u8>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// One command's view of the world while it runs: the file system, its input and its output.
pub(crate) struct Proc<'a> {
    shell: &'a mut Shell,
    state: &'a mut Snapshot,
    start: &'a Snapshot,
    stdin: Vec<u8>,
    out: Vec<u8>,
    err: Vec<u8>,
}

/// Where an output descriptor points while redirections are applied.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    Out,
    Err,
    Null,
    File { path: String, append: bool },
}

impl Run<'_> {
    fn and_or<S: Sandbox>(&mut self, list: &AndOr, sandbox: &mut S) -> Result<i32, S::Error> {
        let mut status = self.pipeline(&list.first, sandbox)?;
        for (join, pipeline) in &list.rest {
            if (*join == Join::And) == (status == 0) {
                status = self.pipeline(pipeline, sandbox)?;
            }
        }
        Ok(status)
    }

    fn pipeline<S: Sandbox>(
        &mut self,
        commands: &[Command],
        sandbox: &mut S,
    ) -> Result<i32, S::Error> {
        let mut input = Vec::new();
        let mut status = 0;
        for (i, command) in commands.iter().enumerate() {
            let (out, st) = self.command(command, std::mem::take(&mut input), sandbox)?;
            status = st;
            if i + 1 == commands.len() {
                self.output.extend(&out);
                self.stdout.extend(out);
            } else {
                input = out;
            }
        }
        Ok(status)
    }

    /// Runs one command; returns its stdout (after redirections) and status. Its stderr goes
    /// straight to the terminal.
    fn command<S: Sandbox>(
        &mut self,
        command: &Command,
        stdin: Vec<u8>,
        sandbox: &mut S,
    ) -> Result<(Vec<u8>, i32), S::Error> {
        let mut proc = Proc {
            shell: self.shell,
            state: self.state,
            start: self.start,
            stdin,
            out: Vec::new(),
            err: Vec::new(),
        };
        let words = proc.expand(&command.words);
        let (fd1, fd2) = match proc.redirect(&command.redirects) {
            Ok(targets) => targets,
            Err(message) => {
                self.emit_stderr(format!("bash: {message}\n").as_bytes());
                return Ok((Vec::new(), 1));
            }
        };
        let status = match python_args(&words) {
            Some(args) => {
                let cwd = proc.shell.cwd.clone();
                let run = sandbox.python(proc.state, &cwd, &args, &proc.stdin)?;
                proc.out.extend(run.output.bytes());
                run.status
            }
            None => match commands::lookup(&words[0]) {
                Some(builtin) => builtin(&mut proc, &words[1..]),
                None => proc.fail(127, &format!("bash: {}: command not found", words[0])),
            },
        };
        let (out, err) = (std::mem::take(&mut proc.out), std::mem::take(&mut proc.err));
        let mut stdout = Vec::new();
        for (bytes, target) in [(out, &fd1), (err, &fd2)] {
            match target {
                Target::Out => stdout.extend(bytes),
                Target::Err => self.emit_stderr(&bytes),
                Target::Null => {}
                Target::File { path, .. } => {
                    // The file was created (or truncated) when the redirection was applied.
                    let mut proc = self.proc();
                    let mut contents = proc
                        .state
                        .file(path)
                        .map(|c| c.to_vec())
                        .unwrap_or_default();
                    contents.extend(bytes);
                    if let Err(e) = proc.write(path, contents) {
                        self.emit_stderr(format!("bash: {e}\n").as_bytes());
                    }
                }
            }
        }
        Ok((stdout, status))
    }

    fn emit_stderr(&mut self, bytes: &[u8]) {
        self.output.extend(bytes);
        self.stderr.extend(bytes);
    }

    fn proc(&mut self) -> Proc<'_> {
        Proc {
            shell: self.shell,
            state: self.state,
            start: self.start,
            stdin: Vec::new(),
            out: Vec::new(),
            err: Vec::new(),
        }
    }
}

impl Proc<'_> {
    /// The words with globs expanded against the tree (a glob that matches nothing stays as
    /// written, as in bash).
    fn expand(&self, words: &[parse::Word]) -> Vec<String> {
        let mut out = Vec::new();
        for word in words {
            let matches = word
                .pattern
                .as_deref()
                .map(|p| self.glob(p))
                .unwrap_or_default();
            if matches.is_empty() {
                out.push(word.text.clone());
            } else {
                out.extend(matches);
            }
        }
        out
    }

    /// Paths matching a glob, component by component, as the agent would write them.
    fn glob(&self, pattern: &str) -> Vec<String> {
        let absolute = pattern.starts_with('/');
        // (as shown, repository-relative path; `None` above the repository)
        let mut found = vec![(String::new(), (!absolute).then(|| self.shell.cwd.clone()))];
        let parts: Vec<&str> = pattern.split('/').filter(|p| !p.is_empty()).collect();
        for (i, part) in parts.iter().enumerate() {
            let mut next = Vec::new();
            for (shown, at) in found {
                let join = |name: &str| {
                    if shown.is_empty() && !absolute {
                        name.to_owned()
                    } else {
                        format!("{shown}/{name}")
                    }
                };
                let Some(at) = at else {
                    // Above the repository: only `/repo` itself is there.
                    if parse::glob_match(part, "repo") && i == 0 {
                        next.push((join("repo"), Some(String::new())));
                    }
                    continue;
                };
                let literal = !part.contains(['*', '?', '[']);
                if literal {
                    let name = part.replace('\\', "");
                    let target = match name.as_str() {
                        "." => Some(at.clone()),
                        ".." => at
                            .rsplit_once('/')
                            .map(|(p, _)| p.to_owned())
                            .or(Some(String::new())),
                        _ => Some(join_path(&at, &name)),
                    };
                    if let Some(target) = target.filter(|t| self.state.get(t).is_some()) {
                        next.push((join(&name), Some(target)));
                    }
                    continue;
                }
                if let Some(Entry::Dir(dir)) = self.state.get(&at) {
                    for name in dir.entries().keys() {
                        let hidden_ok = part.starts_with('.') || !name.starts_with('.');
                        if hidden_ok && parse::glob_match(part, name) {
                            next.push((join(name), Some(join_path(&at, name))));
                        }
                    }
                }
            }
            found = next;
        }
        found.into_iter().map(|(shown, _)| shown).collect()
    }

    /// Applies redirections: where stdout and stderr go, and stdin. `>` creates or truncates
    /// its file at once, as a shell does before the command starts.
    fn redirect(&mut self, redirects: &[Redirect]) -> Result<(Target, Target), String> {
        let (mut fd1, mut fd2) = (Target::Out, Target::Err);
        for redirect in redirects {
            match redirect {
                Redirect::Here(text) => self.stdin = text.clone().into_bytes(),
                Redirect::Read(file) => {
                    self.stdin = if file.text == "/dev/null" {
                        Vec::new()
                    } else {
                        self.read(&file.text)?
                    }
                }
                Redirect::Join { from: Streams::Err } => fd2 = fd1.clone(),
                Redirect::Join { .. } => fd1 = fd2.clone(),
                Redirect::Write {
                    streams,
                    file,
                    append,
                } => {
                    let target = if file.text == "/dev/null" {
                        Target::Null
                    } else {
                        let path = self.path(&file.text)?;
                        if !append || self.state.file(&path).is_none() {
                            self.write(&path, Vec::new())?;
                        }
                        Target::File {
                            path,
                            append: *append,
                        }
                    };
                    if *streams != Streams::Err {
                        fd1 = target.clone();
                    }
                    if *streams != Streams::Out {
                        fd2 = target;
                    }
                }
            }
        }
        Ok((fd1, fd2))
    }

    /// An argument as a repository-relative path: relative to the working directory, or
    /// absolute under `/repo`. Errors name the argument as given.
    pub(crate) fn path(&self, arg: &str) -> Result<String, String> {
        resolve(&self.shell.cwd, arg).ok_or_else(|| {
            format!("{arg}: only the repository ({REPO_MOUNT}) can be reached from this shell")
        })
    }

    /// Whether a repository-relative path is a directory (including ones `mkdir` made).
    pub(crate) fn is_dir(&self, path: &str) -> bool {
        matches!(self.state.get(path), Some(Entry::Dir(_))) || self.shell.made_dirs.contains(path)
    }

    /// The bytes of the file an argument names.
    pub(crate) fn read(&self, arg: &str) -> Result<Vec<u8>, String> {
        let path = self.path(arg)?;
        match self.state.get(&path) {
            Some(Entry::File(contents)) => Ok(contents.to_vec()),
            Some(Entry::Dir(_)) => Err(format!("{arg}: Is a directory")),
            None if self.shell.made_dirs.contains(&path) => Err(format!("{arg}: Is a directory")),
            None => Err(format!("{arg}: No such file or directory")),
        }
    }

    /// Writes a file at a repository-relative path; its directory must exist.
    pub(crate) fn write(&mut self, path: &str, contents: Vec<u8>) -> Result<(), String> {
        if path.is_empty() || self.is_dir(path) {
            return Err(format!("{}: Is a directory", guest_path(path)));
        }
        let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
        if !self.is_dir(parent) {
            return Err(format!("{}: No such file or directory", guest_path(path)));
        }
        self.change(&[FileChange::Written {
            path: path.to_owned(),
            contents: SharedBytes::from(contents),
        }])
    }

    /// Applies changes to the state.
    pub(crate) fn change(&mut self, changes: &[FileChange]) -> Result<(), String> {
        *self.state = self
            .state
            .with_changes(changes)
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// The arguments after `python` of a command that runs Python (`pytest ARGS` is
/// `python -m pytest ARGS`), or `None` for any other command.
fn python_args(words: &[String]) -> Option<Vec<String>> {
    let rest = words[1..].iter().cloned();
    match words[0].as_str() {
        "python" | "python3" => Some(rest.collect()),
        "pytest" | "py.test" => Some(
            ["-m", "pytest"]
                .map(String::from)
                .into_iter()
                .chain(rest)
                .collect(),
        ),
        _ => None,
    }
}

/// A path as the sandbox's file system reads it, as a repository-relative one: absolute under
/// `/repo`, or relative to `cwd` (repository-relative), with `.` and `..` resolved. `None` for
/// anything outside the repository.
pub(crate) fn resolve(cwd: &str, arg: &str) -> Option<String> {
    let (mut parts, rest): (Vec<&str>, &str) = match arg.strip_prefix('/') {
        Some(rest) => match rest.split_once('/') {
            Some(("repo", rest)) => (Vec::new(), rest),
            None if rest == "repo" => (Vec::new(), ""),
            _ => return None,
        },
        None => (cwd.split('/').filter(|p| !p.is_empty()).collect(), arg),
    };
    for part in rest.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

/// `dir/name`, or `name` at the root.
fn join_path(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests;
