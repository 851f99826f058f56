//! The shell language the `bash` tool understands: words with bash's quoting rules, pipes,
//! `&&`, `||`, `;` and newlines, redirections (`>`, `>>`, `<`, `2>`, `2>&1`, `&>`, here-documents)
//! and `#` comments. What it does not implement (variables, command substitution, subshells,
//! background jobs, loops) is refused with a message naming the construct, never run wrongly.

use std::fmt;

/// A shell word after quote removal. `pattern` is set when the word has an unquoted glob
/// character (`*`, `?`, `[`): the word with every quoted character escaped by `\`, ready for
/// [`glob_match`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word {
    /// The text, quotes removed.
    pub text: String,
    /// The glob pattern, when the word is one.
    pub pattern: Option<String>,
}

/// Where a command's output stream goes, or its input comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Redirect {
    /// `N> FILE` or `N>> FILE` (`fd` 1 or 2; `&>` sets both).
    Write {
        /// The streams redirected: stdout, stderr, or both.
        streams: Streams,
        /// The target file.
        file: Word,
        /// `>>`: append instead of truncate.
        append: bool,
    },
    /// `2>&1` (stderr joins stdout) or `>&2` (stdout joins stderr).
    Join {
        /// The stream that is sent into the other.
        from: Streams,
    },
    /// `< FILE`.
    Read(Word),
    /// A here-document or here-string: its text is the command's stdin.
    Here(String),
}

/// Which output stream a redirection moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Streams {
    /// Standard output (fd 1).
    Out,
    /// Standard error (fd 2).
    Err,
    /// Both (`&>`).
    Both,
}

/// One simple command: its words (the name first) and redirections, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Command {
    /// The command's name and arguments.
    pub words: Vec<Word>,
    /// Its redirections, applied left to right.
    pub redirects: Vec<Redirect>,
}

/// How an and-or list joins the next pipeline to the previous one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Join {
    /// `&&`: only when the previous pipeline succeeded.
    And,
    /// `||`: only when it failed.
    Or,
}

/// Commands joined by `|`.
pub type Pipeline = Vec<Command>;

/// Pipelines joined by `&&` and `||`: the first pipeline, then each joined one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AndOr {
    /// The pipeline that always runs.
    pub first: Pipeline,
    /// The pipelines that run depending on the status before them.
    pub rest: Vec<(Join, Pipeline)>,
}

/// Why a command line could not be parsed, as a shell would report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError(pub String);

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bash: {}", self.0)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Word(Word),
    /// An operator: `|`, `&&`, `||`, `;` (also a newline), or a redirection.
    Op(&'static str),
    /// A redirection operator with its source descriptor: `>`, `>>`, `<`, `<<`, `<<<`, `>&`.
    Redirect {
        fd: Option<u32>,
        op: &'static str,
    },
    Here(String),
}

/// Parses a command line into and-or lists, run in order.
pub fn parse(line: &str) -> Result<Vec<AndOr>, SyntaxError> {
    let tokens = Lexer::new(line).tokens()?;
    Parser { tokens, at: 0 }.script()
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    tokens: Vec<Token>,
    /// Here-documents whose bodies start after the current line: (delimiter, strip tabs,
    /// index of the token that receives the body).
    pending: Vec<(String, bool, usize)>,
}

impl<'a> Lexer<'a> {
    fn new(line: &'a str) -> Self {
        Lexer {
            chars: line.chars().peekable(),
            tokens: Vec::new(),
            pending: Vec::new(),
        }
    }

    fn tokens(mut self) -> Result<Vec<Token>, SyntaxError> {
        while let Some(&c) = self.chars.peek() {
            match c {
                '\n' => {
                    self.chars.next();
                    self.tokens.push(Token::Op(";"));
                    self.here_bodies()?;
                }
                ' ' | '\t' | '\r' => {
                    self.chars.next();
                }
                '#' => while self.chars.next_if(|c| *c != '\n').is_some() {},
                '|' | '&' | ';' | '<' | '>' => self.operator(None)?,
                '(' | ')' => return Err(unsupported("subshells and groups ( ... )")),
                _ => self.word()?,
            }
        }
        if let Some((delimiter, ..)) = self.pending.first() {
            return Err(SyntaxError(format!(
                "here-document wanted `{delimiter}` on a line of its own before the end"
            )));
        }
        Ok(self.tokens)
    }

    fn operator(&mut self, fd: Option<u32>) -> Result<(), SyntaxError> {
        let c = self.chars.next().unwrap_or_default();
        let next = |lexer: &mut Self, want: char| lexer.chars.next_if_eq(&want).is_some();
        let token = match c {
            '|' if next(self, '|') => Token::Op("||"),
            '|' => Token::Op("|"),
            '&' if next(self, '&') => Token::Op("&&"),
            '&' if next(self, '>') => Token::Redirect {
                fd: None,
                op: if next(self, '>') { "&>>" } else { "&>" },
            },
            '&' => return Err(unsupported("background jobs (&)")),
            ';' if next(self, ';') => return Err(unsupported("case statements (;;)")),
            ';' => Token::Op(";"),
            '>' if next(self, '>') => Token::Redirect { fd, op: ">>" },
            '>' if next(self, '&') => Token::Redirect { fd, op: ">&" },
            '>' => {
                next(self, '|');
                Token::Redirect { fd, op: ">" }
            }
            '<' if next(self, '<') => {
                if next(self, '<') {
                    Token::Redirect { fd, op: "<<<" }
                } else {
                    return self.here_document();
                }
            }
            '<' if self.chars.peek() == Some(&'(') => {
                return Err(unsupported("process substitution <( ... )"))
            }
            _ => Token::Redirect { fd, op: "<" },
        };
        self.tokens.push(token);
        Ok(())
    }

    /// `<<WORD` or `<<-WORD`: the body is read at the end of the line.
    fn here_document(&mut self) -> Result<(), SyntaxError> {
        let strip_tabs = self.chars.next_if_eq(&'-').is_some();
        while self.chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
        let Some(Token::Word(word)) = self.next_word()? else {
            return Err(SyntaxError(
                "syntax error near `<<`: a here-document needs a delimiter word".into(),
            ));
        };
        self.pending
            .push((word.text, strip_tabs, self.tokens.len()));
        self.tokens.push(Token::Here(String::new()));
        Ok(())
    }

    /// Reads the bodies of the pending here-documents, in order, after a newline.
    fn here_bodies(&mut self) -> Result<(), SyntaxError> {
        for (delimiter, strip_tabs, slot) in std::mem::take(&mut self.pending) {
            let mut body = String::new();
            loop {
                let mut line = String::new();
                let mut ended = true;
                for c in self.chars.by_ref() {
                    if c == '\n' {
                        ended = false;
                        break;
                    }
                    line.push(c);
                }
                let line = if strip_tabs {
                    line.trim_start_matches('\t').to_owned()
                } else {
                    line
                };
                if line == delimiter {
                    break;
                }
                if ended && line.is_empty() {
                    return Err(SyntaxError(format!(
                        "here-document wanted `{delimiter}` on a line of its own before the end"
                    )));
                }
                body.push_str(&line);
                body.push('\n');
                if ended {
                    return Err(SyntaxError(format!(
                        "here-document wanted `{delimiter}` on a line of its own before the end"
                    )));
                }
            }
            self.tokens[slot] = Token::Here(body);
        }
        Ok(())
    }

    fn word(&mut self) -> Result<(), SyntaxError> {
        // `2>`, `1>>`, `2>&1`: digits right before a redirection name a descriptor.
        let mut probe = self.chars.clone();
        let digits: String = std::iter::from_fn(|| probe.next_if(char::is_ascii_digit)).collect();
        if !digits.is_empty() && matches!(probe.peek(), Some('>') | Some('<')) {
            for _ in 0..digits.len() {
                self.chars.next();
            }
            return self.operator(digits.parse().ok());
        }
        if let Some(token) = self.next_word()? {
            self.tokens.push(token);
        }
        Ok(())
    }

    fn next_word(&mut self) -> Result<Option<Token>, SyntaxError> {
        let mut word = WordBuilder::default();
        while let Some(&c) = self.chars.peek() {
            match c {
                ' ' | '\t' | '\r' | '\n' | '|' | '&' | ';' | '<' | '>' | '(' | ')' => break,
                '\'' => {
                    self.chars.next();
                    self.single_quoted(&mut word)?;
                }
                '"' => {
                    self.chars.next();
                    self.double_quoted(&mut word)?;
                }
                '\\' => {
                    self.chars.next();
                    word.any = true;
                    if let Some(c) = self.chars.next().filter(|c| *c != '\n') {
                        word.quoted(c);
                    }
                }
                '$' => {
                    self.chars.next();
                    if self.expands() {
                        return Err(expansion());
                    }
                    word.plain('$');
                }
                '`' => return Err(unsupported("command substitution `...`")),
                _ => {
                    self.chars.next();
                    word.plain(c);
                }
            }
        }
        Ok(word.finish())
    }

    /// The rest of a `'...'` string: every character literal.
    fn single_quoted(&mut self, word: &mut WordBuilder) -> Result<(), SyntaxError> {
        word.any = true;
        loop {
            match self.chars.next() {
                Some('\'') => return Ok(()),
                Some(c) => word.quoted(c),
                None => {
                    return Err(SyntaxError(
                        "unexpected end while looking for matching `''".into(),
                    ))
                }
            }
        }
    }

    /// The rest of a `"..."` string: backslash escapes only `"`, `\\`, `$`, `` ` `` and a newline;
    /// expansions are refused.
    fn double_quoted(&mut self, word: &mut WordBuilder) -> Result<(), SyntaxError> {
        word.any = true;
        loop {
            match self.chars.next() {
                Some('"') => return Ok(()),
                Some('\\') => {
                    let c = self.chars.next().unwrap_or('\\');
                    if !matches!(c, '"' | '\\' | '$' | '`' | '\n') {
                        word.quoted('\\');
                    }
                    if c != '\n' {
                        word.quoted(c);
                    }
                }
                Some('$') if self.expands() => return Err(expansion()),
                Some('`') => return Err(unsupported("command substitution `...`")),
                Some(c) => word.quoted(c),
                None => {
                    return Err(SyntaxError(
                        "unexpected end while looking for matching `\"'".into(),
                    ))
                }
            }
        }
    }

    /// Whether the `$` just read starts an expansion (a name, `{`, `(`, or a special
    /// parameter); a `$` before anything else is literal, as in bash.
    fn expands(&mut self) -> bool {
        matches!(self.chars.peek(), Some(c) if c.is_ascii_alphanumeric() || matches!(c, '_' | '{' | '(' | '?' | '@' | '*' | '#' | '!'))
    }
}

/// A word being read: its text, and its glob pattern with quoted characters escaped.
#[derive(Default)]
struct WordBuilder {
    text: String,
    pattern: String,
    glob: bool,
    /// Something was read (an empty `''` is a word too).
    any: bool,
}

impl WordBuilder {
    fn quoted(&mut self, c: char) {
        self.any = true;
        self.text.push(c);
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            self.pattern.push('\\');
        }
        self.pattern.push(c);
    }

    fn plain(&mut self, c: char) {
        self.any = true;
        self.text.push(c);
        self.pattern.push(c);
        self.glob |= matches!(c, '*' | '?' | '[');
    }

    fn finish(self) -> Option<Token> {
        self.any.then(|| {
            Token::Word(Word {
                text: self.text,
                pattern: self.glob.then_some(self.pattern),
            })
        })
    }
}

fn unsupported(what: &str) -> SyntaxError {
    SyntaxError(format!(
        "{what} are not supported by this shell; run one command at a time"
    ))
}

fn expansion() -> SyntaxError {
    SyntaxError(
        "variables and command substitution ($NAME, ${...}, $(...)) are not supported by this \
         shell; write the value itself (single quotes keep a $ literal)"
            .into(),
    )
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn script(mut self) -> Result<Vec<AndOr>, SyntaxError> {
        let mut lists = Vec::new();
        loop {
            while self.peek() == Some(&Token::Op(";")) {
                self.at += 1;
            }
            if self.at >= self.tokens.len() {
                return Ok(lists);
            }
            lists.push(self.and_or()?);
            match self.peek() {
                None | Some(Token::Op(";")) => {}
                Some(other) => return Err(near(other)),
            }
        }
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn and_or(&mut self) -> Result<AndOr, SyntaxError> {
        let first = self.pipeline()?;
        let mut rest = Vec::new();
        while let Some(Token::Op(op @ ("&&" | "||"))) = self.peek() {
            let join = if *op == "&&" { Join::And } else { Join::Or };
            self.at += 1;
            // bash lets the next pipeline start on a new line after && and ||.
            while self.peek() == Some(&Token::Op(";")) && self.newline_continues() {
                self.at += 1;
            }
            rest.push((join, self.pipeline()?));
        }
        Ok(AndOr { first, rest })
    }

    fn newline_continues(&self) -> bool {
        matches!(self.tokens.get(self.at + 1), Some(Token::Word(_)))
    }

    fn pipeline(&mut self) -> Result<Pipeline, SyntaxError> {
        let mut commands = vec![self.command()?];
        while self.peek() == Some(&Token::Op("|")) {
            self.at += 1;
            commands.push(self.command()?);
        }
        Ok(commands)
    }

    fn command(&mut self) -> Result<Command, SyntaxError> {
        let mut command = Command::default();
        while let Some(token) = self.tokens.get(self.at).cloned() {
            match token {
                Token::Word(word) => command.words.push(word),
                Token::Here(body) => command.redirects.push(Redirect::Here(body)),
                Token::Redirect { fd, op } => {
                    self.at += 1;
                    command.redirects.push(self.redirect(fd, op)?);
                    continue;
                }
                Token::Op(_) => break,
            }
            self.at += 1;
        }
        match command.words.first() {
            None => Err(match self.peek() {
                Some(token) => near(token),
                None => SyntaxError("syntax error: a command is missing".into()),
            }),
            Some(name) if is_keyword(&name.text) => Err(SyntaxError(format!(
                "`{}`: shell keywords (if, for, while, case, functions) are not supported; \
                 run one command at a time",
                name.text
            ))),
            Some(_) => Ok(command),
        }
    }

    fn redirect(&mut self, fd: Option<u32>, op: &'static str) -> Result<Redirect, SyntaxError> {
        let streams = match (op, fd) {
            ("&>" | "&>>", _) => Streams::Both,
            (_, None | Some(1)) => Streams::Out,
            (_, Some(2)) => Streams::Err,
            (_, Some(0)) if op == "<" || op == "<<<" => Streams::Out,
            (_, Some(n)) => {
                return Err(SyntaxError(format!(
                    "file descriptor {n} is not supported; use 1 (stdout) or 2 (stderr)"
                )))
            }
        };
        let Some(Token::Word(target)) = self.peek().cloned() else {
            return Err(SyntaxError(format!(
                "syntax error near `{op}`: a redirection needs a target"
            )));
        };
        self.at += 1;
        Ok(match op {
            ">&" => match (streams, target.text.as_str()) {
                (Streams::Err, "1") => Redirect::Join { from: Streams::Err },
                (Streams::Out, "2") => Redirect::Join { from: Streams::Out },
                (_, "1" | "2") => {
                    return Err(SyntaxError(format!(
                        "`{op}{}` joins a stream with itself",
                        target.text
                    )))
                }
                _ => Redirect::Write {
                    streams: Streams::Both,
                    file: target,
                    append: false,
                },
            },
            "<" => Redirect::Read(target),
            "<<<" => Redirect::Here(format!("{}\n", target.text)),
            _ => Redirect::Write {
                streams,
                file: target,
                append: op.ends_with(">>"),
            },
        })
    }
}

fn is_keyword(word: &str) -> bool {
    matches!(
        word,
        "if" | "then"
            | "else"
            | "elif"
            | "fi"
            | "for"
            | "while"
            | "until"
            | "do"
            | "done"
            | "case"
            | "esac"
            | "function"
            | "{"
            | "}"
    )
}

fn near(token: &Token) -> SyntaxError {
    let text = match token {
        Token::Op(op) if *op == ";" => ";".to_owned(),
        Token::Op(op) => (*op).to_owned(),
        Token::Redirect { op, .. } => (*op).to_owned(),
        Token::Word(w) => w.text.clone(),
        Token::Here(_) => "<<".to_owned(),
    };
    SyntaxError(format!("syntax error near unexpected token `{text}'"))
}

/// Whether `name` matches the glob `pattern`: `*` (any run of characters), `?` (one),
/// `[abc]`/`[a-z]`/`[!a]` (a class), `\x` (a literal x).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    glob_from(&p, &n)
}

fn glob_from(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => (0..=n.len()).any(|skip| glob_from(&p[1..], &n[skip..])),
        Some('?') => !n.is_empty() && glob_from(&p[1..], &n[1..]),
        Some('[') => match (class(&p[1..], n.first().copied()), n.is_empty()) {
            (Some((true, used)), false) => glob_from(&p[1 + used..], &n[1..]),
            (Some(_), _) => false,
            // No closing bracket: a literal `[`.
            (None, _) => n.first() == Some(&'[') && glob_from(&p[1..], &n[1..]),
        },
        Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && glob_from(&p[2..], &n[1..]),
        Some(c) => n.first() == Some(c) && glob_from(&p[1..], &n[1..]),
    }
}

/// A bracket class after its `[`: whether `c` is in it, and how many pattern characters it
/// used (up to and including `]`); `None` when it is not closed.
fn class(p: &[char], c: Option<char>) -> Option<(bool, usize)> {
    let negated = matches!(p.first(), Some('!') | Some('^'));
    let mut i = usize::from(negated);
    let mut hit = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == ']' && !first {
            return Some((hit != negated, i + 1));
        }
        first = false;
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            hit |= c.is_some_and(|c| p[i] <= c && c <= p[i + 2]);
            i += 3;
        } else {
            hit |= c == Some(p[i]);
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(command: &Command) -> Vec<&str> {
        command.words.iter().map(|w| w.text.as_str()).collect()
    }

    #[test]
    fn quotes_escapes_and_operators_split_as_bash_does() {
        let lists =
            parse(r#"grep -rn "a|b" 'c d' e\ f | head -3 && echo ok || echo no; pwd"#).unwrap();
        assert_eq!(lists.len(), 2);
        let first = &lists[0];
        assert_eq!(words(&first.first[0]), ["grep", "-rn", "a|b", "c d", "e f"]);
        assert_eq!(words(&first.first[1]), ["head", "-3"]);
        assert_eq!(first.rest[0].0, Join::And);
        assert_eq!(first.rest[1].0, Join::Or);
        assert_eq!(words(&lists[1].first[0]), ["pwd"]);
        let escaped = parse(r#"echo "say \"hi\" \n" '$HOME' cost$"#).unwrap();
        assert_eq!(
            words(&escaped[0].first[0]),
            ["echo", "say \"hi\" \\n", "$HOME", "cost$"]
        );
    }

    #[test]
    fn redirections_and_here_documents() {
        let lists =
            parse("cat > a.py <<'EOF'\nx = 1\n  y\nEOF\npython a.py 2>&1 >> log 2>/dev/null")
                .unwrap();
        let write = &lists[0].first[0];
        assert_eq!(words(write), ["cat"]);
        assert_eq!(
            write.redirects,
            [
                Redirect::Write {
                    streams: Streams::Out,
                    file: Word {
                        text: "a.py".into(),
                        pattern: None
                    },
                    append: false
                },
                Redirect::Here("x = 1\n  y\n".into())
            ]
        );
        let run = &lists[1].first[0];
        assert_eq!(words(run), ["python", "a.py"]);
        assert_eq!(run.redirects[0], Redirect::Join { from: Streams::Err });
        assert!(matches!(
            &run.redirects[1],
            Redirect::Write { append: true, .. }
        ));
        assert!(matches!(
            &run.redirects[2],
            Redirect::Write {
                streams: Streams::Err,
                ..
            }
        ));
        let tabs = parse("cat <<-END\n\tindented\n\tEND").unwrap();
        assert_eq!(
            tabs[0].first[0].redirects,
            [Redirect::Here("indented\n".into())]
        );
    }

    #[test]
    fn globs_remember_which_characters_were_quoted() {
        let lists = parse(r#"ls *.py "a*"b? 'x'"#).unwrap();
        let w = &lists[0].first[0].words;
        assert_eq!(w[1].pattern.as_deref(), Some("*.py"));
        assert_eq!(w[2].pattern.as_deref(), Some("a\\*b?"));
        assert_eq!(w[3].pattern, None);
        assert!(glob_match("test_*.py", "test_calc.py"));
        assert!(!glob_match("test_*.py", "calc.py"));
        assert!(glob_match("a\\*b?", "a*bc"));
        assert!(!glob_match("a\\*b?", "axbc"));
        assert!(glob_match("[a-c]x[!0-9]", "bxy"));
        assert!(!glob_match("[a-c]x[!0-9]", "bx1"));
    }

    #[test]
    fn what_is_not_supported_is_refused_by_name() {
        for (line, says) in [
            ("echo $HOME", "variables"),
            ("echo \"$(ls)\"", "variables"),
            ("sleep 1 &", "background"),
            ("(cd a && ls)", "subshells"),
            ("for f in a; do cat f; done", "keywords"),
            ("cat <<EOF\nno end", "EOF"),
            ("echo 'open", "matching"),
            ("ls |", "missing"),
            ("&& ls", "unexpected token `&&'"),
            ("echo > ", "target"),
        ] {
            let error = parse(line).unwrap_err().to_string();
            assert!(error.contains(says), "{line:?}: {error}");
        }
        assert_eq!(parse("# only a comment\n\n").unwrap(), []);
        let continued = parse("ls &&\n pwd").unwrap();
        assert_eq!(continued[0].rest.len(), 1);
    }
}
