//! The episode tools as an LLM sees them: OpenAI function-calling definitions of every
//! [`Action`], and the parsing of a function call (name plus JSON arguments) back into one, with
//! errors that tell the caller what to send instead.

use super::Action;
use serde_json::{json, Map, Value};

/// Why a tool call could not become an [`Action`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ToolCallError {
    /// The call names no tool spar has.
    #[error("unknown tool {name:?}; the tools are {}", TOOL_NAMES.join(", "))]
    Unknown {
        /// The name given.
        name: String,
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

/// Every tool's name, in the order [`definitions`] lists them.
pub const TOOL_NAMES: &[&str] = &[
    "list_dir",
    "read_file",
    "search",
    "edit",
    "create",
    "run",
    "diff",
    "submit",
];

/// The tools as OpenAI chat-completions `tools` entries (`{"type": "function", "function":
/// {name, description, parameters}}`).
pub fn definitions() -> Vec<Value> {
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
            "submit",
            "Submit the current state; ends the episode.",
            json!({}),
            &[],
        ),
    ]
}

/// Parses a tool call: spar's own form `{"tool": NAME, ...arguments}`, or an OpenAI function
/// call `{"name": NAME, "arguments": OBJECT or JSON string}`, bare or inside `{"function": ...}`.
pub fn parse_call(call: &Value) -> Result<Action, ToolCallError> {
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
    let Some(definition) = definitions()
        .into_iter()
        .find(|d| d["function"]["name"] == name.as_str())
    else {
        return Err(ToolCallError::Unknown { name });
    };
    let known = &definition["function"]["parameters"]["properties"];
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
    arguments.insert("tool".into(), Value::String(name.clone()));
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
        let names: Vec<String> = definitions()
            .iter()
            .map(|d| d["function"]["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, TOOL_NAMES);
        for (name, action) in TOOL_NAMES.iter().zip([
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
            assert_eq!(parse_call(&call).unwrap(), expected, "{call}");
        }
        assert_eq!(
            parse_call(&json!({"name": "submit", "arguments": ""})).unwrap(),
            Action::Submit
        );
    }

    #[test]
    fn bad_calls_say_what_is_wrong() {
        let unknown = parse_call(&json!({"tool": "rm"})).unwrap_err();
        assert!(unknown.to_string().contains("read_file"), "{unknown}");
        let missing = parse_call(&json!({"tool": "edit", "path": "a"})).unwrap_err();
        assert!(
            matches!(&missing, ToolCallError::Arguments { name, .. } if name == "edit"),
            "{missing}"
        );
        let extra = parse_call(&json!({"tool": "diff", "path": "a"})).unwrap_err();
        assert!(extra.to_string().contains("path"), "{extra}");
        let bad_json = parse_call(&json!({"name": "run", "arguments": "{"})).unwrap_err();
        assert!(
            bad_json.to_string().contains("not valid JSON"),
            "{bad_json}"
        );
        assert_eq!(parse_call(&json!([1])).unwrap_err(), ToolCallError::Shape);
    }
}
