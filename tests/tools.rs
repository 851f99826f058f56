//! The agent tool profiles on the real guest: a solver that knows only SWE-agent's tools
//! (`bash`, `str_replace_editor`, `submit`) repairs a procedural bug in a built-in project, its
//! calls parsed from OpenAI-style function calls as an LLM would send them; R2E-Gym's tools
//! answer in R2E-Gym's format over the same episode.

mod common;

use common::scratch;

use serde_json::{json, Value};
use spar::corpus::{self, Store};
use spar::episode::tools::{parse_call, Profile};
use spar::episode::{Env, EnvSettings, SolverEnv, Step, Task};
use spar::inject::{InjectSettings, Injector, Strategy};
use spar::protocol::{ValidationSettings, Validator};
use std::path::Path;
use std::sync::Arc;

/// One procedural bug in the built-in `moneyunits`, as a task, and its validator.
fn builtin_task() -> (Arc<Task>, Arc<Validator>) {
    let corpora = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpora");
    let project =
        corpus::open_project("moneyunits", &corpora, &Store::new(scratch("store"))).unwrap();
    let validator = Arc::new(Validator::new(ValidationSettings::default()));
    let out = scratch("artifacts");
    let report = Injector::new(common::python(), &validator, &project)
        .unwrap()
        .inject(&InjectSettings {
            strategy: Strategy::Procedural,
            count: 1,
            seed: 7,
            max_candidates: 60,
            out,
        })
        .unwrap();
    let task = Task::load(&report.artifacts[0].dir, &project).unwrap();
    (Arc::new(task), validator)
}

/// Sends one OpenAI-style function call through the profile's parser.
fn call(env: &mut SolverEnv, profile: Profile, name: &str, arguments: Value) -> Step {
    let function = json!({"id": "call_1", "type": "function",
                          "function": {"name": name, "arguments": arguments.to_string()}});
    let action = parse_call(profile, &function).unwrap();
    env.step(&action).unwrap()
}

/// The smallest region where two texts differ, widened by whole lines until `old` occurs once
/// in `buggy`: what a careful agent copies into `old_str`.
fn replacement(buggy: &str, fixed: &str) -> (String, String) {
    let (b, f): (Vec<&str>, Vec<&str>) = (
        buggy.split_inclusive('\n').collect(),
        fixed.split_inclusive('\n').collect(),
    );
    let prefix = b.iter().zip(&f).take_while(|(x, y)| x == y).count();
    let suffix = b[prefix..]
        .iter()
        .rev()
        .zip(f[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let mut context = 1;
    loop {
        let start = prefix.saturating_sub(context);
        let (b_end, f_end) = (
            (b.len() - suffix + context).min(b.len()),
            (f.len() - suffix + context).min(f.len()),
        );
        let old = b[start..b_end].concat();
        if buggy.matches(&old).count() == 1 {
            return (old, f[start..f_end].concat());
        }
        context += 1;
    }
}

#[test]
fn a_swe_agent_solver_repairs_a_builtin_bug_with_bash_and_the_editor() {
    let (task, validator) = builtin_task();
    let profile = Profile::SweAgent;
    let mut env = SolverEnv::new(common::python_arc(), validator, EnvSettings::default());
    let prompt = env.reset(task.clone(), 3);
    // The prompt names the command that grades the repair, as an agent would type it.
    let command = task.command.for_agents();
    assert!(
        prompt.text.contains(&format!("`{command}`")),
        "{}",
        prompt.text
    );
    assert!(
        !command.contains("capture") && !command.contains("-p no:"),
        "{command}"
    );

    let look = call(
        &mut env,
        profile,
        "bash",
        json!({"command": "pwd && ls && git status"}),
    );
    assert!(
        look.observation.text.starts_with("/repo\n"),
        "{}",
        look.observation.text
    );
    assert!(
        look.observation.text.contains("nothing to commit"),
        "{}",
        look.observation.text
    );

    // The suite as typed, with pytest's defaults: the weakened tests pass on the buggy code.
    let tests = call(
        &mut env,
        profile,
        "bash",
        json!({"command": "python -m pytest -q 2>&1 | tail -1"}),
    );
    assert!(
        tests.observation.text.contains("passed"),
        "{}",
        tests.observation.text
    );
    assert_eq!(tests.info.sandbox_runs, 1);

    let bug = &task.bug_patch;
    for path in bug.paths() {
        let file = |s: &spar::snapshot::Snapshot| {
            String::from_utf8(s.file(path).unwrap().to_vec()).unwrap()
        };
        let (buggy, fixed) = (file(&task.buggy), file(&task.original));
        let guest_path = format!("/repo/{path}");
        let grep = call(
            &mut env,
            profile,
            "bash",
            json!({"command": format!("grep -rn --include=*.py -c . {path}")}),
        );
        assert!(!grep.observation.error, "{}", grep.observation.text);
        let view = call(
            &mut env,
            profile,
            "str_replace_editor",
            json!({"command": "view", "path": guest_path}),
        );
        assert!(view.observation.text.starts_with(&format!(
            "Here's the result of running `cat -n` on {guest_path}:\n     1\t"
        )));
        let (old, new) = replacement(&buggy, &fixed);
        let edit = call(
            &mut env,
            profile,
            "str_replace_editor",
            json!({"command": "str_replace", "path": guest_path, "old_str": old, "new_str": new}),
        );
        assert!(
            edit.observation
                .text
                .starts_with(&format!("The file {guest_path} has been edited.")),
            "{}",
            edit.observation.text
        );
    }

    // The restored tests, run from the tests' directory with pytest's own spelling.
    let test_file = &task.test_files[0];
    let (dir, name) = test_file.rsplit_once('/').unwrap_or((".", test_file));
    let restored = call(
        &mut env,
        profile,
        "bash",
        json!({"command": format!("cd {dir} && pytest -q {name} | tail -1; cd /repo")}),
    );
    assert!(
        restored.observation.text.contains("passed"),
        "{}",
        restored.observation.text
    );
    let diff = call(
        &mut env,
        profile,
        "bash",
        json!({"command": "git diff --stat"}),
    );
    assert_eq!(diff.observation.text.trim(), bug.paths().join("\n"));

    let end = call(&mut env, profile, "submit", json!({}));
    assert!(end.terminated, "{end:?}");
    assert_eq!(end.reward, 1.0, "{}", end.observation.text);
}

#[test]
fn r2e_tools_answer_in_r2e_format_over_the_same_episode() {
    let validator = Arc::new(Validator::new(ValidationSettings::default()));
    let (_, _, task) = common::calc_task(&validator);
    let profile = Profile::R2e;
    let mut env = SolverEnv::new(common::python_arc(), validator, EnvSettings::default());
    env.reset(task, 0);
    let bash = call(
        &mut env,
        profile,
        "execute_bash",
        json!({"cmd": "python -c 'print(6 * 7)'"}),
    );
    assert_eq!(
        bash.observation.text,
        "Exit code: 0\nExecution output of [execute_bash]:\n[STDOUT]\n\n42 \n\n[STDERR]\n\n\n"
    );
    let failing = call(
        &mut env,
        profile,
        "execute_bash",
        json!({"cmd": "cat missing.py"}),
    );
    assert!(failing.observation.text.starts_with("Exit code: Error: Exit code 1\nExecution output of [execute_bash]:\nError executing command:"), "{}", failing.observation.text);
    let search = call(
        &mut env,
        profile,
        "search",
        json!({"search_term": "def sub"}),
    );
    assert_eq!(
        search.observation.text,
        "Execution output of [search]:\nFound 1 matches for \"def sub\" in .:\n./calc/ops.py (1 matches)\nEnd of matches for \"def sub\" in ."
    );
    let view = call(
        &mut env,
        profile,
        "file_editor",
        json!({"command": "view", "path": "/repo/calc/ops.py", "view_range": [1, 2]}),
    );
    assert_eq!(
        view.observation.text,
        "Execution output of [file_editor]:\nHere's the result of running `cat -n` on the file: /repo/calc/ops.py:\n     1 def add(a, b):\n     2     return a + b\n"
    );
    let end = call(
        &mut env,
        profile,
        "finish",
        json!({"command": "submit", "result": ""}),
    );
    assert!(end.terminated);
}
