//! Every mutation, removal and test removal spar's Python editor makes in the corpus's files
//! parses again. No guest is needed, but it is tens of thousands of parses (half a minute on
//! 2 cores), so it lives here rather than in the fast unit-test tier.

use spar::pyedit::{
    functions, mutations, parses_cleanly, removals, remove_tests, Operator, TestRef,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpora")
}

fn py_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            py_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "py") {
            out.push(path);
        }
    }
}

/// Checks every mutation, removal and test removal of one file with a fresh parse (not
/// the incremental one the functions use) and counts them by kind.
fn check_file(file: &Path) -> BTreeMap<&'static str, usize> {
    let src = std::fs::read_to_string(file).unwrap();
    let mut counts = BTreeMap::new();
    for m in mutations(&src).unwrap() {
        let file = file.display();
        assert!(parses_cleanly(&m.edit.apply(&src)), "{file} {m:?}");
        *counts.entry(m.operator.as_str()).or_default() += 1;
    }
    for r in removals(&src).unwrap() {
        let (file, kind) = (file.display(), ["function_body", "hunk"][r.kind as usize]);
        assert!(parses_cleanly(&r.edit.apply(&src)), "{file} {r:?}");
        *counts.entry(kind).or_default() += 1;
    }
    // Tests directly in a module or class, as pytest collects them.
    let mut tests = Vec::new();
    for f in functions(&src).unwrap() {
        let direct = f
            .class
            .as_ref()
            .map_or(f.name.clone(), |c| format!("{c}.{}", f.name));
        if f.name.starts_with("test") && f.qualname == direct {
            tests.push(TestRef {
                class_name: f.class,
                name: f.name,
            });
        }
    }
    for t in &tests {
        let out = remove_tests(&src, std::slice::from_ref(t)).unwrap();
        assert!(out.len() < src.len() && parses_cleanly(&out));
        *counts.entry("remove_tests").or_default() += 1;
    }
    if !tests.is_empty() {
        remove_tests(&src, &tests).unwrap();
    }
    counts
}

#[test]
fn corpus_edits_all_reparse() {
    let mut files = Vec::new();
    py_files(&corpus(), &mut files);
    files.sort();
    assert!(files.len() > 10);
    // Tens of thousands of fresh parses: spread the files over the cores.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    std::thread::scope(|s| {
        let handles: Vec<_> = files
            .chunks(files.len().div_ceil(threads))
            .map(|part| s.spawn(move || part.iter().map(|f| check_file(f)).collect::<Vec<_>>()))
            .collect();
        for per_file in handles.into_iter().flat_map(|h| h.join().unwrap()) {
            per_file
                .into_iter()
                .for_each(|(kind, n)| *counts.entry(kind).or_default() += n);
        }
    });
    println!("{} files: {counts:#?}", files.len());
    for op in Operator::ALL {
        assert!(counts.contains_key(op.as_str()), "{op:?} never occurs");
    }
}
