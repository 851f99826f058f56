//! What the policy sees: the engine's candidate sets for both roles, each candidate encoded as
//! hashed code tokens (from the parse tree) plus dense features, and a per-decision context.
//!
//! The candidate sets are where the engine's knowledge stops and the policy's starts: the
//! engine lists every edit that is mechanically possible (mutation operators at covered sites
//! for the injector; repair operators anywhere in the code for the solver), and marks what a
//! reader of the failing output would notice (traceback frames, called functions, shared
//! identifiers). Which of those signals matter is for the policy to learn.

use crate::agents::{called_names, code_files, traceback_sites, Rng};
use crate::pyedit::{self, Edit, Operator, RemovalKind};
use crate::snapshot::Snapshot;
use std::collections::{BTreeMap, BTreeSet};

/// Hashed vocabulary size; id 0 is padding.
pub const VOCAB: usize = 8192;
/// Tokens per candidate at most.
pub const CANDIDATE_TOKENS: usize = 48;
/// Context tokens per decision at most.
pub const CONTEXT_TOKENS: usize = 64;
/// Dense features per candidate.
pub const DENSE: usize = 34;
/// Solver candidates per decision at most.
pub const MAX_SOLVER_CANDIDATES: usize = 32;
/// Injector candidates per decision at most.
pub const MAX_INJECTOR_CANDIDATES: usize = 96;

/// Which role a decision is for; the network gets it as an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Repairs bugs.
    Solver,
    /// Writes bugs.
    Injector,
}

/// One candidate as the network sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Encoded {
    /// Hashed token ids in `1..VOCAB`.
    pub tokens: Vec<u32>,
    /// Dense features, [`DENSE`] of them.
    pub dense: Vec<f32>,
}

/// One candidate edit: where, what, and its encoding.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// The file edited.
    pub path: String,
    /// 1-based line of the edit.
    pub line: u32,
    /// What it does, for logs (`arithmetic_swap at calc/ops.py:12`).
    pub label: String,
    /// The edit on the file's current text.
    pub edit: Edit,
    /// The network's view of it.
    pub encoded: Encoded,
}

/// A choice to make: the candidates and the context they are judged in.
#[derive(Clone, Debug)]
pub struct Choice {
    /// The role choosing.
    pub role: Role,
    /// Context token ids (the failing output's identifiers for the solver).
    pub context: Vec<u32>,
    /// The edits to choose among, in a seeded order: at most [`MAX_SOLVER_CANDIDATES`] or
    /// [`MAX_INJECTOR_CANDIDATES`], by role.
    pub candidates: Vec<Candidate>,
}

fn fnv(namespace: &str, token: &str) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in namespace.bytes().chain([0xff]).chain(token.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    1 + (h % (VOCAB as u64 - 1)) as u32
}

/// The id of `token` in `namespace`.
pub fn token_id(namespace: &str, token: &str) -> u32 {
    fnv(namespace, token)
}

fn is_identifier(token: &str) -> bool {
    token
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && token.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// Identifiers and numbers and operator runs of a short snippet (an edit's old or new text,
/// which need not parse on its own).
fn snippet_tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut kind = 0u8;
    for c in text.chars() {
        let k = if c.is_alphanumeric() || c == '_' {
            1
        } else if c.is_whitespace() {
            0
        } else {
            2
        };
        if k != kind || k == 0 {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            kind = k;
        }
        if k != 0 {
            current.push(c);
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Index of an operator or removal kind in the one-hot block.
fn kind_index(kind: Kind) -> usize {
    match kind {
        Kind::Mutation(op) => Operator::ALL.iter().position(|o| *o == op).unwrap_or(0),
        Kind::Removal(RemovalKind::FunctionBody) => Operator::ALL.len(),
        Kind::Removal(RemovalKind::Hunk) => Operator::ALL.len() + 1,
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Mutation(Operator),
    Removal(RemovalKind),
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Mutation(op) => op.as_str(),
            Kind::Removal(RemovalKind::FunctionBody) => "remove_function_body",
            Kind::Removal(RemovalKind::Hunk) => "remove_hunk",
        }
    }
}

// Dense layout: 0 bias; 1-10 solver localization; 11-28 kind one-hot; 29-30 role; 31-33 size.
const KIND_AT: usize = 11;
const ROLE_AT: usize = 29;
const SIZE_AT: usize = 31;
const _: () = assert!(
    KIND_AT + Operator::ALL.len() + 2 <= ROLE_AT && SIZE_AT + 3 <= DENSE,
    "the dense layout must hold every operator and removal kind"
);

/// Parsed facts about one file, shared by its candidates.
struct FileView {
    path: String,
    text: String,
    tokens: Vec<Vec<String>>,
    functions: Vec<pyedit::FunctionSpan>,
}

impl FileView {
    fn new(path: String, text: String) -> Option<FileView> {
        let tokens = pyedit::line_tokens(&text).ok()?;
        let functions = pyedit::functions(&text).unwrap_or_default();
        Some(FileView {
            path,
            text,
            tokens,
            functions,
        })
    }

    /// Tokens of lines `line-1..=line+1` (1-based `line`).
    fn window(&self, line: u32) -> impl Iterator<Item = &String> {
        let row = line.saturating_sub(1) as usize;
        (row.saturating_sub(1)..=row + 1)
            .filter_map(|r| self.tokens.get(r))
            .flatten()
    }

    fn function_lines(&self, qualname: Option<&str>) -> u32 {
        qualname
            .and_then(|q| self.functions.iter().find(|f| f.qualname == q))
            .map_or(0, |f| f.end_line.saturating_sub(f.def_line) + 1)
    }
}

fn encode(
    file: &FileView,
    line: u32,
    kind: Kind,
    edit: &Edit,
    function: Option<&str>,
    role: Role,
    mut dense: Vec<f32>,
) -> Encoded {
    let mut tokens = vec![token_id("kind", kind.name())];
    let old = file.text.get(edit.start..edit.end).unwrap_or_default();
    for t in snippet_tokens(old).iter().take(8) {
        tokens.push(token_id("old", t));
    }
    for t in snippet_tokens(&edit.replacement).iter().take(8) {
        tokens.push(token_id("new", t));
    }
    if let Some(f) = function {
        tokens.push(token_id("id", f.rsplit('.').next().unwrap_or(f)));
    }
    for t in file.window(line) {
        if tokens.len() >= CANDIDATE_TOKENS {
            break;
        }
        let namespace = if is_identifier(t) { "id" } else { "code" };
        tokens.push(token_id(namespace, t));
    }
    dense.resize(DENSE, 0.0);
    dense[0] = 1.0;
    dense[KIND_AT + kind_index(kind)] = 1.0;
    dense[ROLE_AT + usize::from(role == Role::Injector)] = 1.0;
    let function_lines = file.function_lines(function) as f32;
    dense[SIZE_AT] = (function_lines / 50.0).min(1.0);
    let changed_lines = old.lines().count().max(1) as f32;
    dense[SIZE_AT + 1] = changed_lines.ln_1p() / 3.0;
    dense[SIZE_AT + 2] = (line as f32 / 500.0).min(1.0);
    Encoded { tokens, dense }
}

/// What the solver reads off a failing run.
struct Evidence {
    frames: Vec<(String, u32)>,
    called: BTreeSet<String>,
    words: BTreeSet<String>,
}

impl Evidence {
    fn new(output: &str) -> Evidence {
        let words = snippet_tokens(output)
            .into_iter()
            .filter(|t| is_identifier(t) && t.len() > 1)
            .collect();
        Evidence {
            frames: traceback_sites(output),
            called: called_names(output).into_iter().collect(),
            words,
        }
    }

    /// Features 1-10 of a candidate at `path:line` in `function`.
    fn localization(&self, file: &FileView, line: u32, function: Option<&str>) -> Vec<f32> {
        let mut dense = vec![0.0; DENSE];
        let mut nearest = u32::MAX;
        let mut rank_weight: f32 = 0.0;
        for (rank, (path, frame_line)) in self.frames.iter().enumerate() {
            if *path != file.path {
                continue;
            }
            let d = frame_line.abs_diff(line);
            nearest = nearest.min(d);
            if d <= 3 {
                rank_weight = rank_weight.max(1.0 / (1.0 + rank as f32));
            }
        }
        let in_file = self.frames.iter().any(|(p, _)| *p == file.path);
        let short = function.map(|f| f.rsplit('.').next().unwrap_or(f));
        let frame_function = function.is_some_and(|q| {
            let f = file.functions.iter().find(|f| f.qualname == q);
            f.is_some_and(|f| {
                self.frames
                    .iter()
                    .any(|(p, l)| *p == file.path && (f.def_line..=f.end_line).contains(l))
            })
        });
        let window: Vec<&String> = file.window(line).filter(|t| is_identifier(t)).collect();
        let shared = window.iter().filter(|t| self.words.contains(**t)).count();
        dense[1] = f32::from(nearest == 0);
        dense[2] = f32::from(nearest <= 1);
        dense[3] = f32::from(nearest <= 3);
        dense[4] = if nearest == u32::MAX {
            0.0
        } else {
            1.0 / (1.0 + nearest as f32)
        };
        dense[5] = f32::from(in_file);
        dense[6] = rank_weight;
        dense[7] = f32::from(short.is_some_and(|s| self.called.contains(s)));
        dense[8] = f32::from(short.is_some_and(|s| self.words.contains(s)));
        dense[9] = if window.is_empty() {
            0.0
        } else {
            shared as f32 / window.len() as f32
        };
        dense[10] = f32::from(frame_function);
        dense
    }

    fn context(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = Vec::new();
        for (path, _) in self.frames.iter().take(8) {
            ids.push(token_id("frame", path));
        }
        for c in &self.called {
            ids.push(token_id("id", c));
        }
        for w in &self.words {
            if ids.len() >= CONTEXT_TOKENS {
                break;
            }
            ids.push(token_id("id", w));
        }
        ids.truncate(CONTEXT_TOKENS);
        ids
    }
}

/// A seeded subset of at most `max` items, filled from the lowest `tier` up (a tier that does
/// not fit whole is sampled), returned in a seeded order: the order of a candidate set must
/// carry no information.
fn pick<T>(items: Vec<T>, tier: impl Fn(&T) -> usize, max: usize, rng: &mut Rng) -> Vec<T> {
    let mut tiers: BTreeMap<usize, Vec<T>> = BTreeMap::new();
    for item in items {
        tiers.entry(tier(&item)).or_default().push(item);
    }
    let mut picked = Vec::with_capacity(max);
    for mut items in tiers.into_values() {
        shuffle(&mut items, rng);
        let room = max - picked.len();
        picked.extend(items.into_iter().take(room));
        if picked.len() == max {
            break;
        }
    }
    shuffle(&mut picked, rng);
    picked
}

fn shuffle<T>(items: &mut [T], rng: &mut Rng) {
    for i in (1..items.len()).rev() {
        items.swap(i, rng.below(i + 1));
    }
}

/// How strongly the failing output points at a solver candidate, 0 strongest: on a traceback
/// frame's line, within one line, within three, in a frame's or a called function, in a file
/// the output names, anywhere else. Capping the set by these tiers keeps the sites a reader
/// would look at first, so the cap never hides the likely fix behind a random draw.
fn evidence_tier(c: &Candidate) -> usize {
    let d = &c.encoded.dense;
    let tiers = [d[1], d[2], d[3], d[10].max(d[7]), d[5].max(d[8])];
    tiers.iter().position(|&f| f > 0.0).unwrap_or(tiers.len())
}

/// The solver's candidates in `state` given a failing run's `output`: every repair operator
/// in the code, at most [`MAX_SOLVER_CANDIDATES`], kept by how strongly the output points at
/// them (`evidence_tier`), the last tier that fits sampled. The sample is seeded from the
/// observation itself, so every attempt at a bug sees the same candidate set: the attempts of a
/// group then differ only in what the policy chose (what group-relative advantages assume),
/// and a bug costs at most one test run per candidate, however often it is played.
pub fn solver_choice(state: &Snapshot, output: &str) -> Choice {
    let mut rng = Rng(content_key(state.content_hash()) ^ content_key(output).rotate_left(17));
    let evidence = Evidence::new(output);
    let mut all = Vec::new();
    for (path, text) in code_files(state) {
        let Ok(mutations) = pyedit::mutations(&text) else {
            continue;
        };
        let Some(file) = FileView::new(path, text) else {
            continue;
        };
        for m in mutations {
            let function = m.enclosing_function.as_deref();
            let dense = evidence.localization(&file, m.line, function);
            let kind = Kind::Mutation(m.operator);
            all.push(Candidate {
                path: file.path.clone(),
                line: m.line,
                label: format!("{} at {}:{}", kind.name(), file.path, m.line),
                encoded: encode(&file, m.line, kind, &m.edit, function, Role::Solver, dense),
                edit: m.edit,
            });
        }
    }
    Choice {
        role: Role::Solver,
        context: evidence.context(),
        candidates: pick(all, evidence_tier, MAX_SOLVER_CANDIDATES, &mut rng),
    }
}

/// A short key for a file content, to remember which edits were tried.
pub fn content_key(content: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in content.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The injector's candidates in `repo`: mutations and removals on lines the tests cover
/// (`covered`: file -> 1-based lines), at most [`MAX_INJECTOR_CANDIDATES`] (a seeded sample).
pub fn injector_choice(
    repo: &Snapshot,
    covered: &BTreeMap<String, BTreeSet<u32>>,
    rng: &mut Rng,
) -> Choice {
    let mut all = Vec::new();
    for (path, text) in code_files(repo) {
        let Some(lines) = covered.get(&path) else {
            continue;
        };
        let Some(file) = FileView::new(path, text) else {
            continue;
        };
        let mut sites: Vec<(u32, Kind, Edit, Option<String>)> = Vec::new();
        for m in pyedit::mutations(&file.text).unwrap_or_default() {
            if lines.contains(&m.line) {
                sites.push((
                    m.line,
                    Kind::Mutation(m.operator),
                    m.edit,
                    m.enclosing_function,
                ));
            }
        }
        for r in pyedit::removals(&file.text).unwrap_or_default() {
            if (r.first_line..=r.last_line).any(|l| lines.contains(&l)) {
                sites.push((
                    r.first_line,
                    Kind::Removal(r.kind),
                    r.edit,
                    Some(r.qualname),
                ));
            }
        }
        for (line, kind, edit, function) in sites {
            let dense = vec![0.0; DENSE];
            all.push(Candidate {
                path: file.path.clone(),
                line,
                label: format!("{} at {}:{}", kind.name(), file.path, line),
                encoded: encode(
                    &file,
                    line,
                    kind,
                    &edit,
                    function.as_deref(),
                    Role::Injector,
                    dense,
                ),
                edit,
            });
        }
    }
    Choice {
        role: Role::Injector,
        context: vec![token_id("role", "injector")],
        candidates: pick(all, |_| 0, MAX_INJECTOR_CANDIDATES, rng),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> Snapshot {
        Snapshot::from_files([
            (
                "calc/ops.py",
                b"def add(a, b):\n    return a + b\n\n\ndef scale(x, k):\n    if k < 0:\n        raise ValueError('k')\n    return x * k\n".to_vec(),
            ),
            (
                "tests/test_ops.py",
                b"from calc.ops import add\n\ndef test_add():\n    assert add(1, 2) == 3\n".to_vec(),
            ),
        ])
        .unwrap()
    }

    const OUTPUT: &str = "FAILED tests/test_ops.py::test_add - assert -1 == 3\n\
        tests/test_ops.py:4: in test_add\n    assert add(1, 2) == 3\n\
        calc/ops.py:2: in add\n    return a + b\n";

    #[test]
    fn solver_candidates_mark_the_traceback_site() {
        let choice = solver_choice(&repo(), OUTPUT);
        assert!(!choice.candidates.is_empty());
        assert!(choice.candidates.iter().all(|c| c.path == "calc/ops.py"));
        let at_frame: Vec<&Candidate> = choice
            .candidates
            .iter()
            .filter(|c| c.encoded.dense[1] == 1.0)
            .collect();
        assert!(!at_frame.is_empty());
        assert!(at_frame.iter().all(|c| c.line == 2));
        let far = choice.candidates.iter().find(|c| c.line == 8).unwrap();
        assert_eq!(far.encoded.dense[3], 0.0);
        assert_eq!(far.encoded.dense[5], 1.0, "same file as a frame");
        for c in &choice.candidates {
            assert_eq!(c.encoded.dense.len(), DENSE);
            assert!(c.encoded.tokens.len() <= CANDIDATE_TOKENS);
            assert!(c
                .encoded
                .tokens
                .iter()
                .all(|t| (1..VOCAB as u32).contains(t)));
            assert_eq!(c.encoded.dense[ROLE_AT], 1.0);
        }
        assert!(choice.context.contains(&token_id("id", "add")));
    }

    #[test]
    fn candidate_sets_are_a_function_of_the_observation() {
        let labels = |c: &Choice| {
            c.candidates
                .iter()
                .map(|c| c.label.clone())
                .collect::<Vec<_>>()
        };
        let a = solver_choice(&repo(), OUTPUT);
        assert_eq!(labels(&a), labels(&solver_choice(&repo(), OUTPUT)));
        let other_output = format!("{OUTPUT}E   assert 0 == 1\n");
        let mut seen = BTreeSet::new();
        for extra in 0..8 {
            let output = format!("{other_output}{}", "x".repeat(extra));
            seen.insert(labels(&solver_choice(&repo(), &output)));
        }
        assert!(seen.len() > 1, "the order is seeded from the observation");
    }

    #[test]
    fn the_cap_keeps_the_sites_the_traceback_points_at() {
        let mut code = String::new();
        for i in 0..40 {
            code.push_str(&format!("def f{i}(a, b):\n    return a + b * {i}\n\n\n"));
        }
        let repo = Snapshot::from_files([("calc/many.py", code.into_bytes())]).unwrap();
        // f30's return is on line 4 * 30 + 2.
        let output = "FAILED tests/test_many.py::test_f - assert 1 == 2\n\
            calc/many.py:122: in f30\n    return a + b * 30\n";
        let text = repo.file("calc/many.py").unwrap();
        let all_on_frame = pyedit::mutations(std::str::from_utf8(&text).unwrap())
            .unwrap()
            .iter()
            .filter(|m| m.line == 122)
            .count();
        assert!(all_on_frame > 0);
        for extra in 0..6 {
            let output = format!("{output}{}", " ".repeat(extra));
            let choice = solver_choice(&repo, &output);
            assert_eq!(choice.candidates.len(), MAX_SOLVER_CANDIDATES);
            let on_frame = choice.candidates.iter().filter(|c| c.line == 122).count();
            assert_eq!(
                on_frame, all_on_frame,
                "every edit on the frame's line is kept"
            );
        }
    }

    #[test]
    fn injector_candidates_stay_on_covered_lines() {
        let covered = BTreeMap::from([("calc/ops.py".to_owned(), BTreeSet::from([1, 2]))]);
        let choice = injector_choice(&repo(), &covered, &mut Rng(3));
        assert!(!choice.candidates.is_empty());
        assert!(choice.candidates.iter().all(|c| c.line <= 2));
        assert!(choice
            .candidates
            .iter()
            .all(|c| c.encoded.dense[ROLE_AT + 1] == 1.0));
    }

    #[test]
    fn snippets_split_into_words_and_operator_runs() {
        assert_eq!(snippet_tokens("a<=b + 10"), ["a", "<=", "b", "+", "10"]);
        assert_eq!(fnv("id", "x"), token_id("id", "x"));
        assert_ne!(token_id("id", "x"), token_id("old", "x"));
    }
}
