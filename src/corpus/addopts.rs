//! The project's own pytest options (`addopts`), adapted to the guest.
//!
//! An import used to run pytest with `-o addopts=`, which keeps options of plugins the guest
//! lacks (`--cov`, `-n auto`) from breaking the run but also drops options the suite depends on
//! (`-m 'not stress'` deselects thousands of slow tests; `--import-mode=importlib` decides whether
//! modules import at all). Here the project's configuration is read the way pytest reads it, and
//! only the options that cannot work in the guest are removed: those of plugins that are not
//! installed, those that need processes, signals or threads, and those that would stop a run
//! early or change the output spar parses. The rest run before spar's own options, exactly as
//! pytest places `addopts` before the command line, so spar's output options still win.

use crate::snapshot::Snapshot;
use std::collections::BTreeMap;

/// The configuration files pytest 9 considers, in its order of precedence within one
/// directory; the first that holds pytest configuration wins.
const CONFIG_FILES: &[&str] = &[
    "pytest.toml",
    ".pytest.toml",
    "pytest.ini",
    ".pytest.ini",
    "pyproject.toml",
    "tox.ini",
    "setup.cfg",
];

/// Errors reading a project's pytest configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddoptsError {
    /// The configuration file is not valid TOML or INI.
    #[error("{file}: {detail}; pytest would refuse this file too, so fix it or import the project without it")]
    Parse {
        /// The file, relative to the repository.
        file: String,
        /// What is wrong.
        detail: String,
    },
    /// `addopts` has an unclosed quote or a trailing backslash.
    #[error("{file}: addopts {text:?} is not a valid shell-style argument list ({detail})")]
    Split {
        /// The file, relative to the repository.
        file: String,
        /// The addopts text.
        text: String,
        /// What is wrong.
        detail: String,
    },
}

/// The project's `addopts` and the file they come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectAddopts {
    /// The configuration file, relative to the repository.
    pub file: String,
    /// The options, split as pytest splits them.
    pub args: Vec<String>,
}

/// Finds the configuration file pytest uses for a run over `test_paths` and returns its
/// `addopts`. pytest looks in the common ancestor of the paths it is given, then in each parent
/// up to the repository root; `None` when no file there configures pytest or sets no addopts.
pub fn project_addopts(
    repo: &Snapshot,
    test_paths: &[String],
) -> Result<Option<ProjectAddopts>, AddoptsError> {
    for dir in search_dirs(repo, test_paths) {
        for name in CONFIG_FILES {
            let file = if dir.is_empty() {
                (*name).to_owned()
            } else {
                format!("{dir}/{name}")
            };
            let Some(bytes) = repo.file(&file) else {
                continue;
            };
            let text = String::from_utf8_lossy(&bytes);
            if let Some(value) = addopts_in(name, &file, &text)? {
                let args = match value {
                    AddoptsValue::Text(text) => {
                        split_args(&text).map_err(|detail| AddoptsError::Split {
                            file: file.clone(),
                            text: text.clone(),
                            detail: detail.to_owned(),
                        })?
                    }
                    AddoptsValue::List(args) => args,
                };
                return Ok((!args.is_empty()).then_some(ProjectAddopts { file, args }));
            }
        }
    }
    Ok(None)
}

/// The directories pytest searches, nearest first: the common ancestor of the test paths (a
/// file's directory for a file) and its parents, ending at the repository root (`""`).
fn search_dirs(repo: &Snapshot, test_paths: &[String]) -> Vec<String> {
    let dirs: Vec<Vec<&str>> = test_paths
        .iter()
        .map(|p| {
            let p = p.trim_matches('/');
            let parts: Vec<&str> = p
                .split('/')
                .filter(|c| !c.is_empty() && *c != ".")
                .collect();
            match repo.get(p) {
                Some(crate::snapshot::Entry::File(_)) => {
                    parts[..parts.len().saturating_sub(1)].to_vec()
                }
                _ => parts,
            }
        })
        .collect();
    let mut common: Vec<&str> = dirs.first().cloned().unwrap_or_default();
    for dir in dirs.iter().skip(1) {
        let shared = common.iter().zip(dir).take_while(|(a, b)| a == b).count();
        common.truncate(shared);
    }
    (0..=common.len())
        .rev()
        .map(|n| common[..n].join("/"))
        .collect()
}

/// An `addopts` value as written: INI text (split later) or a TOML list (already split).
enum AddoptsValue {
    Text(String),
    List(Vec<String>),
}

/// `Some` when `file` configures pytest (even without addopts: then an empty value, because a
/// configuring file ends pytest's search), `None` when pytest would skip it.
fn addopts_in(name: &str, file: &str, text: &str) -> Result<Option<AddoptsValue>, AddoptsError> {
    let parse_err = |detail: String| AddoptsError::Parse {
        file: file.to_owned(),
        detail,
    };
    let empty = || Some(AddoptsValue::Text(String::new()));
    if name.ends_with(".toml") {
        let value: toml::Value =
            toml::from_str(text).map_err(|e| parse_err(e.message().to_owned()))?;
        let table = if name == "pyproject.toml" {
            let Some(pytest) = value.get("tool").and_then(|t| t.get("pytest")) else {
                return Ok(None);
            };
            // `[tool.pytest]` with native TOML values (pytest 9), else the INI-style table.
            match pytest.get("ini_options") {
                Some(ini) if pytest.as_table().is_some_and(|t| t.len() == 1) => ini.clone(),
                _ => pytest.clone(),
            }
        } else {
            match value.get("pytest") {
                Some(table) => table.clone(),
                None => return Ok(empty()),
            }
        };
        return Ok(Some(match table.get("addopts") {
            Some(toml::Value::String(s)) => AddoptsValue::Text(s.clone()),
            Some(toml::Value::Array(items)) => AddoptsValue::List(
                items
                    .iter()
                    .map(|i| match i {
                        toml::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect(),
            ),
            Some(other) => AddoptsValue::Text(other.to_string()),
            None => AddoptsValue::Text(String::new()),
        }));
    }
    let section = if name == "setup.cfg" {
        "tool:pytest"
    } else {
        "pytest"
    };
    let sections = parse_ini(text).map_err(parse_err)?;
    Ok(match sections.get(section) {
        Some(values) => Some(AddoptsValue::Text(
            values.get("addopts").cloned().unwrap_or_default(),
        )),
        // pytest.ini configures pytest even when it has no [pytest] section.
        None if name.starts_with("pytest.") || name.starts_with(".pytest.") => empty(),
        None => None,
    })
}

/// Sections of an INI file as pytest's `iniconfig` reads them: `name = value` or `name: value`,
/// continuation lines indented (joined with newlines), `#` and `;` comment lines.
fn parse_ini(text: &str) -> Result<BTreeMap<String, BTreeMap<String, String>>, String> {
    let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut section: Option<String> = None;
    let mut key: Option<String> = None;
    for (number, raw) in text.lines().enumerate() {
        let line = raw.trim_end();
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with(['#', ';']) {
            continue;
        }
        if line.starts_with('[') {
            let head = line.split(['#', ';']).next().unwrap_or("").trim_end();
            let name = head
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .ok_or_else(|| format!("line {}: unexpected line {line:?}", number + 1))?;
            sections.entry(name.to_owned()).or_default();
            section = Some(name.to_owned());
            key = None;
        } else if line.starts_with([' ', '\t']) {
            let (Some(s), Some(k)) = (&section, &key) else {
                return Err(format!(
                    "line {}: continuation line with no value above it",
                    number + 1
                ));
            };
            let value = sections
                .entry(s.clone())
                .or_default()
                .entry(k.clone())
                .or_default();
            if !value.is_empty() {
                value.push('\n');
            }
            value.push_str(trimmed);
        } else {
            let (name, value) = match line.split_once('=') {
                Some((n, v)) if !n.contains(':') => (n, v),
                _ => line
                    .split_once(": ")
                    .or_else(|| line.strip_suffix(':').map(|n| (n, "")))
                    .ok_or_else(|| format!("line {}: unexpected line {line:?}", number + 1))?,
            };
            let Some(s) = &section else {
                return Err(format!("line {}: a value outside any section", number + 1));
            };
            let name = name.trim().to_owned();
            sections
                .entry(s.clone())
                .or_default()
                .insert(name.clone(), value.trim().to_owned());
            key = Some(name);
        }
    }
    Ok(sections)
}

/// Splits `text` into arguments exactly as pytest does (Python's `shlex.split`, POSIX mode, no
/// comments): whitespace separates, single quotes are literal, double quotes allow `\"` and `\\`,
/// a backslash outside quotes escapes the next character.
pub fn split_args(text: &str) -> Result<Vec<String>, &'static str> {
    let mut args = Vec::new();
    let mut current: Option<String> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\r' | '\n' => {
                if let Some(word) = current.take() {
                    args.push(word);
                }
            }
            '\'' => {
                let word = current.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("no closing quotation"),
                    }
                }
            }
            '"' => {
                let word = current.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("no closing quotation"),
                        },
                        Some(c) => word.push(c),
                        None => return Err("no closing quotation"),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => current.get_or_insert_with(String::new).push(c),
                None => return Err("no escaped character"),
            },
            c => current.get_or_insert_with(String::new).push(c),
        }
    }
    args.extend(current);
    Ok(args)
}

/// How many values an option takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Arity {
    /// None (`--strict-markers`).
    Flag,
    /// Exactly one, attached (`--tb=short`, `-rA`) or the next argument (`-m slow`).
    Value,
    /// One when attached, or when the next argument does not start with `-` (`--cov`,
    /// `--cov src`), as argparse's `nargs="?"` does.
    Optional,
}

/// What spar does with an option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    /// pytest's own, harmless in the guest: kept.
    Keep,
    /// Belongs to this plugin distribution: kept only when it is installed.
    Plugin(&'static str),
    /// Never kept, for this reason.
    Drop(&'static str),
}

const OUTPUT: Rule = Rule::Drop("spar chooses the output format it parses");
const STOPS: Rule =
    Rule::Drop("it would stop the run early or run nothing, and the import must see every test");
const CACHE: Rule =
    Rule::Drop("needs pytest's cache, which spar disables so runs do not change the repository");
const FILES: Rule = Rule::Drop("it writes report files into the repository");
const PROCESSES: Rule = Rule::Drop("it needs subprocesses, which WASI does not have");
const SIGNALS: Rule = Rule::Drop("it needs signals or threads, which WASI does not have");
const RERUNS: Rule = Rule::Drop("reruns would hide the flaky tests the import must exclude");
const INTERACTIVE: Rule = Rule::Drop("it is interactive");

/// Options by exact name: pytest's own (to know which take values) and the common plugins'.
const OPTIONS: &[(&str, Arity, Rule)] = &[
    // pytest: selection, configuration and behaviour the suite may depend on.
    ("-m", Arity::Value, Rule::Keep),
    ("-k", Arity::Value, Rule::Keep),
    ("-c", Arity::Value, Rule::Keep),
    ("--config-file", Arity::Value, Rule::Keep),
    ("-o", Arity::Value, Rule::Keep),
    ("--override-ini", Arity::Value, Rule::Keep),
    ("-W", Arity::Value, Rule::Keep),
    ("--pythonwarnings", Arity::Value, Rule::Keep),
    ("-r", Arity::Value, Rule::Keep),
    ("--tb", Arity::Value, Rule::Keep),
    ("--rootdir", Arity::Value, Rule::Keep),
    ("--confcutdir", Arity::Value, Rule::Keep),
    ("--ignore", Arity::Value, Rule::Keep),
    ("--ignore-glob", Arity::Value, Rule::Keep),
    ("--deselect", Arity::Value, Rule::Keep),
    ("--import-mode", Arity::Value, Rule::Keep),
    ("--durations", Arity::Value, Rule::Keep),
    ("--durations-min", Arity::Value, Rule::Keep),
    ("--assert", Arity::Value, Rule::Keep),
    ("--doctest-glob", Arity::Value, Rule::Keep),
    ("--doctest-report", Arity::Value, Rule::Keep),
    ("--show-capture", Arity::Value, Rule::Keep),
    ("--color", Arity::Value, Rule::Keep),
    ("--code-highlight", Arity::Value, Rule::Keep),
    ("--log-level", Arity::Value, Rule::Keep),
    ("--log-format", Arity::Value, Rule::Keep),
    ("--log-date-format", Arity::Value, Rule::Keep),
    ("--log-cli-level", Arity::Value, Rule::Keep),
    ("--log-cli-format", Arity::Value, Rule::Keep),
    ("--log-cli-date-format", Arity::Value, Rule::Keep),
    ("--log-disable", Arity::Value, Rule::Keep),
    ("--junit-prefix", Arity::Value, Rule::Keep),
    ("--strict-markers", Arity::Flag, Rule::Keep),
    ("--strict-config", Arity::Flag, Rule::Keep),
    ("--strict", Arity::Flag, Rule::Keep),
    ("--doctest-modules", Arity::Flag, Rule::Keep),
    ("--doctest-ignore-import-errors", Arity::Flag, Rule::Keep),
    ("--doctest-continue-on-failure", Arity::Flag, Rule::Keep),
    ("--runxfail", Arity::Flag, Rule::Keep),
    ("--pyargs", Arity::Flag, Rule::Keep),
    ("--keep-duplicates", Arity::Flag, Rule::Keep),
    ("--collect-in-virtualenv", Arity::Flag, Rule::Keep),
    ("--continue-on-collection-errors", Arity::Flag, Rule::Keep),
    ("-l", Arity::Flag, Rule::Keep),
    ("--showlocals", Arity::Flag, Rule::Keep),
    ("--no-showlocals", Arity::Flag, Rule::Keep),
    ("--full-trace", Arity::Flag, Rule::Keep),
    ("--disable-warnings", Arity::Flag, Rule::Keep),
    ("--disable-pytest-warnings", Arity::Flag, Rule::Keep),
    ("--setup-show", Arity::Flag, Rule::Keep),
    ("--no-header", Arity::Flag, Rule::Keep),
    ("--trace-config", Arity::Flag, Rule::Keep),
    // pytest: output spar must control.
    ("-v", Arity::Flag, OUTPUT),
    ("--verbose", Arity::Flag, OUTPUT),
    ("-q", Arity::Flag, OUTPUT),
    ("--quiet", Arity::Flag, OUTPUT),
    ("--verbosity", Arity::Value, OUTPUT),
    ("--no-summary", Arity::Flag, OUTPUT),
    (
        "-s",
        Arity::Flag,
        Rule::Drop("spar sets the capture mode WASI supports"),
    ),
    (
        "--capture",
        Arity::Value,
        Rule::Drop("spar sets the capture mode WASI supports"),
    ),
    (
        "--basetemp",
        Arity::Value,
        Rule::Drop("spar sets the guest's temporary directory"),
    ),
    // pytest: stopping early, running nothing, or interactive.
    ("-x", Arity::Flag, STOPS),
    ("--exitfirst", Arity::Flag, STOPS),
    ("--maxfail", Arity::Value, STOPS),
    ("--co", Arity::Flag, STOPS),
    ("--collect-only", Arity::Flag, STOPS),
    ("--collectonly", Arity::Flag, STOPS),
    ("--setup-only", Arity::Flag, STOPS),
    ("--setup-plan", Arity::Flag, STOPS),
    ("--fixtures", Arity::Flag, STOPS),
    ("--fixtures-per-test", Arity::Flag, STOPS),
    ("--markers", Arity::Flag, STOPS),
    ("-h", Arity::Flag, STOPS),
    ("--help", Arity::Flag, STOPS),
    ("-V", Arity::Flag, STOPS),
    ("--version", Arity::Flag, STOPS),
    ("--pdb", Arity::Flag, INTERACTIVE),
    ("--pdbcls", Arity::Value, INTERACTIVE),
    ("--trace", Arity::Flag, INTERACTIVE),
    // pytest: the cache (and stepwise, which needs it) is disabled in the guest.
    ("--lf", Arity::Flag, CACHE),
    ("--last-failed", Arity::Flag, CACHE),
    ("--ff", Arity::Flag, CACHE),
    ("--failed-first", Arity::Flag, CACHE),
    ("--nf", Arity::Flag, CACHE),
    ("--new-first", Arity::Flag, CACHE),
    ("--cache-show", Arity::Optional, CACHE),
    ("--cache-clear", Arity::Flag, CACHE),
    ("--lfnf", Arity::Value, CACHE),
    ("--last-failed-no-failures", Arity::Value, CACHE),
    ("--sw", Arity::Flag, CACHE),
    ("--stepwise", Arity::Flag, CACHE),
    ("--sw-skip", Arity::Flag, CACHE),
    ("--stepwise-skip", Arity::Flag, CACHE),
    ("--sw-reset", Arity::Flag, CACHE),
    ("--stepwise-reset", Arity::Flag, CACHE),
    // pytest: report files.
    ("--junitxml", Arity::Value, FILES),
    ("--junit-xml", Arity::Value, FILES),
    ("--debug", Arity::Optional, FILES),
    ("--log-file", Arity::Value, FILES),
    ("--log-file-level", Arity::Value, FILES),
    ("--log-file-format", Arity::Value, FILES),
    ("--log-file-date-format", Arity::Value, FILES),
    ("--log-file-mode", Arity::Value, FILES),
    // pytest-xdist and pytest-forked: worker processes.
    ("-n", Arity::Value, PROCESSES),
    ("--numprocesses", Arity::Value, PROCESSES),
    ("--maxprocesses", Arity::Value, PROCESSES),
    ("--dist", Arity::Value, PROCESSES),
    ("-d", Arity::Flag, PROCESSES),
    ("--tx", Arity::Value, PROCESSES),
    ("--rsyncdir", Arity::Value, PROCESSES),
    ("--rsyncignore", Arity::Value, PROCESSES),
    ("-f", Arity::Flag, PROCESSES),
    ("--looponfail", Arity::Flag, PROCESSES),
    ("--max-worker-restart", Arity::Value, PROCESSES),
    ("--maxschedchunk", Arity::Value, PROCESSES),
    ("--forked", Arity::Flag, PROCESSES),
    ("--boxed", Arity::Flag, PROCESSES),
    // pytest-timeout: SIGALRM or a watchdog thread.
    ("--timeout", Arity::Value, SIGNALS),
    ("--timeout-method", Arity::Value, SIGNALS),
    ("--timeout_method", Arity::Value, SIGNALS),
    ("--session-timeout", Arity::Value, SIGNALS),
    // pytest-rerunfailures, flaky, pytest-flakefinder, pytest-repeat.
    ("--reruns", Arity::Value, RERUNS),
    ("--reruns-delay", Arity::Value, RERUNS),
    ("--only-rerun", Arity::Value, RERUNS),
    ("--rerun-except", Arity::Value, RERUNS),
    ("--fail-on-flaky", Arity::Flag, RERUNS),
    ("--force-flaky", Arity::Flag, RERUNS),
    ("--max-runs", Arity::Value, RERUNS),
    ("--min-passes", Arity::Value, RERUNS),
    ("--no-flaky-report", Arity::Flag, RERUNS),
    ("--flake-finder", Arity::Flag, RERUNS),
    ("--flake-runs", Arity::Value, RERUNS),
    ("--count", Arity::Value, Rule::Plugin("pytest-repeat")),
    (
        "--repeat-scope",
        Arity::Value,
        Rule::Plugin("pytest-repeat"),
    ),
    // pytest-cov.
    ("--cov", Arity::Optional, Rule::Plugin("pytest-cov")),
    ("--no-cov", Arity::Flag, Rule::Plugin("pytest-cov")),
    ("--no-cov-on-fail", Arity::Flag, Rule::Plugin("pytest-cov")),
    // Other common plugins.
    (
        "--asyncio-mode",
        Arity::Value,
        Rule::Plugin("pytest-asyncio"),
    ),
    ("--html", Arity::Value, Rule::Plugin("pytest-html")),
    (
        "--self-contained-html",
        Arity::Flag,
        Rule::Plugin("pytest-html"),
    ),
    ("--css", Arity::Value, Rule::Plugin("pytest-html")),
    (
        "--doctest-plus",
        Arity::Flag,
        Rule::Plugin("pytest-doctestplus"),
    ),
    (
        "--doctest-rst",
        Arity::Flag,
        Rule::Plugin("pytest-doctestplus"),
    ),
    (
        "--text-file-format",
        Arity::Value,
        Rule::Plugin("pytest-doctestplus"),
    ),
    (
        "--remote-data",
        Arity::Optional,
        Rule::Plugin("pytest-remotedata"),
    ),
    ("--instafail", Arity::Flag, Rule::Plugin("pytest-instafail")),
    ("--ds", Arity::Value, Rule::Plugin("pytest-django")),
    ("--dc", Arity::Value, Rule::Plugin("pytest-django")),
    ("--reuse-db", Arity::Flag, Rule::Plugin("pytest-django")),
    ("--create-db", Arity::Flag, Rule::Plugin("pytest-django")),
    ("--nomigrations", Arity::Flag, Rule::Plugin("pytest-django")),
    (
        "--no-migrations",
        Arity::Flag,
        Rule::Plugin("pytest-django"),
    ),
    (
        "--disable-socket",
        Arity::Flag,
        Rule::Plugin("pytest-socket"),
    ),
    ("--allow-hosts", Arity::Value, Rule::Plugin("pytest-socket")),
    (
        "--allow-unix-socket",
        Arity::Flag,
        Rule::Plugin("pytest-socket"),
    ),
    ("--emoji", Arity::Flag, Rule::Plugin("pytest-emoji")),
    ("--alluredir", Arity::Value, Rule::Plugin("allure-pytest")),
    ("--base-url", Arity::Value, Rule::Plugin("pytest-base-url")),
    ("--driver", Arity::Value, Rule::Plugin("pytest-selenium")),
    ("--memray", Arity::Flag, Rule::Plugin("pytest-memray")),
    ("--mypy", Arity::Flag, Rule::Plugin("pytest-mypy")),
    ("--flake8", Arity::Flag, Rule::Plugin("pytest-flake8")),
    ("--black", Arity::Flag, Rule::Plugin("pytest-black")),
    ("--isort", Arity::Flag, Rule::Plugin("pytest-isort")),
    ("--pylint", Arity::Flag, Rule::Plugin("pytest-pylint")),
    ("--ruff", Arity::Flag, Rule::Plugin("pytest-ruff")),
    ("--ruff-format", Arity::Flag, Rule::Plugin("pytest-ruff")),
    (
        "--pycodestyle",
        Arity::Flag,
        Rule::Plugin("pytest-pycodestyle"),
    ),
    ("--pep8", Arity::Flag, Rule::Plugin("pytest-pep8")),
    ("--flakes", Arity::Flag, Rule::Plugin("pytest-flakes")),
    ("--codestyle", Arity::Flag, Rule::Plugin("pytest-codestyle")),
    ("--docstyle", Arity::Flag, Rule::Plugin("pytest-docstyle")),
    ("--mccabe", Arity::Flag, Rule::Plugin("pytest-mccabe")),
    ("--nbval", Arity::Flag, Rule::Plugin("nbval")),
    ("--nbval-lax", Arity::Flag, Rule::Plugin("nbval")),
    ("--snapshot-update", Arity::Flag, FILES),
];

/// Options by prefix, for plugin families with many options (`--cov-report=term`).
const PREFIXES: &[(&str, Arity, Rule)] = &[
    ("--cov-", Arity::Value, Rule::Plugin("pytest-cov")),
    (
        "--benchmark-",
        Arity::Optional,
        Rule::Plugin("pytest-benchmark"),
    ),
    ("--hypothesis-", Arity::Value, Rule::Plugin("hypothesis")),
    (
        "--randomly-",
        Arity::Optional,
        Rule::Plugin("pytest-randomly"),
    ),
    (
        "--random-order",
        Arity::Optional,
        Rule::Plugin("pytest-random-order"),
    ),
    ("--mypy-", Arity::Value, Rule::Plugin("pytest-mypy")),
    ("--pylint-", Arity::Value, Rule::Plugin("pytest-pylint")),
    ("--mpl", Arity::Optional, Rule::Plugin("pytest-mpl")),
    ("--testmon", Arity::Optional, Rule::Plugin("pytest-testmon")),
    ("--json-report", Arity::Optional, FILES),
    (
        "--md-report",
        Arity::Optional,
        Rule::Plugin("pytest-md-report"),
    ),
    ("--snapshot-", Arity::Optional, Rule::Plugin("syrupy")),
    ("--xvfb", Arity::Optional, Rule::Plugin("pytest-xvfb")),
    ("--splinter-", Arity::Value, Rule::Plugin("pytest-splinter")),
];

/// Plugins that ship inside pytest and so load with `-p NAME` in the guest.
const BUILTIN_PLUGINS: &[&str] = &[
    "mark",
    "main",
    "runner",
    "fixtures",
    "helpconfig",
    "python",
    "terminal",
    "debugging",
    "unittest",
    "capture",
    "skipping",
    "legacypath",
    "tmpdir",
    "monkeypatch",
    "recwarn",
    "pastebin",
    "assertion",
    "junitxml",
    "doctest",
    "cacheprovider",
    "freeze_support",
    "setuponly",
    "setupplan",
    "stepwise",
    "unraisableexception",
    "threadexception",
    "warnings",
    "logging",
    "reports",
    "faulthandler",
    "subtests",
    "python_path",
    "pytester",
    "pytester_assertions",
];

/// What is installed in the guest for this project, to decide plugin options.
pub struct Installed<'a> {
    /// Normalised distribution names (`pytest-asyncio`) of the project's dependency wheels.
    pub distributions: &'a [String],
    /// Whether a module importable in the guest (the project's or a dependency's) has this
    /// dotted name, for `-p MODULE`.
    pub has_module: &'a dyn Fn(&str) -> bool,
}

/// One option removed from the project's addopts, with why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dropped {
    /// The option and its value, as written.
    pub args: Vec<String>,
    /// Why it cannot run in the guest.
    pub reason: String,
}

/// The project's addopts split into what runs in the guest and what does not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filtered {
    /// Arguments kept, in their order.
    pub kept: Vec<String>,
    /// Options removed.
    pub dropped: Vec<Dropped>,
}

/// Keeps the options of `args` that work in the guest. Options spar does not know are kept:
/// pytest names them if they are wrong, and [`unrecognized`] turns that into a retry.
pub fn filter(args: &[String], installed: &Installed) -> Filtered {
    let mut out = Filtered::default();
    let mut i = 0;
    while i < args.len() {
        let (group, rule) = option_group(args, i, installed);
        i += group.len();
        match rule {
            None => out.kept.extend(group),
            Some(reason) => out.dropped.push(Dropped {
                args: group,
                reason,
            }),
        }
    }
    out
}

/// The option at `args[i]` with its value arguments, and `Some(reason)` when it must go.
fn option_group(args: &[String], i: usize, installed: &Installed) -> (Vec<String>, Option<String>) {
    let arg = &args[i];
    let next = args.get(i + 1);
    if !arg.starts_with('-') || arg == "-" || arg == "--" {
        return (vec![arg.clone()], None);
    }
    if arg.starts_with("--") {
        let (name, attached) = match arg.split_once('=') {
            Some((n, _)) => (n, true),
            None => (arg.as_str(), false),
        };
        let (arity, rule) = lookup(name).unwrap_or((Arity::Flag, Rule::Keep));
        let takes_next = !attached
            && match arity {
                Arity::Flag => false,
                Arity::Value => next.is_some(),
                Arity::Optional => next.is_some_and(|n| !n.starts_with('-')),
            };
        let group = args[i..i + 1 + usize::from(takes_next)].to_vec();
        return (group, verdict(rule, installed));
    }
    short_group(args, i, installed)
}

/// A short option or a cluster of short flags (`-vx`, `-rA`, `-n 4`, `-pno:cacheprovider`).
fn short_group(args: &[String], i: usize, installed: &Installed) -> (Vec<String>, Option<String>) {
    let arg = &args[i];
    let first = &arg[..arg.char_indices().nth(2).map_or(arg.len(), |(p, _)| p)];
    let attached = &arg[first.len()..];
    if first == "-p" {
        let (group, name) = if attached.is_empty() {
            let name = args.get(i + 1).map_or("", String::as_str);
            (args[i..(i + 2).min(args.len())].to_vec(), name)
        } else {
            (vec![arg.clone()], attached)
        };
        return (group, plugin_verdict(name, installed));
    }
    match lookup(first) {
        Some((Arity::Flag, _)) | None if !attached.is_empty() => {
            // A cluster of flags: judge each; any that must go takes the cluster with it
            // unless the rest can be kept on their own.
            let flags: Vec<String> = arg[1..].chars().map(|c| format!("-{c}")).collect();
            if flags
                .iter()
                .any(|f| lookup(f).is_some_and(|(a, _)| a != Arity::Flag))
            {
                return (vec![arg.clone()], None);
            }
            let reasons: Vec<String> = flags
                .iter()
                .filter_map(|f| lookup(f).and_then(|(_, r)| verdict(r, installed)))
                .collect();
            (vec![arg.clone()], reasons.into_iter().next())
        }
        Some((arity, rule)) => {
            let takes_next =
                attached.is_empty() && arity != Arity::Flag && args.get(i + 1).is_some();
            let group = args[i..i + 1 + usize::from(takes_next)].to_vec();
            (group, verdict(rule, installed))
        }
        None => (vec![arg.clone()], None),
    }
}

fn lookup(name: &str) -> Option<(Arity, Rule)> {
    OPTIONS
        .iter()
        .find(|(n, _, _)| *n == name)
        .or_else(|| PREFIXES.iter().find(|(p, _, _)| name.starts_with(p)))
        .map(|(_, arity, rule)| (*arity, *rule))
}

fn verdict(rule: Rule, installed: &Installed) -> Option<String> {
    match rule {
        Rule::Keep => None,
        Rule::Drop(reason) => Some(reason.to_owned()),
        Rule::Plugin(dist) if installed.distributions.iter().any(|d| d == dist) => None,
        Rule::Plugin(dist) => Some(format!("needs the {dist} plugin, which the guest lacks")),
    }
}

/// `-p NAME`: `no:NAME` blocks a plugin and is always fine; other names load a module, which
/// must exist in the guest.
fn plugin_verdict(name: &str, installed: &Installed) -> Option<String> {
    if name.starts_with("no:") {
        return None;
    }
    let builtin = BUILTIN_PLUGINS.contains(&name) || name.starts_with("_pytest.");
    if builtin || (installed.has_module)(name) {
        return None;
    }
    if name.is_empty() {
        return Some("-p needs a plugin name".into());
    }
    Some(format!(
        "loads the plugin module {name}, which the guest lacks"
    ))
}

/// The arguments pytest refused in a usage error (exit status 4): `unrecognized arguments: A B`
/// and `file or directory not found: P`, as printed on stdout or stderr.
pub fn unrecognized(output: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in output.lines() {
        if let Some((_, rest)) = line.split_once("unrecognized arguments:") {
            found.extend(rest.split_whitespace().map(str::to_owned));
        } else if let Some((_, rest)) = line.split_once("file or directory not found:") {
            found.push(rest.trim().to_owned());
        }
    }
    found
}

/// The output pytest prints when `--strict-markers` meets a mark nobody registered, which in
/// the guest usually is a mark of a plugin that is not installed.
pub fn unregistered_marker(output: &str) -> bool {
    output.contains("not found in `markers` configuration option")
}

/// Removes from `kept` each argument named in `refused` (`--level` also removes `--level=3`).
/// A value that followed a refused option stays: pytest names it in the next try if it is not
/// a path. Returns what was removed; empty when none of `refused` is among `kept`, so a retry
/// cannot help.
pub fn remove(kept: &mut Vec<String>, refused: &[String]) -> Vec<String> {
    let is_refused = |arg: &String| {
        refused
            .iter()
            .any(|r| r == arg || arg.split_once('=').is_some_and(|(n, _)| n == r))
    };
    let (removed, rest): (Vec<String>, Vec<String>) = kept.drain(..).partition(is_refused);
    *kept = rest;
    removed
}

/// The normalised distribution name of a wheel file name (`pytest_asyncio-0.23-...whl` is
/// `pytest-asyncio`).
pub fn wheel_distribution(file_name: &str) -> String {
    file_name
        .split('-')
        .next()
        .unwrap_or("")
        .to_lowercase()
        .replace(['_', '.'], "-")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| (*a).to_owned()).collect()
    }

    fn nothing_installed() -> Installed<'static> {
        Installed {
            distributions: &[],
            has_module: &|_| false,
        }
    }

    fn filter_text(text: &str) -> Filtered {
        filter(&split_args(text).unwrap(), &nothing_installed())
    }

    #[test]
    fn splitting_matches_python_shlex() {
        assert_eq!(
            split_args("-m 'not stress'").unwrap(),
            s(&["-m", "not stress"])
        );
        assert_eq!(
            split_args("-k \"a and not \\\"b\\\"\"  -ra\n  --strict-markers").unwrap(),
            s(&["-k", "a and not \"b\"", "-ra", "--strict-markers"])
        );
        assert_eq!(split_args("a\\ b 'c'd\"e\"").unwrap(), s(&["a b", "cde"]));
        assert_eq!(split_args("'' x").unwrap(), s(&["", "x"]));
        // Python's shlex.split has no comments by default: `#` is an ordinary character.
        assert_eq!(split_args("#x \"\\n\"").unwrap(), s(&["#x", "\\n"]));
        assert_eq!(split_args("-k 'ünï' x").unwrap(), s(&["-k", "ünï", "x"]));
        assert!(split_args("-m 'open").is_err());
        assert!(split_args("trailing\\").is_err());
        assert!(split_args("  \n ").unwrap().is_empty());
    }

    #[test]
    fn real_world_addopts_keep_what_the_suite_needs() {
        // click's: deselecting its stress tests is what makes the suite finish.
        let f = filter_text("-m 'not stress'");
        assert_eq!(f.kept, s(&["-m", "not stress"]));
        assert!(f.dropped.is_empty());

        // A typical coverage-and-xdist setup.
        let f = filter_text(
            "--cov=src/pkg --cov-report term-missing --cov-report=xml -n auto --dist loadfile \
             --strict-markers -ra -p no:randomly --import-mode=importlib",
        );
        assert_eq!(
            f.kept,
            s(&[
                "--strict-markers",
                "-ra",
                "-p",
                "no:randomly",
                "--import-mode=importlib"
            ])
        );
        let dropped: Vec<Vec<String>> = f.dropped.iter().map(|d| d.args.clone()).collect();
        assert_eq!(
            dropped,
            [
                s(&["--cov=src/pkg"]),
                s(&["--cov-report", "term-missing"]),
                s(&["--cov-report=xml"]),
                s(&["-n", "auto"]),
                s(&["--dist", "loadfile"]),
            ]
        );
        assert!(
            f.dropped[0].reason.contains("pytest-cov"),
            "{:?}",
            f.dropped[0]
        );
        assert!(
            f.dropped[3].reason.contains("subprocesses"),
            "{:?}",
            f.dropped[3]
        );

        // `--cov` takes an optional value: a following option is not it.
        let f = filter_text(
            "--cov --doctest-modules -p xdist -pno:cacheprovider --timeout=30 -x tests",
        );
        assert_eq!(
            f.kept,
            s(&["--doctest-modules", "-pno:cacheprovider", "tests"])
        );
        assert_eq!(f.dropped.len(), 4, "{:?}", f.dropped);

        // Output and stopping options are spar's to choose; warnings filters are the project's.
        let f = filter_text("-q --tb=short -W error::DeprecationWarning --maxfail 2 -vv --lf");
        assert_eq!(
            f.kept,
            s(&["--tb=short", "-W", "error::DeprecationWarning"])
        );
        assert_eq!(f.dropped.len(), 4, "{:?}", f.dropped);

        // Unknown options are kept: pytest decides, and the import retries without them.
        let f = filter_text("--some-new-option -rxXs");
        assert_eq!(f.kept, s(&["--some-new-option", "-rxXs"]));
    }

    #[test]
    fn installed_plugins_keep_their_options() {
        let dists = ["pytest-asyncio".to_owned()];
        let installed = Installed {
            distributions: &dists,
            has_module: &|m| m == "tests.plugin",
        };
        let f = filter(
            &s(&[
                "--asyncio-mode=auto",
                "-p",
                "tests.plugin",
                "--reruns",
                "3",
                "-p",
                "pytest_cov",
            ]),
            &installed,
        );
        assert_eq!(f.kept, s(&["--asyncio-mode=auto", "-p", "tests.plugin"]));
        assert_eq!(f.dropped.len(), 2);
        assert!(
            f.dropped[1].reason.contains("pytest_cov"),
            "{:?}",
            f.dropped[1]
        );
    }

    #[test]
    fn usage_errors_name_what_to_remove() {
        let out = "ERROR: usage: __main__.py [options] [file_or_dir] [file_or_dir] [...]\n\
                   __main__.py: error: unrecognized arguments: --frobnicate --level=3\n  inifile: /repo/pyproject.toml\n";
        let refused = unrecognized(out);
        assert_eq!(refused, s(&["--frobnicate", "--level=3"]));
        let mut kept = s(&["-m", "not slow", "--frobnicate", "fast", "--level=3", "-ra"]);
        let removed = remove(&mut kept, &refused);
        assert_eq!(removed, s(&["--frobnicate", "--level=3"]));
        assert_eq!(kept, s(&["-m", "not slow", "fast", "-ra"]));
        assert!(remove(&mut kept, &s(&["--absent"])).is_empty());
        assert_eq!(
            unrecognized("ERROR: file or directory not found: fast\n"),
            s(&["fast"])
        );
    }

    fn repo(files: &[(&str, &str)]) -> Snapshot {
        Snapshot::from_files(files.iter().map(|(p, c)| (*p, c.as_bytes().to_vec()))).unwrap()
    }

    #[test]
    fn config_files_are_found_as_pytest_finds_them() {
        let tests = s(&["tests"]);
        let found = |files: &[(&str, &str)]| project_addopts(&repo(files), &tests).unwrap();
        let t = ("tests/test_a.py", "");
        assert_eq!(
            found(&[
                t,
                (
                    "pyproject.toml",
                    "[tool.pytest.ini_options]\naddopts = \"-m 'not stress'\"\n"
                )
            ]),
            Some(ProjectAddopts {
                file: "pyproject.toml".into(),
                args: s(&["-m", "not stress"]),
            })
        );
        // pytest 9's native table takes lists.
        assert_eq!(
            found(&[
                t,
                (
                    "pyproject.toml",
                    "[tool.pytest]\naddopts = [\"-k\", \"a b\"]\n"
                )
            ])
            .unwrap()
            .args,
            s(&["-k", "a b"])
        );
        // pytest.ini wins over pyproject.toml, even empty, and stops the search.
        assert_eq!(
            found(&[
                t,
                ("pytest.ini", ""),
                (
                    "pyproject.toml",
                    "[tool.pytest.ini_options]\naddopts = \"-x\"\n"
                )
            ]),
            None
        );
        // setup.cfg counts only with [tool:pytest]; continuation lines join.
        assert_eq!(
            found(&[t, ("setup.cfg", "[metadata]\nname = x\n\n[tool:pytest]\naddopts =\n    --doctest-modules\n    -p no:warnings  \n# note\ntestpaths = tests\n")])
                .unwrap()
                .args,
            s(&["--doctest-modules", "-p", "no:warnings"])
        );
        assert_eq!(found(&[t, ("setup.cfg", "[metadata]\nname = x\n")]), None);
        assert_eq!(
            found(&[
                t,
                (
                    "tox.ini",
                    "[tox]\nenvlist = py3\n[pytest]\naddopts: -ra --strict-markers\n"
                )
            ])
            .unwrap()
            .file,
            "tox.ini"
        );
        // A configuration file in the tests directory is nearer than the root's.
        assert_eq!(
            found(&[
                t,
                ("tests/pytest.ini", "[pytest]\naddopts = -k near\n"),
                ("pytest.ini", "[pytest]\naddopts = -k far\n")
            ])
            .unwrap()
            .args,
            s(&["-k", "near"])
        );
        assert!(matches!(
            project_addopts(
                &repo(&[t, ("pytest.ini", "[pytest]\naddopts = -m 'open\n")]),
                &tests
            ),
            Err(AddoptsError::Split { .. })
        ));
        assert!(matches!(
            project_addopts(&repo(&[t, ("pyproject.toml", "[tool.pytest\n")]), &tests),
            Err(AddoptsError::Parse { .. })
        ));
    }

    #[test]
    fn search_starts_at_the_common_ancestor() {
        let r = repo(&[
            ("a/b/test_x.py", ""),
            ("a/c/test_y.py", ""),
            ("top_test.py", ""),
        ]);
        assert_eq!(search_dirs(&r, &s(&["a/b", "a/c"])), s(&["a", ""]));
        assert_eq!(
            search_dirs(&r, &s(&["a/b/test_x.py"])),
            s(&["a/b", "a", ""])
        );
        assert_eq!(search_dirs(&r, &s(&["a/b", "top_test.py"])), s(&[""]));
    }

    #[test]
    fn wheel_names_normalise() {
        assert_eq!(
            wheel_distribution("pytest_asyncio-0.23.0-py3-none-any.whl"),
            "pytest-asyncio"
        );
        assert_eq!(
            wheel_distribution("zope.interface-6-py3-none-any.whl"),
            "zope-interface"
        );
    }
}
