//! `/v1/chat/completions` and `/v1/completions`: request validation and responses.

use crate::body::{parse_json, read_body};
use crate::generation::{
    civia_marking, collect, leak_warning, marked, not_kept, usage, with_system_prompt, LEAK_NOTICE,
};
use crate::history::Keep;
use crate::metering::{StreamGuard, UsageTicket};
use crate::{ApiError, ApiState};
use axum::body::Body;
use axum::extract::State;
use axum::http::Extensions;
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use civia_ipc::{ChatMessage, FinishReason, Prompt, SamplingParams};
use civia_supervisor::{Event, Generation};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Deserialize)]
pub struct ChatRequest {
    model: String,
    messages: Vec<InMessage>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    max_completion_tokens: Option<Int>,
    logprobs: Option<bool>,
    top_logprobs: Option<Int>,
    tools: Option<Vec<Value>>,
    tool_choice: Option<Value>,
    functions: Option<Vec<Value>>,
    function_call: Option<Value>,
    response_format: Option<ResponseFormat>,
}

#[derive(Debug, Deserialize)]
pub struct CompletionRequest {
    model: String,
    prompt: Value,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    echo: Option<bool>,
    best_of: Option<Int>,
    suffix: Option<String>,
    logprobs: Option<Int>,
}

/// Fields both endpoints share, parsed from the same body in a second pass (serde's
/// `flatten` would hide which field is wrong). Unknown fields are ignored (clients send many).
#[derive(Debug, Deserialize)]
struct CommonSampling {
    temperature: Option<f64>,
    top_p: Option<f64>,
    seed: Option<Int>,
    max_tokens: Option<Int>,
    stop: Option<Value>,
    n: Option<Int>,
    frequency_penalty: Option<f64>,
    presence_penalty: Option<f64>,
    logit_bias: Option<serde_json::Map<String, Value>>,
}

/// Civia's own request extension: `"civia": {"save": true, ...}` (history).
#[derive(Debug, Deserialize)]
struct CiviaBody {
    civia: Option<crate::history::HistoryOptions>,
}

/// An integer as JSON Schema sees it: `6` and `6.0` are both 6; `6.5` is refused.
#[derive(Debug, Clone, Copy)]
struct Int(i64);

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
struct StreamOptions {
    include_usage: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct ResponseFormat {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Debug, Deserialize)]
struct InMessage {
    role: String,
    content: Option<Value>,
    tool_calls: Option<Value>,
    function_call: Option<Value>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The model must be the one served, and within the key's model scope.
fn check_model(st: &ApiState, ext: &Extensions, model: &str) -> Result<(), ApiError> {
    if model != st.model_id {
        return Err(ApiError::model_not_found(model, &st.model_id));
    }
    if let Some(p) = ext.get::<civia_auth::Principal>() {
        p.check_model(model)?;
    }
    Ok(())
}

fn range(param: &str, v: Option<f64>, lo: f64, hi: f64, default: f64) -> Result<f64, ApiError> {
    match v {
        None => Ok(default),
        Some(x) if x.is_finite() && x >= lo && x <= hi => Ok(x),
        Some(x) => Err(ApiError::bad_request(
            format!("`{param}` must be between {lo} and {hi}, got {x}."),
            Some(param.into()),
        )),
    }
}

/// Validates what both endpoints share into sampling parameters.
fn sampling(
    st: &ApiState,
    s: &CommonSampling,
    max_completion_tokens: Option<Int>,
    default_max: u32,
) -> Result<SamplingParams, ApiError> {
    if let Some(Int(n)) = s.n {
        if n != 1 {
            return Err(ApiError::unsupported(
                "n",
                "Civia generates one choice per request: `n` must be 1.",
            ));
        }
    }
    if s.logit_bias.as_ref().is_some_and(|m| !m.is_empty()) {
        return Err(ApiError::unsupported(
            "logit_bias",
            "`logit_bias` is not supported.",
        ));
    }
    let temperature = range("temperature", s.temperature, 0.0, 2.0, 1.0)? as f32;
    let top_p = range("top_p", s.top_p, 0.0, 1.0, 1.0)?;
    if top_p <= 0.0 {
        return Err(ApiError::bad_request(
            "`top_p` must be greater than 0.",
            Some("top_p".into()),
        ));
    }
    let frequency_penalty = range("frequency_penalty", s.frequency_penalty, -2.0, 2.0, 0.0)? as f32;
    let presence_penalty = range("presence_penalty", s.presence_penalty, -2.0, 2.0, 0.0)? as f32;
    let top_p = (top_p as f32).max(f32::MIN_POSITIVE);
    // Both spellings are checked when given; `max_completion_tokens` wins.
    let mut max_tokens = default_max;
    for (param, v) in [
        ("max_tokens", s.max_tokens),
        ("max_completion_tokens", max_completion_tokens),
    ] {
        if let Some(Int(v)) = v {
            if v < 1 || v > i64::from(st.limits.max_tokens) {
                return Err(ApiError::bad_request(
                    format!(
                        "`{param}` must be between 1 and {} on this box, got {v}.",
                        st.limits.max_tokens
                    ),
                    Some(param.into()),
                ));
            }
            max_tokens = v as u32;
        }
    }
    // Any 64-bit seed maps onto llama.cpp's 32-bit seeds; u32::MAX would mean "random".
    let seed = s
        .seed
        .map(|Int(v)| (v.rem_euclid(1 << 32) as u32).min(u32::MAX - 1));
    let stop = match &s.stop {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(x)) => vec![x.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str().map(str::to_string).ok_or_else(|| {
                    ApiError::bad_request(
                        "`stop` must be a string or an array of strings.",
                        Some("stop".into()),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(ApiError::bad_request(
                "`stop` must be a string or an array of strings.",
                Some("stop".into()),
            ))
        }
    };
    if stop.len() > st.limits.max_stop_sequences {
        return Err(ApiError::bad_request(
            format!(
                "At most {} stop sequences are allowed.",
                st.limits.max_stop_sequences
            ),
            Some("stop".into()),
        ));
    }
    if stop.iter().any(|x| x.len() > st.limits.max_stop_bytes) {
        return Err(ApiError::bad_request(
            format!(
                "A stop sequence is longer than {} bytes.",
                st.limits.max_stop_bytes
            ),
            Some("stop".into()),
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
    })
}

fn message_text(i: usize, m: &InMessage) -> Result<String, ApiError> {
    let param = format!("messages[{i}].content");
    match &m.content {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => {
            let mut out = String::new();
            for p in parts {
                match (p.get("type").and_then(Value::as_str), p.get("text").and_then(Value::as_str)) {
                    (Some("text"), Some(t)) => out.push_str(t),
                    (Some("text"), None) => {
                        return Err(ApiError::bad_request("A text part needs a string `text`.", Some(param)))
                    }
                    (Some(other), _) => {
                        return Err(ApiError::unsupported(
                            &param,
                            format!("Content parts of type `{other}` are not supported: this model reads text only."),
                        ))
                    }
                    (None, _) => {
                        return Err(ApiError::bad_request("Each content part needs a `type`.", Some(param)))
                    }
                }
            }
            Ok(out)
        }
        None | Some(Value::Null) => Err(ApiError::bad_request(
            format!("messages[{i}] has no content."),
            Some(param),
        )),
        Some(_) => Err(ApiError::bad_request(
            "`content` must be a string or an array of text parts.",
            Some(param),
        )),
    }
}

fn chat_messages(st: &ApiState, req: &ChatRequest) -> Result<Vec<ChatMessage>, ApiError> {
    if req.messages.is_empty() {
        return Err(ApiError::bad_request(
            "`messages` must not be empty.",
            Some("messages".into()),
        ));
    }
    if req.messages.len() > st.limits.max_messages {
        return Err(ApiError::bad_request(
            format!(
                "At most {} messages are allowed per request.",
                st.limits.max_messages
            ),
            Some("messages".into()),
        ));
    }
    let mut messages = Vec::with_capacity(req.messages.len());
    for (i, m) in req.messages.iter().enumerate() {
        let role = match m.role.as_str() {
            "system" | "developer" => "system",
            "user" => "user",
            "assistant" => "assistant",
            "tool" | "function" => {
                return Err(ApiError::unsupported(
                    &format!("messages[{i}].role"),
                    "Tool and function messages are not supported.",
                ))
            }
            other => {
                return Err(ApiError::bad_request(
                    format!("Unknown role `{other}`: use system, user or assistant."),
                    Some(format!("messages[{i}].role")),
                ))
            }
        };
        if m.tool_calls.as_ref().is_some_and(|v| !v.is_null())
            || m.function_call.as_ref().is_some_and(|v| !v.is_null())
        {
            return Err(ApiError::unsupported(
                &format!("messages[{i}].tool_calls"),
                "Tool calls are not supported.",
            ));
        }
        messages.push(ChatMessage {
            role: role.into(),
            content: message_text(i, m)?,
        });
    }
    check_prompt_length(st, messages.iter().map(|m| m.content.as_str()), "messages")?;
    Ok(messages)
}

/// The guard's prompt limit (characters, all messages together).
fn check_prompt_length<'a>(
    st: &ApiState,
    texts: impl Iterator<Item = &'a str>,
    param: &str,
) -> Result<(), ApiError> {
    let n: usize = texts.map(|t| t.chars().count()).sum();
    civia_guard::check_prompt_length(n, st.config.guard.max_prompt_chars).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "prompt_too_long",
            format!("The {e}."),
        )
        .with_param(param)
    })
}

fn check_chat_unsupported(req: &ChatRequest) -> Result<(), ApiError> {
    if req.logprobs == Some(true) || req.top_logprobs.is_some_and(|Int(n)| n > 0) {
        return Err(ApiError::unsupported(
            "logprobs",
            "`logprobs` is not supported.",
        ));
    }
    if req.tools.as_ref().is_some_and(|t| !t.is_empty())
        || req.functions.as_ref().is_some_and(|t| !t.is_empty())
    {
        return Err(ApiError::unsupported(
            "tools",
            "Tools and function calling are not supported.",
        ));
    }
    for (param, choice) in [
        ("tool_choice", &req.tool_choice),
        ("function_call", &req.function_call),
    ] {
        match choice {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s == "none" || s == "auto" => {}
            Some(_) => {
                return Err(ApiError::unsupported(
                    param,
                    format!("`{param}` is not supported."),
                ))
            }
        }
    }
    if let Some(f) = &req.response_format {
        if f.kind != "text" {
            return Err(ApiError::unsupported(
                "response_format",
                format!(
                    "`response_format` of type `{}` is not supported; use `text`.",
                    f.kind
                ),
            ));
        }
    }
    Ok(())
}

fn finish_str(r: FinishReason) -> &'static str {
    match r {
        FinishReason::Length => "length",
        FinishReason::Stop | FinishReason::Cancelled => "stop",
    }
}

/// Waits for the worker to accept the prompt, so that errors before the first token are
/// ordinary HTTP errors rather than a failed stream.
async fn wait_started(generation: &mut Generation) -> Result<(), ApiError> {
    loop {
        match generation.next().await {
            Some(Event::Started { .. }) => return Ok(()),
            Some(Event::Failed(e)) => return Err(e.into()),
            Some(Event::Delta(_)) => continue,
            Some(Event::Finished { .. }) | None => {
                return Err(ApiError::internal("the generation ended before it started"))
            }
        }
    }
}

/// Prompt errors name the field that holds the prompt, as OpenAI does.
fn on_prompt(e: ApiError, param: &str) -> ApiError {
    if e.code == "context_length_exceeded" || e.code == "invalid_prompt" {
        e.with_param(param)
    } else {
        e
    }
}

/// Which of the two OpenAI shapes a response takes.
#[derive(Clone, Copy)]
enum Shape {
    Chat,
    Completion,
}

fn choice(shape: Shape, text: Option<&str>, first: bool, finish: Option<&str>) -> Value {
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

/// The model named in the chunks is the served one (`check_model` refused any other).
fn stream_response(
    shape: Shape,
    mut generation: Generation,
    include_usage: bool,
    ticket: Option<Arc<UsageTicket>>,
    pii: Vec<civia_guard::PiiKind>,
    keep: Option<Keep>,
    st: Arc<ApiState>,
) -> Response {
    let kept_id = keep.as_ref().map(|k| k.id.clone());
    let mut marking = civia_marking(&st, &pii, kept_id.as_deref());
    let model = st.model_id.clone();
    let (id, object) = match shape {
        Shape::Chat => (
            format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
            "chat.completion.chunk",
        ),
        Shape::Completion => (
            format!("cmpl-{}", uuid::Uuid::new_v4().simple()),
            "text_completion",
        ),
    };
    let created = now();
    let chunk_value = move |choices: Value, usage: Option<Value>| {
        let mut v = json!({
            "id": id, "object": object, "created": created, "model": model,
            "system_fingerprint": null, "choices": choices,
        });
        // With include_usage, OpenAI sends `"usage": null` on every chunk but the last.
        if include_usage {
            v["usage"] = usage.unwrap_or(Value::Null);
        }
        v
    };
    let value = chunk_value.clone();
    let chunk = move |choices: Value, usage: Option<Value>| {
        SseEvent::default().data(value(choices, usage).to_string())
    };
    let stream = async_stream::stream! {
        let guard = StreamGuard(ticket);
        let mut keep = keep;
        let mut output = Sha256::new();
        let mut answer = String::new();
        let mut scanner = st.leak_guard.as_deref().map(civia_guard::LeakGuard::scanner);
        let mut leaked = false;
        if let Shape::Chat = shape {
            yield Ok::<_, Infallible>(chunk(json!([choice(shape, Some(""), true, None)]), None));
        }
        while let Some(ev) = generation.next().await {
            match ev {
                Event::Started { .. } => {}
                Event::Delta(text) => {
                    if leaked {
                        continue;
                    }
                    if scanner.as_mut().is_some_and(|s| s.push(&text)) {
                        leaked = true;
                        generation.cancel();
                        continue;
                    }
                    output.update(text.as_bytes());
                    if keep.is_some() {
                        answer.push_str(&text);
                    }
                    yield Ok(chunk(json!([choice(shape, Some(&text), false, None)]), None));
                }
                Event::Finished { reason, usage: u } => {
                    let leaked = leaked || scanner.as_mut().is_some_and(|s| s.finish());
                    if leaked {
                        log::warn!("a streamed answer repeated the system prompt: stopped by the leak filter");
                        leak_warning(&mut marking);
                        if let Some(t) = &guard.0 {
                            t.flag_output("system_prompt_leak");
                        }
                        answer = LEAK_NOTICE.to_string();
                    }
                    let finish = if leaked { "content_filter" } else { finish_str(reason) };
                    if let Some(t) = &guard.0 {
                        let sha = hex::encode(std::mem::take(&mut output).finalize());
                        // The audit event is on disk before the client sees the end.
                        if let Err(e) = t.finish(u.prompt_tokens, u.completion_tokens, 200, Some(sha)).await {
                            yield Ok(SseEvent::default().data(e.body().to_string()));
                            return;
                        }
                    }
                    if let Some(k) = keep.take() {
                        if k.save(&st, std::mem::take(&mut answer)).await.is_err() {
                            not_kept(&mut marking);
                        }
                    }
                    let mut last = chunk_value(json!([choice(shape, None, false, Some(finish))]), None);
                    last["civia"] = marking.clone();
                    yield Ok(SseEvent::default().data(last.to_string()));
                    if include_usage {
                        yield Ok(chunk(json!([]), Some(usage(&u))));
                    }
                    yield Ok(SseEvent::default().data("[DONE]"));
                }
                Event::Failed(e) => {
                    let err: ApiError = e.into();
                    log::warn!("stream ended with an error: {}", err.message);
                    if let Some(t) = &guard.0 {
                        let _ = t.finish(0, 0, err.status.as_u16(), None).await;
                    }
                    yield Ok(SseEvent::default().data(err.body().to_string()));
                }
            }
        }
    };
    marked(
        Sse::new(stream)
            .keep_alive(KeepAlive::default())
            .into_response(),
        &pii,
        kept_id.as_deref(),
    )
}

/// Runs a validated request: waits for the worker to accept the prompt, then streams or
/// collects the answer in the endpoint's shape.
#[allow(clippy::too_many_arguments)]
async fn respond(
    st: &Arc<ApiState>,
    ext: &Extensions,
    shape: Shape,
    prompt: Prompt,
    params: SamplingParams,
    model: String,
    stream: bool,
    include_usage: bool,
    keep: Option<Keep>,
) -> Result<Response, ApiError> {
    let mut generation =
        st.supervisor
            .generate(prompt, params, &crate::extract::fairness_key(ext))?;
    let prompt_param = match shape {
        Shape::Chat => "messages",
        Shape::Completion => "prompt",
    };
    wait_started(&mut generation)
        .await
        .map_err(|e| on_prompt(e, prompt_param))?;
    let ticket = ext.get::<Arc<UsageTicket>>().cloned();
    let pii = ticket.as_ref().map(|t| t.pii()).unwrap_or_default();
    if stream {
        return Ok(stream_response(
            shape,
            generation,
            include_usage,
            ticket,
            pii,
            keep,
            st.clone(),
        ));
    }
    let c = collect(generation, st.leak_guard.as_deref()).await?;
    if c.leaked {
        log::warn!("an answer repeated the system prompt: stopped by the leak filter");
        if let Some(t) = &ticket {
            t.flag_output("system_prompt_leak");
        }
    }
    if let Some(t) = ticket {
        let sha = hex::encode(Sha256::digest(c.text.as_bytes()));
        t.finish(
            c.usage.prompt_tokens,
            c.usage.completion_tokens,
            200,
            Some(sha),
        )
        .await?;
    }
    let kept_id = keep.as_ref().map(|k| k.id.clone());
    let mut marking = civia_marking(st, &pii, kept_id.as_deref());
    if c.leaked {
        leak_warning(&mut marking);
    }
    if let Some(k) = keep {
        if k.save(st, c.text.clone()).await.is_err() {
            not_kept(&mut marking);
        }
    }
    let finish = if c.leaked {
        "content_filter"
    } else {
        finish_str(c.reason)
    };
    let (id, object, choice) = match shape {
        Shape::Chat => (
            format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
            "chat.completion",
            json!({"index": 0, "message": {"role": "assistant", "content": c.text},
                   "logprobs": null, "finish_reason": finish}),
        ),
        Shape::Completion => (
            format!("cmpl-{}", uuid::Uuid::new_v4().simple()),
            "text_completion",
            json!({"index": 0, "text": c.text, "logprobs": null, "finish_reason": finish}),
        ),
    };
    Ok(marked(
        Json(json!({
            "id": id,
            "object": object,
            "created": now(),
            "model": model,
            "system_fingerprint": null,
            "choices": [choice],
            "usage": usage(&c.usage),
            "civia": marking,
        }))
        .into_response(),
        &pii,
        kept_id.as_deref(),
    ))
}

pub async fn chat_completions(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    body: Body,
) -> Result<Response, ApiError> {
    let body = read_body(body, st.limits.max_body_bytes).await?;
    if let Some(t) = ext.get::<Arc<UsageTicket>>() {
        t.set_prompt(&body);
    }
    let req: ChatRequest = parse_json(&body)?;
    let common: CommonSampling = parse_json(&body)?;
    check_model(&st, &ext, &req.model)?;
    check_chat_unsupported(&req)?;
    let default_max = st.limits.default_max_tokens.min(st.limits.max_tokens);
    let params = sampling(&st, &common, req.max_completion_tokens, default_max)?;
    let messages = chat_messages(&st, &req)?;
    let opts: CiviaBody = parse_json(&body)?;
    let keep = crate::history::prepare_keep(&st, &ext, opts.civia, &messages).await?;
    let prompt = with_system_prompt(&st, messages);
    let include_usage = req
        .stream_options
        .as_ref()
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    respond(
        &st,
        &ext,
        Shape::Chat,
        prompt,
        params,
        req.model,
        req.stream == Some(true),
        include_usage,
        keep,
    )
    .await
}

pub async fn completions(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    body: Body,
) -> Result<Response, ApiError> {
    let body = read_body(body, st.limits.max_body_bytes).await?;
    if let Some(t) = ext.get::<Arc<UsageTicket>>() {
        t.set_prompt(&body);
    }
    let req: CompletionRequest = parse_json(&body)?;
    let common: CommonSampling = parse_json(&body)?;
    check_model(&st, &ext, &req.model)?;
    if req.echo == Some(true) {
        return Err(ApiError::unsupported("echo", "`echo` is not supported."));
    }
    if req.best_of.is_some_and(|Int(b)| b != 1) {
        return Err(ApiError::unsupported("best_of", "`best_of` must be 1."));
    }
    if req.suffix.as_ref().is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::unsupported(
            "suffix",
            "`suffix` (insertion) is not supported.",
        ));
    }
    if req.logprobs.is_some_and(|Int(n)| n > 0) {
        return Err(ApiError::unsupported(
            "logprobs",
            "`logprobs` is not supported.",
        ));
    }
    let text = match &req.prompt {
        Value::String(s) => s.clone(),
        Value::Array(items) if items.len() == 1 && items[0].is_string() => {
            items[0].as_str().unwrap_or_default().to_string()
        }
        Value::Array(items) if items.len() > 1 && items.iter().all(Value::is_string) => {
            return Err(ApiError::unsupported(
                "prompt",
                "One prompt per request: send a single string.",
            ))
        }
        _ => {
            return Err(ApiError::bad_request(
                "`prompt` must be a string (token arrays are not supported).",
                Some("prompt".into()),
            ))
        }
    };
    check_prompt_length(&st, std::iter::once(text.as_str()), "prompt")?;
    let opts: CiviaBody = parse_json(&body)?;
    if opts.civia.is_some() {
        return Err(ApiError::unsupported(
            "civia",
            "History (`civia`) is kept for chat completions only.",
        ));
    }
    // OpenAI's default for this endpoint is 16 tokens.
    let params = sampling(&st, &common, None, 16.min(st.limits.max_tokens))?;
    let include_usage = req
        .stream_options
        .as_ref()
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    respond(
        &st,
        &ext,
        Shape::Completion,
        Prompt::Text { text },
        params,
        req.model,
        req.stream == Some(true),
        include_usage,
        None,
    )
    .await
}
