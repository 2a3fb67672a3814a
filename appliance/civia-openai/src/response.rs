//! The shapes of a completion's answer: the whole object, and the chunks of a stream.

use civia_ipc::{FinishReason, Usage};
use serde_json::{json, Value};

/// Which of the two OpenAI shapes a response takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Chat,
    Completion,
}

impl Shape {
    /// The field that holds the prompt (named by prompt errors, as OpenAI does).
    pub fn prompt_param(self) -> &'static str {
        match self {
            Shape::Chat => "messages",
            Shape::Completion => "prompt",
        }
    }

    fn id_prefix(self) -> &'static str {
        match self {
            Shape::Chat => "chatcmpl-",
            Shape::Completion => "cmpl-",
        }
    }
}

pub fn finish_str(r: FinishReason) -> &'static str {
    match r {
        FinishReason::Length => "length",
        FinishReason::Stop | FinishReason::Cancelled => "stop",
    }
}

/// OpenAI's `usage` object.
pub fn usage(u: &Usage) -> Value {
    json!({
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.prompt_tokens.saturating_add(u.completion_tokens),
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
    })
}

/// A streamed choice: the delta of a chat chunk (the first one carries the role), or the
/// text of a completion chunk.
pub fn choice(shape: Shape, text: Option<&str>, first: bool, finish: Option<&str>) -> Value {
    match shape {
        Shape::Chat => {
            let mut delta = serde_json::Map::new();
            if first {
                delta.insert("role".into(), json!("assistant"));
            }
            if let Some(t) = text {
                delta.insert("content".into(), json!(t));
            }
            json!({"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish})
        }
        Shape::Completion => {
            json!({"index": 0, "text": text.unwrap_or(""), "logprobs": null, "finish_reason": finish})
        }
    }
}

/// A streamed chat choice that carries the answer's tool calls (OpenAI's `tool_calls`
/// shape, from [`crate::tools::calls_json`]), each with its `index`.
pub fn tool_calls_choice(calls: &Value) -> Value {
    let indexed: Vec<Value> = calls
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, c)| {
            let mut c = c.clone();
            c["index"] = json!(i);
            c
        })
        .collect();
    json!({"index": 0, "delta": {"tool_calls": indexed}, "logprobs": null, "finish_reason": null})
}

/// What every object of one answer shares: its id, creation time and model.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub shape: Shape,
    /// `chatcmpl-…` or `cmpl-…`.
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    pub model: String,
}

impl Envelope {
    /// `unique` is the caller's random part of the id (this crate draws no randomness).
    pub fn new(shape: Shape, unique: &str, created: u64, model: &str) -> Self {
        Self {
            shape,
            id: format!("{}{unique}", shape.id_prefix()),
            created,
            model: model.to_string(),
        }
    }

    /// A chunk of a stream. With `include_usage`, OpenAI sends `"usage": null` on every
    /// chunk but the last.
    pub fn chunk(&self, choices: Value, include_usage: bool, usage: Option<Value>) -> Value {
        let object = match self.shape {
            Shape::Chat => "chat.completion.chunk",
            Shape::Completion => "text_completion",
        };
        let mut v = json!({
            "id": self.id, "object": object, "created": self.created, "model": self.model,
            "system_fingerprint": null, "choices": choices,
        });
        if include_usage {
            v["usage"] = usage.unwrap_or(Value::Null);
        }
        v
    }

    /// The whole answer of a request without `stream`.
    pub fn completion(&self, text: &str, finish: &str, u: &Usage, civia: Value) -> Value {
        let choice = match self.shape {
            Shape::Chat => json!({"index": 0, "message": {"role": "assistant", "content": text},
                                  "logprobs": null, "finish_reason": finish}),
            Shape::Completion => {
                json!({"index": 0, "text": text, "logprobs": null, "finish_reason": finish})
            }
        };
        self.whole(choice, u, civia)
    }

    /// The whole answer of a chat request whose answer calls tools: no content, the calls
    /// (from [`crate::tools::calls_json`]), `finish_reason: "tool_calls"`.
    pub fn tool_call_completion(&self, calls: Value, u: &Usage, civia: Value) -> Value {
        let choice = json!({"index": 0,
            "message": {"role": "assistant", "content": null, "tool_calls": calls},
            "logprobs": null, "finish_reason": "tool_calls"});
        self.whole(choice, u, civia)
    }

    fn whole(&self, choice: Value, u: &Usage, civia: Value) -> Value {
        let object = match self.shape {
            Shape::Chat => "chat.completion",
            Shape::Completion => "text_completion",
        };
        json!({
            "id": self.id,
            "object": object,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": null,
            "choices": [choice],
            "usage": usage(u),
            "civia": civia,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_and_completions() {
        let env = Envelope::new(Shape::Chat, "abc", 7, "m");
        assert_eq!(env.id, "chatcmpl-abc");
        let first = env.chunk(
            json!([choice(Shape::Chat, Some(""), true, None)]),
            false,
            None,
        );
        assert_eq!(first["object"], "chat.completion.chunk");
        assert_eq!(
            first["choices"][0]["delta"],
            json!({"role": "assistant", "content": ""})
        );
        assert!(first.get("usage").is_none());
        let mid = env.chunk(json!([]), true, None);
        assert_eq!(mid["usage"], Value::Null);
        let u = Usage {
            prompt_tokens: 3,
            cached_tokens: 1,
            completion_tokens: 4,
        };
        let whole = env.completion("hi", finish_str(FinishReason::Cancelled), &u, json!({}));
        assert_eq!(whole["object"], "chat.completion");
        assert_eq!(whole["choices"][0]["message"]["content"], "hi");
        assert_eq!(whole["choices"][0]["finish_reason"], "stop");
        assert_eq!(whole["usage"]["total_tokens"], 7);
        let env = Envelope::new(Shape::Completion, "x", 7, "m");
        assert_eq!(env.id, "cmpl-x");
        let c = env.chunk(
            json!([choice(Shape::Completion, None, false, Some("length"))]),
            false,
            None,
        );
        assert_eq!(c["object"], "text_completion");
        assert_eq!(c["choices"][0]["text"], "");
        assert_eq!(Shape::Completion.prompt_param(), "prompt");
        let env = Envelope::new(Shape::Chat, "t", 7, "m");
        let calls = json!([{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]);
        let whole = env.tool_call_completion(calls.clone(), &u, json!({}));
        assert_eq!(whole["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(whole["choices"][0]["message"]["content"], Value::Null);
        assert_eq!(whole["choices"][0]["message"]["tool_calls"], calls);
        let c = tool_calls_choice(&calls);
        assert_eq!(c["delta"]["tool_calls"][0]["index"], 0);
        assert_eq!(c["delta"]["tool_calls"][0]["function"]["name"], "f");
    }
}
