//! Where a checkout's code and tests are, found the way `pip install -e .` followed by `pytest`
//! would find them, so that `spar test DIR` and the corpus importer make the same package
//! importable.
//!
//! Import roots come, in this order, from pytest's `pythonpath` setting, from the packaging
//! configuration (setuptools' `package-dir` and `packages.find.where`, hatch's wheel
//! `packages`, poetry's `packages.from`, a `setup.py` with `package_dir={"": ...}`), and from
//! the `src/` convention; the repository root when none applies. Test locations come from
//! pytest's `testpaths` (the entries that exist), else from `tests/`, `test/`, `testing/`,
//! else from the directories holding `test_*.py` files.

use crate::guest::REPO_MOUNT;
use crate::snapshot::{Entry, Snapshot};
use std::collections::BTreeSet;

/// A checkout's import roots and test locations, relative to the repository root.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProjectLayout {
    /// Directories to put on `sys.path` (`"."` is the root), in order.
    pub python_path: Vec<String>,
    /// Test directories or files to hand to the runner.
    pub test_paths: Vec<String>,
}

impl ProjectLayout {
    /// Finds the layout of `repo`.
    pub fn detect(repo: &Snapshot) -> ProjectLayout {
        let config = PytestConfig::find(repo);
        let mut roots: Vec<String> = Vec::new();
        let mut add = |dir: String| {
            if !roots.contains(&dir) {
                roots.push(dir);
            }
        };
        for dir in &config.pythonpath {
            add(dir.clone());
        }
        for dir in packaging_roots(repo) {
            add(dir);
        }
        if src_has_code(repo) {
            add("src".to_owned());
        }
        if roots.is_empty() {
            roots.push(".".to_owned());
        }
        let mut test_paths: Vec<String> = config
            .testpaths
            .into_iter()
            .filter(|p| repo.get(p).is_some())
            .collect();
        if test_paths.is_empty() {
            test_paths = guessed_test_paths(repo);
        }
        ProjectLayout {
            python_path: roots,
            test_paths,
        }
    }

    /// The import roots as guest paths (`/repo`, `/repo/src`), for [`crate::guest::PythonRun`].
    pub fn guest_python_path(&self) -> Vec<String> {
        guest_python_path(&self.python_path)
    }
}

/// The `.dist-info` that `pip install -e .` would write for `repo`, so that
/// `importlib.metadata.version(NAME)` answers in its tests: the sdist's `PKG-INFO`, else the
/// name and static version of `pyproject.toml`'s `[project]`. `None` when neither says both.
pub fn editable_metadata(repo: &Snapshot) -> Option<Snapshot> {
    let text = |path: &str| {
        repo.file(path)
            .map(|c| String::from_utf8_lossy(&c).into_owned())
    };
    let (name, version, metadata) = match text("PKG-INFO") {
        Some(info) => {
            let field = |key: &str| {
                info.lines()
                    .take_while(|l| !l.is_empty())
                    .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
                    .map(|v| v.trim().to_owned())
            };
            (field("Name")?, field("Version")?, info.clone())
        }
        None => {
            let table: toml::Table = toml::from_str(&text("pyproject.toml")?).ok()?;
            let project = table.get("project")?;
            let name = project.get("name")?.as_str()?.to_owned();
            let version = project.get("version")?.as_str()?.to_owned();
            let metadata = format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n");
            (name, version, metadata)
        }
    };
    let dir = format!("{}-{version}.dist-info", name.replace(['-', '.'], "_"));
    Snapshot::from_files([
        (format!("{dir}/METADATA"), metadata.into_bytes()),
        (format!("{dir}/RECORD"), Vec::new()),
    ])
    .ok()
}

/// Repository-relative import roots as guest paths: `"."` is `/repo`, `src` is `/repo/src`.
pub fn guest_python_path(roots: &[String]) -> Vec<String> {
    roots
        .iter()
        .map(|p| match p.trim_end_matches('/') {
            "." | "" => REPO_MOUNT.to_owned(),
            p => format!("{REPO_MOUNT}/{}", p.trim_start_matches("./")),
        })
        .collect()
}

/// A `src/` that holds a package or a module; a `src/` of C sources is not an import root.
fn src_has_code(repo: &Snapshot) -> bool {
    match repo.get("src") {
        Some(Entry::Dir(dir)) => dir.entries().iter().any(|(name, entry)| match entry {
            Entry::Dir(_) => repo.file(&format!("src/{name}/__init__.py")).is_some(),
            Entry::File(_) => name.ends_with(".py"),
        }),
        _ => false,
    }
}

fn guessed_test_paths(repo: &Snapshot) -> Vec<String> {
    let named: Vec<String> = ["tests", "test", "testing"]
        .into_iter()
        .filter(|d| matches!(repo.get(d), Some(Entry::Dir(_))))
        .map(str::to_owned)
        .collect();
    if !named.is_empty() {
        return named;
    }
    let dirs: BTreeSet<String> = repo
        .files()
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| {
            let name = p.rsplit('/').next().unwrap_or(p);
            name.ends_with(".py")
                && (name.starts_with("test_") || name.ends_with("_test.py") || name == "tests.py")
                && !p.starts_with("docs/")
        })
        .map(|p| match p.rsplit_once('/') {
            Some((dir, _)) => dir.to_owned(),
            None => p,
        })
        .collect();
    dirs.into_iter().collect()
}

/// The settings of pytest's configuration file that decide what is importable and collected.
#[derive(Debug, Default, PartialEq, Eq)]
struct PytestConfig {
    pythonpath: Vec<String>,
    testpaths: Vec<String>,
}

impl PytestConfig {
    /// Reads the root's configuration file the way pytest picks it: `pytest.ini` (or
    /// `.pytest.ini`) whatever it holds, else the first of `pyproject.toml`
    /// (`[tool.pytest.ini_options]` or pytest 9's `[tool.pytest]`), `tox.ini` (`[pytest]`) and
    /// `setup.cfg` (`[tool:pytest]`) that has a pytest section.
    fn find(repo: &Snapshot) -> PytestConfig {
        let text = |path: &str| {
            repo.file(path)
                .map(|c| String::from_utf8_lossy(&c).into_owned())
        };
        for name in ["pytest.ini", ".pytest.ini"] {
            if let Some(t) = text(name) {
                return Self::from_ini(&ini_section(&t, "pytest").unwrap_or_default());
            }
        }
        if let Some(config) = text("pyproject.toml").and_then(|t| Self::from_pyproject(&t)) {
            return config;
        }
        for (name, section) in [("tox.ini", "pytest"), ("setup.cfg", "tool:pytest")] {
            if let Some(values) = text(name).and_then(|t| ini_section(&t, section)) {
                return Self::from_ini(&values);
            }
        }
        PytestConfig::default()
    }

    fn from_ini(values: &[(String, String)]) -> PytestConfig {
        let get = |key: &str| {
            values
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| shell_words(v).into_iter().map(clean_path).collect())
                .unwrap_or_default()
        };
        PytestConfig {
            pythonpath: get("pythonpath"),
            testpaths: get("testpaths"),
        }
    }

    fn from_pyproject(text: &str) -> Option<PytestConfig> {
        let table: toml::Table = toml::from_str(text).ok()?;
        let pytest = table.get("tool")?.get("pytest")?;
        let options = pytest.get("ini_options").unwrap_or(pytest);
        let list = |key: &str| -> Vec<String> {
            match options.get(key) {
                Some(toml::Value::String(s)) => {
                    shell_words(s).into_iter().map(clean_path).collect()
                }
                Some(toml::Value::Array(items)) => items
                    .iter()
                    .filter_map(|v| v.as_str())
                    .map(|s| clean_path(s.to_owned()))
                    .collect(),
                _ => Vec::new(),
            }
        };
        Some(PytestConfig {
            pythonpath: list("pythonpath"),
            testpaths: list("testpaths"),
        })
    }
}

/// `./src/` -> `src`; `.` stays.
fn clean_path(path: String) -> String {
    let trimmed = path.trim_start_matches("./").trim_end_matches('/');
    if trimmed.is_empty() {
        ".".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// The `key = value` pairs of `[section]` in an INI file (continuation lines joined), or
/// `None` when the file has no such section.
fn ini_section(text: &str, section: &str) -> Option<Vec<(String, String)>> {
    let mut values: Vec<(String, String)> = Vec::new();
    let mut inside = false;
    let mut found = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            inside = name.trim() == section;
            found |= inside;
            continue;
        }
        if !inside || trimmed.is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            // A continuation line: kept as its own line, as configparser does.
            if let Some((_, value)) = values.last_mut() {
                value.push('\n');
                value.push_str(trimmed);
            }
        } else if let Some(at) = trimmed.find(['=', ':']) {
            let (key, value) = trimmed.split_at(at);
            values.push((key.trim().to_owned(), value[1..].trim().to_owned()));
        }
    }
    found.then_some(values)
}

/// Splits like `shlex.split`, which pytest applies to INI path lists: whitespace separates,
/// quotes group.
fn shell_words(value: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut any = false;
    for c in value.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                any = false;
            }
            (None, c) => word.push(c),
        }
    }
    if any || !word.is_empty() {
        words.push(word);
    }
    words
}

/// Import roots named by the packaging configuration.
fn packaging_roots(repo: &Snapshot) -> Vec<String> {
    let text = |path: &str| {
        repo.file(path)
            .map(|c| String::from_utf8_lossy(&c).into_owned())
    };
    let mut roots = Vec::new();
    if let Some(table) = text("pyproject.toml").and_then(|t| toml::from_str::<toml::Table>(&t).ok())
    {
        roots.extend(pyproject_roots(&table));
    }
    if let Some(cfg) = text("setup.cfg") {
        let options = ini_section(&cfg, "options").unwrap_or_default();
        for (key, value) in &options {
            if key == "package_dir" {
                // `package_dir = =src`, or one `name = dir` per line; the root is the empty name.
                roots.extend(value.split(['\n', ',']).filter_map(|entry| {
                    let (name, dir) = entry.split_once('=')?;
                    (name.trim().is_empty() && !dir.trim().is_empty())
                        .then(|| clean_path(dir.trim().to_owned()))
                }));
            }
        }
        let find = ini_section(&cfg, "options.packages.find").unwrap_or_default();
        roots.extend(
            find.iter()
                .filter(|(k, _)| k == "where")
                .flat_map(|(_, v)| shell_words(v))
                .map(clean_path),
        );
    }
    if let Some(setup) = text("setup.py") {
        roots.extend(setup_py_root(&setup));
    }
    roots.retain(|r| r == "." || matches!(repo.get(r), Some(Entry::Dir(_))));
    roots
}

fn pyproject_roots(table: &toml::Table) -> Vec<String> {
    let tool = |path: &[&str]| -> Option<&toml::Value> {
        let mut value = table.get("tool")?;
        for key in path {
            value = value.get(key)?;
        }
        Some(value)
    };
    let mut roots = Vec::new();
    if let Some(dir) = tool(&["setuptools", "package-dir", ""]).and_then(|v| v.as_str()) {
        roots.push(clean_path(dir.to_owned()));
    }
    if let Some(list) =
        tool(&["setuptools", "packages", "find", "where"]).and_then(|v| v.as_array())
    {
        roots.extend(
            list.iter()
                .filter_map(|v| v.as_str())
                .map(|s| clean_path(s.to_owned())),
        );
    }
    // hatch: `packages = ["src/foo"]` installs foo from src.
    if let Some(list) =
        tool(&["hatch", "build", "targets", "wheel", "packages"]).and_then(|v| v.as_array())
    {
        roots.extend(list.iter().filter_map(|v| v.as_str()).map(|p| {
            let p = clean_path(p.to_owned());
            p.rsplit_once('/')
                .map_or(".".to_owned(), |(dir, _)| dir.to_owned())
        }));
    }
    // poetry: `packages = [{ include = "foo", from = "src" }]`.
    if let Some(list) = tool(&["poetry", "packages"]).and_then(|v| v.as_array()) {
        roots.extend(
            list.iter()
                .filter_map(|p| p.get("from")?.as_str())
                .map(|s| clean_path(s.to_owned())),
        );
    }
    roots
}

/// The directory of `package_dir={"": "lib"}` in a `setup.py`.
fn setup_py_root(source: &str) -> Option<String> {
    let at = source.find("package_dir")?;
    let rest = &source[at..];
    let open = rest.find('{')?;
    let close = rest[open..].find('}')? + open;
    let body = &rest[open + 1..close];
    for entry in body.split(',') {
        let (key, value) = entry.split_once(':')?;
        let unquote = |s: &str| s.trim().trim_matches(['"', '\'']).to_owned();
        if unquote(key).is_empty() && key.trim().len() >= 2 {
            let dir = unquote(value);
            return (!dir.is_empty()).then(|| clean_path(dir));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(files: &[(&str, &str)]) -> Snapshot {
        Snapshot::from_files(files.iter().map(|(p, c)| (*p, c.as_bytes().to_vec()))).unwrap()
    }

    fn detect(files: &[(&str, &str)]) -> (Vec<String>, Vec<String>) {
        let layout = ProjectLayout::detect(&repo(files));
        (layout.python_path, layout.test_paths)
    }

    #[test]
    fn src_layouts_and_flat_layouts() {
        let (roots, tests) = detect(&[("src/pkg/__init__.py", ""), ("tests/test_a.py", "")]);
        assert_eq!((roots, tests), (vec!["src".into()], vec!["tests".into()]));
        let (roots, tests) = detect(&[("pkg/__init__.py", ""), ("pkg/test_x.py", "")]);
        assert_eq!((roots, tests), (vec![".".into()], vec!["pkg".into()]));
        // A src/ of C sources is not an import root.
        let (roots, _) = detect(&[("src/module.c", ""), ("test/test_a.py", "")]);
        assert_eq!(roots, ["."]);
        let layout = ProjectLayout::detect(&repo(&[("src/m.py", "")]));
        assert_eq!(layout.guest_python_path(), ["/repo/src"]);
    }

    #[test]
    fn pytest_settings_come_from_the_file_pytest_would_read() {
        let files = [
            ("lib/pkg/__init__.py", ""),
            ("checks/test_a.py", ""),
            ("tests/test_b.py", ""),
            (
                "pyproject.toml",
                "[tool.pytest.ini_options]\npythonpath = [\"lib\"]\ntestpaths = [\"checks\", \"missing\", \"glob*\"]\n",
            ),
        ];
        assert_eq!(detect(&files), (vec!["lib".into()], vec!["checks".into()]));
        // pytest.ini wins over pyproject.toml, and its values are whitespace-separated lists.
        let mut with_ini = files.to_vec();
        with_ini.push((
            "pytest.ini",
            "[pytest]\npythonpath = . lib\ntestpaths =\n    tests\n    checks\n",
        ));
        assert_eq!(
            detect(&with_ini),
            (
                vec![".".into(), "lib".into()],
                vec!["tests".into(), "checks".into()]
            )
        );
        let cfg = [
            (
                "setup.cfg",
                "[metadata]\nname = x\n\n[tool:pytest]\ntestpaths = checks\n",
            ),
            ("checks/test_a.py", ""),
        ];
        assert_eq!(detect(&cfg).1, ["checks"]);
        let tox = [
            ("tox.ini", "[tox]\n[pytest]\npythonpath = src\n"),
            ("src/x.txt", ""),
        ];
        assert_eq!(detect(&tox).0, ["src"]);
        let native = [
            ("pyproject.toml", "[tool.pytest]\ntestpaths = [\"t\"]\n"),
            ("t/test_a.py", ""),
        ];
        assert_eq!(detect(&native).1, ["t"]);
    }

    #[test]
    fn packaging_configuration_names_import_roots() {
        let setuptools = [
            (
                "pyproject.toml",
                "[tool.setuptools.package-dir]\n\"\" = \"lib\"\n",
            ),
            ("lib/pkg/__init__.py", ""),
        ];
        assert_eq!(detect(&setuptools).0, ["lib"]);
        let find = [
            (
                "pyproject.toml",
                "[tool.setuptools.packages.find]\nwhere = [\"python\"]\n",
            ),
            ("python/pkg/__init__.py", ""),
        ];
        assert_eq!(detect(&find).0, ["python"]);
        let hatch = [
            (
                "pyproject.toml",
                "[tool.hatch.build.targets.wheel]\npackages = [\"code/pkg\"]\n",
            ),
            ("code/pkg/__init__.py", ""),
        ];
        assert_eq!(detect(&hatch).0, ["code"]);
        let poetry = [
            (
                "pyproject.toml",
                "[tool.poetry]\npackages = [{ include = \"pkg\", from = \"lib\" }]\n",
            ),
            ("lib/pkg/__init__.py", ""),
        ];
        assert_eq!(detect(&poetry).0, ["lib"]);
        let cfg = [
            ("setup.cfg", "[options]\npackage_dir =\n    = lib\n"),
            ("lib/pkg/__init__.py", ""),
        ];
        assert_eq!(detect(&cfg).0, ["lib"]);
        let setup_py = [
            (
                "setup.py",
                "setup(name='x', package_dir={'': 'lib'}, packages=['pkg'])\n",
            ),
            ("lib/pkg/__init__.py", ""),
        ];
        assert_eq!(detect(&setup_py).0, ["lib"]);
        // A root that does not exist is not used.
        let missing = [
            ("setup.py", "setup(package_dir={'': 'gone'})\n"),
            ("m.py", ""),
        ];
        assert_eq!(detect(&missing).0, ["."]);
    }

    #[test]
    fn editable_metadata_names_the_project() {
        let sdist = repo(&[(
            "PKG-INFO",
            "Metadata-Version: 2.1\nName: cache-tools\nVersion: 8.0.2\n\nLong text\nName: no\n",
        )]);
        let tree = editable_metadata(&sdist).unwrap();
        let metadata = tree.file("cache_tools-8.0.2.dist-info/METADATA").unwrap();
        assert!(metadata.starts_with(b"Metadata-Version: 2.1\nName: cache-tools"));
        let checkout = repo(&[(
            "pyproject.toml",
            "[project]\nname = \"pkg\"\nversion = \"1.0\"\n",
        )]);
        assert!(editable_metadata(&checkout)
            .unwrap()
            .file("pkg-1.0.dist-info/METADATA")
            .is_some());
        let dynamic = repo(&[(
            "pyproject.toml",
            "[project]\nname = \"pkg\"\ndynamic = [\"version\"]\n",
        )]);
        assert!(editable_metadata(&dynamic).is_none());
    }

    #[test]
    fn shell_words_split_like_shlex() {
        assert_eq!(shell_words("a  'b c' \"d\" ''"), ["a", "b c", "d", ""]);
        assert!(shell_words("   ").is_empty());
    }
}
