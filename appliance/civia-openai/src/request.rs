//! `/v1/chat/completions` and `/v1/completions` requests: their JSON, their validation, and
//! their translation into `civia-ipc` prompts and sampling parameters.
//!
//! A body is parsed in passes (the endpoint's own request, then [`CommonSampling`], then
//! [`CiviaBody`]), so that a wrong field is named precisely; unknown fields are ignored
//! (clients send many).

use crate::schema::Json;
use crate::tools::Tools;
use crate::Error;
use civia_ipc::{ChatMessage, Constraint, Prompt, SamplingParams};
use serde::Deserialize;
use serde_json::Value;

/// The `[api]` and `[guard]` limits a request is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most messages in one chat request.
    pub max_messages: usize,
    /// Largest `max_tokens` a request may ask for.
    pub max_tokens: u32,
    /// `max_tokens` of a chat request that gives none (capped by `max_tokens`).
    pub default_max_tokens: u32,
    /// Most stop sequences, and the longest one in bytes.
    pub max_stop_sequences: usize,
    pub max_stop_bytes: usize,
    /// The guard's prompt limit (characters, all messages together).
    pub max_prompt_chars: usize,
}

#[derive(Debug, Deserialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<InMessage>,
    pub stream: Option<bool>,
    pub stream_options: Option<StreamOptions>,
    pub max_completion_tokens: Option<Int>,
    pub logprobs: Option<bool>,
    pub top_logprobs: Option<Int>,
    /// Read by [`Tools::parse`] (`Json` keeps the key order of each function's schema).
    pub tools: Option<Json>,
    pub tool_choice: Option<Json>,
    pub parallel_tool_calls: Option<Json>,
    pub functions: Option<Vec<Value>>,
    pub function_call: Option<Value>,
    pub response_format: Option<ResponseFormat>,
}

#[derive(Debug, Deserialize)]
pub struct CompletionRequest {
    pub model: String,
    pub prompt: Value,
    pub stream: Option<bool>,
    pub stream_options: Option<StreamOptions>,
    pub echo: Option<bool>,
    pub best_of: Option<Int>,
    pub suffix: Option<String>,
    pub logprobs: Option<Int>,
}

/// Fields both endpoints share, parsed from the same body in a second pass (serde's
/// `flatten` would hide which field is wrong). Unknown fields are ignored (clients send many).
#[derive(Debug, Default, Deserialize)]
pub struct CommonSampling {
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub seed: Option<Int>,
    pub max_tokens: Option<Int>,
    pub stop: Option<Value>,
    pub n: Option<Int>,
    pub frequency_penalty: Option<f64>,
    pub presence_penalty: Option<f64>,
    pub logit_bias: Option<serde_json::Map<String, Value>>,
}

/// Civia's own request extension: `"civia": {"save": true, ...}` (history). `T` is the
/// history options' type, owned by the HTTP layer that keeps history.
#[derive(Debug, Deserialize)]
pub struct CiviaBody<T> {
    pub civia: Option<T>,
}

/// An integer as JSON Schema sees it: `6` and `6.0` are both 6; `6.5` is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Int(pub i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match Value::deserialize(d)? {
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Ok(Int(i))
                } else if n.as_u64().is_some() {
                    Err(D::Error::custom(format!("{n} is out of range")))
                } else {
                    match n.as_f64() {
                        Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Int(f as i64)),
                        _ => Err(D::Error::custom(format!("expected an integer, got {n}"))),
                    }
                }
            }
            other => Err(D::Error::custom(format!(
                "expected an integer, got {other}"
            ))),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct StreamOptions {
    pub include_usage: Option<bool>,
}

/// `response_format`: `text`, `json_object` or `json_schema`.
#[derive(Debug, Deserialize)]
pub struct ResponseFormat {
    #[serde(rename = "type")]
    pub kind: String,
    /// `{"name", "schema", "strict", "description"}`, read only with the type
    /// `json_schema` (other types ignore it, as unknown fields are).
    pub json_schema: Option<Json>,
}

impl ResponseFormat {
    /// The constraint on the answer: none for `text`, any JSON object for `json_object`,
    /// the checked schema's canonical form for `json_schema`.
    pub fn constraint(&self) -> Result<Option<Constraint>, Error> {
        let param = "response_format";
        let field = |f: &'static str, what: &str| {
            Error::invalid(
                param,
                format!("`response_format.json_schema.{f}` must be {what}."),
            )
        };
        match self.kind.as_str() {
            "text" => Ok(None),
            "json_object" => Ok(Some(Constraint::JsonSchema {
                schema: crate::schema::ANY_OBJECT.into(),
            })),
            "json_schema" => {
                let Some(Json::Object(f)) = &self.json_schema else {
                    return Err(Error::invalid(
                        param,
                        "`response_format.json_schema` (an object with `name` and `schema`) is \
                         required with the type `json_schema`.",
                    ));
                };
                let get = |k: &str| f.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v);
                let name_ok = match get("name") {
                    Some(Json::String(n)) => {
                        !n.is_empty()
                            && n.len() <= 64
                            && n.bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                    }
                    _ => false,
                };
                if !name_ok {
                    return Err(field(
                        "name",
                        "given: 1 to 64 letters, digits, underscores or dashes",
                    ));
                }
                if !matches!(
                    get("description"),
                    None | Some(Json::Null | Json::String(_))
                ) {
                    return Err(field("description", "a string"));
                }
                if !matches!(get("strict"), None | Some(Json::Null | Json::Bool(_))) {
                    return Err(field("strict", "a boolean"));
                }
                let Some(schema) = get("schema") else {
                    return Err(field("schema", "given"));
                };
                Ok(Some(Constraint::JsonSchema {
                    schema: crate::schema::canonical(schema)?,
                }))
            }
            other => Err(Error::invalid(
                param,
                format!(
                    "`response_format.type` `{other}` is unknown: use text, json_object or \
                     json_schema."
                ),
            )),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct InMessage {
    pub role: String,
    pub content: Option<Value>,
    pub tool_calls: Option<Value>,
    pub tool_call_id: Option<Value>,
    pub function_call: Option<Value>,
}

fn include_usage(o: &Option<StreamOptions>) -> bool {
    o.as_ref().and_then(|o| o.include_usage).unwrap_or(false)
}

/// `v` when within `lo..=hi`, `default` when absent.
pub fn range(param: &str, v: Option<f64>, lo: f64, hi: f64, default: f64) -> Result<f64, Error> {
    match v {
        None => Ok(default),
        Some(x) if x.is_finite() && x >= lo && x <= hi => Ok(x),
        Some(x) => Err(Error::invalid(
            param,
            format!("`{param}` must be between {lo} and {hi}, got {x}."),
        )),
    }
}

impl CommonSampling {
    /// Validates what both endpoints share into sampling parameters.
    pub fn params(
        &self,
        limits: &Limits,
        max_completion_tokens: Option<Int>,
        default_max: u32,
    ) -> Result<SamplingParams, Error> {
        let s = self;
        if let Some(Int(n)) = s.n {
            if n != 1 {
                return Err(Error::unsupported(
                    "n",
                    "Civia generates one choice per request: `n` must be 1.",
                ));
            }
        }
        if s.logit_bias.as_ref().is_some_and(|m| !m.is_empty()) {
            return Err(Error::unsupported(
                "logit_bias",
                "`logit_bias` is not supported.",
            ));
        }
        let temperature = range("temperature", s.temperature, 0.0, 2.0, 1.0)? as f32;
        let top_p = range("top_p", s.top_p, 0.0, 1.0, 1.0)?;
        if top_p <= 0.0 {
            return Err(Error::invalid("top_p", "`top_p` must be greater than 0."));
        }
        let frequency_penalty =
            range("frequency_penalty", s.frequency_penalty, -2.0, 2.0, 0.0)? as f32;
        let presence_penalty =
            range("presence_penalty", s.presence_penalty, -2.0, 2.0, 0.0)? as f32;
        let top_p = (top_p as f32).max(f32::MIN_POSITIVE);
        // Both spellings are checked when given; `max_completion_tokens` wins.
        let mut max_tokens = default_max;
        for (param, v) in [
            ("max_tokens", s.max_tokens),
            ("max_completion_tokens", max_completion_tokens),
        ] {
            if let Some(Int(v)) = v {
                if v < 1 || v > i64::from(limits.max_tokens) {
                    return Err(Error::invalid(
                        param,
                        format!(
                            "`{param}` must be between 1 and {} on this box, got {v}.",
                            limits.max_tokens
                        ),
                    ));
                }
                max_tokens = v as u32;
            }
        }
        // Any 64-bit seed maps onto llama.cpp's 32-bit seeds; u32::MAX would mean "random".
        let seed = s
            .seed
            .map(|Int(v)| (v.rem_euclid(1 << 32) as u32).min(u32::MAX - 1));
        let bad_stop = || Error::invalid("stop", "`stop` must be a string or an array of strings.");
        let stop = match &s.stop {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(x)) => vec![x.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| i.as_str().map(str::to_string).ok_or_else(bad_stop))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(bad_stop()),
        };
        if stop.len() > limits.max_stop_sequences {
            return Err(Error::invalid(
                "stop",
                format!(
                    "At most {} stop sequences are allowed.",
                    limits.max_stop_sequences
                ),
            ));
        }
        if stop.iter().any(|x| x.len() > limits.max_stop_bytes) {
            return Err(Error::invalid(
                "stop",
                format!(
                    "A stop sequence is longer than {} bytes.",
                    limits.max_stop_bytes
                ),
            ));
        }
        Ok(SamplingParams {
            temperature,
            top_p,
            seed,
            max_tokens,
            stop,
            frequency_penalty,
            presence_penalty,
            constraint: None,
        })
    }
}

/// The text of message `i`: a string, or text parts (any other part is refused).
pub fn message_text(i: usize, m: &InMessage) -> Result<String, Error> {
    let param = format!("messages[{i}].content");
    match &m.content {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => {
            let mut out = String::new();
            for p in parts {
                match (
                    p.get("type").and_then(Value::as_str),
                    p.get("text").and_then(Value::as_str),
                ) {
                    (Some("text"), Some(t)) => out.push_str(t),
                    (Some("text"), None) => {
                        return Err(Error::invalid(param, "A text part needs a string `text`."))
                    }
                    (Some(other), _) => {
                        return Err(Error::unsupported(
                            param,
                            format!("Content parts of type `{other}` are not supported: this model reads text only."),
                        ))
                    }
                    (None, _) => {
                        return Err(Error::invalid(param, "Each content part needs a `type`."))
                    }
                }
            }
            Ok(out)
        }
        None | Some(Value::Null) => Err(Error::invalid(
            param,
            format!("messages[{i}] has no content."),
        )),
        Some(_) => Err(Error::invalid(
            param,
            "`content` must be a string or an array of text parts.",
        )),
    }
}

/// The guard's prompt limit (characters, all texts together); `param` names the field.
pub fn check_prompt_length<'a>(
    texts: impl Iterator<Item = &'a str>,
    max_chars: usize,
    param: &str,
) -> Result<(), Error> {
    let n: usize = texts.map(|t| t.chars().count()).sum();
    civia_guard::check_prompt_length(n, max_chars).map_err(|e| Error::PromptTooLong {
        param: param.into(),
        message: format!("The {e}."),
    })
}

/// The commune's system prompt goes first, before the request's own system message.
pub fn system_prompt(box_prompt: &str, mut messages: Vec<ChatMessage>) -> Prompt {
    let box_prompt = box_prompt.trim();
    if !box_prompt.is_empty() {
        match messages.first_mut() {
            Some(first) if first.role == "system" => {
                first.content = format!("{box_prompt}\n\n{}", first.content);
            }
            _ => messages.insert(
                0,
                ChatMessage {
                    role: "system".into(),
                    content: box_prompt.to_string(),
                },
            ),
        }
    }
    Prompt::Chat { messages }
}

impl ChatRequest {
    /// Refuses the OpenAI features the box does not offer (logprobs, the legacy
    /// `functions`).
    pub fn check_unsupported(&self) -> Result<(), Error> {
        if self.logprobs == Some(true) || self.top_logprobs.is_some_and(|Int(n)| n > 0) {
            return Err(Error::unsupported(
                "logprobs",
                "`logprobs` is not supported.",
            ));
        }
        if self.functions.as_ref().is_some_and(|t| !t.is_empty()) {
            return Err(Error::unsupported(
                "functions",
                "`functions` is deprecated and not supported: use `tools`.",
            ));
        }
        match &self.function_call {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s == "none" || s == "auto" => {}
            Some(_) => {
                return Err(Error::unsupported(
                    "function_call",
                    "`function_call` is deprecated and not supported: use `tool_choice`.",
                ))
            }
        }
        Ok(())
    }

    /// The request's tools, checked (`None` when it offers none).
    pub fn tools(&self) -> Result<Option<Tools>, Error> {
        Tools::parse(
            self.tools.as_ref(),
            self.tool_choice.as_ref(),
            self.parallel_tool_calls.as_ref(),
        )
    }

    /// The sampling parameters (`max_tokens` defaults to the box's default), with the
    /// answer's constraint from `response_format`.
    /// With tools offered (`tool_choice` other than `none`), the constraint is the tool
    /// calls' (a `response_format` other than `text` is refused with them).
    pub fn sampling(
        &self,
        s: &CommonSampling,
        limits: &Limits,
        tools: Option<&Tools>,
    ) -> Result<SamplingParams, Error> {
        let default_max = limits.default_max_tokens.min(limits.max_tokens);
        let mut params = s.params(limits, self.max_completion_tokens, default_max)?;
        if let Some(f) = &self.response_format {
            params.constraint = f.constraint()?;
        }
        if let Some(calls) = tools.and_then(Tools::constraint) {
            if params.constraint.is_some() {
                return Err(Error::unsupported(
                    "response_format",
                    "`response_format` json_object or json_schema cannot be combined with \
                     `tools` (unless `tool_choice` is `none`).",
                ));
            }
            params.constraint = Some(calls);
        }
        Ok(params)
    }

    /// The messages as the model reads them: roles checked, text only, within the limits.
    /// Tool calls and results of the history are written in the tool-call format
    /// ([`crate::tools`]; results as user turns, consecutive ones together), and the offered
    /// tools are described at the end of the (first) system message.
    pub fn messages(
        &self,
        limits: &Limits,
        tools: Option<&Tools>,
    ) -> Result<Vec<ChatMessage>, Error> {
        if self.messages.is_empty() {
            return Err(Error::invalid("messages", "`messages` must not be empty."));
        }
        if self.messages.len() > limits.max_messages {
            return Err(Error::invalid(
                "messages",
                format!(
                    "At most {} messages are allowed per request.",
                    limits.max_messages
                ),
            ));
        }
        let mut messages: Vec<ChatMessage> = Vec::with_capacity(self.messages.len() + 1);
        let mut after_result = false;
        for (i, m) in self.messages.iter().enumerate() {
            let role = match m.role.as_str() {
                "system" | "developer" => "system",
                "user" => "user",
                "assistant" => "assistant",
                "tool" => {
                    let content = message_text(i, m)?;
                    let result =
                        crate::tools::history_result(i, m.tool_call_id.as_ref(), &content)?;
                    match messages.last_mut() {
                        // Results of parallel calls go together in one user turn.
                        Some(last) if after_result => last.content.push_str(&result),
                        _ => messages.push(ChatMessage {
                            role: "user".into(),
                            content: result,
                        }),
                    }
                    after_result = true;
                    continue;
                }
                "function" => {
                    return Err(Error::unsupported(
                        format!("messages[{i}].role"),
                        "Function messages are deprecated and not supported: use `tool`.",
                    ))
                }
                other => {
                    return Err(Error::invalid(
                        format!("messages[{i}].role"),
                        format!("Unknown role `{other}`: use system, user, assistant or tool."),
                    ))
                }
            };
            after_result = false;
            if m.function_call.as_ref().is_some_and(|v| !v.is_null()) {
                return Err(Error::unsupported(
                    format!("messages[{i}].function_call"),
                    "`function_call` is deprecated and not supported: use `tool_calls`.",
                ));
            }
            let calls = match (&m.tool_calls, role) {
                (None | Some(Value::Null), _) => None,
                (Some(c), "assistant") => Some(crate::tools::history_calls(i, c)?),
                (Some(_), _) => {
                    return Err(Error::invalid(
                        format!("messages[{i}].tool_calls"),
                        "Only assistant messages carry `tool_calls`.",
                    ))
                }
            };
            let content = match (&calls, &m.content) {
                (Some(c), None | Some(Value::Null)) => c.clone(),
                (Some(c), _) => format!("{}{c}", message_text(i, m)?),
                (None, _) => message_text(i, m)?,
            };
            messages.push(ChatMessage {
                role: role.into(),
                content,
            });
        }
        if let Some(text) = tools.and_then(Tools::instruction) {
            match messages.iter_mut().find(|m| m.role == "system") {
                Some(sys) => {
                    sys.content.push_str("\n\n");
                    sys.content.push_str(&text);
                }
                None => messages.insert(
                    0,
                    ChatMessage {
                        role: "system".into(),
                        content: text,
                    },
                ),
            }
        }
        check_prompt_length(
            messages.iter().map(|m| m.content.as_str()),
            limits.max_prompt_chars,
            "messages",
        )?;
        Ok(messages)
    }

    pub fn streams(&self) -> bool {
        self.stream == Some(true)
    }

    pub fn include_usage(&self) -> bool {
        include_usage(&self.stream_options)
    }
}

impl CompletionRequest {
    /// The prompt text, once the unsupported features are refused and its length checked.
    pub fn prompt_text(&self, limits: &Limits) -> Result<String, Error> {
        if self.echo == Some(true) {
            return Err(Error::unsupported("echo", "`echo` is not supported."));
        }
        if self.best_of.is_some_and(|Int(b)| b != 1) {
            return Err(Error::unsupported("best_of", "`best_of` must be 1."));
        }
        if self.suffix.as_ref().is_some_and(|s| !s.is_empty()) {
            return Err(Error::unsupported(
                "suffix",
                "`suffix` (insertion) is not supported.",
            ));
        }
        if self.logprobs.is_some_and(|Int(n)| n > 0) {
            return Err(Error::unsupported(
                "logprobs",
                "`logprobs` is not supported.",
            ));
        }
        let text = match &self.prompt {
            Value::String(s) => s.clone(),
            Value::Array(items) if items.len() == 1 && items[0].is_string() => {
                items[0].as_str().unwrap_or_default().to_string()
            }
            Value::Array(items) if items.len() > 1 && items.iter().all(Value::is_string) => {
                return Err(Error::unsupported(
                    "prompt",
                    "One prompt per request: send a single string.",
                ))
            }
            _ => {
                return Err(Error::invalid(
                    "prompt",
                    "`prompt` must be a string (token arrays are not supported).",
                ))
            }
        };
        check_prompt_length(
            std::iter::once(text.as_str()),
            limits.max_prompt_chars,
            "prompt",
        )?;
        Ok(text)
    }

    /// The sampling parameters (`max_tokens` defaults to 16, as OpenAI's does here).
    pub fn sampling(&self, s: &CommonSampling, limits: &Limits) -> Result<SamplingParams, Error> {
        s.params(limits, None, 16.min(limits.max_tokens))
    }

    pub fn streams(&self) -> bool {
        self.stream == Some(true)
    }

    pub fn include_usage(&self) -> bool {
        include_usage(&self.stream_options)
    }
}

/// History (`civia`) is kept for chat completions only.
pub fn refuse_completion_history(given: bool) -> Result<(), Error> {
    if given {
        return Err(Error::unsupported(
            "civia",
            "History (`civia`) is kept for chat completions only.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LIMITS: Limits = Limits {
        max_messages: 3,
        max_tokens: 100,
        default_max_tokens: 50,
        max_stop_sequences: 2,
        max_stop_bytes: 5,
        max_prompt_chars: 10,
    };

    fn chat(v: Value) -> ChatRequest {
        serde_json::from_value(v).expect("a chat request")
    }

    fn common(v: Value) -> CommonSampling {
        serde_json::from_value(v).expect("sampling fields")
    }

    fn sampling_err(v: Value) -> Error {
        match common(v).params(&LIMITS, None, 50) {
            Ok(p) => panic!("accepted: {p:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn integers_as_json_schema_reads_them() {
        let i: Int = serde_json::from_value(json!(6.0)).expect("6.0");
        assert_eq!(i, Int(6));
        assert!(serde_json::from_value::<Int>(json!(6.5)).is_err());
        assert!(serde_json::from_value::<Int>(json!(u64::MAX)).is_err());
        assert!(serde_json::from_value::<Int>(json!("6")).is_err());
    }

    #[test]
    fn ranges() {
        assert_eq!(range("t", None, 0.0, 2.0, 1.0), Ok(1.0));
        assert_eq!(range("t", Some(2.0), 0.0, 2.0, 1.0), Ok(2.0));
        let e = range("temperature", Some(2.5), 0.0, 2.0, 1.0).expect_err("out of range");
        assert_eq!(
            e.to_string(),
            "`temperature` must be between 0 and 2, got 2.5."
        );
        assert_eq!((e.code(), e.param()), ("invalid_value", "temperature"));
        assert!(range("t", Some(f64::NAN), 0.0, 2.0, 1.0).is_err());
    }

    #[test]
    fn sampling_defaults_and_limits() {
        let p = common(json!({}))
            .params(&LIMITS, None, 50)
            .expect("defaults");
        assert_eq!(
            (p.temperature, p.top_p, p.max_tokens, p.seed),
            (1.0, 1.0, 50, None)
        );
        let p = common(json!({"max_tokens": 10, "seed": -1, "stop": "x"}))
            .params(&LIMITS, Some(Int(20)), 50)
            .expect("valid");
        assert_eq!(
            (p.max_tokens, p.seed, p.stop),
            (20, Some(u32::MAX - 1), vec!["x".to_string()])
        );
        let e = sampling_err(json!({"n": 2}));
        assert_eq!((e.code(), e.param()), ("unsupported_parameter", "n"));
        assert_eq!(
            sampling_err(json!({"logit_bias": {"1": 2}})).param(),
            "logit_bias"
        );
        assert!(common(json!({"logit_bias": {}}))
            .params(&LIMITS, None, 50)
            .is_ok());
        assert_eq!(
            sampling_err(json!({"top_p": 0})).to_string(),
            "`top_p` must be greater than 0."
        );
        assert_eq!(
            sampling_err(json!({"presence_penalty": -3})).param(),
            "presence_penalty"
        );
        let e = sampling_err(json!({"max_tokens": 101}));
        assert_eq!(
            e.to_string(),
            "`max_tokens` must be between 1 and 100 on this box, got 101."
        );
        let e = common(json!({}))
            .params(&LIMITS, Some(Int(0)), 50)
            .expect_err("0 tokens");
        assert_eq!(e.param(), "max_completion_tokens");
        assert_eq!(sampling_err(json!({"stop": 1})).param(), "stop");
        assert_eq!(sampling_err(json!({"stop": ["a", 1]})).param(), "stop");
        assert_eq!(
            sampling_err(json!({"stop": ["a", "b", "c"]})).to_string(),
            "At most 2 stop sequences are allowed."
        );
        assert_eq!(
            sampling_err(json!({"stop": "toolong"})).to_string(),
            "A stop sequence is longer than 5 bytes."
        );
    }

    #[test]
    fn chat_unsupported_features() {
        let base = |extra: Value| {
            let mut v = json!({"model": "m", "messages": []});
            for (k, x) in extra.as_object().into_iter().flatten() {
                v[k] = x.clone();
            }
            chat(v).check_unsupported()
        };
        assert!(base(
            json!({"tool_choice": "auto", "tools": [], "response_format": {"type": "text"}})
        )
        .is_ok());
        for (extra, param) in [
            (json!({"logprobs": true}), "logprobs"),
            (json!({"top_logprobs": 2}), "logprobs"),
            (json!({"functions": [{}]}), "functions"),
            (json!({"function_call": {"name": "f"}}), "function_call"),
        ] {
            let e = base(extra).expect_err("refused");
            assert_eq!((e.code(), e.param()), ("unsupported_parameter", param));
        }
    }

    #[test]
    fn response_formats() {
        let constraint = |f: Value| {
            chat(json!({"model": "m", "messages": [], "response_format": f}))
                .sampling(&CommonSampling::default(), &LIMITS, None)
                .map(|p| p.constraint)
        };
        assert_eq!(constraint(json!({"type": "text"})), Ok(None));
        assert_eq!(
            constraint(json!({"type": "text", "json_schema": 5})),
            Ok(None)
        );
        assert_eq!(
            constraint(json!({"type": "json_object"})),
            Ok(Some(Constraint::JsonSchema {
                schema: r#"{"type":"object"}"#.into()
            }))
        );
        let schema = json!({"type": "object", "properties": {"a": {"type": "boolean"}},
                            "required": ["a"], "additionalProperties": false});
        assert_eq!(
            constraint(json!({"type": "json_schema", "json_schema": {
                "name": "answer_1", "strict": true, "description": "d", "schema": schema}})),
            Ok(Some(Constraint::JsonSchema {
                schema: r#"{"type":"object","properties":{"a":{"type":"boolean"}},"required":["a"],"additionalProperties":false}"#.into()
            }))
        );
        for (f, needle) in [
            (
                json!({"type": "xml"}),
                "`response_format.type` `xml` is unknown",
            ),
            (
                json!({"type": "json_schema"}),
                "`response_format.json_schema` (an object with `name` and `schema`) is required",
            ),
            (
                json!({"type": "json_schema", "json_schema": {"schema": {"type": "null"}}}),
                "`response_format.json_schema.name` must be given",
            ),
            (
                json!({"type": "json_schema", "json_schema": {"name": "a b", "schema": {"type": "null"}}}),
                "`response_format.json_schema.name` must be given",
            ),
            (
                json!({"type": "json_schema", "json_schema": {"name": "a"}}),
                "`response_format.json_schema.schema` must be given",
            ),
            (
                json!({"type": "json_schema", "json_schema": {"name": "a", "strict": "yes", "schema": {}}}),
                "`response_format.json_schema.strict` must be a boolean",
            ),
            (
                json!({"type": "json_schema", "json_schema": {"name": "a", "schema": {"oneOf": []}}}),
                "`oneOf`",
            ),
        ] {
            let e = constraint(f).expect_err("refused");
            assert_eq!(e.param(), "response_format");
            assert!(e.to_string().contains(needle), "{e}");
        }
    }

    #[test]
    fn message_shapes() {
        let ok = chat(json!({"model": "m", "messages": [
            {"role": "developer", "content": "a"},
            {"role": "user", "content": [{"type": "text", "text": "b"}, {"type": "text", "text": "c"}]},
            {"role": "assistant", "content": "d", "tool_calls": null},
        ]}));
        let m = ok.messages(&LIMITS, None).expect("valid");
        let got: Vec<_> = m
            .iter()
            .map(|m| (m.role.as_str(), m.content.as_str()))
            .collect();
        assert_eq!(got, [("system", "a"), ("user", "bc"), ("assistant", "d")]);
        let err = |messages: Value| {
            chat(json!({"model": "m", "messages": messages}))
                .messages(&LIMITS, None)
                .expect_err("refused")
        };
        assert_eq!(err(json!([])).to_string(), "`messages` must not be empty.");
        let e = err(Value::Array(vec![
            json!({"role": "user", "content": "a"});
            4
        ]));
        assert_eq!(e.to_string(), "At most 3 messages are allowed per request.");
        let e = err(json!([{"role": "function", "content": "a"}]));
        assert_eq!(
            (e.code(), e.param()),
            ("unsupported_parameter", "messages[0].role")
        );
        let e = err(json!([{"role": "tool", "content": "a"}]));
        assert_eq!(
            (e.code(), e.param()),
            ("invalid_value", "messages[0].tool_call_id")
        );
        let e = err(json!([{"role": "user", "content": "a", "tool_calls": []}]));
        assert_eq!(e.param(), "messages[0].tool_calls");
        let e = err(json!([{"role": "user", "content": "a"}, {"role": "bot", "content": "a"}]));
        assert_eq!((e.code(), e.param()), ("invalid_value", "messages[1].role"));
        let e = err(json!([{"role": "assistant", "content": "a", "function_call": {}}]));
        assert_eq!(e.param(), "messages[0].function_call");
        let e = err(json!([{"role": "user", "content": [{"type": "image_url"}]}]));
        assert_eq!(
            (e.code(), e.param()),
            ("unsupported_parameter", "messages[0].content")
        );
        let e = err(json!([{"role": "user", "content": [{"type": "text"}]}]));
        assert_eq!(e.to_string(), "A text part needs a string `text`.");
        let e = err(json!([{"role": "user", "content": [{"text": "a"}]}]));
        assert_eq!(e.to_string(), "Each content part needs a `type`.");
        assert_eq!(
            err(json!([{"role": "user"}])).to_string(),
            "messages[0] has no content."
        );
        let e = err(json!([{"role": "user", "content": 3}]));
        assert_eq!(
            e.to_string(),
            "`content` must be a string or an array of text parts."
        );
        let e = err(
            json!([{"role": "user", "content": "ééééé"}, {"role": "user", "content": "123456"}]),
        );
        assert_eq!((e.code(), e.param()), ("prompt_too_long", "messages"));
        assert_eq!(
            e.to_string(),
            "The prompt is 11 characters long; at most 10 are accepted."
        );
    }

    #[test]
    fn completion_prompts() {
        let req = |v: Value| -> CompletionRequest { serde_json::from_value(v).expect("a request") };
        let r = req(
            json!({"model": "m", "prompt": ["hi"], "stream": true, "stream_options": {"include_usage": true}}),
        );
        assert_eq!(r.prompt_text(&LIMITS), Ok("hi".into()));
        assert!(r.streams() && r.include_usage());
        assert_eq!(
            r.sampling(&CommonSampling::default(), &LIMITS)
                .map(|p| p.max_tokens),
            Ok(16)
        );
        for (v, code, param) in [
            (
                json!({"model": "m", "prompt": "a", "echo": true}),
                "unsupported_parameter",
                "echo",
            ),
            (
                json!({"model": "m", "prompt": "a", "best_of": 2}),
                "unsupported_parameter",
                "best_of",
            ),
            (
                json!({"model": "m", "prompt": "a", "suffix": "b"}),
                "unsupported_parameter",
                "suffix",
            ),
            (
                json!({"model": "m", "prompt": "a", "logprobs": 1}),
                "unsupported_parameter",
                "logprobs",
            ),
            (
                json!({"model": "m", "prompt": ["a", "b"]}),
                "unsupported_parameter",
                "prompt",
            ),
            (
                json!({"model": "m", "prompt": [1, 2]}),
                "invalid_value",
                "prompt",
            ),
            (
                json!({"model": "m", "prompt": "12345678901"}),
                "prompt_too_long",
                "prompt",
            ),
        ] {
            let e = req(v).prompt_text(&LIMITS).expect_err("refused");
            assert_eq!((e.code(), e.param()), (code, param));
        }
        assert!(refuse_completion_history(false).is_ok());
        assert_eq!(
            refuse_completion_history(true).map_err(|e| e.param().to_string()),
            Err("civia".into())
        );
    }

    #[test]
    fn the_box_prompt_goes_first() {
        let msg = |role: &str, content: &str| ChatMessage {
            role: role.into(),
            content: content.into(),
        };
        let Prompt::Chat { messages } =
            system_prompt(" Box. ", vec![msg("system", "Own."), msg("user", "q")])
        else {
            panic!("a chat prompt")
        };
        assert_eq!(messages[0].content, "Box.\n\nOwn.");
        let Prompt::Chat { messages } = system_prompt("Box.", vec![msg("user", "q")]) else {
            panic!("a chat prompt")
        };
        assert_eq!((messages.len(), messages[0].role.as_str()), (2, "system"));
        let Prompt::Chat { messages } = system_prompt("  ", vec![msg("user", "q")]) else {
            panic!("a chat prompt")
        };
        assert_eq!(messages.len(), 1);
    }

    #[test]
    fn tool_history_and_offer() {
        let req = chat(json!({"model": "m", "messages": [
            {"role": "user", "content": "Météo ?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "meteo", "arguments": "{\"ville\":\"Lyon\"}"}},
                {"id": "c2", "type": "function", "function": {"name": "meteo", "arguments": "{\"ville\":\"Brest\"}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "12"},
            {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "9"}]},
        ], "tools": [{"type": "function", "function": {"name": "meteo",
            "parameters": {"type": "object", "properties": {"ville": {"type": "string"}}, "required": ["ville"]}}}],
           "response_format": {"type": "json_object"}}));
        let tools = req.tools().expect("valid").expect("tools");
        let limits = Limits {
            max_messages: 10,
            max_prompt_chars: 10_000,
            ..LIMITS
        };
        let m = req.messages(&limits, Some(&tools)).expect("valid");
        let got: Vec<_> = m.iter().map(|m| m.role.as_str()).collect();
        // The offer in a system message first; the two results in one user turn.
        assert_eq!(got, ["system", "user", "assistant", "user"]);
        assert!(m[0].content.starts_with("You can call these functions:"));
        assert!(m[2].content.starts_with("[TOOL_CALLS][{\"name\":\"meteo\""));
        assert_eq!(m[3].content.matches("[TOOL_RESULTS]").count(), 2);
        // json_object and tools together: refused.
        let e = req
            .sampling(&CommonSampling::default(), &LIMITS, Some(&tools))
            .expect_err("refused");
        assert_eq!(e.param(), "response_format");
        // The offer counts in the prompt's length.
        let tight = Limits {
            max_messages: 10,
            max_prompt_chars: 60,
            ..LIMITS
        };
        assert_eq!(
            req.messages(&tight, Some(&tools))
                .expect_err("too long")
                .code(),
            "prompt_too_long"
        );
    }
}
