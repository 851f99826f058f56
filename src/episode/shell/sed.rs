//! `sed` over the episode's files: `-n`, `-i`, `-E`/`-r`, `-e`, and the commands agents use to
//! read and patch files: `p`, `d`, `q`, `=` and `s/RE/REPLACEMENT/FLAGS`, each with an optional
//! address or range (`N`, `$`, `/RE/`, `A,B`, and `!` to invert).

use super::commands::{regex, Flags};
use super::Proc;
use regex::Regex;

enum Address {
    Line(usize),
    Last,
    Match(Regex),
}

enum Action {
    Print,
    Delete,
    Quit,
    LineNumber,
    Substitute {
        re: Regex,
        replacement: String,
        global: bool,
        nth: usize,
        print: bool,
    },
}

struct Command {
    from: Option<Address>,
    to: Option<Address>,
    invert: bool,
    action: Action,
    /// Inside a range that started and has not ended.
    active: bool,
}

/// `sed [-n] [-i] [-E] [-e SCRIPT]... [SCRIPT] [FILE]...`
pub(super) fn sed(proc: &mut Proc, args: &[String]) -> i32 {
    let flags = match Flags::parse("sed", args, "niErsu", "e") {
        Ok(f) => f,
        Err(e) => return proc.fail(1, &e),
    };
    if let Some((name, _)) = flags
        .long
        .iter()
        .find(|(n, _)| n != "quiet" && n != "in-place" && n != "regexp-extended")
    {
        return proc.fail(1, &format!("sed: unknown option --{name}"));
    }
    let long = |name: &str| flags.long.iter().any(|(n, _)| n == name);
    let quiet = flags.has('n') || long("quiet");
    let in_place = flags.has('i') || long("in-place");
    let extended = flags.has('E') || flags.has('r') || long("regexp-extended");
    let mut operands = flags.operands.clone();
    let scripts: Vec<String> = flags
        .short
        .iter()
        .filter(|(c, _)| *c == 'e')
        .map(|(_, v)| v.clone())
        .collect();
    let script = if !scripts.is_empty() {
        scripts.join("\n")
    } else if operands.is_empty() {
        return proc.fail(1, "Usage: sed [-n] [-i] [-E] SCRIPT [FILE]...");
    } else {
        operands.remove(0)
    };
    let mut commands = match parse_script(&script, extended) {
        Ok(c) => c,
        Err(e) => return proc.fail(1, &format!("sed: -e expression #1: {e}")),
    };
    if in_place {
        if operands.is_empty() {
            return proc.fail(1, "sed: no input files");
        }
        let mut status = 0;
        for name in &operands {
            let result = proc.read(name).and_then(|bytes| {
                let text =
                    String::from_utf8(bytes).map_err(|_| format!("{name}: not a text file"))?;
                let edited = run(&mut commands, &text, quiet);
                let path = proc.path(name)?;
                proc.write(&path, edited.into_bytes())
            });
            if let Err(e) = result {
                status = proc.fail(4, &format!("sed: {e}"));
            }
            for c in commands.iter_mut() {
                c.active = false;
            }
        }
        return status;
    }
    let (inputs, failed) = proc.inputs("sed", &operands);
    let text: String = inputs
        .iter()
        .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
        .collect();
    let out = run(&mut commands, &text, quiet);
    proc.print(&out);
    if failed {
        2
    } else {
        0
    }
}

fn run(commands: &mut [Command], text: &str, quiet: bool) -> String {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut out = String::new();
    for (i, raw) in lines.iter().enumerate() {
        let (number, last) = (i + 1, i + 1 == lines.len());
        let newline = raw.ends_with('\n');
        let mut line = raw.strip_suffix('\n').unwrap_or(raw).to_owned();
        let mut deleted = false;
        let mut quit = false;
        for command in commands.iter_mut() {
            if !command.selects(number, last, &line) {
                continue;
            }
            match &command.action {
                Action::Print => push_line(&mut out, &line, newline),
                Action::LineNumber => out.push_str(&format!("{number}\n")),
                Action::Delete => {
                    deleted = true;
                    break;
                }
                Action::Quit => {
                    quit = true;
                    break;
                }
                Action::Substitute {
                    re,
                    replacement,
                    global,
                    nth,
                    print,
                } => {
                    let replaced = substitute(re, replacement, *global, *nth, &line);
                    if let Some(replaced) = replaced {
                        line = replaced;
                        if *print {
                            push_line(&mut out, &line, newline);
                        }
                    }
                }
            }
        }
        if !quiet && !deleted {
            push_line(&mut out, &line, newline);
        }
        if quit {
            break;
        }
    }
    out
}

fn push_line(out: &mut String, line: &str, newline: bool) {
    out.push_str(line);
    if newline {
        out.push('\n');
    }
}

/// The line with the `nth` match (or, with `global`, every match from the `nth` on)
/// replaced; `None` when nothing was replaced.
fn substitute(
    re: &Regex,
    replacement: &str,
    global: bool,
    nth: usize,
    line: &str,
) -> Option<String> {
    let mut out = String::new();
    let mut last = 0;
    let mut replaced = false;
    for (k, captures) in re.captures_iter(line).enumerate() {
        if k + 1 < nth {
            continue;
        }
        if replaced && !global {
            break;
        }
        let whole = captures.get(0)?;
        out.push_str(&line[last..whole.start()]);
        captures.expand(replacement, &mut out);
        last = whole.end();
        replaced = true;
    }
    replaced.then(|| {
        out.push_str(&line[last..]);
        out
    })
}

impl Command {
    fn selects(&mut self, number: usize, last: bool, line: &str) -> bool {
        let hit = |address: &Address| match address {
            Address::Line(n) => *n == number,
            Address::Last => last,
            Address::Match(re) => re.is_match(line),
        };
        let selected = match (&self.from, &self.to) {
            (None, _) => true,
            (Some(from), None) => hit(from),
            (Some(from), Some(to)) => {
                if self.active {
                    let ends = match to {
                        Address::Line(n) => number >= *n,
                        other => hit(other),
                    };
                    self.active = !ends;
                    true
                } else if hit(from) {
                    self.active = match to {
                        Address::Line(n) => *n > number,
                        Address::Last => !last,
                        Address::Match(_) => true,
                    };
                    true
                } else {
                    false
                }
            }
        };
        selected != self.invert
    }
}

fn parse_script(script: &str, extended: bool) -> Result<Vec<Command>, String> {
    let mut commands = Vec::new();
    let mut rest = script.trim_start();
    while !rest.is_empty() {
        let (from, after) = address(rest, extended)?;
        let (to, after) = match after.strip_prefix(',') {
            Some(after) => {
                let (to, after) = address(after, extended)?;
                (Some(to.ok_or("unexpected `,'")?), after)
            }
            None => (None, after),
        };
        let after = after.trim_start();
        let (invert, after) = match after.strip_prefix('!') {
            Some(after) => (true, after.trim_start()),
            None => (false, after),
        };
        let mut chars = after.chars();
        let action = match chars.next() {
            Some('p') => Action::Print,
            Some('d') => Action::Delete,
            Some('q') => Action::Quit,
            Some('=') => Action::LineNumber,
            Some('s') => {
                let (action, left) = substitution(chars.as_str(), extended)?;
                chars = left.chars();
                action
            }
            Some(c) => {
                return Err(format!(
                    "unknown command: `{c}' (this sed knows p, d, q, = and s)"
                ))
            }
            None => return Err("missing command".into()),
        };
        commands.push(Command {
            from,
            to,
            invert,
            action,
            active: false,
        });
        rest = chars
            .as_str()
            .trim_start_matches([' ', '\t', ';', '\n', '}']);
    }
    Ok(commands)
}

/// An address at the start of `text`, and the rest.
fn address(text: &str, extended: bool) -> Result<(Option<Address>, &str), String> {
    if let Some(rest) = text.strip_prefix('$') {
        return Ok((Some(Address::Last), rest));
    }
    if let Some(rest) = text.strip_prefix('/') {
        let (pattern, rest) = until(rest, '/').ok_or("unterminated address regex")?;
        let re = regex(&pattern, extended, false, false, false)?;
        return Ok((Some(Address::Match(re)), rest));
    }
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Ok((None, text));
    }
    let n = text[..digits]
        .parse()
        .map_err(|_| "line number too large")?;
    if n == 0 {
        return Err("invalid usage of line address 0".into());
    }
    Ok((Some(Address::Line(n)), &text[digits..]))
}

/// The text up to the first unescaped `delimiter` (escapes of the delimiter removed), and the
/// rest after it.
fn until(text: &str, delimiter: char) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = text.char_indices();
    while let Some((at, c)) = chars.next() {
        if c == delimiter {
            return Some((out, &text[at + c.len_utf8()..]));
        }
        if c == '\\' {
            match chars.next() {
                Some((_, next)) if next == delimiter => out.push(next),
                Some((_, next)) => {
                    out.push('\\');
                    out.push(next);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    None
}

/// `s` after its letter: `/RE/REPLACEMENT/FLAGS` with any delimiter.
fn substitution(text: &str, extended: bool) -> Result<(Action, &str), String> {
    let mut chars = text.chars();
    let delimiter = chars.next().ok_or("unterminated `s' command")?;
    let (pattern, rest) = until(chars.as_str(), delimiter).ok_or("unterminated `s' command")?;
    let (replacement, rest) = until(rest, delimiter).ok_or("unterminated `s' command")?;
    let flag_len = rest.find([';', '\n', ' ', '}']).unwrap_or(rest.len());
    let (flags, rest) = rest.split_at(flag_len);
    let mut global = false;
    let mut print = false;
    let mut ignore_case = false;
    let mut nth = String::new();
    for f in flags.chars() {
        match f {
            'g' => global = true,
            'p' => print = true,
            'i' | 'I' => ignore_case = true,
            d if d.is_ascii_digit() => nth.push(d),
            other => return Err(format!("unknown option to `s': `{other}'")),
        }
    }
    let re = regex(&pattern, extended, false, ignore_case, false)?;
    let nth = if nth.is_empty() {
        1
    } else {
        nth.parse().map_err(|_| "bad number in `s' flags")?
    };
    Ok((
        Action::Substitute {
            re,
            replacement: rust_replacement(&replacement),
            global,
            nth,
            print,
        },
        rest,
    ))
}

/// A sed replacement (`&`, `\1`..`\9`, `\n`) in the syntax of [`regex::Captures::expand`].
fn rust_replacement(sed: &str) -> String {
    let mut out = String::new();
    let mut chars = sed.chars();
    while let Some(c) = chars.next() {
        match c {
            '&' => out.push_str("${0}"),
            '$' => out.push_str("$$"),
            '\\' => match chars.next() {
                Some(d) if d.is_ascii_digit() => out.push_str(&format!("${{{d}}}")),
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('$') => out.push_str("$$"),
                Some(other) => out.push(other),
                None => out.push('\\'),
            },
            _ => out.push(c),
        }
    }
    out
}
