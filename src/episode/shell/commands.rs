//! The commands of the `bash` tool, each over the episode's tree: a table of names to
//! functions, and the functions. Output, messages and exit statuses follow GNU coreutils, grep
//! and sed closely enough that an agent trained on a real shell reads them the same way; flags
//! a command does not know are refused (status 2), never ignored.

use super::super::files::within;
use super::{join_path, parse::glob_match, Proc};
use crate::diff::Patch;
use crate::snapshot::{Entry, FileChange, Snapshot};
use regex::Regex;

/// A command: reads and writes through its [`Proc`], returns the exit status.
pub(super) type Builtin = fn(&mut Proc, &[String]) -> i32;

const COMMANDS: &[(&str, Builtin)] = &[
    ("cd", cd),
    ("pwd", pwd),
    ("ls", ls),
    ("cat", cat),
    ("head", head),
    ("tail", tail),
    ("wc", wc),
    ("grep", grep),
    ("egrep", egrep),
    ("find", find),
    ("sed", super::sed::sed),
    ("echo", echo),
    ("printf", printf),
    ("diff", diff),
    ("git", git),
    ("mkdir", mkdir),
    ("touch", touch),
    ("rm", rm),
    ("cp", cp),
    ("mv", mv),
    ("sort", sort),
    ("uniq", uniq),
    ("true", |_, _| 0),
    ("false", |_, _| 1),
    ("which", which),
];

/// The command called `name`, if the shell has it.
pub(super) fn lookup(name: &str) -> Option<Builtin> {
    COMMANDS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// Command-line flags: short flags (`-rn`, `-n 5`, `-n5`), long ones (`--include=GLOB`), and
/// operands; `--` ends the flags.
#[derive(Default)]
pub(super) struct Flags {
    pub short: Vec<(char, String)>,
    pub long: Vec<(String, String)>,
    pub operands: Vec<String>,
}

impl Flags {
    /// Splits `args`; `valued` are the short flags that take a value. Unknown short flags (not
    /// in `known` or `valued`) are an error message.
    pub fn parse(
        command: &str,
        args: &[String],
        known: &str,
        valued: &str,
    ) -> Result<Flags, String> {
        let mut flags = Flags::default();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            if arg == "--" {
                flags.operands.extend(args.by_ref().cloned());
            } else if let Some(long) = arg.strip_prefix("--") {
                let (name, value) = long.split_once('=').unwrap_or((long, ""));
                flags.long.push((name.to_owned(), value.to_owned()));
            } else if arg.len() > 1 && arg.starts_with('-') {
                for (at, c) in arg[1..].char_indices() {
                    if valued.contains(c) {
                        let rest = &arg[2 + at..];
                        let value = if rest.is_empty() {
                            args.next().cloned().ok_or_else(|| {
                                format!("{command}: option requires an argument -- '{c}'")
                            })?
                        } else {
                            rest.to_owned()
                        };
                        flags.short.push((c, value));
                        break;
                    }
                    if !known.contains(c) {
                        return Err(format!("{command}: invalid option -- '{c}'"));
                    }
                    flags.short.push((c, String::new()));
                }
            } else {
                flags.operands.push(arg.clone());
            }
        }
        Ok(flags)
    }

    /// Whether short flag `c` was given.
    pub fn has(&self, c: char) -> bool {
        self.short.iter().any(|(f, _)| *f == c)
    }

    /// The last value of short flag `c`.
    pub fn value(&self, c: char) -> Option<&str> {
        self.short
            .iter()
            .rev()
            .find(|(f, _)| *f == c)
            .map(|(_, v)| v.as_str())
    }
}

/// Runs `body` with parsed flags, or prints the flag error with status 2.
fn with_flags(
    proc: &mut Proc,
    command: &str,
    args: &[String],
    (known, valued): (&str, &str),
    body: impl FnOnce(&mut Proc, Flags) -> i32,
) -> i32 {
    match Flags::parse(command, args, known, valued) {
        Ok(flags) => body(proc, flags),
        Err(message) => proc.fail(2, &message),
    }
}

impl Proc<'_> {
    /// Prints `message` on stderr and returns `status`.
    pub(super) fn fail(&mut self, status: i32, message: &str) -> i32 {
        self.err.extend(message.bytes());
        self.err.push(b'\n');
        status
    }

    pub(super) fn print(&mut self, text: &str) {
        self.out.extend(text.bytes());
    }

    /// The inputs of a filter: each operand's contents (`-` is stdin), or stdin when there is
    /// none. Unreadable operands are reported and skipped; the flag says whether any was.
    pub(super) fn inputs(
        &mut self,
        command: &str,
        operands: &[String],
    ) -> (Vec<(String, Vec<u8>)>, bool) {
        if operands.is_empty() {
            return (
                vec![(String::new(), std::mem::take(&mut self.stdin))],
                false,
            );
        }
        let mut inputs = Vec::new();
        let mut failed = false;
        for name in operands {
            if name == "-" {
                inputs.push((name.clone(), std::mem::take(&mut self.stdin)));
                continue;
            }
            match self.read(name) {
                Ok(bytes) => inputs.push((name.clone(), bytes)),
                Err(e) => {
                    failed = true;
                    self.fail(1, &format!("{command}: {e}"));
                }
            }
        }
        (inputs, failed)
    }
}

fn cd(proc: &mut Proc, args: &[String]) -> i32 {
    let target = args.first().map_or("/repo", String::as_str);
    match proc.path(target) {
        Ok(path) if proc.is_dir(&path) => {
            proc.shell.cwd = path;
            0
        }
        Ok(_)
            if proc
                .state
                .get(&proc.path(target).unwrap_or_default())
                .is_some() =>
        {
            proc.fail(1, &format!("bash: cd: {target}: Not a directory"))
        }
        Ok(_) => proc.fail(1, &format!("bash: cd: {target}: No such file or directory")),
        Err(e) => proc.fail(1, &format!("bash: cd: {e}")),
    }
}

fn pwd(proc: &mut Proc, _: &[String]) -> i32 {
    let cwd = proc.shell.cwd();
    proc.print(&format!("{cwd}\n"));
    0
}

fn ls(proc: &mut Proc, args: &[String]) -> i32 {
    with_flags(proc, "ls", args, ("aAl1RhFd", ""), |proc, flags| {
        let operands = if flags.operands.is_empty() {
            vec![".".to_owned()]
        } else {
            flags.operands.clone()
        };
        let mut status = 0;
        let mut sections = Vec::new();
        for name in &operands {
            let path = match proc.path(name) {
                Ok(p) => p,
                Err(e) => {
                    status = proc.fail(2, &format!("ls: cannot access '{e}'"));
                    continue;
                }
            };
            match proc.state.get(&path) {
                Some(Entry::File(contents)) => {
                    proc.print(&ls_line(&flags, name, Some(contents.len())))
                }
                _ if proc.is_dir(&path) && !flags.has('d') => sections.push((name.clone(), path)),
                Some(Entry::Dir(_)) => proc.print(&ls_line(&flags, name, None)),
                None => {
                    status = proc.fail(
                        2,
                        &format!("ls: cannot access '{name}': No such file or directory"),
                    )
                }
            }
        }
        let headers = operands.len() > 1 || flags.has('R');
        for (i, (name, path)) in sections.iter().enumerate() {
            ls_dir(proc, &flags, name, path, headers, i > 0);
        }
        status
    })
}

fn ls_dir(proc: &mut Proc, flags: &Flags, name: &str, path: &str, header: bool, gap: bool) {
    if gap {
        proc.print("\n");
    }
    if header {
        proc.print(&format!("{name}:\n"));
    }
    let entries: Vec<(String, Option<usize>)> = match proc.state.get(path) {
        Some(Entry::Dir(dir)) => dir
            .entries()
            .iter()
            .map(|(n, e)| {
                (
                    n.clone(),
                    if let Entry::File(c) = e {
                        Some(c.len())
                    } else {
                        None
                    },
                )
            })
            .collect(),
        _ => Vec::new(),
    };
    let all = flags.has('a') || flags.has('A');
    if flags.has('a') {
        proc.print(&ls_line(flags, ".", None));
        proc.print(&ls_line(flags, "..", None));
    }
    let shown: Vec<_> = entries
        .into_iter()
        .filter(|(n, _)| all || !n.starts_with('.'))
        .collect();
    for (entry, size) in &shown {
        proc.print(&ls_line(flags, entry, *size));
    }
    if flags.has('R') {
        for (entry, size) in shown {
            if size.is_none() {
                let shown_name = if name.ends_with('/') {
                    format!("{name}{entry}")
                } else {
                    format!("{name}/{entry}")
                };
                ls_dir(
                    proc,
                    flags,
                    &shown_name,
                    &join_path(path, &entry),
                    true,
                    true,
                );
            }
        }
    }
}

/// One `ls` line: the name (with `/` after a directory under `-F`), or `-l`'s long form.
fn ls_line(flags: &Flags, name: &str, size: Option<usize>) -> String {
    let mark = if flags.has('F') && size.is_none() {
        "/"
    } else {
        ""
    };
    if !flags.has('l') {
        return format!("{name}{mark}\n");
    }
    let (mode, size) = match size {
        Some(bytes) => ("-rw-r--r--", bytes),
        None => ("drwxr-xr-x", 4096),
    };
    format!("{mode} 1 root root {size:>8} Jan  1 00:00 {name}{mark}\n")
}

fn cat(proc: &mut Proc, args: &[String]) -> i32 {
    with_flags(proc, "cat", args, ("n", ""), |proc, flags| {
        let (inputs, failed) = proc.inputs("cat", &flags.operands);
        let mut number = 0;
        for (_, bytes) in inputs {
            if flags.has('n') {
                for line in String::from_utf8_lossy(&bytes).split_inclusive('\n') {
                    number += 1;
                    proc.print(&format!("{number:>6}\t{line}"));
                }
            } else {
                proc.out.extend(bytes);
            }
        }
        i32::from(failed)
    })
}

/// `-5` is `-n 5` for head and tail.
fn count_shorthand(args: &[String]) -> Vec<String> {
    args.iter()
        .flat_map(|a| match a.strip_prefix('-') {
            Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                vec!["-n".to_owned(), n.to_owned()]
            }
            _ => vec![a.clone()],
        })
        .collect()
}

fn head(proc: &mut Proc, args: &[String]) -> i32 {
    ends(proc, "head", args)
}

fn tail(proc: &mut Proc, args: &[String]) -> i32 {
    ends(proc, "tail", args)
}

/// `head` and `tail`: the first or last N lines (`tail -n +N`: from line N on).
fn ends(proc: &mut Proc, command: &str, args: &[String]) -> i32 {
    let args = count_shorthand(args);
    with_flags(proc, command, &args, ("qv", "n"), |proc, flags| {
        let spec = flags.value('n').unwrap_or("10").to_owned();
        let from_start = command == "tail" && spec.starts_with('+');
        let Ok(n) = spec.trim_start_matches(['+', '-']).parse::<usize>() else {
            return proc.fail(1, &format!("{command}: invalid number of lines: '{spec}'"));
        };
        let (inputs, failed) = proc.inputs(command, &flags.operands);
        let many = inputs.len() > 1;
        for (i, (name, bytes)) in inputs.iter().enumerate() {
            if many {
                proc.print(&format!(
                    "{}==> {name} <==\n",
                    if i > 0 { "\n" } else { "" }
                ));
            }
            let text = String::from_utf8_lossy(bytes);
            let lines: Vec<&str> = text.split_inclusive('\n').collect();
            let keep = match (command, from_start) {
                ("head", _) => &lines[..n.min(lines.len())],
                (_, true) => &lines[(n.max(1) - 1).min(lines.len())..],
                _ => &lines[lines.len().saturating_sub(n)..],
            };
            let joined = keep.concat();
            proc.print(&joined);
        }
        i32::from(failed)
    })
}

fn wc(proc: &mut Proc, args: &[String]) -> i32 {
    with_flags(proc, "wc", args, ("lwcm", ""), |proc, flags| {
        let chosen: Vec<char> = ['l', 'w', 'c']
            .into_iter()
            .filter(|c| flags.has(*c) || (*c == 'c' && flags.has('m')))
            .collect();
        let chosen = if chosen.is_empty() {
            vec!['l', 'w', 'c']
        } else {
            chosen
        };
        let (inputs, failed) = proc.inputs("wc", &flags.operands);
        let mut total = [0usize; 3];
        let count = |bytes: &[u8]| {
            let text = String::from_utf8_lossy(bytes);
            [
                bytes.iter().filter(|b| **b == b'\n').count(),
                text.split_whitespace().count(),
                bytes.len(),
            ]
        };
        let line = |counts: [usize; 3], name: &str| {
            let mut fields: Vec<String> = chosen
                .iter()
                .map(|c| {
                    counts[match c {
                        'l' => 0,
                        'w' => 1,
                        _ => 2,
                    }]
                    .to_string()
                })
                .collect();
            if !name.is_empty() {
                fields.push(name.to_owned());
            }
            fields.join(" ") + "\n"
        };
        let many = inputs.len() > 1;
        for (name, bytes) in &inputs {
            let counts = count(bytes);
            for (t, c) in total.iter_mut().zip(counts) {
                *t += c;
            }
            proc.print(&line(counts, name));
        }
        if many {
            proc.print(&line(total, "total"));
        }
        i32::from(failed)
    })
}

fn egrep(proc: &mut Proc, args: &[String]) -> i32 {
    let mut args = args.to_vec();
    args.insert(0, "-E".to_owned());
    grep(proc, &args)
}

/// A regular expression as grep and sed read it: basic (BRE: `\(`, `\|`, `\+` are operators
/// and the bare characters literal) unless `extended`; Rust's regex syntax is close to ERE.
pub(super) fn regex(
    pattern: &str,
    extended: bool,
    fixed: bool,
    ignore_case: bool,
    word: bool,
) -> Result<Regex, String> {
    let mut body = if fixed {
        regex::escape(pattern)
    } else if extended {
        pattern.to_owned()
    } else {
        bre_to_ere(pattern)
    };
    if word {
        body = format!(r"\b(?:{body})\b");
    }
    if ignore_case {
        body = format!("(?i){body}");
    }
    Regex::new(&body).map_err(|e| {
        format!(
            "invalid regular expression {pattern:?}: {}",
            e.to_string().lines().last().unwrap_or("")
        )
    })
}

fn bre_to_ere(pattern: &str) -> String {
    let mut out = String::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(op @ ('(' | ')' | '|' | '+' | '?' | '{' | '}')) => out.push(op),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push_str(r"\\"),
            },
            '(' | ')' | '|' | '+' | '?' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// What `grep`'s flags ask for.
struct GrepOptions {
    regexes: Vec<Regex>,
    invert: bool,
    number: bool,
    /// `-H` / `-h`; by default, names are shown for several files or a recursive search.
    names: Option<bool>,
    /// `-l` (files with a match) or `-L` (files without).
    list: Option<bool>,
    count: bool,
    only: bool,
    quiet: bool,
    quiet_errors: bool,
    skip_binary: bool,
    max: Option<usize>,
    after: usize,
    before: usize,
    recursive: bool,
    include: Vec<String>,
    exclude: Vec<String>,
    exclude_dir: Vec<String>,
}

impl GrepOptions {
    /// The options, and the operands left after the patterns.
    fn parse(args: &[String]) -> Result<(GrepOptions, Vec<String>), String> {
        let flags = Flags::parse("grep", args, "rRnilLvwcEFhHoqsIPx", "eABCm")?;
        let mut operands = flags.operands.clone();
        let given: Vec<String> = flags
            .short
            .iter()
            .filter(|(c, _)| *c == 'e')
            .map(|(_, v)| v.clone())
            .collect();
        let patterns = match given {
            given if !given.is_empty() => given,
            _ if operands.is_empty() => {
                return Err("Usage: grep [OPTION]... PATTERNS [FILE]...".into())
            }
            _ => vec![operands.remove(0)],
        };
        let known = ["include", "exclude", "exclude-dir", "color", "colour"];
        if let Some((unknown, _)) = flags
            .long
            .iter()
            .find(|(n, _)| !known.contains(&n.as_str()))
        {
            return Err(format!("grep: unrecognized option '--{unknown}'"));
        }
        let number = |c: char| -> Result<Option<usize>, String> {
            flags
                .value(c)
                .map(|v| v.parse().map_err(|_| format!("grep: {v}: invalid number")))
                .transpose()
        };
        let context = |c: char| Ok::<_, String>(number(c)?.or(number('C')?).unwrap_or(0));
        let long = |name: &str| {
            flags
                .long
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .collect()
        };
        let (whole_line, fixed) = (flags.has('x'), flags.has('F'));
        let extended = flags.has('E') || flags.has('P');
        let mut regexes = Vec::new();
        for p in &patterns {
            let (p, fixed) = match (whole_line, fixed) {
                (true, true) => (format!("^{}$", regex::escape(p)), false),
                (true, false) => (format!("^(?:{p})$"), false),
                (false, fixed) => (p.clone(), fixed),
            };
            regexes.push(
                regex(
                    &p,
                    extended || whole_line,
                    fixed,
                    flags.has('i'),
                    flags.has('w'),
                )
                .map_err(|e| format!("grep: {e}"))?,
            );
        }
        let options = GrepOptions {
            regexes,
            invert: flags.has('v'),
            number: flags.has('n'),
            names: if flags.has('h') {
                Some(false)
            } else if flags.has('H') {
                Some(true)
            } else {
                None
            },
            list: if flags.has('l') {
                Some(true)
            } else if flags.has('L') {
                Some(false)
            } else {
                None
            },
            count: flags.has('c'),
            only: flags.has('o'),
            quiet: flags.has('q'),
            quiet_errors: flags.has('s'),
            skip_binary: flags.has('I'),
            max: number('m')?,
            after: context('A')?,
            before: context('B')?,
            recursive: flags.has('r') || flags.has('R'),
            include: long("include"),
            exclude: long("exclude"),
            exclude_dir: long("exclude-dir"),
        };
        Ok((options, operands))
    }

    /// Whether a recursive search reads this file (`--include`, `--exclude`, `--exclude-dir`).
    fn wants(&self, shown: &str) -> bool {
        let base = shown.rsplit('/').next().unwrap_or(shown);
        let in_excluded_dir = shown
            .split('/')
            .rev()
            .skip(1)
            .any(|d| self.exclude_dir.iter().any(|g| glob_match(g, d)));
        (self.include.is_empty() || self.include.iter().any(|g| glob_match(g, base)))
            && !self.exclude.iter().any(|g| glob_match(g, base))
            && !in_excluded_dir
    }
}

fn grep(proc: &mut Proc, args: &[String]) -> i32 {
    let (options, mut operands) = match GrepOptions::parse(args) {
        Ok(parsed) => parsed,
        Err(e) => return proc.fail(2, &e),
    };
    if operands.is_empty() && options.recursive {
        operands.push(".".to_owned());
    }
    let (files, status) = grep_inputs(proc, &options, &operands);
    let show_names = options
        .names
        .unwrap_or(files.len() > 1 || options.recursive);
    let mut found = false;
    for (name, bytes) in &files {
        let shown = if name.is_empty() {
            "(standard input)"
        } else {
            name
        };
        found |= grep_file(proc, &options, shown, bytes, show_names);
        if found && options.quiet {
            break;
        }
    }
    if found {
        0
    } else {
        status
    }
}

/// The files a grep reads (stdin when there is no operand), and status 2 when one could not be
/// read (1 otherwise: no match yet).
fn grep_inputs(
    proc: &mut Proc,
    options: &GrepOptions,
    operands: &[String],
) -> (Vec<(String, Vec<u8>)>, i32) {
    if operands.is_empty() {
        return (vec![(String::new(), std::mem::take(&mut proc.stdin))], 1);
    }
    let mut files = Vec::new();
    let mut status = 1;
    for name in operands {
        let read = match proc.path(name) {
            Ok(path) if options.recursive && proc.is_dir(&path) => {
                files.extend(
                    walk_files(proc.state, name, &path)
                        .into_iter()
                        .filter(|(shown, _)| options.wants(shown)),
                );
                continue;
            }
            Ok(path) if proc.is_dir(&path) => Err(format!("{name}: Is a directory")),
            Ok(_) => proc.read(name),
            Err(e) => Err(e),
        };
        match read {
            Ok(bytes) => files.push((name.clone(), bytes)),
            Err(e) => {
                status = 2;
                if !options.quiet_errors {
                    proc.fail(2, &format!("grep: {e}"));
                }
            }
        }
    }
    (files, status)
}

/// Greps one file; returns whether it printed (or, quietly, would print) anything.
fn grep_file(
    proc: &mut Proc,
    options: &GrepOptions,
    name: &str,
    bytes: &[u8],
    show_names: bool,
) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        let lossy = String::from_utf8_lossy(bytes);
        let matched = !options.skip_binary && options.regexes.iter().any(|re| re.is_match(&lossy));
        let listed = matched == (options.list != Some(false));
        match options.list {
            _ if options.quiet || options.count => {}
            Some(_) if listed => proc.print(&format!("{name}\n")),
            None if matched => proc.print(&format!("Binary file {name} matches\n")),
            _ => {}
        }
        return listed;
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut hits: Vec<usize> = (0..lines.len())
        .filter(|i| options.regexes.iter().any(|re| re.is_match(lines[*i])) != options.invert)
        .collect();
    hits.truncate(options.max.unwrap_or(usize::MAX));
    let prefix = |rest: String| {
        if show_names {
            format!("{name}:{rest}")
        } else {
            rest
        }
    };
    match options.list {
        Some(with) => {
            let listed = hits.is_empty() != with;
            if listed && !options.quiet {
                proc.print(&format!("{name}\n"));
            }
            return listed;
        }
        None if options.quiet => return !hits.is_empty(),
        None if options.count => {
            proc.print(&prefix(format!("{}\n", hits.len())));
            return !hits.is_empty();
        }
        None => {}
    }
    print_hits(proc, options, (name, show_names), &lines, &hits);
    !hits.is_empty()
}

/// Matching lines with their context lines (`-A`, `-B`, `-C`), `--` between groups, and
/// `name:N:` / `name-N-` prefixes; `-o` prints only the matches.
fn print_hits(
    proc: &mut Proc,
    options: &GrepOptions,
    (name, show_names): (&str, bool),
    lines: &[&str],
    hits: &[usize],
) {
    let mut shown_until = 0usize;
    for (k, &hit) in hits.iter().enumerate() {
        let from = hit.saturating_sub(options.before).max(shown_until);
        if k > 0 && from > shown_until && (options.before > 0 || options.after > 0) {
            proc.print("--\n");
        }
        let to = (hit + options.after).min(lines.len() - 1);
        for (i, line) in lines.iter().enumerate().take(to + 1).skip(from) {
            let is_hit = hits.binary_search(&i).is_ok();
            let separator = if is_hit { ':' } else { '-' };
            let mut prefix = String::new();
            if show_names {
                prefix.push_str(&format!("{name}{separator}"));
            }
            if options.number {
                prefix.push_str(&format!("{}{separator}", i + 1));
            }
            if !options.only {
                proc.print(&format!("{prefix}{line}\n"));
            } else if is_hit && !options.invert {
                for m in options.regexes.iter().flat_map(|re| re.find_iter(line)) {
                    proc.print(&format!("{prefix}{}\n", m.as_str()));
                }
            }
            shown_until = i + 1;
        }
    }
}

/// Every file under a directory, sorted, with the name as the agent would see it (`shown`
/// joined with the path below it).
fn walk_files(state: &Snapshot, shown: &str, path: &str) -> Vec<(String, Vec<u8>)> {
    let shown = shown.trim_end_matches('/');
    state
        .files()
        .into_iter()
        .filter(|(p, _)| p != path && within(p, path))
        .map(|(p, c)| {
            let below = p[path.len()..].trim_start_matches('/');
            (format!("{shown}/{below}"), c.to_vec())
        })
        .collect()
}

/// One test of a `find` expression.
enum Test {
    Name(String, bool),
    Path(String),
    Type(bool),
    Not(Box<Test>),
}

impl Test {
    fn matches(&self, shown: &str, is_dir: bool) -> bool {
        let base = shown.rsplit('/').next().unwrap_or(shown);
        match self {
            Test::Name(glob, false) => glob_match(glob, base),
            Test::Name(glob, true) => glob_match(&glob.to_lowercase(), &base.to_lowercase()),
            Test::Path(glob) => glob_match(glob, shown),
            Test::Type(dir) => *dir == is_dir,
            Test::Not(test) => !test.matches(shown, is_dir),
        }
    }
}

/// A `find` command line: where to start, the tests every printed entry passes, and the depths.
struct FindQuery {
    starts: Vec<String>,
    tests: Vec<Test>,
    min_depth: usize,
    max_depth: usize,
}

impl FindQuery {
    fn parse(args: &[String]) -> Result<FindQuery, String> {
        let is_start = |a: &&String| !a.starts_with('-') && *a != "!" && *a != "(";
        let mut starts: Vec<String> = args.iter().take_while(is_start).cloned().collect();
        if starts.is_empty() {
            starts.push(".".to_owned());
        }
        let mut query = FindQuery {
            starts,
            tests: Vec::new(),
            min_depth: 0,
            max_depth: usize::MAX,
        };
        let mut rest = args.iter().skip_while(is_start);
        let mut negate = false;
        while let Some(arg) = rest.next() {
            let mut value = || {
                rest.next()
                    .cloned()
                    .ok_or(format!("find: missing argument to `{arg}'"))
            };
            let test = match arg.as_str() {
                "!" | "-not" => {
                    negate = !negate;
                    continue;
                }
                "-print" | "-a" | "-and" => continue,
                "-name" | "-iname" => Test::Name(value()?, arg == "-iname"),
                "-path" | "-wholename" => Test::Path(value()?),
                "-type" => match value()?.as_str() {
                    "f" => Test::Type(false),
                    "d" => Test::Type(true),
                    other => return Err(format!("find: Unknown argument to -type: {other}")),
                },
                "-maxdepth" | "-mindepth" => {
                    let depth = value()?.parse().map_err(|_| format!("find: {arg} needs a number"))?;
                    if arg == "-maxdepth" { query.max_depth = depth } else { query.min_depth = depth }
                    continue;
                }
                other => return Err(format!(
                    "find: unknown predicate `{other}' (this shell's find knows -name, -iname, -path, -type f|d, -maxdepth, -mindepth, -not)"
                )),
            };
            query.tests.push(if std::mem::take(&mut negate) {
                Test::Not(Box::new(test))
            } else {
                test
            });
        }
        Ok(query)
    }

    fn selects(&self, shown: &str, is_dir: bool, depth: usize) -> bool {
        (self.min_depth..=self.max_depth).contains(&depth)
            && self.tests.iter().all(|t| t.matches(shown, is_dir))
    }
}

fn find(proc: &mut Proc, args: &[String]) -> i32 {
    let query = match FindQuery::parse(args) {
        Ok(query) => query,
        Err(e) => return proc.fail(1, &e),
    };
    let mut status = 0;
    for start in &query.starts {
        // The repository is the only thing under `/`.
        let start = if start.trim_end_matches('/').is_empty() {
            "/repo"
        } else {
            start.as_str()
        };
        let path = match proc.path(start) {
            Ok(p) if proc.state.get(&p).is_some() || proc.is_dir(&p) => p,
            _ => {
                status = proc.fail(1, &format!("find: '{start}': No such file or directory"));
                continue;
            }
        };
        let mut found = Vec::new();
        walk(
            proc.state,
            &path,
            start.trim_end_matches('/'),
            0,
            &mut found,
        );
        for (shown, is_dir, depth) in found {
            if query.selects(&shown, is_dir, depth) {
                proc.print(&format!("{shown}\n"));
            }
        }
    }
    status
}

/// Pre-order walk: every entry under `path` with its shown name, kind and depth.
fn walk(
    state: &Snapshot,
    path: &str,
    shown: &str,
    depth: usize,
    out: &mut Vec<(String, bool, usize)>,
) {
    let shown = if shown.is_empty() { "/" } else { shown };
    match state.get(path) {
        Some(Entry::Dir(dir)) => {
            out.push((shown.to_owned(), true, depth));
            for name in dir.entries().keys() {
                walk(
                    state,
                    &join_path(path, name),
                    &format!("{}/{name}", shown.trim_end_matches('/')),
                    depth + 1,
                    out,
                );
            }
        }
        Some(Entry::File(_)) => out.push((shown.to_owned(), false, depth)),
        None => out.push((shown.to_owned(), true, depth)),
    }
}

/// Backslash escapes of `echo -e` and `printf`.
fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some('0') => out.push('\0'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn echo(proc: &mut Proc, args: &[String]) -> i32 {
    let (mut newline, mut escapes) = (true, false);
    let mut words = args;
    while let Some(flag) = words
        .first()
        .filter(|w| w.len() > 1 && w.starts_with('-') && w[1..].chars().all(|c| "neE".contains(c)))
    {
        newline &= !flag.contains('n');
        escapes = flag.contains('e') || (escapes && !flag.contains('E'));
        words = &words[1..];
    }
    let text = words.join(" ");
    let text = if escapes { unescape(&text) } else { text };
    proc.print(&text);
    if newline {
        proc.print("\n");
    }
    0
}

fn printf(proc: &mut Proc, args: &[String]) -> i32 {
    let Some((format, mut values)) = args.split_first() else {
        return proc.fail(2, "printf: usage: printf FORMAT [ARGUMENTS...]");
    };
    let format = unescape(format);
    loop {
        let mut out = String::new();
        let mut chars = format.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('%') => out.push('%'),
                Some('s' | 'd' | 'i') => {
                    let (first, rest) = values.split_first().map_or(("", values), |(f, r)| (f.as_str(), r));
                    out.push_str(first);
                    values = rest;
                }
                Some(other) => return proc.fail(1, &format!("printf: %{other}: invalid directive (this shell's printf knows %s, %d, %%)")),
                None => out.push('%'),
            }
        }
        proc.print(&out);
        if values.is_empty() || !format.contains('%') {
            return 0;
        }
    }
}

fn diff(proc: &mut Proc, args: &[String]) -> i32 {
    with_flags(proc, "diff", args, ("uq", ""), |proc, flags| {
        let [a, b] = flags.operands.as_slice() else {
            return proc.fail(2, "diff: give two files: diff [-u] OLD NEW");
        };
        let (old, new) = match (proc.read(a), proc.read(b)) {
            (Ok(old), Ok(new)) => (old, new),
            (Err(e), _) | (_, Err(e)) => return proc.fail(2, &format!("diff: {e}")),
        };
        if old == new {
            return 0;
        }
        if flags.has('q') {
            proc.print(&format!("Files {a} and {b} differ\n"));
        } else {
            let text = similar::udiff::unified_diff(
                similar::Algorithm::Myers,
                &String::from_utf8_lossy(&old),
                &String::from_utf8_lossy(&new),
                3,
                Some((a, b)),
            );
            proc.print(&text);
        }
        1
    })
}

/// `git diff`, `git status` and `git checkout -- PATH` / `git restore PATH`, against the
/// episode's start (the repository as the episode began is the one commit there is).
fn git(proc: &mut Proc, args: &[String]) -> i32 {
    let (sub, rest) = args
        .split_first()
        .map_or(("", &[][..]), |(s, r)| (s.as_str(), r));
    let paths: Result<Vec<String>, String> = rest
        .iter()
        .filter(|a| !a.starts_with('-'))
        .map(|a| proc.path(a))
        .collect();
    let paths = match paths {
        Ok(paths) => paths,
        Err(e) => return proc.fail(128, &format!("fatal: {e}")),
    };
    let flag = |names: &[&str]| rest.iter().any(|a| names.contains(&a.as_str()));
    match sub {
        "diff" => git_diff(proc, &paths, flag(&["--stat", "--name-only"])),
        "status" => git_status(proc, flag(&["-s", "--short", "--porcelain"])),
        "checkout" | "restore" if !paths.is_empty() => git_restore(proc, &paths),
        _ => proc.fail(
            1,
            &format!("git: '{sub}' is not available here; this shell's git knows diff [--stat] [PATH...], status [-s], checkout -- PATH... and restore PATH... (against the episode's start)"),
        ),
    }
}

/// Whether `file` is one of `paths` or under one (every file when there is none).
fn under(paths: &[String], file: &str) -> bool {
    paths.is_empty() || paths.iter().any(|p| within(file, p))
}

fn git_diff(proc: &mut Proc, paths: &[String], names_only: bool) -> i32 {
    let patch = match Patch::between(proc.start, proc.state) {
        Ok(p) => p.filter(|f| under(paths, f)),
        Err(e) => return proc.fail(128, &format!("fatal: {e}")),
    };
    if names_only {
        let names: String = patch.paths().iter().map(|p| format!("{p}\n")).collect();
        proc.print(&names);
    } else if !patch.is_empty() {
        proc.print(&patch.to_string());
    }
    0
}

fn git_status(proc: &mut Proc, short: bool) -> i32 {
    let changes = proc.state.changes_from(proc.start);
    let mut text = String::new();
    for change in &changes {
        let (code, word) = match change {
            FileChange::Deleted { .. } => ("D", "deleted:"),
            FileChange::Written { path, .. } if proc.start.file(path).is_some() => {
                ("M", "modified:")
            }
            FileChange::Written { .. } => ("??", "new file:"),
        };
        text.push_str(&if short {
            format!("{code:>2} {}\n", change.path())
        } else {
            format!("\t{word:<12}{}\n", change.path())
        });
    }
    if !short {
        text = if changes.is_empty() {
            "nothing to commit, working tree clean\n".to_owned()
        } else {
            format!("Changes not staged for commit:\n{text}")
        };
    }
    proc.print(&text);
    0
}

fn git_restore(proc: &mut Proc, paths: &[String]) -> i32 {
    let restore: Vec<FileChange> = proc
        .state
        .changes_from(proc.start)
        .into_iter()
        .filter(|c| under(paths, c.path()))
        .map(|c| match proc.start.file(c.path()) {
            Some(contents) => FileChange::Written {
                path: c.path().to_owned(),
                contents,
            },
            None => FileChange::Deleted {
                path: c.path().to_owned(),
            },
        })
        .collect();
    match proc.change(&restore) {
        Ok(()) => 0,
        Err(e) => proc.fail(1, &format!("error: {e}")),
    }
}

fn mkdir(proc: &mut Proc, args: &[String]) -> i32 {
    with_flags(proc, "mkdir", args, ("pv", ""), |proc, flags| {
        let mut status = 0;
        for name in &flags.operands {
            let path = match proc.path(name) {
                Ok(p) => p,
                Err(e) => {
                    status = proc.fail(1, &format!("mkdir: cannot create directory '{e}'"));
                    continue;
                }
            };
            let parent = path.rsplit_once('/').map_or("", |(p, _)| p).to_owned();
            if proc.state.get(&path).is_some() || proc.shell.made_dirs.contains(&path) {
                if !flags.has('p') {
                    status = proc.fail(
                        1,
                        &format!("mkdir: cannot create directory '{name}': File exists"),
                    );
                }
                continue;
            }
            if !flags.has('p') && !proc.is_dir(&parent) {
                status = proc.fail(
                    1,
                    &format!("mkdir: cannot create directory '{name}': No such file or directory"),
                );
                continue;
            }
            let mut dir = path.as_str();
            loop {
                proc.shell.made_dirs.insert(dir.to_owned());
                match dir.rsplit_once('/') {
                    Some((up, _)) if !proc.is_dir(up) => dir = up,
                    _ => break,
                }
            }
        }
        status
    })
}

fn touch(proc: &mut Proc, args: &[String]) -> i32 {
    let mut status = 0;
    for name in args {
        let result = proc.path(name).and_then(|path| {
            if proc.state.get(&path).is_some() {
                Ok(())
            } else {
                proc.write(&path, Vec::new())
            }
        });
        if let Err(e) = result {
            status = proc.fail(1, &format!("touch: cannot touch {e}"));
        }
    }
    status
}

fn rm(proc: &mut Proc, args: &[String]) -> i32 {
    with_flags(proc, "rm", args, ("rRfv", ""), |proc, flags| {
        let mut status = 0;
        for name in &flags.operands {
            let path = match proc.path(name) {
                Ok(p) if !p.is_empty() => p,
                _ => {
                    status = proc.fail(1, &format!("rm: refusing to remove '{name}'"));
                    continue;
                }
            };
            let is_dir = proc.is_dir(&path);
            if is_dir && !(flags.has('r') || flags.has('R')) {
                status = proc.fail(1, &format!("rm: cannot remove '{name}': Is a directory"));
            } else if proc.state.get(&path).is_none() && !is_dir {
                if !flags.has('f') {
                    status = proc.fail(
                        1,
                        &format!("rm: cannot remove '{name}': No such file or directory"),
                    );
                }
            } else {
                proc.shell.made_dirs.retain(|d| !within(d, &path));
                if proc.state.get(&path).is_some() {
                    if let Err(e) = proc.change(&[FileChange::Deleted { path }]) {
                        status = proc.fail(1, &format!("rm: {e}"));
                    }
                }
            }
        }
        status
    })
}

fn cp(proc: &mut Proc, args: &[String]) -> i32 {
    copy(proc, "cp", args, false)
}

fn mv(proc: &mut Proc, args: &[String]) -> i32 {
    copy(proc, "mv", args, true)
}

/// `cp` and `mv`: SOURCE... DEST, where DEST is a directory when there are several sources.
fn copy(proc: &mut Proc, command: &str, args: &[String], remove: bool) -> i32 {
    with_flags(proc, command, args, ("rRfv", ""), |proc, flags| {
        let Some((dest, sources)) = flags.operands.split_last().filter(|(_, s)| !s.is_empty())
        else {
            return proc.fail(1, &format!("{command}: missing destination file operand"));
        };
        let dest_path = match proc.path(dest) {
            Ok(p) => p,
            Err(e) => return proc.fail(1, &format!("{command}: {e}")),
        };
        let into_dir = proc.is_dir(&dest_path);
        let mut status = 0;
        for source in sources {
            let Ok(from) = proc.path(source) else {
                status = proc.fail(
                    1,
                    &format!("{command}: cannot stat '{source}': No such file or directory"),
                );
                continue;
            };
            let name = from.rsplit('/').next().unwrap_or(&from);
            let to = if into_dir {
                join_path(&dest_path, name)
            } else {
                dest_path.clone()
            };
            let files: Vec<(String, Vec<u8>)> = match proc.state.get(&from) {
                Some(Entry::File(c)) => vec![(to.clone(), c.to_vec())],
                Some(Entry::Dir(_)) if remove || flags.has('r') || flags.has('R') => {
                    walk_files(proc.state, &to, &from)
                }
                Some(Entry::Dir(_)) => {
                    status = proc.fail(
                        1,
                        &format!("{command}: -r not specified; omitting directory '{source}'"),
                    );
                    continue;
                }
                None => {
                    status = proc.fail(
                        1,
                        &format!("{command}: cannot stat '{source}': No such file or directory"),
                    );
                    continue;
                }
            };
            let mut changes: Vec<FileChange> = files
                .into_iter()
                .map(|(path, c)| FileChange::Written {
                    path,
                    contents: c.into(),
                })
                .collect();
            if remove {
                changes.push(FileChange::Deleted { path: from.clone() });
            }
            if within(&to, &from) {
                status = proc.fail(
                    1,
                    &format!("{command}: cannot {command} '{source}' into itself"),
                );
            } else if let Err(e) = proc.change(&changes) {
                status = proc.fail(1, &format!("{command}: {e}"));
            }
        }
        status
    })
}

fn sort(proc: &mut Proc, args: &[String]) -> i32 {
    with_flags(proc, "sort", args, ("rnu", ""), |proc, flags| {
        let (inputs, failed) = proc.inputs("sort", &flags.operands);
        let text: String = inputs
            .iter()
            .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
            .collect();
        let mut lines: Vec<&str> = text.lines().collect();
        if flags.has('n') {
            let key = |l: &str| {
                l.trim()
                    .split(|c: char| !c.is_ascii_digit() && c != '.' && c != '-')
                    .next()
                    .and_then(|n| n.parse::<f64>().ok())
                    .unwrap_or(0.0)
            };
            lines.sort_by(|a, b| key(a).total_cmp(&key(b)).then(a.cmp(b)));
        } else {
            lines.sort();
        }
        if flags.has('r') {
            lines.reverse();
        }
        if flags.has('u') {
            lines.dedup();
        }
        let out: String = lines.iter().map(|l| format!("{l}\n")).collect();
        proc.print(&out);
        i32::from(failed)
    })
}

fn uniq(proc: &mut Proc, args: &[String]) -> i32 {
    with_flags(proc, "uniq", args, ("c", ""), |proc, flags| {
        let (inputs, failed) = proc.inputs("uniq", &flags.operands);
        let text: String = inputs
            .iter()
            .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
            .collect();
        let mut runs: Vec<(usize, &str)> = Vec::new();
        for line in text.lines() {
            match runs.last_mut() {
                Some((n, last)) if *last == line => *n += 1,
                _ => runs.push((1, line)),
            }
        }
        let out: String = runs
            .iter()
            .map(|(n, l)| {
                if flags.has('c') {
                    format!("{n:>7} {l}\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        proc.print(&out);
        i32::from(failed)
    })
}

fn which(proc: &mut Proc, args: &[String]) -> i32 {
    let mut status = 0;
    for name in args {
        if matches!(name.as_str(), "python" | "python3" | "pytest") || lookup(name).is_some() {
            proc.print(&format!("/usr/bin/{name}\n"));
        } else {
            status = 1;
        }
    }
    status
}
