//! The `spar` binary: JSON schema, exit statuses, error messages.

mod common;

use std::process::Command;

fn spar() -> Command {
    // Built once by cargo for integration tests; the runtime cache is shared with the library tests.
    common::python();
    let mut command = Command::new(env!("CARGO_BIN_EXE_spar"));
    // The default runtime, whatever the environment running the tests picks.
    command.env_remove("SPAR_RUNTIME");
    command
}

fn write_repo(name: &str, sub_body: Option<&str>) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("spar-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for (path, contents) in common::calc_repo(sub_body).files() {
        let target = dir.join(&path);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, &*contents).unwrap();
    }
    dir
}

#[test]
fn test_json_follows_the_schema() {
    let dir = write_repo("json", Some("return b - a"));
    let out = spar()
        .arg("test")
        .arg(&dir)
        .arg("--json")
        .arg("-q")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "a failing suite exits 1");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["outcome"], "completed");
    assert_eq!(v["exit_code"], 1);
    assert_eq!(v["tests"]["tests/test_calc.py::test_add"], "passed");
    assert_eq!(v["tests"]["tests/test_calc.py::test_sub"], "failed");
    assert_eq!(v["tests"]["tests/test_calc.py::test_skipped"], "skipped");
    assert_eq!(
        v["failed"], 3,
        "sub(5,3), sub(3,5), sub(10,4) flip; sub(1,1) does not"
    );
    assert_eq!(v["passed"], 5);
    assert_eq!(v["errors"], 0);
    assert_eq!(v["skipped"], 1);
    assert!(v["duration_ms"].as_f64().unwrap() > 0.0);
    assert!(v["fuel"].as_u64().unwrap() > 0);
    assert!(v["stdout"]
        .as_str()
        .unwrap()
        .contains("short test summary info"));
    assert!(v["stderr"].is_string());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn test_table_and_exit_zero_when_all_pass() {
    let dir = write_repo("table", None);
    let out = spar().arg("test").arg(&dir).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("passed   tests/test_calc.py::test_add"),
        "{text}"
    );
    assert!(
        text.contains("8 passed, 0 failed, 0 errors, 1 skipped"),
        "{text}"
    );
    // Extra runner arguments after `--` reach pytest.
    let out = spar()
        .arg("test")
        .arg(&dir)
        .arg("--json")
        .arg("--")
        .arg("-k")
        .arg("mul")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["tests"].as_object().unwrap().len(), 1, "{v}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn run_passes_output_and_exit_code_through() {
    let dir = write_repo("run", None);
    let out = spar()
        .arg("run")
        .arg(&dir)
        .args([
            "--",
            "-c",
            "import sys; print(sys.version.split()[0]); sys.exit(3)",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "3.15.0");
    let out = spar()
        .args(["--runtime", "3.12", "run"])
        .arg(&dir)
        .args(["--", "-c", "import sys; print(sys.version.split()[0])"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "3.12.0");

    let out = spar()
        .arg("run")
        .arg(&dir)
        .args(["--json", "--timeout", "1", "--", "-c", "while True: pass"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(124));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["outcome"], "timeout");
    assert!(v["exit_code"].is_null());
    assert!(v.get("tests").is_none());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_gets_a_clear_error() {
    let out = spar()
        .args(["test", "/definitely/not/here"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/definitely/not/here"), "{err}");

    let out = spar()
        .args(["run", ".", "--memory-mb", "0", "--", "-c", "pass"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--memory-mb"));
}

#[test]
fn training_commands_say_what_to_do_on_bad_input() {
    let scratch = std::env::temp_dir().join(format!("spar-cli-train-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["train".into(), "--device".into(), "tpu".into()],
            "use cpu or cuda",
        ),
        (
            vec![
                "train".into(),
                "--resume".into(),
                scratch.join("missing").display().to_string(),
            ],
            "--resume needs the run directory",
        ),
        (
            vec![
                "train".into(),
                "--corpus".into(),
                "datefmt".into(),
                "--out".into(),
                scratch.join("run").display().to_string(),
            ],
            "held out for evaluation",
        ),
        (
            vec![
                "eval".into(),
                "--checkpoint".into(),
                scratch.join("nothing").display().to_string(),
            ],
            "no checkpoint at",
        ),
        (
            vec!["plot".into(), scratch.join("nothing").display().to_string()],
            "metrics.jsonl",
        ),
        (
            vec![
                "eval".into(),
                "--baselines".into(),
                "oracle".into(),
                "--per-project".into(),
                "1".into(),
                "--attempts".into(),
                "1".into(),
            ],
            "untrained, random or heuristic",
        ),
    ];
    if !cfg!(feature = "cuda") {
        let out = spar()
            .args(["train", "--device", "cuda", "--out"])
            .arg(scratch.join("gpu"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("--features cuda"), "{stderr}");
        assert!(
            !scratch.join("gpu").exists(),
            "nothing is written before the device check"
        );
    }
    for (args, expected) in cases {
        let out = spar().args(&args).arg("-q").output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    std::fs::remove_dir_all(&scratch).ok();
}

/// `spar test` on a src layout whose pytest configuration names its tests: importable as
/// after `pip install -e .`, metadata included.
#[test]
fn test_makes_a_src_layout_importable() {
    let dir = std::env::temp_dir().join(format!("spar-cli-srclayout-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let files = [
        ("src/pkgx/__init__.py", "def one():\n    return 1\n"),
        (
            "pyproject.toml",
            "[project]\nname = \"pkgx\"\nversion = \"1.2.3\"\n\n[tool.pytest.ini_options]\ntestpaths = [\"checks\"]\n",
        ),
        (
            "checks/test_pkgx.py",
            "import importlib.metadata\nimport pkgx\n\ndef test_one():\n    assert pkgx.one() == 1\n\ndef test_version():\n    assert importlib.metadata.version('pkgx') == '1.2.3'\n",
        ),
        ("docs/test_not_a_test.py", "def test_never():\n    assert False\n"),
    ];
    for (path, text) in files {
        let target = dir.join(path);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, text).unwrap();
    }
    let out = spar().arg("test").arg(&dir).arg("--json").output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["tests"]["checks/test_pkgx.py::test_one"], "passed", "{v}");
    assert_eq!(
        v["tests"]["checks/test_pkgx.py::test_version"], "passed",
        "{v}"
    );
    assert_eq!(v["tests"].as_object().unwrap().len(), 2, "{v}");
    assert_eq!(out.status.code(), Some(0));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn relative_scripts_run_from_the_repository() {
    let dir = write_repo("script", None);
    std::fs::create_dir_all(dir.join("tools")).unwrap();
    std::fs::write(
        dir.join("tools/hello.py"),
        "import os, sys\nprint(os.getcwd(), sys.argv[1])\nsys.exit(300)\n",
    )
    .unwrap();
    let out = spar()
        .arg("run")
        .arg(&dir)
        .args(["--", "-B", "tools/hello.py", "arg"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "/repo arg");
    assert_eq!(out.status.code(), Some(300 & 0xFF), "as a shell reports it");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Inputs that used to panic (exit 101) get a usage error (2) or spar's failure status.
#[test]
fn hostile_inputs_never_panic() {
    for value in ["1e20", "nan", "inf", "0", "-3", "soon"] {
        let out = spar()
            .args([
                "run",
                ".",
                &format!("--timeout={value}"),
                "--",
                "-c",
                "pass",
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "--timeout {value}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("--timeout"));
    }
    let out = spar()
        .args(["validate", ".", "--test-timeout", "1e30"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // An artifact whose base_snapshot holds multibyte characters, validated against a repository
    // with another hash: a warning cut by characters, then a validation result.
    let dir = write_repo("validate", None);
    let artifact = std::env::temp_dir().join(format!("spar-cli-art-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&artifact);
    let mut bug = common::valid_artifact();
    bug.meta.base_snapshot = "é".repeat(20);
    bug.save(&artifact).unwrap();
    let out = spar()
        .args(["validate"])
        .arg(&artifact)
        .arg("--repo")
        .arg(&dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(101), "{err}");
    assert!(err.contains(&"é".repeat(12)), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&artifact).unwrap();
}
