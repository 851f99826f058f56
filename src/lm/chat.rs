//! ChatML, as Qwen's chat template writes it: the system turn with the episode's tool
//! definitions, observations as `<tool_response>` user turns, and tool calls read back out of
//! the model's `<tool_call>` blocks. Text is tokenized with the checkpoint's own
//! `tokenizer.json` (the `tokenizers` crate); the model's own tokens are never re-tokenized,
//! so the log-probabilities kept while acting are those of the tokens trained on.

use crate::episode::tools::{parse_call, Profile};
use crate::episode::Action;
use serde_json::Value;
use std::path::Path;

/// The end of a turn (and of generation).
pub const IM_END: &str = "<|im_end|>";
/// The start of a turn.
pub const IM_START: &str = "<|im_start|>";
/// Base models end documents with it; a turn that ends with it ends too.
pub const END_OF_TEXT: &str = "<|endoftext|>";

/// Why a tokenizer cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// `tokenizer.json` could not be read or parsed.
    #[error("reading {path}: {why}")]
    Load {
        /// The file.
        path: String,
        /// The tokenizers crate's message.
        why: String,
    },
    /// The vocabulary lacks ChatML's turn markers.
    #[error("the tokenizer has no {0} token: spar speaks ChatML (Qwen's chat format)")]
    NoChatMarkers(&'static str),
    /// Encoding or decoding failed.
    #[error("tokenizer: {0}")]
    Codec(String),
}

/// A checkpoint's tokenizer with ChatML's markers resolved.
pub struct ChatTokenizer {
    inner: tokenizers::Tokenizer,
    /// Ids that end the assistant's turn: `<|im_end|>` and `<|endoftext|>` when it exists.
    pub stops: Vec<u32>,
}

impl ChatTokenizer {
    /// Reads `tokenizer.json`.
    pub fn from_file(path: &Path) -> Result<ChatTokenizer, TokenizerError> {
        let inner = tokenizers::Tokenizer::from_file(path).map_err(|e| TokenizerError::Load {
            path: path.display().to_string(),
            why: e.to_string(),
        })?;
        ChatTokenizer::new(inner)
    }

    /// Wraps a tokenizer that knows ChatML's markers.
    pub fn new(inner: tokenizers::Tokenizer) -> Result<ChatTokenizer, TokenizerError> {
        inner
            .token_to_id(IM_START)
            .ok_or(TokenizerError::NoChatMarkers(IM_START))?;
        let end = inner
            .token_to_id(IM_END)
            .ok_or(TokenizerError::NoChatMarkers(IM_END))?;
        let mut stops = vec![end];
        stops.extend(inner.token_to_id(END_OF_TEXT));
        Ok(ChatTokenizer { inner, stops })
    }

    /// The underlying tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// Token ids of `text`; ChatML's markers in it become their single ids.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        let encoding = self
            .inner
            .encode(text, false)
            .map_err(|e| TokenizerError::Codec(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The text of `ids`, special tokens left out.
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        self.inner
            .decode(ids, true)
            .map_err(|e| TokenizerError::Codec(e.to_string()))
    }

    /// The id of `<|im_end|>`.
    pub fn im_end(&self) -> u32 {
        self.stops[0]
    }
}

/// The conversation's opening: the system turn with `tools` (Qwen2.5's wording), the first
/// observation as the user's turn, and the assistant's turn opened.
pub fn opening(system: &str, tools: &[Value], first: &str) -> String {
    let mut listed = String::new();
    for tool in tools {
        listed.push_str(&python_json(tool));
        listed.push('\n');
    }
    format!(
        "{IM_START}system\n{system}\n\n# Tools\n\nYou may call one or more functions to assist \
         with the user query.\n\nYou are provided with function signatures within <tools></tools> \
         XML tags:\n<tools>\n{listed}</tools>\n\nFor each function call, return a json object \
         with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n\
         {{\"name\": <function-name>, \"arguments\": <args-json-object>}}\n</tool_call>{IM_END}\n\
         {IM_START}user\n{first}{IM_END}\n{IM_START}assistant\n"
    )
}

/// What follows the model's turn: `observation` as a tool response, and the assistant's next
/// turn opened. `closed` says whether the model's turn already ended with `<|im_end|>`.
pub fn tool_response(observation: &str, closed: bool) -> String {
    let close = if closed { "" } else { IM_END };
    format!(
        "{close}\n{IM_START}user\n<tool_response>\n{observation}\n</tool_response>{IM_END}\n\
         {IM_START}assistant\n"
    )
}

/// The action of the first `<tool_call>` block of `text`, or what is wrong with it (the
/// model's error observation).
pub fn parse_tool_call(profile: Profile, text: &str) -> Result<Action, String> {
    const OPEN: &str = "<tool_call>";
    const CLOSE: &str = "</tool_call>";
    let Some(start) = text.find(OPEN) else {
        return Err(format!(
            "no tool call: answer with {OPEN}\n{{\"name\": <tool>, \"arguments\": {{...}}}}\n{CLOSE}"
        ));
    };
    let body = &text[start + OPEN.len()..];
    let Some(end) = body.find(CLOSE) else {
        return Err(format!("the tool call is not closed with {CLOSE}"));
    };
    let call: Value = serde_json::from_str(body[..end].trim())
        .map_err(|e| format!("the tool call is not JSON ({e})"))?;
    parse_call(profile, &call).map_err(|e| e.to_string())
}

/// JSON as Python's `json.dumps` writes it (`", "` and `": "`), which is how Qwen's template
/// renders tool definitions.
pub fn python_json(value: &Value) -> String {
    match value {
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(python_json).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) => {
            let fields: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", Value::String(k.clone()), python_json(v)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
        scalar => scalar.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tool_calls_are_read_from_their_block_and_bad_ones_say_what_is_wrong() {
        let text = "Let me look.\n<tool_call>\n{\"name\": \"read_file\", \"arguments\": {\"path\": \"a.py\"}}\n</tool_call>";
        let action = parse_tool_call(Profile::Spar, text).unwrap();
        assert!(
            matches!(action, Action::ReadFile { ref path, .. } if path == "a.py"),
            "{action:?}"
        );
        let none = parse_tool_call(Profile::Spar, "I think it's fine.").unwrap_err();
        assert!(none.contains("no tool call"), "{none}");
        let open = parse_tool_call(Profile::Spar, "<tool_call>{\"name\": \"submit\"").unwrap_err();
        assert!(open.contains("not closed"), "{open}");
        let junk =
            parse_tool_call(Profile::Spar, "<tool_call>{name: submit}</tool_call>").unwrap_err();
        assert!(junk.contains("not JSON"), "{junk}");
        let unknown = parse_tool_call(
            Profile::Spar,
            "<tool_call>{\"name\": \"rm_rf\"}</tool_call>",
        )
        .unwrap_err();
        assert!(unknown.contains("unknown tool"), "{unknown}");
    }

    #[test]
    fn tool_definitions_render_as_pythons_json_dumps() {
        let v = json!({"a": [1, "x"], "b": {"c": null}});
        assert_eq!(python_json(&v), r#"{"a": [1, "x"], "b": {"c": null}}"#);
        let text = opening("Be careful.", &[json!({"type": "function"})], "Fix it.");
        assert!(text.starts_with("<|im_start|>system\nBe careful.\n\n# Tools"));
        assert!(text.contains("<tools>\n{\"type\": \"function\"}\n</tools>"));
        assert!(text.ends_with("<|im_start|>user\nFix it.<|im_end|>\n<|im_start|>assistant\n"));
        assert!(tool_response("ok", false)
            .starts_with("<|im_end|>\n<|im_start|>user\n<tool_response>\nok\n"));
    }
}
