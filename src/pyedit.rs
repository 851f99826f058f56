//! Python source analysis and minimal text edits over a real parse tree (tree-sitter-python).
//!
//! Bug injectors use it to enumerate mutation sites ([`mutations`]) and code removals
//! ([`removals`]); automatic test weakening uses it to delete test functions
//! ([`remove_tests`]). Every edit is one byte-range replacement ([`Edit`]) touching only the
//! text it must, so formatting and comments elsewhere stay byte-identical, and every edit
//! offered has been checked to re-parse without syntax errors.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex};

use tree_sitter::{InputEdit, Node, Parser, Point, Tree};

/// Why a source could not be analysed or edited.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PyEditError {
    /// The source, or the result of an edit, does not parse cleanly.
    #[error("Python syntax error near line {line}")]
    Syntax {
        /// Where (1-based) the first ERROR or MISSING node of the parse starts.
        line: u32,
    },
    /// A test to remove is not defined in the file; the payload is `Class::name` or `name`.
    #[error("test not found: {0}")]
    TestNotFound(String),
    /// tree-sitter itself failed (grammar version mismatch, or a parse that did not finish).
    #[error("tree-sitter: {0}")]
    Parser(String),
}

/// A minimal text edit: replace `source[start..end]` (byte offsets) with `replacement`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Edit {
    /// First byte replaced.
    pub start: usize,
    /// One past the last byte replaced; equal to `start` for an insertion.
    pub end: usize,
    /// The new text.
    pub replacement: String,
}

fn edit(start: usize, end: usize, replacement: impl Into<String>) -> Edit {
    let replacement = replacement.into();
    Edit {
        start,
        end,
        replacement,
    }
}

/// An edit replacing all of `node`.
fn over(node: Node, replacement: impl Into<String>) -> Edit {
    edit(node.start_byte(), node.end_byte(), replacement)
}

impl Edit {
    /// The source with this edit applied; offsets out of range are clamped, never a panic.
    pub fn apply(&self, source: &str) -> String {
        apply_edits(source, std::slice::from_ref(self))
    }
}

/// Applies several non-overlapping edits given in any order. An edit overlapping one that
/// starts before it is skipped; insertions at the same offset keep their given order.
pub fn apply_edits(source: &str, edits: &[Edit]) -> String {
    let mut sorted: Vec<&Edit> = edits.iter().collect();
    sorted.sort_by_key(|e| (e.start, e.end));
    let mut out = String::with_capacity(source.len());
    let mut cursor = 0;
    for e in sorted {
        let end = floor_boundary(source, e.end);
        let start = floor_boundary(source, e.start.min(end));
        if start >= cursor {
            out.push_str(&source[cursor..start]);
            out.push_str(&e.replacement);
            cursor = end;
        }
    }
    out.push_str(&source[cursor..]);
    out
}

fn floor_boundary(s: &str, i: usize) -> usize {
    (0..=i.min(s.len()))
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0)
}

/// Declares [`Operator`] with its list and names from one table, so they cannot drift apart.
macro_rules! operators {
    ($($(#[doc = $doc:literal])+ $variant:ident = $name:literal,)+) => {
        /// A kind of mutation; see [`mutations`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[derive(serde::Serialize, serde::Deserialize, clap::ValueEnum)]
        #[serde(rename_all = "snake_case")]
        #[value(rename_all = "snake_case")]
        pub enum Operator {
            $($(#[doc = $doc])+ $variant,)+
        }

        impl Operator {
            /// Every operator, in declaration order.
            pub const ALL: &'static [Operator] = &[$(Operator::$variant),+];

            /// The snake_case name, as serde and the command line spell it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Operator::$variant => $name,)+
                }
            }
        }
    };
}

operators! {
    /// Negates a comparison: `==`/`!=`, `<` to `>=`, `<=` to `>`, `>` to `<=`, `>=` to `<`.
    ComparisonSwap = "comparison_swap",
    /// Moves a boundary: `<`/`<=`, `>`/`>=`.
    BoundaryShift = "boundary_shift",
    /// `+`/`-`, `*`/`/`, `//` to `/`, `%` to `//`, and the same in augmented assignments.
    ArithmeticSwap = "arithmetic_swap",
    /// `and`/`or`.
    BooleanSwap = "boolean_swap",
    /// `not` added to an `if`/`elif`/`while`/conditional-expression test, or `not x` to `x`.
    NegateCondition = "negate_condition",
    /// `is`/`is not`, `in`/`not in`.
    MembershipSwap = "membership_swap",
    /// Integer `0` to `1`, `1` to `0`, `n` to `n + 1`; `True`/`False`.
    ConstantChange = "constant_change",
    /// `return x` to `return None`.
    ReturnValue = "return_value",
    /// An expression statement or assignment in a function body replaced by `pass`.
    RemoveStatement = "remove_statement",
    /// The first two positional arguments of a call swapped.
    ArgumentSwap = "argument_swap",
    /// The last positional argument of a call dropped.
    ArgumentDrop = "argument_drop",
    /// The stop of `range(...)` or of a slice lowered by one (a start-only slice's start raised).
    OffByOne = "off_by_one",
    /// `break`/`continue`.
    BreakContinueSwap = "break_continue_swap",
    /// The body of an `except` handler in a function replaced by a bare `raise`.
    ExceptionHandling = "exception_handling",
    /// A `raise` statement in a function replaced by `pass`.
    RaiseRemoval = "raise_removal",
    /// A unary minus dropped: `-x` to `x`.
    UnaryMinusDrop = "unary_minus_drop",
}

/// One candidate mutation of a module.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mutation {
    /// What kind of change this is.
    pub operator: Operator,
    /// 1-based line of the edit start.
    pub line: u32,
    /// The change itself.
    pub edit: Edit,
    /// Dotted path of the innermost enclosing function through its enclosing classes and
    /// functions (`"Class.method"`, `"outer.inner"`); `None` at module or class level.
    pub enclosing_function: Option<String>,
}

/// A function or method definition.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FunctionSpan {
    /// Dotted path through enclosing classes and functions, e.g. `"Outer.Inner.method"`.
    pub qualname: String,
    /// The function's own name.
    pub name: String,
    /// The innermost class among its ancestors, if any.
    pub class: Option<String>,
    /// 1-based line of the `def` (decorators excluded).
    pub def_line: u32,
    /// 1-based line where the definition ends.
    pub end_line: u32,
    /// Byte start, decorators included.
    pub start: usize,
    /// Byte end.
    pub end: usize,
    /// Byte start of the body's first statement (the docstring, if any).
    pub body_start: usize,
    /// Byte end of the body's last statement.
    pub body_end: usize,
    /// Whether the body opens with a string literal.
    pub has_docstring: bool,
    /// Statements directly in the body, the docstring not counted.
    pub body_statements: usize,
}

/// Which kind of code a [`Removal`] deletes.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum RemovalKind {
    /// A function's whole body after its docstring, replaced by `pass`.
    FunctionBody,
    /// One compound statement, or a run of 2-5 simple statements, inside a function.
    Hunk,
}

/// A candidate deletion of code inside a function.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Removal {
    /// Function body or hunk.
    pub kind: RemovalKind,
    /// Qualified name of the function the code is removed from.
    pub qualname: String,
    /// 1-based first line of the removed statements.
    pub first_line: u32,
    /// 1-based last line of the removed statements.
    pub last_line: u32,
    /// The change itself.
    pub edit: Edit,
}

/// A test to delete from a test file: a module-level function (`class_name: None`) or a
/// method of a class, the class named by its own name or its dotted path from the module.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct TestRef {
    /// The class holding the method, or `None` for a module-level test function.
    pub class_name: Option<String>,
    /// The function's name, without any parametrization suffix.
    pub name: String,
}

impl std::fmt::Display for TestRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.class_name {
            Some(c) => write!(f, "{c}::{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// The source's tokens (the parse tree's leaves: names, keywords, operators, literals), by
/// 0-based line of their start. Tolerates syntax errors: the parse recovers around them.
pub fn line_tokens(source: &str) -> Result<Vec<Vec<String>>, PyEditError> {
    static MEMO: LazyLock<Memo<Vec<Vec<String>>>> = LazyLock::new(Memo::default);
    MEMO.get(source, find_line_tokens)
}

fn find_line_tokens(source: &str) -> Result<Vec<Vec<String>>, PyEditError> {
    let mut parser = new_parser()?;
    let Some(tree) = parser.parse(source, None) else {
        return Err(PyEditError::Parser("the parse did not finish".into()));
    };
    let mut lines: Vec<Vec<String>> = vec![Vec::new(); source.lines().count() + 1];
    let mut stack = vec![tree.root_node()];
    while let Some(node) = stack.pop() {
        if node.child_count() == 0 || node.kind() == "string" {
            let text = text(source, node).trim();
            let row = node.start_position().row;
            if !text.is_empty() && node.kind() != "comment" && row < lines.len() {
                // A literal string is one token, cut so that long ones stay one token.
                let token: String = text.chars().take(24).collect();
                lines[row].push(token);
            }
            continue;
        }
        let mut cursor = node.walk();
        let children: Vec<Node> = node.children(&mut cursor).collect();
        stack.extend(children.into_iter().rev());
    }
    Ok(lines)
}

/// Analyses of the sources seen most recently, by their whole text. Agents list candidates in
/// the same files at every decision (most files of a repository are untouched by a bug, and a
/// bug's attempts revisit the same states), and one analysis re-parses the file once per
/// candidate edit, so without this the parser dominates a rollout. Two generations of at most
/// `MEMO_SOURCES` entries: a source used in either survives the next turnover.
struct Memo<T> {
    generations: Mutex<[Generation<T>; 2]>,
}

type Generation<T> = HashMap<String, Arc<Result<T, PyEditError>>>;

const MEMO_SOURCES: usize = 512;

impl<T> Default for Memo<T> {
    fn default() -> Self {
        Memo {
            generations: Mutex::new([HashMap::new(), HashMap::new()]),
        }
    }
}

impl<T: Clone> Memo<T> {
    /// `analyse(source)`, from memory when `source` was seen recently. The analysis runs
    /// outside the lock, so concurrent workers never wait on each other's parses.
    fn get(
        &self,
        source: &str,
        analyse: fn(&str) -> Result<T, PyEditError>,
    ) -> Result<T, PyEditError> {
        let known = {
            let mut generations = self.lock();
            let [current, previous] = &mut *generations;
            match current.get(source) {
                Some(hit) => Some(Arc::clone(hit)),
                None => previous.remove(source).inspect(|hit| {
                    current.insert(source.to_owned(), Arc::clone(hit));
                }),
            }
        };
        let result = known.unwrap_or_else(|| {
            let fresh = Arc::new(analyse(source));
            let mut generations = self.lock();
            if generations[0].len() >= MEMO_SOURCES {
                generations.swap(0, 1);
                generations[0].clear();
            }
            generations[0].insert(source.to_owned(), Arc::clone(&fresh));
            fresh
        });
        (*result).clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, [Generation<T>; 2]> {
        // A panic elsewhere cannot leave a half-written entry: recover the maps as they are.
        self.generations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// True when the source parses with no ERROR or MISSING nodes.
pub fn parses_cleanly(source: &str) -> bool {
    let tree = new_parser().ok().and_then(|mut p| p.parse(source, None));
    tree.is_some_and(|t| !t.root_node().has_error())
}

fn new_parser() -> Result<Parser, PyEditError> {
    let mut p = Parser::new();
    p.set_language(&tree_sitter_python::LANGUAGE.into())
        .map_err(|e| PyEditError::Parser(e.to_string()))?;
    Ok(p)
}

fn parse(source: &str) -> Result<(Parser, Tree), PyEditError> {
    let mut parser = new_parser()?;
    let Some(tree) = parser.parse(source, None) else {
        return Err(PyEditError::Parser("the parse did not finish".into()));
    };
    let mut node = tree.root_node();
    if !node.has_error() {
        return Ok((parser, tree));
    }
    // Descend along the first erroneous children to the first ERROR or MISSING node.
    while !(node.is_error() || node.is_missing()) {
        let mut cursor = node.walk();
        let Some(next) = node.children(&mut cursor).find(|c| c.has_error()) else {
            break;
        };
        node = next;
    }
    Err(PyEditError::Syntax {
        line: row(node.start_position()),
    })
}

fn row(p: Point) -> u32 {
    u32::try_from(p.row + 1).unwrap_or(u32::MAX)
}

fn line_starts(src: &str) -> Vec<usize> {
    let newlines = src.match_indices('\n').map(|(i, _)| i + 1);
    std::iter::once(0).chain(newlines).collect()
}

/// Re-parses edited sources incrementally: a file has hundreds of candidates, and a full
/// parse for each would dominate the cost of enumerating them.
struct Reparser<'a> {
    parser: Parser,
    tree: &'a Tree,
    source: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> Reparser<'a> {
    fn new(parser: Parser, tree: &'a Tree, source: &'a str) -> Self {
        let line_starts = line_starts(source);
        Reparser {
            parser,
            tree,
            source,
            line_starts,
        }
    }

    fn line(&self, byte: usize) -> u32 {
        u32::try_from(self.line_starts.partition_point(|&s| s <= byte)).unwrap_or(u32::MAX)
    }

    fn point(&self, byte: usize) -> Point {
        let row = self
            .line_starts
            .partition_point(|&s| s <= byte)
            .saturating_sub(1);
        Point::new(row, byte - self.line_starts.get(row).copied().unwrap_or(0))
    }

    fn clean(&mut self, e: &Edit) -> bool {
        if e.start > e.end || self.source.get(e.start..e.end).is_none() {
            return false;
        }
        let new = e.apply(self.source);
        let (start_position, rep) = (self.point(e.start), e.replacement.as_str());
        let new_end_position = match rep.rfind('\n') {
            Some(i) => Point::new(
                start_position.row + rep.matches('\n').count(),
                rep.len() - i - 1,
            ),
            None => Point::new(start_position.row, start_position.column + rep.len()),
        };
        let mut tree = self.tree.clone();
        tree.edit(&InputEdit {
            start_byte: e.start,
            old_end_byte: e.end,
            new_end_byte: e.start + rep.len(),
            start_position,
            old_end_position: self.point(e.end),
            new_end_position,
        });
        let reparsed = self.parser.parse(&new, Some(&tree));
        reparsed.is_some_and(|t| !t.root_node().has_error())
    }
}

fn text<'s>(src: &'s str, n: Node) -> &'s str {
    src.get(n.byte_range()).unwrap_or("")
}

/// Named children other than comments: a block's statements, a call's arguments.
fn items(node: Node) -> Vec<Node> {
    let mut cursor = node.walk();
    let named = node.named_children(&mut cursor);
    named.filter(|c| c.kind() != "comment").collect()
}

fn is_docstring(stmt: Node) -> bool {
    let only = |s: &Node| matches!(s.kind(), "string" | "concatenated_string");
    stmt.kind() == "expression_statement" && matches!(items(stmt).as_slice(), [s] if only(s))
}

/// The scope code belongs to, as [`walk`] tracks it.
#[derive(Clone, Default)]
struct Scope {
    qualname: String,
    /// Innermost enclosing class.
    class: Option<String>,
    /// Innermost enclosing function: qualname and node id.
    function: Option<(String, usize)>,
    /// Whether the innermost scope is a function (not a class body or the module).
    is_function: bool,
}

impl Scope {
    fn qualify(&self, name: &str) -> String {
        match self.qualname.as_str() {
            "" => name.to_owned(),
            outer => format!("{outer}.{name}"),
        }
    }

    fn enter(&self, def: Node, name: &str) -> Scope {
        let qualname = self.qualify(name);
        let (class, function, is_function) = match def.kind() {
            "function_definition" => (self.class.clone(), Some((qualname.clone(), def.id())), true),
            _ => (Some(name.to_owned()), self.function.clone(), false),
        };
        Scope {
            qualname,
            class,
            function,
            is_function,
        }
    }
}

/// The name of a function or class definition.
fn def_name<'s>(node: Node, src: &'s str) -> Option<&'s str> {
    let is_def = matches!(node.kind(), "function_definition" | "class_definition");
    node.child_by_field_name("name")
        .filter(|_| is_def)
        .map(|n| text(src, n))
}

/// Pre-order traversal with an explicit stack, so deeply nested expressions cannot overflow
/// the call stack. `visit` returns whether to descend; definitions' bodies get their own scope
/// (decorators, defaults and annotations belong to the enclosing one).
fn walk<'t>(root: Node<'t>, src: &str, mut visit: impl FnMut(Node<'t>, &Scope) -> bool) {
    let mut scopes = vec![Scope::default()];
    let mut stack = vec![(root, 0)];
    while let Some((node, s)) = stack.pop() {
        if !visit(node, &scopes[s]) {
            continue;
        }
        let body = node.child_by_field_name("body").map(|b| b.id());
        let mut inner = s;
        if let (Some(name), Some(_)) = (def_name(node, src), body) {
            scopes.push(scopes[s].enter(node, name));
            inner = scopes.len() - 1;
        }
        let mut cursor = node.walk();
        let children: Vec<Node<'t>> = node.children(&mut cursor).collect();
        for c in children.into_iter().rev() {
            stack.push((c, if Some(c.id()) == body { inner } else { s }));
        }
    }
}

/// Functions enclosing a nested function's `nonlocal`: deleting one of their statements could
/// delete the binding, a compile-time error that would make the module unimportable.
fn nonlocal_guarded(root: Node) -> HashSet<usize> {
    let mut guarded = HashSet::new();
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        if node.kind() == "nonlocal_statement" {
            let ancestors = std::iter::successors(node.parent(), |p| p.parent());
            let mut defs = ancestors.filter(|p| p.kind() == "function_definition");
            defs.next();
            guarded.extend(defs.map(|d| d.id()));
        }
        let mut cursor = node.walk();
        stack.extend(node.children(&mut cursor));
    }
    guarded
}

/// Subtrees no mutation should touch: literals, comments, annotations, `__main__` blocks.
fn skipped(node: Node, src: &str) -> bool {
    let main_guard =
        |c: Node| text(src, c).contains("__name__") && text(src, c).contains("__main__");
    match node.kind() {
        "string" | "concatenated_string" | "comment" | "type" => true,
        "if_statement" => {
            node.parent().is_some_and(|p| p.kind() == "module")
                && node
                    .child_by_field_name("condition")
                    .is_some_and(main_guard)
        }
        _ => false,
    }
}

/// Every mutation site of the module, each already checked to re-parse without syntax errors,
/// ordered by byte offset, then operator. String literals, comments, type annotations and
/// `if __name__ == "__main__"` blocks are skipped; the statement-level operators
/// (`remove_statement`, `raise_removal`, `exception_handling`) only act inside functions.
pub fn mutations(source: &str) -> Result<Vec<Mutation>, PyEditError> {
    static MEMO: LazyLock<Memo<Vec<Mutation>>> = LazyLock::new(Memo::default);
    MEMO.get(source, find_mutations)
}

fn find_mutations(source: &str) -> Result<Vec<Mutation>, PyEditError> {
    let (parser, tree) = parse(source)?;
    let root = tree.root_node();
    let guarded = nonlocal_guarded(root);
    let mut found: Vec<(Operator, Edit, Option<String>)> = Vec::new();
    walk(root, source, |node, scope| {
        if skipped(node, source) {
            return false;
        }
        let function = scope.function.as_ref().map(|f| f.0.clone());
        sites(node, source, scope, &guarded, &mut |op, e| {
            let padded = edit(e.start, e.end, pad(source, e.start, e.end, e.replacement));
            found.push((op, padded, function.clone()));
        });
        true
    });
    found.sort_by(|(o1, a, _), (o2, b, _)| {
        (a.start, o1, a.end, &a.replacement).cmp(&(b.start, o2, b.end, &b.replacement))
    });
    found.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    let mut reparser = Reparser::new(parser, &tree, source);
    let mut out = Vec::new();
    for (operator, edit, enclosing_function) in found {
        let noop = source.get(edit.start..edit.end) == Some(edit.replacement.as_str());
        if !noop && reparser.clean(&edit) {
            let line = reparser.line(edit.start);
            out.push(Mutation {
                operator,
                line,
                edit,
                enclosing_function,
            });
        }
    }
    Ok(out)
}

/// Keeps a replacement from gluing onto a neighbouring word: `return(x)` must not become
/// `returnNone`, nor `if(x)` become `ifnot (x)`.
fn pad(src: &str, start: usize, end: usize, mut rep: String) -> String {
    let word =
        |c: Option<&u8>| c.is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80);
    let before = word(start.checked_sub(1).and_then(|i| src.as_bytes().get(i)));
    let after = word(src.as_bytes().get(end));
    if rep.is_empty() {
        return if before && after { " ".into() } else { rep };
    }
    if before && word(rep.as_bytes().first()) {
        rep.insert(0, ' ');
    }
    if after && word(rep.as_bytes().last()) {
        rep.push(' ');
    }
    rep
}

// Token replacements: `from:to` pairs separated by commas.
const COMPARISON: &str = "==:!=,!=:==,<:>=,>=:<,>:<=,<=:>";
const BOUNDARY: &str = "<:<=,<=:<,>:>=,>=:>";
const MEMBERSHIP: &str = "is:is not,is not:is,in:not in,not in:in";
const ARITHMETIC: &str = "+:-,-:+,*:/,/:*,//:/,%://,+=:-=,-=:+=,*=:/=,/=:*=,//=:/=,%=://=";
const BOOLEAN: &str = "and:or,or:and";
const JUMP: &str = "break:continue,continue:break";

fn lookup(table: &'static str, token: &str) -> Option<&'static str> {
    let pairs = table.split(',').filter_map(|p| p.split_once(':'));
    pairs
        .into_iter()
        .find(|(from, _)| *from == token)
        .map(|(_, to)| to)
}

/// Expressions that `x - 1` would re-associate unless parenthesised.
fn binds_loosely(n: Node, src: &str) -> bool {
    let arithmetic = |o: Node| {
        matches!(
            text(src, o),
            "+" | "-" | "*" | "/" | "//" | "%" | "@" | "**"
        )
    };
    match n.kind() {
        "boolean_operator"
        | "not_operator"
        | "comparison_operator"
        | "conditional_expression"
        | "lambda"
        | "named_expression" => true,
        "binary_operator" => n
            .child_by_field_name("operator")
            .is_some_and(|o| !arithmetic(o)),
        _ => false,
    }
}

/// The value of a plain decimal integer literal.
fn plain_int(src: &str, n: Node) -> Option<u64> {
    let t = text(src, n);
    let digits = !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit());
    let plain = n.kind() == "integer" && digits && (t.len() == 1 || !t.starts_with('0'));
    plain.then(|| t.parse().ok()).flatten()
}

/// The off-by-one edit of `x`: `x - 1` (`x + 1` when `up`), folded into integer literals and
/// into an existing `n + 1` / `n - 1`.
fn shifted(src: &str, x: Node, up: bool) -> Option<Edit> {
    let (start, end) = (x.start_byte(), x.end_byte());
    if let Some(n) = plain_int(src, x) {
        let m = if up {
            n.checked_add(1)?
        } else {
            n.checked_sub(1)?
        };
        return Some(edit(start, end, m.to_string()));
    }
    let undo = if up { "-" } else { "+" };
    let field = |f| x.child_by_field_name(f);
    if let (Some(left), Some(op), Some(right)) = (field("left"), field("operator"), field("right"))
    {
        if x.kind() == "binary_operator"
            && plain_int(src, right) == Some(1)
            && text(src, op) == undo
        {
            return Some(edit(left.end_byte(), end, ""));
        }
    }
    let sign = if up { '+' } else { '-' };
    Some(match binds_loosely(x, src) {
        true => edit(start, end, format!("({}) {sign} 1", text(src, x))),
        false => edit(end, end, format!(" {sign} 1")),
    })
}

type Emit<'a> = &'a mut dyn FnMut(Operator, Edit);

fn negate(src: &str, cond: Node, emit: Emit) {
    let start = cond.start_byte();
    match cond.kind() {
        // Dropping the `not` is the negation already offered for these.
        "not_operator" => {}
        // `not` binds tighter than these and looser than everything else.
        "boolean_operator" | "conditional_expression" | "lambda" | "named_expression" => emit(
            Operator::NegateCondition,
            over(cond, format!("not ({})", text(src, cond))),
        ),
        _ => emit(Operator::NegateCondition, edit(start, start, "not ")),
    }
}

/// Emits the mutation sites rooted at `node` itself (not at its descendants).
fn sites(node: Node, src: &str, scope: &Scope, guarded: &HashSet<usize>, emit: Emit) {
    use Operator::*;
    let start = node.start_byte();
    let statement = scope.is_function && node.parent().is_some_and(|p| p.kind() == "block");
    let mut token = |op, table, tok: Node| {
        if let Some(to) = lookup(table, tok.kind()) {
            emit(op, over(tok, to));
        }
    };
    let field = |f| node.child_by_field_name(f);
    match node.kind() {
        "comparison_operator" => {
            let mut cursor = node.walk();
            for tok in node.children_by_field_name("operators", &mut cursor) {
                token(ComparisonSwap, COMPARISON, tok);
                token(BoundaryShift, BOUNDARY, tok);
                token(MembershipSwap, MEMBERSHIP, tok);
            }
        }
        "boolean_operator" => field("operator")
            .into_iter()
            .for_each(|t| token(BooleanSwap, BOOLEAN, t)),
        "break_statement" | "continue_statement" => node
            .child(0)
            .into_iter()
            .for_each(|t| token(BreakContinueSwap, JUMP, t)),
        // `"a" - b` or `[x] / 2` is an immediate TypeError, not a plausible bug.
        "binary_operator" | "augmented_assignment"
            if !is_literal(field("left")) && !is_literal(field("right")) =>
        {
            field("operator")
                .into_iter()
                .for_each(|t| token(ArithmeticSwap, ARITHMETIC, t))
        }
        "not_operator" => field("argument")
            .into_iter()
            .for_each(|arg| emit(NegateCondition, edit(start, arg.start_byte(), ""))),
        "if_statement" | "elif_clause" | "while_statement" => field("condition")
            .into_iter()
            .for_each(|c| negate(src, c, emit)),
        "conditional_expression" => items(node)
            .get(1)
            .into_iter()
            .for_each(|c| negate(src, *c, emit)),
        "unary_operator" => {
            if let (Some(op), Some(arg)) = (field("operator"), field("argument")) {
                if op.kind() == "-" && plain_int(src, arg) != Some(0) {
                    emit(UnaryMinusDrop, edit(start, arg.start_byte(), ""));
                }
            }
        }
        "integer" => {
            let changed =
                plain_int(src, node).and_then(|n| if n == 1 { Some(0) } else { n.checked_add(1) });
            changed
                .into_iter()
                .for_each(|m| emit(ConstantChange, over(node, m.to_string())))
        }
        "true" => emit(ConstantChange, over(node, "False")),
        "false" => emit(ConstantChange, over(node, "True")),
        "return_statement" => items(node)
            .first()
            .filter(|v| v.kind() != "none")
            .into_iter()
            .for_each(|value| emit(ReturnValue, over(*value, "None"))),
        "expression_statement" if statement && removable(node, scope, guarded) => {
            emit(RemoveStatement, over(node, "pass"))
        }
        "raise_statement" if statement => emit(RaiseRemoval, over(node, "pass")),
        "except_clause" if scope.is_function => except_sites(node, src, emit),
        "call" => call_sites(node, src, emit),
        "slice" => slice_sites(node, src, emit),
        _ => {}
    }
}

/// An expression statement whose removal is a plausible bug: in a function whose statements
/// may go (not one enclosing a nested `nonlocal`, see [`nonlocal_guarded`]), and neither a
/// docstring nor `...`.
fn removable(node: Node, scope: &Scope, guarded: &HashSet<usize>) -> bool {
    let unguarded = scope
        .function
        .as_ref()
        .is_some_and(|f| !guarded.contains(&f.1));
    let ellipsis = items(node).iter().all(|c| c.kind() == "ellipsis");
    unguarded && !is_docstring(node) && !ellipsis
}

/// A string, list, tuple or dictionary literal, or a comprehension.
fn is_literal(node: Option<Node>) -> bool {
    let kinds = [
        "string",
        "concatenated_string",
        "list",
        "tuple",
        "dictionary",
    ];
    node.is_some_and(|n| kinds.contains(&n.kind()) || n.kind().ends_with("comprehension"))
}

/// An `except` body that does something else than re-raise, replaced by `raise`.
fn except_sites(node: Node, src: &str, emit: Emit) {
    let block = items(node).into_iter().find(|c| c.kind() == "block");
    let body = block.map(items).unwrap_or_default();
    let reraises = matches!(body.as_slice(), [r] if text(src, *r) == "raise");
    if let (Some(first), Some(last), false) = (body.first(), body.last(), reraises) {
        let raise = edit(first.start_byte(), last.end_byte(), "raise");
        emit(Operator::ExceptionHandling, raise);
    }
}

/// The slice's upper bound (else its lower one) shifted by one.
fn slice_sites(node: Node, src: &str, emit: Emit) {
    // The expressions before the first colon and between the first two.
    let (mut colons, mut lower, mut upper) = (0, None, None);
    let mut cursor = node.walk();
    for c in node.children(&mut cursor).filter(|c| c.kind() != "comment") {
        match (c.kind(), colons) {
            (":", _) => colons += 1,
            (_, 0) => lower = Some(c),
            (_, 1) => upper = Some(c),
            _ => {}
        }
    }
    let target = upper.map(|u| (u, false)).or(lower.map(|l| (l, true)));
    if let Some(e) = target.and_then(|(x, up)| shifted(src, x, up)) {
        emit(Operator::OffByOne, e);
    }
}

fn call_sites(node: Node, src: &str, emit: Emit) {
    let arguments = node.child_by_field_name("arguments");
    let Some(args) = arguments.filter(|a| a.kind() == "argument_list").map(items) else {
        return;
    };
    let function = node
        .child_by_field_name("function")
        .map_or("", |f| text(src, f));
    // Fixed arity and argument kinds: a swapped or dropped argument only ever raises TypeError.
    if matches!(function, "isinstance" | "issubclass" | "hasattr") {
        return;
    }
    let positional = |n: &Node| {
        !matches!(
            n.kind(),
            "keyword_argument" | "list_splat" | "dictionary_splat"
        )
    };
    if let [a, b, ..] = args.as_slice() {
        if positional(a) && positional(b) && text(src, *a) != text(src, *b) {
            let between = src.get(a.end_byte()..b.start_byte()).unwrap_or(", ");
            let swapped = format!("{}{between}{}", text(src, *b), text(src, *a));
            emit(
                Operator::ArgumentSwap,
                edit(a.start_byte(), b.end_byte(), swapped),
            );
        }
    }
    if let Some(i) = args.iter().rposition(positional).filter(|&i| i >= 1) {
        emit(
            Operator::ArgumentDrop,
            edit(args[i - 1].end_byte(), args[i].end_byte(), ""),
        );
    }
    let stop = match args.as_slice() {
        [stop] | [_, stop] | [_, stop, _] if args.iter().all(positional) => Some(stop),
        _ => None,
    };
    if let Some(e) = stop
        .filter(|_| function == "range")
        .and_then(|s| shifted(src, *s, false))
    {
        emit(Operator::OffByOne, e);
    }
}

/// Every function and method definition (nested ones included), in source order.
pub fn functions(source: &str) -> Result<Vec<FunctionSpan>, PyEditError> {
    static MEMO: LazyLock<Memo<Vec<FunctionSpan>>> = LazyLock::new(Memo::default);
    MEMO.get(source, find_functions)
}

fn find_functions(source: &str) -> Result<Vec<FunctionSpan>, PyEditError> {
    let (_, tree) = parse(source)?;
    let mut out = Vec::new();
    walk(tree.root_node(), source, |node, scope| {
        let body = node.child_by_field_name("body");
        let (Some(name), Some(body), "function_definition") =
            (def_name(node, source), body, node.kind())
        else {
            return true;
        };
        let stmts = items(body);
        let has_docstring = stmts.first().is_some_and(|s| is_docstring(*s));
        let outer = node.parent().filter(|p| p.kind() == "decorated_definition");
        out.push(FunctionSpan {
            qualname: scope.qualify(name),
            name: name.to_owned(),
            class: scope.class.clone(),
            def_line: row(node.start_position()),
            end_line: row(node.end_position()),
            start: outer.unwrap_or(node).start_byte(),
            end: node.end_byte(),
            body_start: stmts.first().map_or(body.start_byte(), |s| s.start_byte()),
            body_end: stmts.last().map_or(body.start_byte(), |s| s.end_byte()),
            has_docstring,
            body_statements: stmts.len() - usize::from(has_docstring),
        });
        true
    });
    out.sort_by_key(|f| f.start);
    Ok(out)
}

// Statement kinds a hunk deletes: compound ones alone, simple ones in runs.
const COMPOUND: &str = "if_statement for_statement while_statement try_statement with_statement";
const SIMPLE: &str = "expression_statement return_statement delete_statement raise_statement \
                      assert_statement break_statement continue_statement import_statement \
                      import_from_statement";

fn listed(list: &str, kind: &str) -> bool {
    list.split_whitespace().any(|k| k == kind)
}

/// Removal candidates inside functions: (a) a function's whole body after its docstring
/// replaced by `pass`, for bodies of at least 2 statements or 3 lines; (b) one compound
/// statement (`if`/`for`/`while`/`try`/`with`) or a run of 2-5 consecutive simple statements
/// deleted with their lines, or replaced by `pass` when they were the whole block. Module-level
/// code and class bodies are never touched. Each result re-parses cleanly; ordered by offset.
pub fn removals(source: &str) -> Result<Vec<Removal>, PyEditError> {
    static MEMO: LazyLock<Memo<Vec<Removal>>> = LazyLock::new(Memo::default);
    MEMO.get(source, find_removals)
}

fn find_removals(source: &str) -> Result<Vec<Removal>, PyEditError> {
    let (parser, tree) = parse(source)?;
    let root = tree.root_node();
    let guarded = nonlocal_guarded(root);
    let mut out = Vec::new();
    let mut push = |kind, qualname: &str, first: Node, last: Node, edit| {
        let (first_line, last_line) = (row(first.start_position()), row(last.end_position()));
        let qualname = qualname.to_owned();
        out.push(Removal {
            kind,
            qualname,
            first_line,
            last_line,
            edit,
        });
    };
    walk(root, source, |node, scope| {
        let body = node
            .child_by_field_name("body")
            .filter(|_| node.kind() == "function_definition");
        if let (Some(name), Some(body)) = (def_name(node, source), body) {
            let stmts = items(body);
            let skip = usize::from(stmts.first().is_some_and(|s| is_docstring(*s)));
            if let (Some(first), Some(last)) = (stmts.get(skip), stmts.last()) {
                let lines = last.end_position().row - first.start_position().row + 1;
                if stmts.len() - skip >= 2 || lines >= 3 {
                    let e = edit(first.start_byte(), last.end_byte(), "pass");
                    let qualname = scope.qualify(name);
                    push(RemovalKind::FunctionBody, &qualname, *first, *last, e);
                }
            }
        }
        let Some((qualname, id)) = scope.function.as_ref() else {
            return true;
        };
        if node.kind() != "block" || !scope.is_function || guarded.contains(id) {
            return true;
        }
        let stmts = items(node);
        let in_def = node
            .parent()
            .is_some_and(|p| p.kind() == "function_definition");
        let skip = usize::from(in_def && stmts.first().is_some_and(|s| is_docstring(*s)));
        let body = stmts.get(skip..).unwrap_or_default();
        let mut hunk = |i: usize, j: usize| {
            let (first, last) = (body[i], body[j]);
            let e = if i == 0 && j + 1 == body.len() && skip == 0 {
                Some(edit(first.start_byte(), last.end_byte(), "pass"))
            } else {
                whole_lines(source, first.start_byte(), last.end_byte())
                    .map(|(s, e)| edit(s, e, ""))
            };
            if let Some(e) = e {
                push(RemovalKind::Hunk, qualname, first, last, e);
            }
        };
        let simple = |n: &Node| listed(SIMPLE, n.kind()) && !is_docstring(*n);
        for (i, stmt) in body.iter().enumerate() {
            if listed(COMPOUND, stmt.kind()) {
                hunk(i, i);
            }
            let run = body[i..].iter().take(5).take_while(|s| simple(s)).count();
            (i + 1..i + run).for_each(|j| hunk(i, j));
        }
        true
    });
    out.sort_by_key(|r| (r.edit.start, r.edit.end, r.kind));
    out.dedup_by(|a, b| a.edit == b.edit);
    let mut reparser = Reparser::new(parser, &tree, source);
    out.retain(|r| reparser.clean(&r.edit));
    Ok(out)
}

fn line_start(src: &str, byte: usize) -> usize {
    src.get(..byte)
        .and_then(|s| s.rfind('\n'))
        .map_or(0, |p| p + 1)
}

fn next_line_start(src: &str, byte: usize) -> usize {
    src.get(byte..)
        .and_then(|s| s.find('\n'))
        .map_or(src.len(), |p| byte + p + 1)
}

/// Widens `start..end` to whole lines when only indentation precedes it and only whitespace or
/// a comment follows it on its lines; `None` when it shares a line with other code.
fn whole_lines(src: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let (ls, le) = (line_start(src, start), next_line_start(src, end));
    let after = src.get(end..le)?.trim();
    let alone =
        src.get(ls..start)?.trim().is_empty() && (after.is_empty() || after.starts_with('#'));
    alone.then_some((ls, le))
}

fn is_blank_line(src: &str, ls: usize) -> bool {
    src.get(ls..next_line_start(src, ls))
        .is_some_and(|l| l.trim().is_empty())
}

/// Deletes the given test functions (with their decorators, the comment lines directly above
/// them and the blank lines that belonged to them) and returns the new source. A class left
/// with nothing but a docstring or `pass` is deleted whole, with its decorators. Tests are
/// looked for at module level and in classes at any depth outside functions; a test missing
/// from the file is `TestNotFound`. Nothing is commented out; a result that does not parse
/// cleanly is `Syntax`.
pub fn remove_tests(source: &str, tests: &[TestRef]) -> Result<String, PyEditError> {
    let (_, tree) = parse(source)?;
    let mut wanted: Vec<(&TestRef, bool)> = tests.iter().map(|t| (t, false)).collect();
    let mut doomed = Vec::new();
    plan_block(tree.root_node(), source, &[], &mut wanted, &mut doomed);
    if let Some((t, _)) = wanted.iter().find(|(_, found)| !found) {
        return Err(PyEditError::TestNotFound(t.to_string()));
    }
    let mut spans: Vec<(usize, usize)> = doomed
        .into_iter()
        .map(|(n, prev)| deletion_span(source, n, prev))
        .collect();
    spans.sort_unstable();
    let mut out = String::with_capacity(source.len());
    let mut cursor = 0;
    for (start, end) in spans.into_iter().filter(|&(_, end)| end > 0) {
        out.push_str(source.get(cursor..start.max(cursor)).unwrap_or(""));
        cursor = cursor.max(end);
    }
    out.push_str(source.get(cursor..).unwrap_or(""));
    parse(&out)?;
    Ok(out)
}

/// Collects the statements of `block` to delete, each with whether a statement precedes it in
/// the block, and returns whether the block is a class body left with nothing that matters.
fn plan_block<'t>(
    block: Node<'t>,
    src: &str,
    path: &[&str],
    wanted: &mut [(&TestRef, bool)],
    doomed: &mut Vec<(Node<'t>, bool)>,
) -> bool {
    let (mut emptied, mut any) = (true, false);
    for (i, stmt) in items(block).into_iter().enumerate() {
        let definition = stmt.child_by_field_name("definition");
        let def = definition
            .filter(|_| stmt.kind() == "decorated_definition")
            .unwrap_or(stmt);
        let name = def_name(def, src).unwrap_or("");
        let body = def.child_by_field_name("body");
        let gone = match (def.kind(), body) {
            ("function_definition", _) => {
                let mut hit = false;
                for (t, found) in wanted.iter_mut() {
                    let class = match (&t.class_name, path.last()) {
                        (None, None) => true,
                        (Some(c), Some(last)) => c == last || *c == path.join("."),
                        _ => false,
                    };
                    if class && t.name == name {
                        (*found, hit) = (true, true);
                    }
                }
                hit
            }
            // Python refuses nesting this deep anyway; the cap only bounds the recursion.
            ("class_definition", Some(body)) if path.len() < 64 => {
                let inner: Vec<&str> = path.iter().copied().chain([name]).collect();
                let mark = doomed.len();
                let all = plan_block(body, src, &inner, wanted, doomed);
                if all {
                    doomed.truncate(mark);
                }
                all
            }
            _ => false,
        };
        if gone {
            doomed.push((stmt, i > 0));
            any = true;
        } else if !(is_docstring(stmt) || stmt.kind() == "pass_statement") {
            emptied = false;
        }
    }
    emptied && any && block.kind() == "block"
}

/// The bytes to delete for a doomed statement: its whole lines, the comment lines directly
/// above it at its indentation, and the blank lines before it (after it, when it opens its
/// block, so that a class body never starts with a blank line).
fn deletion_span(src: &str, node: Node, has_prev: bool) -> (usize, usize) {
    let Some((mut start, mut end)) = whole_lines(src, node.start_byte(), node.end_byte()) else {
        return (node.start_byte(), node.end_byte());
    };
    let indent = src.get(start..node.start_byte()).unwrap_or("");
    while start > 0 {
        let above = line_start(src, start - 1);
        let line = src.get(above..start).unwrap_or("");
        if !line
            .strip_prefix(indent)
            .is_some_and(|l| l.starts_with('#'))
        {
            break;
        }
        start = above;
    }
    if has_prev {
        while start > 0 && is_blank_line(src, line_start(src, start - 1)) {
            start = line_start(src, start - 1);
        }
    } else {
        while end < src.len() && is_blank_line(src, end) {
            end = next_line_start(src, end);
        }
    }
    (start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memo_answers_recent_sources_from_memory_and_forgets_old_ones() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static CALLS: AtomicUsize = AtomicUsize::new(0);
        fn length(source: &str) -> Result<usize, PyEditError> {
            CALLS.fetch_add(1, Ordering::SeqCst);
            Ok(source.len())
        }
        let memo = Memo::default();
        assert_eq!(memo.get("abc", length), Ok(3));
        assert_eq!(memo.get("abc", length), Ok(3));
        assert_eq!(CALLS.load(Ordering::SeqCst), 1);
        for i in 0..MEMO_SOURCES {
            memo.get(&format!("filler {i}"), length).unwrap();
        }
        // One turnover later "abc" is in the previous generation: still known, and kept.
        assert_eq!(memo.get("abc", length), Ok(3));
        assert_eq!(CALLS.load(Ordering::SeqCst), 1 + MEMO_SOURCES);
        for i in 0..2 * MEMO_SOURCES {
            memo.get(&format!("other {i}"), length).unwrap();
        }
        assert_eq!(memo.get("abc", length), Ok(3));
        assert_eq!(CALLS.load(Ordering::SeqCst), 2 + 3 * MEMO_SOURCES);
    }

    #[test]
    fn remembered_analyses_equal_fresh_ones_errors_included() {
        let good = "def f(a, b):\n    if a < b:\n        return a + 1\n    return b\n";
        let bad = "def f(a:\n    return\n";
        for source in [good, bad] {
            for _ in 0..2 {
                assert_eq!(mutations(source), find_mutations(source));
                assert_eq!(removals(source), find_removals(source));
                assert_eq!(functions(source), find_functions(source));
                assert_eq!(line_tokens(source), find_line_tokens(source));
            }
        }
        assert!(mutations(bad).is_err());
    }

    /// The results of `op` on `def f(a, b):` with `body`, as the mutated bodies.
    fn mutated(body: &str, op: Operator) -> Vec<String> {
        let src = format!("def f(a, b):\n    {body}\n");
        let all = mutations(&src)
            .unwrap()
            .into_iter()
            .filter(|m| m.operator == op);
        let header = "def f(a, b):\n    ".len();
        all.map(|m| m.edit.apply(&src)[header..].trim_end().to_owned())
            .collect()
    }

    /// One test per operator: a function body and every mutated body expected, in order.
    macro_rules! operator_tests {
        ($($name:ident: $op:ident, $body:literal => [$($out:literal),*];)+) => {$(
            #[test]
            fn $name() {
                let expected: &[&str] = &[$($out),*];
                assert_eq!(mutated($body, Operator::$op), expected);
            }
        )+};
    }

    operator_tests! {
        comparison_swap: ComparisonSwap, "return a < b == 1" => ["return a >= b == 1", "return a < b != 1"];
        boundary_shift: BoundaryShift, "return a >= b" => ["return a > b"];
        arithmetic_swap: ArithmeticSwap, "a += b % 2 * 3" => ["a -= b % 2 * 3", "a += b // 2 * 3", "a += b % 2 / 3"];
        arithmetic_skips_strings: ArithmeticSwap, "return 'x' + a" => [];
        boolean_swap: BooleanSwap, "return a and b" => ["return a or b"];
        negate_condition: NegateCondition, "if(a): b = not a" => ["if not (a): b = not a", "if(a): b = a"];
        negate_loose_condition: NegateCondition, "while a and b: a = 1 if a.x else 2" =>
            ["while not (a and b): a = 1 if a.x else 2", "while a and b: a = 1 if not a.x else 2"];
        membership_swap: MembershipSwap, "return a is not None or a in b" =>
            ["return a is None or a in b", "return a is not None or a not in b"];
        constant_change: ConstantChange, "return [0, 1, 41, True, 0x10, 'a1']" => [
            "return [1, 1, 41, True, 0x10, 'a1']", "return [0, 0, 41, True, 0x10, 'a1']",
            "return [0, 1, 42, True, 0x10, 'a1']", "return [0, 1, 41, False, 0x10, 'a1']"];
        return_value: ReturnValue, "return(a)" => ["return None"];
        return_none_is_kept: ReturnValue, "return None" => [];
        remove_statement: RemoveStatement, "\"\"\"Doc.\"\"\"\n    a.x = 3; print(a)" =>
            ["\"\"\"Doc.\"\"\"\n    pass; print(a)", "\"\"\"Doc.\"\"\"\n    a.x = 3; pass"];
        argument_swap: ArgumentSwap, "return g(a, b, k=1) + g(a, a)" => ["return g(b, a, k=1) + g(a, a)"];
        argument_drop: ArgumentDrop, "return g(a, b, k=1) + g(a, k=1)" => ["return g(a, k=1) + g(a, k=1)"];
        off_by_one_range: OffByOne, "return range(len(a)), range(0, a + 1, 2)" =>
            ["return range(len(a) - 1), range(0, a + 1, 2)", "return range(len(a)), range(0, a, 2)"];
        off_by_one_slice: OffByOne, "return a[1:b or 3], a[b:]" =>
            ["return a[1:(b or 3) - 1], a[b:]", "return a[1:b or 3], a[b + 1:]"];
        break_continue_swap: BreakContinueSwap, "for x in a: break" => ["for x in a: continue"];
        exception_handling: ExceptionHandling, "try: a()\n    except E:\n        # why\n        b()" =>
            ["try: a()\n    except E:\n        # why\n        raise"];
        raise_removal: RaiseRemoval, "raise ValueError(a)" => ["pass"];
        unary_minus_drop: UnaryMinusDrop, "return -a, -0" => ["return a, -0"];
    }

    #[test]
    fn skips_strings_annotations_main_and_module_level_statements() {
        let src = "def f(a: int = 1) -> bool:\n    \"\"\"a < 1\"\"\"\n    return f\"{a + 1}\"\n\n\
                   try:\n    import x\nexcept ImportError:\n    x = None\n\n\
                   if __name__ == \"__main__\":\n    f(1 + 2)\n";
        let m = mutations(src).unwrap();
        let found: Vec<_> = m
            .iter()
            .map(|m| (m.operator, m.line, m.enclosing_function.clone()))
            .collect();
        let f = Some("f".to_owned());
        assert_eq!(
            found,
            [
                (Operator::ConstantChange, 1, None),
                (Operator::ReturnValue, 3, f)
            ]
        );
        assert!(m[0].edit.apply(src).starts_with("def f(a: int = 0)"));
        assert_eq!(mutations("def f(:\n"), Err(PyEditError::Syntax { line: 1 }));
    }

    #[test]
    fn line_tokens_are_leaves_by_line() {
        let src =
            "def f(a, b):\n    # note\n    return a <= b + 1  # why\n\nx = 'long string here'\n";
        let lines = line_tokens(src).unwrap();
        assert_eq!(lines[0], ["def", "f", "(", "a", ",", "b", ")", ":"]);
        assert!(lines[1].is_empty(), "comments are not tokens");
        assert_eq!(lines[2], ["return", "a", "<=", "b", "+", "1"]);
        assert_eq!(lines[4], ["x", "=", "'long string here'"]);
        assert!(line_tokens("def broken(:\n").is_ok());
    }

    #[test]
    fn function_spans() {
        let src = "class A:\n    class B:\n        @staticmethod\n        def m():\n            \"\"\"Doc.\"\"\"\n\
                   \x20           def inner():\n                pass\n            return inner\n\ndef top(): pass\n";
        let f = functions(src).unwrap();
        let names: Vec<_> = f
            .iter()
            .map(|f| format!("{} {:?}", f.qualname, f.class))
            .collect();
        assert_eq!(
            names,
            ["A.B.m Some(\"B\")", "A.B.m.inner Some(\"B\")", "top None"]
        );
        let m = &f[0];
        assert_eq!(
            [m.def_line, m.end_line, m.body_statements as u32],
            [4, 8, 2]
        );
        assert!(m.has_docstring && src[m.start..].starts_with("@staticmethod"));
        assert!(
            src[m.body_start..m.body_end].starts_with("\"\"\"Doc.")
                && src[..m.body_end].ends_with("inner")
        );
        let m = mutations("class A:\n    def m(self):\n        return 1\n").unwrap();
        assert_eq!(m[0].enclosing_function.as_deref(), Some("A.m"));
    }

    #[test]
    fn removals_keep_docstrings_and_indent_pass() {
        let src =
            "X = 1\n\nclass C:\n    def m(self, a):\n        \"\"\"Doc.\"\"\"\n        a += 1\n\
                   \x20       if a:\n            a = 2\n            b = 3\n        return a\n";
        let r = removals(src).unwrap();
        assert!(r
            .iter()
            .all(|r| r.qualname == "C.m" && r.edit.start > src.find("def m").unwrap()));
        let body = r
            .iter()
            .find(|r| r.kind == RemovalKind::FunctionBody)
            .unwrap();
        assert_eq!([body.first_line, body.last_line], [6, 10]);
        let emptied =
            "X = 1\n\nclass C:\n    def m(self, a):\n        \"\"\"Doc.\"\"\"\n        pass\n";
        assert_eq!(body.edit.apply(src), emptied);
        let hunks: Vec<String> = r.iter().map(|r| r.edit.apply(src)).collect();
        let expected = [
            (
                "            a = 2\n            b = 3\n",
                "            pass\n",
            ),
            ("        if a:\n            a = 2\n            b = 3\n", ""),
        ];
        for (cut, put) in expected {
            assert!(hunks.contains(&src.replace(cut, put)), "{cut:?}");
        }
    }

    const TESTS: &str = "import pytest\n\n\ndef test_a():\n    assert 1\n\n\n# about b\n\
        @pytest.mark.parametrize(\"x\", [1, 2])\ndef test_b(x):\n    assert x\n\n\n\
        class TestC:\n    \"\"\"Doc.\"\"\"\n\n    def test_c1(self):\n        assert 1\n\n\
        \x20   def test_c2(self):\n        assert 2\n\n\n@pytest.mark.skip\nclass TestD:\n\
        \x20   def test_d(self):\n        pass\n";

    /// Removes `Class::name` or `name` ids from `TESTS`.
    fn remove(ids: &[&str]) -> Result<String, PyEditError> {
        let refs: Vec<TestRef> = (ids.iter().map(|id| match id.split_once("::") {
            Some((c, n)) => TestRef {
                class_name: Some(c.into()),
                name: n.into(),
            },
            None => TestRef {
                class_name: None,
                name: (*id).into(),
            },
        }))
        .collect();
        remove_tests(TESTS, &refs)
    }

    /// Checks that removing `ids` from `TESTS` cuts out exactly `cut` and nothing else.
    fn assert_cut(ids: &[&str], cut: &str) {
        assert_eq!(TESTS.matches(cut).count(), 1);
        assert_eq!(remove(ids).unwrap(), TESTS.replace(cut, ""));
    }

    #[test]
    fn remove_tests_deletes_functions_methods_and_emptied_classes() {
        assert_cut(&["test_a"], "def test_a():\n    assert 1\n\n\n");
        let b = "\n\n# about b\n@pytest.mark.parametrize(\"x\", [1, 2])\ndef test_b(x):\n    assert x\n";
        assert_cut(&["test_b"], b);
        assert_cut(
            &["TestC::test_c1"],
            "    def test_c1(self):\n        assert 1\n\n",
        );
        let c = "\n\nclass TestC:\n    \"\"\"Doc.\"\"\"\n\n    def test_c1(self):\n        assert 1\n\n\
                 \x20   def test_c2(self):\n        assert 2\n";
        assert_cut(&["TestC::test_c2", "TestC::test_c1"], c);
        let d = "\n\n@pytest.mark.skip\nclass TestD:\n    def test_d(self):\n        pass\n";
        assert_cut(&["TestD::test_d"], d);
    }

    #[test]
    fn remove_missing_test_is_an_error() {
        assert_eq!(
            remove(&["test_c1"]),
            Err(PyEditError::TestNotFound("test_c1".into()))
        );
        let missing = PyEditError::TestNotFound("TestC::nope".into());
        assert_eq!(remove(&["test_a", "TestC::nope"]), Err(missing));
    }

    #[test]
    fn never_panics_on_broken_input() {
        let src = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/corpora/textpatch/textpatch/myers.py"
        ))
        .unwrap();
        let cuts = (0..src.len())
            .step_by(181)
            .filter(|&i| src.is_char_boundary(i));
        let odd = [
            "def f(:\n",
            "\u{0}\u{ff}\n  x",
            ")))",
            "class A:\n\tdef",
            "if x:\r\n  y\r\n",
        ];
        let t = [TestRef {
            class_name: None,
            name: "f".into(),
        }];
        for input in cuts.map(|i| &src[..i]).chain(odd) {
            let _ = (
                mutations(input),
                removals(input),
                functions(input),
                remove_tests(input, &t),
            );
        }
        assert_eq!(edit(9, 3, "é").apply("ab"), "abé");
        let edits = [edit(2, 3, "X"), edit(0, 1, "Y"), edit(1, 3, "Z")];
        assert_eq!(apply_edits("abcd", &edits), "YZd");
    }
}
