//! The sandbox against the real CPython guest: isolation from the host, limits as typed
//! outcomes, copy-on-write overlays, determinism, concurrency.

mod common;

use common::{code, python, repo, stdout};
use spar::guest::{Interpreter, PythonRun, RuntimeSettings};
use spar::sandbox::{Determinism, Limits, Outcome, RunRequest, Sandbox, SandboxSettings};
use spar::snapshot::{FileChange, Snapshot};
use std::time::{Duration, Instant};

fn run(src: &str) -> spar::sandbox::RunResult {
    python()
        .run(
            &repo(&[("hello.txt", "hi\n")]),
            &code(src),
            &PythonRun::default(),
        )
        .unwrap()
}

#[test]
fn runs_python_in_the_repository() {
    let r = run("import sys, os; print(sys.version_info[:2], os.getcwd(), open('hello.txt').read().strip())");
    assert_eq!(r.outcome, Outcome::Completed);
    assert_eq!(r.exit_code, Some(0));
    let version = python().interpreter_version();
    let major_minor = version.rsplit_once('.').map_or(version, |(mm, _)| mm);
    assert_eq!(
        stdout(&r).trim(),
        format!("({}) /repo hi", major_minor.replace('.', ", "))
    );
    assert!(r.fuel_used > 0);
}

#[test]
fn guest_exit_codes_and_exceptions_are_results() {
    let r = run("import sys; sys.exit(7)");
    assert_eq!((r.outcome, r.exit_code), (Outcome::Completed, Some(7)));
    let r = run("raise ValueError('boom')");
    assert_eq!((r.outcome, r.exit_code), (Outcome::Completed, Some(1)));
    assert!(String::from_utf8_lossy(&r.stderr).contains("ValueError: boom"));
}

#[test]
fn nothing_from_the_host_is_visible() {
    std::env::set_var("SPAR_TEST_SECRET", "leaked");
    let r = run(r#"
import os
results = {}
for path in ['/repo/../../etc/passwd', '/etc/passwd', '../etc/passwd', '/repo/../etc/hostname',
             '/proc/self/environ', '/root', '/tmp/../../etc/passwd']:
    try:
        open(path).read()
        results[path] = 'READ'
    except OSError as e:
        results[path] = type(e).__name__
print(sorted(os.listdir('/')))
print(sorted(os.listdir('/repo/..')))
print('SPAR_TEST_SECRET' in os.environ, 'PATH' in os.environ, 'HOME' in os.environ and os.environ['HOME'])
print(results)
"#);
    assert_eq!(
        r.exit_code,
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let out = stdout(&r);
    let lines: Vec<&str> = out.lines().collect();
    // The mount points, and the 3.15 guest's standard library under /usr/local/lib.
    let root = match RuntimeSettings::new(None).interpreter {
        Interpreter::Cpython312 => "['dev', 'repo', 'site', 'spar', 'tmp']",
        Interpreter::Cpython315 => "['dev', 'repo', 'site', 'spar', 'tmp', 'usr']",
    };
    assert_eq!(lines[0], root);
    assert_eq!(
        lines[1], lines[0],
        "/repo/.. is the sandbox root, not the host's"
    );
    assert_eq!(lines[2], "False False /tmp");
    assert!(!out.contains("READ"), "{out}");
    assert!(!out.contains("root:"), "{out}");
}

#[test]
fn writes_go_to_a_private_overlay() {
    let base = repo(&[("data.txt", "original\n"), ("pkg/keep.py", "x = 1\n")]);
    let writer = code(
        "open('data.txt', 'w').write('changed\\n'); open('new.txt', 'w').write('n');\n\
         import os; os.remove('pkg/keep.py'); os.makedirs('out/deep'); open('out/deep/f', 'w').write('f')\n\
         open('/tmp/scratch', 'w').write('t')",
    );
    let first = python().run(&base, &writer, &PythonRun::default()).unwrap();
    assert_eq!(
        first.exit_code,
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let changes = first.fs.changes("/repo", &base);
    assert_eq!(
        changes,
        vec![
            FileChange::Written {
                path: "data.txt".into(),
                contents: b"changed\n".to_vec().into()
            },
            FileChange::Written {
                path: "new.txt".into(),
                contents: b"n".to_vec().into()
            },
            FileChange::Written {
                path: "out/deep/f".into(),
                contents: b"f".to_vec().into()
            },
            FileChange::Deleted {
                path: "pkg/keep.py".into()
            },
        ]
    );
    assert_eq!(
        &*base.file("data.txt").unwrap(),
        b"original\n",
        "the snapshot is unchanged"
    );
    assert!(base.file("pkg/keep.py").is_some());

    let reader = code(
        "import os; print(open('data.txt').read().strip(), os.path.exists('new.txt'), \
         os.path.exists('pkg/keep.py'), os.path.exists('/tmp/scratch'))",
    );
    let second = python().run(&base, &reader, &PythonRun::default()).unwrap();
    assert_eq!(stdout(&second).trim(), "original False True False");
    assert!(second.fs.changes("/repo", &base).is_empty());
}

#[test]
fn read_only_mounts_refuse_writes() {
    let r = run("import errno\n\
         for p in ['/site/evil.py', '/spar/lib/x.py', '/dev/y']:\n\
         \x20   try:\n\
         \x20       open(p, 'w')\n\
         \x20       print('WROTE', p)\n\
         \x20   except OSError as e:\n\
         \x20       print(errno.errorcode[e.errno])\n\
         open('/dev/null', 'w').write('discarded')");
    assert_eq!(
        r.exit_code,
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert_eq!(stdout(&r).trim(), "EROFS\nEROFS\nEROFS");
}

#[test]
fn infinite_loop_times_out_within_the_limit() {
    let mut options = PythonRun::default();
    options.limits.timeout = Duration::from_millis(1500);
    let started = Instant::now();
    let r = python()
        .run(&Snapshot::empty(), &code("while True: pass"), &options)
        .unwrap();
    assert_eq!(r.outcome, Outcome::Timeout);
    assert_eq!(r.exit_code, None);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn fuel_budget_stops_the_guest_deterministically() {
    let mut options = PythonRun::default();
    options.limits.fuel = Some(50_000_000);
    let r = python()
        .run(&Snapshot::empty(), &code("while True: pass"), &options)
        .unwrap();
    assert_eq!(r.outcome, Outcome::Timeout);
    assert_eq!(r.fuel_used, 50_000_000);
}

#[test]
fn memory_bomb_is_out_of_memory() {
    let mut options = PythonRun::default();
    options.limits.memory_bytes = 256 << 20;
    let r = python()
        .run(
            &Snapshot::empty(),
            &code("x = []\nwhile True: x.append(bytearray(10**6))"),
            &options,
        )
        .unwrap();
    assert_eq!(r.outcome, Outcome::OutOfMemory);
    let r = python()
        .run(
            &Snapshot::empty(),
            &code("x = bytearray(2 * 10**9)"),
            &options,
        )
        .unwrap();
    assert_eq!(r.outcome, Outcome::OutOfMemory);
}

#[test]
fn huge_output_is_cut_at_the_limit() {
    let mut options = PythonRun::default();
    options.limits.max_output_bytes = 1 << 20;
    let r = python()
        .run(
            &Snapshot::empty(),
            &code("import sys\nsys.stdout.write('x' * 100_000_000)"),
            &options,
        )
        .unwrap();
    assert_eq!(r.outcome, Outcome::OutputLimit);
    let out = stdout(&r);
    assert!(out.len() < (1 << 20) + 200);
    assert!(
        out.ends_with("exceeded 1048576 bytes]\n"),
        "{}",
        &out[out.len() - 100..]
    );
}

#[test]
fn file_system_limits_stop_the_guest() {
    let mut options = PythonRun::default();
    options.limits.fs.max_bytes_written = 1 << 20;
    let r = python()
        .run(
            &Snapshot::empty(),
            &code("f = open('/tmp/big', 'wb')\nwhile True: f.write(b'x' * 65536)"),
            &options,
        )
        .unwrap();
    assert_eq!(r.outcome, Outcome::FsLimit);
    options.limits.fs.max_files_created = 50;
    let r = python()
        .run(
            &Snapshot::empty(),
            &code("for i in range(1000): open(f'/tmp/f{i}', 'w').close()"),
            &options,
        )
        .unwrap();
    assert_eq!(r.outcome, Outcome::FsLimit);
}

#[test]
fn seeded_runs_repeat_exactly_and_seeds_differ() {
    let src = "import random, time, os; print(random.random(), time.time(), os.urandom(4).hex(), hash('spar'))";
    let seeded = |seed| PythonRun {
        determinism: Determinism::Seeded { seed },
        ..PythonRun::default()
    };
    let a = python()
        .run(&Snapshot::empty(), &code(src), &seeded(1))
        .unwrap();
    let b = python()
        .run(&Snapshot::empty(), &code(src), &seeded(1))
        .unwrap();
    let c = python()
        .run(&Snapshot::empty(), &code(src), &seeded(2))
        .unwrap();
    assert_eq!(
        a.exit_code,
        Some(0),
        "{}",
        String::from_utf8_lossy(&a.stderr)
    );
    assert_eq!(stdout(&a), stdout(&b));
    assert_eq!(a.fuel_used, b.fuel_used, "fuel is deterministic too");
    assert_ne!(stdout(&a), stdout(&c));
    let year = python()
        .run(
            &Snapshot::empty(),
            &code("import time; print(time.gmtime().tm_year)"),
            &seeded(0),
        )
        .unwrap();
    assert_eq!(
        stdout(&year).trim(),
        "2024",
        "the virtual clock starts at 2024-01-01"
    );
}

#[test]
fn sleeping_advances_the_virtual_clock_instantly() {
    let started = Instant::now();
    let r = run(
        "import time; t = time.monotonic(); time.sleep(30); print(round(time.monotonic() - t))",
    );
    assert_eq!(stdout(&r).trim(), "30");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn fifty_parallel_runs_are_all_correct() {
    let base = repo(&[("n.txt", "original")]);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..50)
            .map(|i| {
                let base = base.clone();
                scope.spawn(move || {
                    let src = format!(
                        "open('n.txt', 'w').write('{i}'); print(int(open('n.txt').read()) * 3)"
                    );
                    let r = python()
                        .run(&base, &code(&src), &PythonRun::default())
                        .unwrap();
                    (i, r.exit_code, stdout(&r), r.fs.changes("/repo", &base))
                })
            })
            .collect();
        for h in handles {
            let (i, code, out, changes) = h.join().unwrap();
            assert_eq!(code, Some(0));
            assert_eq!(out.trim(), (i * 3).to_string());
            assert_eq!(changes.len(), 1);
        }
    });
    assert_eq!(&*base.file("n.txt").unwrap(), b"original");
}

#[test]
fn stdin_reaches_the_guest() {
    let options = PythonRun {
        stdin: b"line one\nline two\n".to_vec(),
        ..PythonRun::default()
    };
    let r = python()
        .run(
            &Snapshot::empty(),
            &code("import sys; print(len(sys.stdin.read().splitlines()))"),
            &options,
        )
        .unwrap();
    assert_eq!(stdout(&r).trim(), "2");
}

fn wat_sandbox(wat: &str) -> Sandbox {
    let cache = std::env::temp_dir().join("spar-test-wat-cache");
    Sandbox::from_bytes(wat.as_bytes(), &SandboxSettings::new(cache)).unwrap()
}

fn bare_request() -> RunRequest {
    RunRequest {
        argv: vec!["guest".into()],
        env: Vec::new(),
        mounts: Vec::new(),
        stdin: Vec::new(),
        limits: Limits::default(),
        determinism: Determinism::default(),
    }
}

#[test]
fn traps_are_typed_and_the_engine_keeps_serving() {
    let sandbox = wat_sandbox(
        r#"(module (memory (export "memory") 1) (func (export "_start") unreachable))"#,
    );
    let r = sandbox.run(bare_request()).unwrap();
    assert_eq!(r.outcome, Outcome::Trap);
    assert!(
        r.trap.as_deref().unwrap_or("").contains("unreachable"),
        "{:?}",
        r.trap
    );
    let again = sandbox.run(bare_request()).unwrap();
    assert_eq!(again.outcome, Outcome::Trap);
    // The Python sandbox in the same process is unaffected.
    assert_eq!(run("print(1)").exit_code, Some(0));
}

#[test]
fn a_guest_returning_from_start_completes_with_code_zero() {
    let sandbox = wat_sandbox(r#"(module (memory (export "memory") 1) (func (export "_start")))"#);
    let r = sandbox.run(bare_request()).unwrap();
    assert_eq!((r.outcome, r.exit_code), (Outcome::Completed, Some(0)));
}

/// The critical write bug: a write past the end used to grow the host's copy of the file to
/// the offset (2 GiB under a 1 MiB limit, an abort at 2**40, a panic at 2**63-1). The hole is
/// charged as written bytes now, so each stops at the limit with nothing allocated.
#[test]
fn writes_past_the_end_of_a_file_are_charged_for_the_hole() {
    let mut options = PythonRun::default();
    options.limits.fs.max_bytes_written = 1 << 20;
    for (what, src) in [
        ("seek 2 GiB", "f = open('/tmp/s', 'wb'); f.seek(2 * 1024**3); f.write(b'x'); f.close()"),
        ("seek 2**40", "f = open('/tmp/s', 'wb'); f.seek(2**40); f.write(b'x'); f.close()"),
        (
            "pwrite 2**63-1",
            "import os; fd = os.open('/tmp/p', os.O_CREAT | os.O_WRONLY); os.pwrite(fd, b'x', 2**63 - 1)",
        ),
    ] {
        let r = python()
            .run(&Snapshot::empty(), &code(src), &options)
            .unwrap();
        assert_eq!(r.outcome, Outcome::FsLimit, "{what}: {}", stdout(&r));
    }
    // A hole within the limit reads back as zeros, as on a real file system.
    let r = python()
        .run(
            &Snapshot::empty(),
            &code("f = open('/tmp/h', 'wb'); f.seek(1000); f.write(b'x'); f.close(); d = open('/tmp/h', 'rb').read(); print(len(d), d.count(0))"),
            &options,
        )
        .unwrap();
    assert_eq!(stdout(&r).trim(), "1001 1000");
}

#[test]
fn wasi_gaps_are_emulated_faithfully() {
    let r = run(r#"
import os, socket
print(socket.gethostname())
print(oct(os.umask(0o077)), oct(os.umask(0o022)))
for text in ['2001:db8::1', '::ffff:1.2.3.4', '::', '1:0:0:2:0:0:0:3']:
    print(socket.inet_ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, text)))
try:
    socket.inet_pton(socket.AF_INET6, '1:::2')
except OSError as e:
    print('refused', type(e).__name__)
print(socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, '10.0.0.1')))
"#);
    assert_eq!(
        r.outcome,
        Outcome::Completed,
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert_eq!(
        stdout(&r),
        "spar-sandbox\n0o22 0o77\n2001:db8::1\n::ffff:1.2.3.4\n::\n1:0:0:2::3\nrefused OSError\n10.0.0.1\n"
    );
}

/// spar's own preview 1 takes every pointer and count from the guest: each bad one is an error
/// number the guest sees (EFAULT 21, EINVAL 28, EBADF 8), never a host panic or a write
/// outside the guest's memory. The guest exits with the sum of what the calls returned.
#[test]
fn hostile_wasi_arguments_are_error_numbers() {
    let sandbox = wat_sandbox(
        r#"(module
          (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 1)
          (func $add (param $sum i32) (param $errno i32) (result i32)
            (i32.add (local.get $sum) (local.get $errno)))
          (func (export "_start")
            (local $sum i32)
            ;; an iovec array that runs off the end of memory: EFAULT
            (local.set $sum (call $fd_write (i32.const 1) (i32.const 65532) (i32.const 1) (i32.const 0)))
            ;; an iovec whose buffer is out of bounds: EFAULT
            (i32.store (i32.const 0) (i32.const 65000))
            (i32.store (i32.const 4) (i32.const 4096))
            (local.set $sum (call $add (local.get $sum)
              (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
            ;; argv pointers at the very top of the address space: EFAULT
            (local.set $sum (call $add (local.get $sum)
              (call $args_get (i32.const -4) (i32.const -2))))
            ;; four billion subscriptions: EINVAL
            (local.set $sum (call $add (local.get $sum)
              (call $poll (i32.const 0) (i32.const 0) (i32.const -1) (i32.const 0))))
            ;; a path that leaves the preopened root: ENOTCAPABLE (76)
            (i32.store (i32.const 100) (i32.const 0x2f2e2e)) ;; "../" little-endian
            (local.set $sum (call $add (local.get $sum)
              (call $path_open (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 3) (i32.const 0)
                               (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 200))))
            ;; reading a descriptor that was never opened: EBADF
            (local.set $sum (call $add (local.get $sum)
              (call $fd_read (i32.const 99) (i32.const 0) (i32.const 0) (i32.const 8))))
            (call $exit (local.get $sum))))"#,
    );
    let r = sandbox.run(bare_request()).unwrap();
    assert_eq!(r.outcome, Outcome::Completed, "{:?}", r.trap);
    assert_eq!(r.exit_code, Some(21 + 21 + 21 + 28 + 76 + 8));
    assert!(r.stdout.is_empty());
}

/// The file API as Python programs use it, through spar's preview 1: modes, positions,
/// appends, truncation, directory listings longer than one `fd_readdir` buffer, renames,
/// `stat` and `utime`, and the POSIX error each refusal maps to.
#[test]
fn the_file_api_behaves_as_on_posix() {
    let r = run(r#"
import os, errno
os.mkdir('/tmp/d')
for i in range(300):
    with open(f'/tmp/d/file-with-a-longish-name-{i:03}.txt', 'w') as f:
        f.write(str(i))
names = os.listdir('/tmp/d')
print(len(names), len(set(names)), sorted(names)[0])
with open('/tmp/a', 'w') as f:
    f.write('hello world')
with open('/tmp/a', 'r+') as f:
    f.seek(6); f.write('WORLD'); f.seek(0); print(f.read(), f.tell())
with open('/tmp/a', 'a') as f:
    f.write('!'); print(f.tell())
with open('/tmp/a') as f:
    print(f.read(), f.readable(), f.writable())
fd = os.open('/tmp/a', os.O_RDONLY)
try:
    os.write(fd, b'x')
except OSError as e:
    print('write on read-only', errno.errorcode[e.errno])
os.close(fd)
os.truncate('/tmp/a', 5)
print(open('/tmp/a').read(), os.stat('/tmp/a').st_size)
os.utime('/tmp/a', (1_000_000, 2_000_000))
print(os.stat('/tmp/a').st_mtime)
os.rename('/tmp/a', '/tmp/d/a')
print(os.path.exists('/tmp/a'), os.path.isfile('/tmp/d/a'), os.path.isdir('/tmp/d'))
for attempt in [lambda: os.rmdir('/tmp/d'), lambda: open('/site/evil.py', 'w'),
                lambda: os.symlink('/etc', '/tmp/l'), lambda: os.mkdir('/tmp/d'),
                lambda: open('/tmp/missing'), lambda: os.listdir('/tmp/d/a')]:
    try:
        attempt()
    except OSError as e:
        print(errno.errorcode[e.errno], end=' ')
print()
"#);
    assert_eq!(
        (r.outcome, r.exit_code),
        (Outcome::Completed, Some(0)),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert_eq!(
        stdout(&r),
        "300 300 file-with-a-longish-name-000.txt\n\
         hello WORLD 11\n\
         12\n\
         hello WORLD! True False\n\
         write on read-only EBADF\n\
         hello 5\n\
         2000000.0\n\
         False True True\n\
         ENOTEMPTY EROFS ENOTSUP EEXIST ENOENT ENOTDIR \n"
    );
}

/// A reactor whose data segment puts 7 at address 1024. Turn `w` writes 42 there and, after
/// growing memory by a page, 9 at 70000 (the image); turn `x` overwrites both (a resumed run's
/// own writes); any other turn, and `run` (a plain start), reports what it sees.
const IMAGE_GUEST: &str = r#"(module
  (memory (export "memory") 1)
  (data (i32.const 1024) "\07")
  (func (export "_initialize"))
  (func (export "host_alloc") (param i32) (result i32) (i32.const 4096))
  (func $seen (result i32)
    (if (result i32) (i32.gt_u (memory.size) (i32.const 1))
      (then (i32.add (i32.load8_u (i32.const 1024)) (i32.load8_u (i32.const 70000))))
      (else (i32.add (i32.load8_u (i32.const 1024)) (i32.const 100)))))
  (func (export "turn") (param $p i32) (param $n i32) (result i32)
    (if (i32.eq (i32.load8_u (local.get $p)) (i32.const 119))
      (then
        (drop (memory.grow (i32.const 1)))
        (i32.store8 (i32.const 1024) (i32.const 42))
        (i32.store8 (i32.const 70000) (i32.const 9))
        (return (i32.const 0))))
    (if (i32.eq (i32.load8_u (local.get $p)) (i32.const 120))
      (then
        (i32.store8 (i32.const 1024) (i32.const 1))
        (i32.store8 (i32.const 70000) (i32.const 1))
        (return (i32.const 2))))
    (call $seen))
  (func (export "run") (result i32) (call $seen)))"#;

/// With one slot, plain starts and resumed runs alternate in the same memory and each sees only
/// its own start: the slot is reset (only the pages a run wrote, where the kernel can tell)
/// to a new instance's memory after every run.
#[test]
fn resumed_and_plain_runs_share_a_slot_and_each_sees_its_own_start() {
    let cache = std::env::temp_dir().join(format!("spar-test-image-{}", std::process::id()));
    let mut settings = SandboxSettings::new(cache.clone());
    settings.max_concurrent_runs = 1;
    let sandbox = Sandbox::from_bytes(IMAGE_GUEST.as_bytes(), &settings).unwrap();
    let plain = |sandbox: &Sandbox| sandbox.run(bare_request()).unwrap().exit_code;
    assert_eq!(plain(&sandbox), Some(107), "a new instance: 7, one page");

    let image = std::sync::Arc::new(
        sandbox
            .capture(bare_request(), "w", &|_, _| Ok(()))
            .unwrap()
            .unwrap(),
    );
    assert_eq!(image.memory_bytes(), 2 << 16);
    let resume = |code: &str| {
        let run = sandbox.resume(&image, bare_request(), code).unwrap();
        if !run.warm {
            assert_eq!(
                run.written_back, 0,
                "a new instance has nothing to write back"
            );
        }
        run.exit_code
    };
    for _ in 0..3 {
        assert_eq!(resume("r"), Some(51), "the image: 42 and 9, two pages");
        assert_eq!(plain(&sandbox), Some(107), "not the image");
        assert_eq!(resume("x"), Some(2));
        assert_eq!(plain(&sandbox), Some(107), "not the last run's writes");
        assert_eq!(resume("r"), Some(51), "nor does the image");
    }
    let _ = std::fs::remove_dir_all(cache);
}

/// Runs of one image from more threads than slots share the instances: each run starts from
/// the image whatever the run before in its instance wrote, and no run waits forever.
#[test]
fn concurrent_runs_of_an_image_share_its_instances_and_each_starts_from_it() {
    let cache = std::env::temp_dir().join(format!("spar-test-share-{}", std::process::id()));
    let mut settings = SandboxSettings::new(cache.clone());
    settings.max_concurrent_runs = 2;
    let sandbox =
        std::sync::Arc::new(Sandbox::from_bytes(IMAGE_GUEST.as_bytes(), &settings).unwrap());
    let image = std::sync::Arc::new(
        sandbox
            .capture(bare_request(), "w", &|_, _| Ok(()))
            .unwrap()
            .unwrap(),
    );
    let (done, finished) = std::sync::mpsc::channel();
    for thread in 0..4 {
        let (sandbox, image, done) = (sandbox.clone(), image.clone(), done.clone());
        std::thread::spawn(move || {
            let mut warm = 0;
            for i in 0..25 {
                let code = if (i + thread) % 2 == 0 { "x" } else { "r" };
                let run = sandbox.resume(&image, bare_request(), code).unwrap();
                let want = if code == "x" { 2 } else { 51 };
                assert_eq!(run.exit_code, Some(want), "thread {thread}, run {i}");
                warm += usize::from(run.warm);
            }
            done.send(warm).unwrap();
        });
    }
    drop(done);
    let warm: Vec<usize> = (0..4)
        .map(|_| {
            finished
                .recv_timeout(std::time::Duration::from_secs(120))
                .expect("every thread finishes its runs (a failed one says why above)")
        })
        .collect();
    if spar::sandbox::instance_reuse_available() {
        assert!(
            warm.iter().sum::<usize>() > 50,
            "runs reused instances: {warm:?}"
        );
    }
    let _ = std::fs::remove_dir_all(cache);
}

/// A capture's last step sees the memory as the prelude left it and what it writes is the
/// image; one that refuses refuses the capture for good.
#[test]
fn a_capture_ends_with_its_edit_which_can_refuse_it() {
    let cache = std::env::temp_dir().join(format!("spar-test-edit-{}", std::process::id()));
    let sandbox =
        Sandbox::from_bytes(IMAGE_GUEST.as_bytes(), &SandboxSettings::new(cache.clone())).unwrap();
    let edit = |_: &spar::sandbox::Vfs, memory: &mut [u8]| {
        assert_eq!(memory[1024], 42, "the prelude's write");
        memory[1024] = 5;
        Ok(())
    };
    let image = std::sync::Arc::new(
        sandbox
            .capture(bare_request(), "w", &edit)
            .unwrap()
            .unwrap(),
    );
    let run = sandbox.resume(&image, bare_request(), "r").unwrap();
    assert_eq!(
        run.exit_code,
        Some(14),
        "5 from the edit and 9 from the prelude"
    );

    let refuse = |_: &spar::sandbox::Vfs, _: &mut [u8]| Err("no".into());
    let Err(refused) = sandbox.capture(bare_request(), "w", &refuse).unwrap() else {
        panic!("an edit that refuses refuses the capture");
    };
    assert!(
        matches!(refused, spar::sandbox::CaptureError::Edit(_)),
        "{refused}"
    );
    assert!(refused.is_permanent());
    let _ = std::fs::remove_dir_all(cache);
}
