//! The episode tools as an LLM sees them, in three profiles: spar's own tools, SWE-agent's
//! (`bash`, `str_replace_editor`, `submit`) and R2E-Gym's (`execute_bash`, `file_editor`,
//! `search`, `finish`). Each profile has its OpenAI function-calling definitions (names,
//! arguments and descriptions as the originals give them, with the repository at `/repo`
//! instead of `/testbed`) and parses a function call (name plus JSON arguments) back into an
//! [`Action`], with errors that tell the caller what to send instead.

use super::Action;
use serde_json::{json, Map, Value};
use std::fmt;

/// Why a tool call could not become an [`Action`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ToolCallError {
    /// The call names no tool of the profile.
    #[error("unknown tool {name:?}; the tools are {}", profile.names().join(", "))]
    Unknown {
        /// The name given.
        name: String,
        /// The profile the call was parsed with.
        profile: Profile,
    },
    /// The arguments do not fit the tool's parameters.
    #[error("bad arguments for {name}: {why}")]
    Arguments {
        /// Name of the tool called, as the call gave it.
        name: String,
        /// What is wrong.
        why: String,
    },
    /// The call has no tool name at all.
    #[error(
        "a tool call is {{\"tool\": NAME, ...arguments}} or {{\"name\": NAME, \"arguments\": \
         {{...}} or a JSON string}}, optionally inside {{\"function\": ...}}"
    )]
    Shape,
}

/// A set of tools, named after the environment whose agents use them, so a model trained there
/// acts in spar unchanged.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// spar's tools: `list_dir`, `read_file`, `search`, `edit`, `create`, `run`, `diff`, `bash`,
    /// `submit`.
    #[default]
    Spar,
    /// SWE-agent's and SWE-smith's: `bash`, `str_replace_editor`, `submit`.
    SweAgent,
    /// R2E-Gym's and rLLM's: `file_editor`, `search`, `execute_bash`, `finish`.
    R2e,
}

impl Profile {
    /// Every profile, in the order help texts list them.
    pub const ALL: [Profile; 3] = [Profile::Spar, Profile::SweAgent, Profile::R2e];

    /// The name on the command line and in the HTTP API.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Spar => "spar",
            Profile::SweAgent => "swe-agent",
            Profile::R2e => "r2e",
        }
    }

    /// The profile's tool names, in the order [`definitions`] lists them.
    pub fn names(self) -> Vec<&'static str> {
        tools(self).iter().map(|t| t.name).collect()
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Profile {
    type Err = String;

    fn from_str(name: &str) -> Result<Profile, String> {
        Profile::ALL
            .into_iter()
            .find(|p| p.as_str() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Profile::ALL.iter().map(|p| p.as_str()).collect();
                format!(
                    "unknown tool profile {name:?}; the profiles are {}",
                    names.join(", ")
                )
            })
    }
}

/// One tool of a profile: its name, the [`Action`] it becomes (the action's `tool` tag), and
/// its definition.
struct Tool {
    name: &'static str,
    action: &'static str,
    definition: Value,
}

/// The tools of a profile as OpenAI chat-completions `tools` entries (`{"type": "function",
/// "function": {name, description, parameters}}`).
pub fn definitions(profile: Profile) -> Vec<Value> {
    tools(profile)
        .iter()
        .map(|t| t.definition.clone())
        .collect()
}

fn function(name: &str, description: &str, properties: Value, required: &[&str]) -> Value {
    json!({
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": properties,
                "required": required,
            },
        },
    })
}

/// A profile's tools, built once: every tool call is parsed against them.
fn tools(profile: Profile) -> &'static [Tool] {
    static BUILT: std::sync::OnceLock<Vec<Vec<Tool>>> = std::sync::OnceLock::new();
    let built = BUILT.get_or_init(|| Profile::ALL.into_iter().map(build_tools).collect());
    &built[Profile::ALL.iter().position(|p| *p == profile).unwrap_or(0)]
}

fn build_tools(profile: Profile) -> Vec<Tool> {
    let tool = |name, action, definition| Tool {
        name,
        action,
        definition,
    };
    match profile {
        Profile::Spar => spar_tools()
            .into_iter()
            .map(|definition| {
                let name = definition["function"]["name"].as_str().unwrap_or_default();
                let name = SPAR_NAMES.iter().find(|n| **n == name).copied().unwrap_or_default();
                tool(name, name, definition)
            })
            .collect(),
        Profile::SweAgent => vec![
            tool("bash", "bash", function(
                "bash",
                "runs the given command directly in bash",
                json!({"command": {"type": "string", "description": "The bash command to execute."}}),
                &["command"],
            )),
            tool("str_replace_editor", "str_replace_editor", editor_definition(
                "str_replace_editor", SWE_AGENT_EDITOR, false,
            )),
            tool("submit", "submit", function("submit", "submits the current file", json!({}), &[])),
        ],
        Profile::R2e => vec![
            tool("file_editor", "file_editor", editor_definition("file_editor", R2E_EDITOR, true)),
            tool("search", "search_term", function(
                "search",
                R2E_SEARCH,
                json!({
                    "search_term": {"description": "The term to search for in files.", "type": "string"},
                    "path": {"description": "The file or directory to search in. Defaults to `.` if not specified.", "type": "string"},
                }),
                &["search_term"],
            )),
            tool("execute_bash", "execute_bash", function(
                "execute_bash",
                "\nDescription: Execute a bash command in the terminal.\n\nParameters:\n  (1) command (string, required): The bash command to execute. For example: `python my_script.py`\n",
                json!({"cmd": {"type": "string", "description": "The command (and optional arguments) to execute. For example: 'python my_script.py'"}}),
                &["cmd"],
            )),
            tool("finish", "submit", function(
                "finish",
                R2E_FINISH,
                json!({
                    "command": {"description": "The command to run. Currently only `submit` is supported.", "type": "string", "enum": ["submit"]},
                    "result": {"description": "Optional. The result text to submit. Defaults to an empty string if not provided.", "type": "string"},
                }),
                &["command"],
            )),
        ],
    }
}

const SWE_AGENT_EDITOR: &str = "Custom editing tool for viewing, creating and editing files * State is persistent across command calls and discussions with the user * If `path` is a file, `view` displays the result of applying `cat -n`. If `path` is a directory, `view` lists non-hidden files and directories up to 2 levels deep * The `create` command cannot be used if the specified `path` already exists as a file * If a `command` generates a long output, it will be truncated and marked with `<response clipped>` * The `undo_edit` command will revert the last edit made to the file at `path`\nNotes for using the `str_replace` command: * The `old_str` parameter should match EXACTLY one or more consecutive lines from the original file. Be mindful of whitespaces! * If the `old_str` parameter is not unique in the file, the replacement will not be performed. Make sure to include enough context in `old_str` to make it unique * The `new_str` parameter should contain the edited lines that should replace the `old_str`\nReturns: File contents with line numbers for `view`, confirmation message for successful edits, or error message if operation fails.\n";

const R2E_EDITOR: &str = "Custom editing tool for viewing, creating and editing files\n* State is persistent across command calls and discussions with the user\n* If `path` is a file, `view` displays the result of applying `cat -n`. If `path` is a directory, `view` lists non-hidden files and directories up to 2 levels deep\n* The `create` command cannot be used if the specified `path` already exists as a file\n* If a `command` generates a long output, it will be truncated and marked with `<response clipped>`\n* The `undo_edit` command will revert the last edit made to the file at `path`\n\nNotes for using the `str_replace` command:\n* The `old_str` parameter should match EXACTLY one or more consecutive lines from the original file. Be mindful of whitespaces!\n* If the `old_str` parameter is not unique in the file, the replacement will not be performed. Make sure to include enough context in `old_str` to make it unique\n* The `new_str` parameter should contain the edited lines that should replace the `old_str`\n";

const R2E_SEARCH: &str = "\nDescription: Search for a term in either a directory or a single file.\n\nBehavior:\n* If `--path` points to a directory (default is `.`), we recursively search all non-hidden files and directories.\n* If `--path` points to a file, we run `grep -n` on that file to find line numbers containing the search term.\n* If more than 100 files match (directory search scenario), the tool will stop listing and inform you to narrow your search.\n* If no files are found that match your search term, the tool will inform you of that as well.\n\n**Parameters:**\n  1. **search_term** (`string`, required): The term to search for in files.\n  2. **path** (`string`, optional): The file or directory in which to search. If not provided, defaults to the current directory (i.e., `.`).\n";

const R2E_FINISH: &str = "\nA simple finish tool with a 'submit' command.\n\nNotes about the `submit` command:\n* When invoked with `--result`, the provided string is used for submitting required task results.\n* If no `--result` is provided, it defaults to an empty string.\n\n**Parameters:**\n  1. **command** (`string`, required): The command to run. Currently allowed option is: `submit`.\n     - Allowed value: [`submit`]\n  2. **result** (`string`, optional): The result text to submit. Defaults to an empty string.\n";

/// The editor's definition in SWE-agent's or R2E-Gym's words (R2E-Gym adds `concise`).
fn editor_definition(name: &str, description: &str, r2e: bool) -> Value {
    let (text, file_text, old_str, new_str, insert_line, view_range) = if r2e {
        (
            "The command to run. Allowed options are: `view`, `create`, `str_replace`, `insert`, `undo_edit`.",
            "Required for the `create` command, contains the content of the file to be created.",
            "Required for the `str_replace` command, specifies the string in `path` to replace.",
            "Optional for the `str_replace` command to specify the replacement string. Required for the `insert` command to specify the string to insert.",
            "Required for the `insert` command. The `new_str` will be inserted AFTER the line specified.",
            "Optional for the `view` command when `path` points to a file. Specifies the line range to view. E.g., [11, 12] shows lines 11 and 12. Indexing starts at 1. Use [start_line, -1] to show all lines from `start_line` to the end.",
        )
    } else {
        (
            "The commands to run. Allowed options are: `view`, `create`, `str_replace`, `insert`, `undo_edit`.",
            "Required parameter of `create` command, with the content of the file to be created.",
            "Required parameter of `str_replace` command containing the string in `path` to replace.",
            "Optional parameter of `str_replace` command containing the new string (if not given, no string will be added). Required parameter of `insert` command containing the string to insert.",
            "Required parameter of `insert` command. The `new_str` will be inserted AFTER the line `insert_line` of `path`.",
            "Optional parameter of `view` command when `path` points to a file. If none is given, the full file is shown. If provided, the file will be shown in the indicated line number range, e.g. [11, 12] will show lines 11 and 12. Indexing at 1 to start. Setting `[start_line, -1]` shows all lines from `start_line` to the end of the file.",
        )
    };
    let mut properties = json!({
        "command": {"type": "string", "description": text, "enum": ["view", "create", "str_replace", "insert", "undo_edit"]},
        "path": {"type": "string", "description": "Absolute path to file or directory, e.g. `/repo/file.py` or `/repo`."},
        "file_text": {"type": "string", "description": file_text},
        "old_str": {"type": "string", "description": old_str},
        "new_str": {"type": "string", "description": new_str},
        "insert_line": {"type": "integer", "description": insert_line},
        "view_range": {"type": "array", "description": view_range, "items": {"type": "integer"}},
    });
    if r2e {
        properties["concise"] = json!({"type": "boolean", "description": "Optional for the `view` command. If `True`, displays a concise skeletal view of the file. Very useful for localization tasks. Highly recommended for large files."});
    }
    function(name, description, properties, &["command", "path"])
}

/// spar's tool names, in the order [`definitions`] lists them.
const SPAR_NAMES: &[&str] = &[
    "list_dir",
    "read_file",
    "search",
    "edit",
    "create",
    "run",
    "diff",
    "bash",
    "submit",
];

/// spar's own tools.
fn spar_tools() -> Vec<Value> {
    let string = |d: &str| json!({"type": "string", "description": d});
    let line = |d: &str| json!({"type": "integer", "minimum": 1, "description": d});
    let tool = |name: &str, description: &str, properties: Value, required: &[&str]| {
        json!({
            "type": "function",
            "function": {
                "name": name,
                "description": description,
                "parameters": {
                    "type": "object",
                    "properties": properties,
                    "required": required,
                    "additionalProperties": false,
                },
            },
        })
    };
    vec![
        tool(
            "list_dir",
            "List a directory of the repository (\"\" or \".\" is its root).",
            json!({"path": string("Repository-relative directory.")}),
            &["path"],
        ),
        tool(
            "read_file",
            "Read a file with line numbers, optionally only lines start..=end.",
            json!({
                "path": string("Repository-relative file."),
                "start": line("First line (1-based)."),
                "end": line("Last line, inclusive."),
            }),
            &["path"],
        ),
        tool(
            "search",
            "Search the repository's text files with a regular expression.",
            json!({
                "pattern": string("The regular expression."),
                "path": string("Only files under this path."),
            }),
            &["pattern"],
        ),
        tool(
            "edit",
            "Replace the one occurrence of `old` in a file with `new`.",
            json!({
                "path": string("Repository-relative file."),
                "old": string("Text that occurs exactly once in the file."),
                "new": string("Its replacement."),
            }),
            &["path", "old", "new"],
        ),
        tool(
            "create",
            "Create a file, or replace a file's whole contents.",
            json!({
                "path": string("Repository-relative file."),
                "content": string("The file's contents."),
            }),
            &["path", "content"],
        ),
        tool(
            "run",
            "Run `python ARGS...` in the sandbox over the current files, e.g. [\"-m\", \
             \"pytest\", \"-q\"]; files the run writes are discarded.",
            json!({"args": {"type": "array", "items": {"type": "string"},
                            "description": "Arguments after `python`."}}),
            &["args"],
        ),
        tool(
            "diff",
            "The current changes as a unified diff against the starting state.",
            json!({}),
            &[],
        ),
        tool(
            "bash",
            "Run a command line in a shell over the repository (mounted at /repo; the working \
             directory persists between calls): ls, cat, head, tail, wc, grep, find, sed, echo \
             and printf with > and >>, pipes, &&, ||, cd, diff, git diff/status, and python or \
             pytest, which run in the sandbox.",
            json!({"command": string("The command line.")}),
            &["command"],
        ),
        tool(
            "submit",
            "Submit the current state; ends the episode.",
            json!({}),
            &[],
        ),
    ]
}

/// Parses a tool call of `profile`'s tools: spar's own form `{"tool": NAME, ...arguments}`, or an OpenAI function
/// call `{"name": NAME, "arguments": OBJECT or JSON string}`, bare or inside `{"function": ...}`.
pub fn parse_call(profile: Profile, call: &Value) -> Result<Action, ToolCallError> {
    let call = call.get("function").unwrap_or(call);
    let Some(object) = call.as_object() else {
        return Err(ToolCallError::Shape);
    };
    let (name, mut arguments) = if let Some(name) = object.get("tool").and_then(Value::as_str) {
        let mut rest = object.clone();
        rest.remove("tool");
        (name.to_owned(), rest)
    } else if let Some(name) = object.get("name").and_then(Value::as_str) {
        let arguments = match object.get("arguments") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::String(text)) if text.trim().is_empty() => Map::new(),
            Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(map)) => map,
                Ok(_) => return Err(arguments_error(name, "arguments must be a JSON object")),
                Err(e) => {
                    return Err(arguments_error(
                        name,
                        &format!("arguments are not valid JSON ({e})"),
                    ))
                }
            },
            Some(Value::Object(map)) => map.clone(),
            Some(_) => return Err(arguments_error(name, "arguments must be a JSON object")),
        };
        (name.to_owned(), arguments)
    } else {
        return Err(ToolCallError::Shape);
    };
    let Some(tool) = tools(profile).iter().find(|t| t.name == name) else {
        return Err(ToolCallError::Unknown { name, profile });
    };
    let known = &tool.definition["function"]["parameters"]["properties"];
    if let Some(extra) = arguments.keys().find(|k| known.get(k.as_str()).is_none()) {
        let names: Vec<&String> = known
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        return Err(arguments_error(
            &name,
            &format!(
                "unknown argument {extra:?} (its arguments: {})",
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names
                        .iter()
                        .map(|n| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
        ));
    }
    if tool.action == "submit" {
        // R2E-Gym's `finish` takes a command and a result that grading does not read.
        arguments.clear();
    }
    arguments.insert("tool".into(), Value::String(tool.action.to_owned()));
    serde_json::from_value(Value::Object(arguments))
        .map_err(|e| arguments_error(&name, &e.to_string()))
}

fn arguments_error(name: &str, why: &str) -> ToolCallError {
    ToolCallError::Arguments {
        name: name.to_owned(),
        why: why.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_a_definition_in_order() {
        let names: Vec<String> = definitions(Profile::Spar)
            .iter()
            .map(|d| d["function"]["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, SPAR_NAMES);
        for (name, action) in SPAR_NAMES.iter().zip([
            Action::ListDir { path: ".".into() },
            Action::ReadFile {
                path: "a".into(),
                start: None,
                end: None,
            },
            Action::Search {
                pattern: "x".into(),
                path: None,
            },
            Action::Edit {
                path: "a".into(),
                old: "b".into(),
                new: "c".into(),
            },
            Action::Create {
                path: "a".into(),
                content: "b".into(),
            },
            Action::Run { args: vec![] },
            Action::Diff,
            Action::Bash {
                command: "ls".into(),
            },
            Action::Submit,
        ]) {
            assert_eq!(action.tool(), *name);
        }
    }

    #[test]
    fn calls_parse_in_every_shape() {
        let expected = Action::ReadFile {
            path: "pkg/a.py".into(),
            start: Some(2),
            end: None,
        };
        for call in [
            json!({"tool": "read_file", "path": "pkg/a.py", "start": 2}),
            json!({"name": "read_file", "arguments": "{\"path\": \"pkg/a.py\", \"start\": 2}"}),
            json!({"name": "read_file", "arguments": {"path": "pkg/a.py", "start": 2}}),
            json!({"id": "call_1", "type": "function", "function":
                   {"name": "read_file", "arguments": "{\"path\":\"pkg/a.py\",\"start\":2}"}}),
        ] {
            assert_eq!(
                parse_call(Profile::Spar, &call).unwrap(),
                expected,
                "{call}"
            );
        }
        assert_eq!(
            parse_call(Profile::Spar, &json!({"name": "submit", "arguments": ""})).unwrap(),
            Action::Submit
        );
    }

    #[test]
    fn bad_calls_say_what_is_wrong() {
        let unknown = parse_call(Profile::Spar, &json!({"tool": "rm"})).unwrap_err();
        assert!(unknown.to_string().contains("read_file"), "{unknown}");
        let missing = parse_call(Profile::Spar, &json!({"tool": "edit", "path": "a"})).unwrap_err();
        assert!(
            matches!(&missing, ToolCallError::Arguments { name, .. } if name == "edit"),
            "{missing}"
        );
        let extra = parse_call(Profile::Spar, &json!({"tool": "diff", "path": "a"})).unwrap_err();
        assert!(extra.to_string().contains("path"), "{extra}");
        let bad_json =
            parse_call(Profile::Spar, &json!({"name": "run", "arguments": "{"})).unwrap_err();
        assert!(
            bad_json.to_string().contains("not valid JSON"),
            "{bad_json}"
        );
        assert_eq!(
            parse_call(Profile::Spar, &json!([1])).unwrap_err(),
            ToolCallError::Shape
        );
    }

    #[test]
    fn each_profile_parses_its_own_tools_into_actions() {
        let call = |profile, name: &str, arguments: Value| {
            parse_call(
                profile,
                &json!({"name": name, "arguments": arguments.to_string()}),
            )
        };
        assert_eq!(
            call(Profile::SweAgent, "bash", json!({"command": "ls"})).unwrap(),
            Action::Bash {
                command: "ls".into()
            }
        );
        let edit = call(
            Profile::SweAgent,
            "str_replace_editor",
            json!({"command": "str_replace", "path": "/repo/a.py", "old_str": "a", "new_str": "b"}),
        )
        .unwrap();
        let Action::StrReplaceEditor(edit) = edit else {
            panic!("{edit:?}")
        };
        assert_eq!(
            (edit.old_str.as_deref(), edit.new_str.as_deref()),
            (Some("a"), Some("b"))
        );
        assert_eq!(
            call(Profile::SweAgent, "submit", json!({})).unwrap(),
            Action::Submit
        );
        assert_eq!(
            call(
                Profile::R2e,
                "finish",
                json!({"command": "submit", "result": "done"})
            )
            .unwrap(),
            Action::Submit
        );
        assert_eq!(
            call(Profile::R2e, "search", json!({"search_term": "def f"})).unwrap(),
            Action::SearchTerm {
                search_term: "def f".into(),
                path: None
            }
        );
        assert_eq!(
            call(Profile::R2e, "execute_bash", json!({"cmd": "pwd"})).unwrap(),
            Action::ExecuteBash { cmd: "pwd".into() }
        );
        let view = call(
            Profile::R2e,
            "file_editor",
            json!({"command": "view", "path": "/repo", "concise": true}),
        );
        assert!(matches!(view, Ok(Action::FileEditor(_))), "{view:?}");
        // A profile's tools are its own: SWE-agent has no `read_file`, spar no `finish`.
        let foreign = call(Profile::SweAgent, "read_file", json!({"path": "a"})).unwrap_err();
        assert!(
            foreign
                .to_string()
                .contains("bash, str_replace_editor, submit"),
            "{foreign}"
        );
        assert!(call(Profile::Spar, "finish", json!({})).is_err());
        let unknown = call(Profile::SweAgent, "bash", json!({"cmd": "ls"})).unwrap_err();
        assert!(
            unknown.to_string().contains("unknown argument \"cmd\""),
            "{unknown}"
        );
        for profile in Profile::ALL {
            assert_eq!(profile.as_str().parse::<Profile>(), Ok(profile));
            let names: Vec<String> = definitions(profile)
                .iter()
                .map(|d| d["function"]["name"].as_str().unwrap().to_owned())
                .collect();
            assert_eq!(names, profile.names());
        }
        assert!("openhands"
            .parse::<Profile>()
            .unwrap_err()
            .contains("spar, swe-agent, r2e"));
    }
}
