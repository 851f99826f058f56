//! The other guest runtime, `--runtime 3.12` (VMware's CPython 3.12 for WASI, a command module),
//! against the real module: what differs from the default 3.15 guest (exit statuses, the root
//! listing, no image, the C-stack trap on deep `repr` chains) and what must not (per-test
//! results, typed limits, nothing of the host visible).

mod common;

use common::{calc_repo, code, python312, repo, stderr, stdout};
use spar::guest::PythonRun;
use spar::sandbox::Outcome;
use spar::snapshot::Snapshot;
use spar::testrun::{run_tests, TestCommand, TestStatus};

fn run(src: &str) -> spar::sandbox::RunResult {
    python312()
        .run(
            &repo(&[("hello.txt", "hi\n")]),
            &code(src),
            &PythonRun::default(),
        )
        .unwrap()
}

#[test]
fn starts_in_the_repository_and_passes_whole_exit_codes_through() {
    let r = run(r#"
import sys, os
print(sys.version.split()[0], os.getcwd(), open('hello.txt').read().strip())
print(sorted(os.listdir('/')), 'SPAR_TEST_SECRET' in os.environ)
sys.exit(300)
"#);
    assert_eq!(
        (r.outcome, r.exit_code),
        (Outcome::Completed, Some(300)),
        "{}",
        stderr(&r)
    );
    assert_eq!(
        stdout(&r),
        "3.12.0 /repo hi\n['dev', 'repo', 'site', 'spar', 'tmp'] False\n"
    );
    assert!(
        python312().image().is_none(),
        "a command module has no image"
    );
}

#[test]
fn pytest_suites_map_every_test_and_limits_are_typed() {
    let repo = calc_repo(Some("return a - b + 1"));
    let command = TestCommand::for_repo(&repo, None, &[]);
    let report = run_tests(python312(), &repo, &command, &PythonRun::default()).unwrap();
    assert_eq!(report.run.exit_code, Some(1), "{}", report.run.stdout);
    assert_eq!(report.tests.len(), 9, "{:?}", report.tests);
    assert_eq!(
        report.tests["tests/test_calc.py::test_sub"],
        TestStatus::Failed
    );
    let mut options = PythonRun::default();
    options.limits.timeout = std::time::Duration::from_millis(500);
    let r = python312()
        .run(&Snapshot::empty(), &code("while True: pass"), &options)
        .unwrap();
    assert_eq!(r.outcome, Outcome::Timeout);
}

/// The known limit of this guest (the 3.15 guest raises `RecursionError` instead): a chain of
/// `__repr__` calls a few hundred deep runs its C stack into its data. It must end as a typed
/// trap, a result the host can match on, never a harness error or a wrong answer.
#[test]
fn a_deep_repr_chain_traps_as_a_typed_outcome() {
    let r = run(r#"
class Node:
    def __init__(self, nxt): self.nxt = nxt
    def __repr__(self): return 'N(' + repr(self.nxt) + ')'
chain = None
for _ in range(5000):
    chain = Node(chain)
try:
    repr(chain)
except RecursionError:
    print('RecursionError')
"#);
    assert!(
        r.outcome == Outcome::Trap || stdout(&r) == "RecursionError\n",
        "{:?} {:?} {}",
        r.outcome,
        r.trap,
        stderr(&r)
    );
}
