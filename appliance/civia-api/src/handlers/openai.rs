//! `/v1/chat/completions` and `/v1/completions`: reading, authorising, metering, streaming
//! and keeping; the OpenAI protocol itself (validation, shapes) is `civia-openai`'s.

use crate::body::{parse_json, read_body};
use crate::generation::{
    civia_marking, collect, leak_warning, marked, not_kept, with_system_prompt, LEAK_NOTICE,
};
use crate::history::HistoryOptions;
use crate::{ApiError, ApiState};
use axum::body::Body;
use axum::extract::State;
use axum::http::Extensions;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use civia_auth::Keep;
use civia_ipc::{Constraint, Prompt, SamplingParams};
use civia_metering::{StreamGuard, UsageTicket};
use civia_openai::tools::{calls_json, opens_calls, parse_calls, Call};
use civia_openai::{
    choice, finish_str, tool_calls_choice, usage, ChatRequest, CiviaBody, CommonSampling,
    CompletionRequest, Envelope, Limits, Shape,
};
use civia_supervisor::{Event, Generation};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::convert::Infallible;
use std::sync::Arc;

/// The request limits of `[api]` and `[guard]`.
fn limits(st: &ApiState) -> Limits {
    let l = &st.limits;
    Limits {
        max_messages: l.max_messages,
        max_tokens: l.max_tokens,
        default_max_tokens: l.default_max_tokens,
        max_stop_sequences: l.max_stop_sequences,
        max_stop_bytes: l.max_stop_bytes,
        max_prompt_chars: st.config.guard.max_prompt_chars,
    }
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

/// OpenAI's `tool_calls` of `calls`, each with a fresh id, recorded for the audit (name
/// and arguments' hash).
fn answer_calls(calls: &[Call], ticket: Option<&Arc<UsageTicket>>) -> Value {
    let ids: Vec<String> = calls
        .iter()
        .map(|_| format!("call_{}", uuid::Uuid::new_v4().simple()))
        .collect();
    if let Some(t) = ticket {
        for c in calls {
            t.record_tool_call(&c.name, &c.arguments);
        }
    }
    calls_json(calls, &ids)
}

/// How a streamed answer that may call tools is still held back.
enum Held {
    /// No tools offered, or the answer is text: each delta goes out as it comes.
    Through,
    /// Tools offered, nothing but whitespace yet: held until the first character says.
    Undecided(String),
    /// The answer opened with `[`: tool calls, held whole and sent as one delta at the end.
    Calls(String),
}

/// The chunks of a streamed answer, in the request's shape.
#[allow(clippy::too_many_arguments)]
fn stream_response(
    env: Envelope,
    mut generation: Generation,
    include_usage: bool,
    ticket: Option<Arc<UsageTicket>>,
    pii: Vec<civia_guard::PiiKind>,
    keep: Option<Keep>,
    st: Arc<ApiState>,
    search_results: Option<Value>,
    callable: Arc<[String]>,
) -> Response {
    let kept_id = keep.as_ref().map(|k| k.id.clone());
    let mut marking = civia_marking(&st, &pii, kept_id.as_deref());
    let shape = env.shape;
    let chunk = move |env: &Envelope, choices: Value, usage: Option<Value>| {
        SseEvent::default().data(env.chunk(choices, include_usage, usage).to_string())
    };
    let stream = async_stream::stream! {
        let guard = StreamGuard(ticket);
        let mut keep = keep;
        let mut output = Sha256::new();
        let mut answer = String::new();
        let mut scanner = st.leak_guard.as_deref().map(civia_guard::LeakGuard::scanner);
        let mut leaked = false;
        let mut held = if callable.is_empty() { Held::Through } else { Held::Undecided(String::new()) };
        if let Shape::Chat = shape {
            let mut first = env.chunk(json!([choice(shape, Some(""), true, None)]), include_usage, None);
            if let Some(results) = &search_results {
                first["search_results"] = results.clone();
            }
            yield Ok::<_, Infallible>(SseEvent::default().data(first.to_string()));
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
                    let text = match &mut held {
                        Held::Through => text,
                        Held::Calls(buf) => {
                            buf.push_str(&text);
                            continue;
                        }
                        Held::Undecided(buf) => {
                            buf.push_str(&text);
                            match opens_calls(buf) {
                                None => continue,
                                Some(true) => {
                                    held = Held::Calls(std::mem::take(buf));
                                    continue;
                                }
                                Some(false) => {
                                    let t = std::mem::take(buf);
                                    held = Held::Through;
                                    t
                                }
                            }
                        }
                    };
                    yield Ok(chunk(&env, json!([choice(shape, Some(&text), false, None)]), None));
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
                    let mut finish = if leaked { "content_filter" } else { finish_str(reason) };
                    match std::mem::replace(&mut held, Held::Through) {
                        Held::Through => {}
                        Held::Calls(buf) if !leaked => match parse_calls(&buf, &callable) {
                            Some(calls) => {
                                let calls = answer_calls(&calls, guard.0.as_ref());
                                finish = "tool_calls";
                                yield Ok(chunk(&env, json!([tool_calls_choice(&calls)]), None));
                            }
                            // Cut short (max_tokens): what was written, as text.
                            None => yield Ok(chunk(&env, json!([choice(shape, Some(&buf), false, None)]), None)),
                        },
                        Held::Undecided(buf) | Held::Calls(buf) => {
                            if !leaked && !buf.is_empty() {
                                yield Ok(chunk(&env, json!([choice(shape, Some(&buf), false, None)]), None));
                            }
                        }
                    }
                    if let Some(t) = &guard.0 {
                        let sha = hex::encode(std::mem::take(&mut output).finalize());
                        // The audit event is on disk before the client sees the end.
                        if let Err(e) = t.finish(u.prompt_tokens, u.completion_tokens, 200, Some(sha)).await {
                            yield Ok(SseEvent::default().data(ApiError::from(e).body().to_string()));
                            return;
                        }
                    }
                    if let Some(k) = keep.take() {
                        if k.save(&st.auth, st.model_id.clone(), std::mem::take(&mut answer)).await.is_err() {
                            not_kept(&mut marking);
                        }
                    }
                    let mut last = env.chunk(json!([choice(shape, None, false, Some(finish))]), include_usage, None);
                    last["civia"] = marking.clone();
                    yield Ok(SseEvent::default().data(last.to_string()));
                    if include_usage {
                        yield Ok(chunk(&env, json!([]), Some(usage(&u))));
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
/// collects the answer in the endpoint's shape. The model named in the answer is the served
/// one (`check_model` refused any other).
#[allow(clippy::too_many_arguments)]
async fn respond(
    st: &Arc<ApiState>,
    ext: &Extensions,
    shape: Shape,
    prompt: Prompt,
    params: SamplingParams,
    stream: bool,
    include_usage: bool,
    keep: Option<Keep>,
    search_results: Option<Value>,
    callable: Vec<String>,
) -> Result<Response, ApiError> {
    // The functions the answer may call (none: the answer is text).
    let callable: Arc<[String]> = match params.constraint {
        Some(Constraint::ToolCalls { .. }) => callable.into(),
        _ => Arc::from(Vec::new()),
    };
    let tool_calls = !callable.is_empty();
    let mut generation =
        st.supervisor
            .generate(prompt, params, &crate::extract::fairness_key(ext))?;
    wait_started(&mut generation).await.map_err(|e| {
        let mut e = on_prompt(e, shape.prompt_param());
        // A grammar the worker refused is the tools' when the answer calls tools.
        if tool_calls && e.param.as_deref() == Some("response_format") {
            e.param = Some("tools".into());
        }
        e
    })?;
    let ticket = ext.get::<Arc<UsageTicket>>().cloned();
    let pii = ticket.as_ref().map(|t| t.pii()).unwrap_or_default();
    let unique = uuid::Uuid::new_v4().simple().to_string();
    if stream {
        let env = Envelope::new(
            shape,
            &unique,
            u64::try_from(civia_base::time::now_unix()).unwrap_or(0),
            &st.model_id,
        );
        return Ok(stream_response(
            env,
            generation,
            include_usage,
            ticket,
            pii,
            keep,
            st.clone(),
            search_results,
            callable,
        ));
    }
    let c = collect(generation, st.leak_guard.as_deref()).await?;
    if c.leaked {
        log::warn!("an answer repeated the system prompt: stopped by the leak filter");
        if let Some(t) = &ticket {
            t.flag_output("system_prompt_leak");
        }
    }
    let calls = (tool_calls && !c.leaked)
        .then(|| parse_calls(&c.text, &callable))
        .flatten()
        .map(|calls| answer_calls(&calls, ticket.as_ref()));
    if let Some(t) = ticket {
        let sha = civia_base::hash::sha256_hex(&c.text);
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
        if k.save(&st.auth, st.model_id.clone(), c.text.clone())
            .await
            .is_err()
        {
            not_kept(&mut marking);
        }
    }
    let finish = if c.leaked {
        "content_filter"
    } else {
        finish_str(c.reason)
    };
    let env = Envelope::new(
        shape,
        &unique,
        u64::try_from(civia_base::time::now_unix()).unwrap_or(0),
        &st.model_id,
    );
    let mut body = match calls {
        Some(calls) => env.tool_call_completion(calls, &c.usage, marking),
        None => env.completion(&c.text, finish, &c.usage, marking),
    };
    if let Some(results) = search_results {
        body["search_results"] = results;
    }
    Ok(marked(Json(body).into_response(), &pii, kept_id.as_deref()))
}

/// Bodies are parsed in passes: the endpoint's request, the shared sampling fields, then
/// Civia's `civia` extension (each names its own wrong field).
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
    req.check_unsupported()?;
    let limits = limits(&st);
    let tools = req.tools()?;
    let params = req.sampling(&common, &limits, tools.as_ref())?;
    let mut messages = req.messages(&limits, tools.as_ref())?;
    let opts: CiviaBody<HistoryOptions> = parse_json(&body)?;
    let keep = crate::history::prepare_keep(&st, &ext, opts.civia, &messages).await?;
    let search: crate::knowledge_search::ChatSearch = parse_json(&body)?;
    let search_results = search.ground(&st, &ext, &mut messages).await?;
    let prompt = with_system_prompt(&st, messages);
    respond(
        &st,
        &ext,
        Shape::Chat,
        prompt,
        params,
        req.streams(),
        req.include_usage(),
        keep,
        search_results,
        tools.map(|t| t.callable()).unwrap_or_default(),
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
    let limits = limits(&st);
    let text = req.prompt_text(&limits)?;
    let opts: CiviaBody<HistoryOptions> = parse_json(&body)?;
    civia_openai::refuse_completion_history(opts.civia.is_some())?;
    let params = req.sampling(&common, &limits)?;
    respond(
        &st,
        &ext,
        Shape::Completion,
        Prompt::Text { text },
        params,
        req.streams(),
        req.include_usage(),
        None,
        None,
        Vec::new(),
    )
    .await
}
