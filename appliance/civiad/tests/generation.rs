//! End-to-end generation on real models through the HTTP API.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions fail loudly

mod common;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

fn paris_request(stream: bool) -> Value {
    json!({
        "model": SMOL,
        "temperature": 0,
        "stream": stream,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What is the capital of France?"}
        ]
    })
}

#[tokio::test]
async fn smollm2_answers_paris_with_usage() {
    let d = Daemon::start(Setup::model(SMOL)).await;
    let (status, body) = d.chat(paris_request(false)).await;
    assert_eq!(status, 200, "{body}");
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(content.contains("Paris"), "{content}");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], SMOL);
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    let u = &body["usage"];
    assert!(u["prompt_tokens"].as_u64().unwrap() > 10);
    assert!(u["completion_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        u["total_tokens"].as_u64().unwrap(),
        u["prompt_tokens"].as_u64().unwrap() + u["completion_tokens"].as_u64().unwrap()
    );
    // The system prompt given replaces SmolLM2's default one (the template's own logic):
    // without it the prompt is longer (default system prompt injected).
    let (_, no_sys) = d
        .chat(json!({"model": SMOL, "temperature": 0, "max_tokens": 1,
                     "messages": [{"role": "user", "content": "What is the capital of France?"}]}))
        .await;
    assert!(
        no_sys["usage"]["prompt_tokens"].as_u64().unwrap() > u["prompt_tokens"].as_u64().unwrap(),
        "default system prompt not injected: {no_sys}"
    );
}

#[tokio::test]
async fn smollm2_streams_the_same_answer() {
    let d = Daemon::start(Setup::model(SMOL)).await;
    let (_, whole) = d.chat(paris_request(false)).await;
    let mut req = paris_request(true);
    req["stream_options"] = json!({"include_usage": true});
    let resp = d
        .http
        .post(format!("{}/v1/chat/completions", d.base))
        .json(&req)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut sse = SseReader::new(resp);
    let mut text = String::new();
    let mut chunks = Vec::new();
    let mut done = false;
    while let Some(data) = sse.next().await {
        if data == "[DONE]" {
            done = true;
            break;
        }
        let v: Value = serde_json::from_str(&data).unwrap();
        assert_eq!(v["object"], "chat.completion.chunk");
        if let Some(c) = v["choices"][0]["delta"]["content"].as_str() {
            text.push_str(c);
        }
        chunks.push(v);
    }
    assert!(done, "no [DONE]");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let finish = &chunks[chunks.len() - 2]["choices"][0]["finish_reason"];
    assert_eq!(finish, "stop");
    let usage = &chunks[chunks.len() - 1]["usage"];
    assert_eq!(chunks[chunks.len() - 1]["choices"], json!([]));
    for k in ["prompt_tokens", "completion_tokens", "total_tokens"] {
        assert_eq!(usage[k], whole["usage"][k], "{k}");
    }
    // The second run of the same prompt reuses its cached prefix (all but the last token).
    assert_eq!(
        usage["prompt_tokens_details"]["cached_tokens"].as_u64(),
        usage["prompt_tokens"].as_u64().map(|n| n - 1)
    );
    assert_eq!(
        text,
        whole["choices"][0]["message"]["content"].as_str().unwrap()
    );
    assert!(chunks.len() > 4, "not streamed token by token");
}

#[tokio::test]
async fn max_tokens_stop_sequences_and_seed() {
    let d = Daemon::start(Setup::model(SMOL)).await;
    let mut req = paris_request(false);
    req["max_tokens"] = json!(3);
    let (_, b) = d.chat(req).await;
    assert_eq!(b["choices"][0]["finish_reason"], "length");
    assert_eq!(b["usage"]["completion_tokens"], 3);

    let mut req = paris_request(false);
    req["stop"] = json!(["Paris"]);
    let (_, b) = d.chat(req).await;
    let content = b["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(b["choices"][0]["finish_reason"], "stop");
    assert!(
        !content.contains("Paris") && content.starts_with("The capital"),
        "{content}"
    );

    let sampled = json!({"model": SMOL, "temperature": 0.9, "top_p": 0.95, "seed": 1234, "max_tokens": 24,
                         "messages": [{"role": "user", "content": "Write a poem about the sea."}]});
    let (_, a) = d.chat(sampled.clone()).await;
    let (_, b) = d.chat(sampled).await;
    assert_eq!(a["choices"][0]["message"], b["choices"][0]["message"]);
}

#[tokio::test]
async fn legacy_completions_endpoint() {
    let d = Daemon::start(Setup::model(SMOL)).await;
    let (s, b) = d
        .post(
            "/v1/completions",
            &json!({"model": SMOL, "prompt": "The capital of France is", "temperature": 0}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["object"], "text_completion");
    assert!(
        b["choices"][0]["text"].as_str().unwrap().contains("Paris"),
        "{b}"
    );
    // OpenAI's default max_tokens for this endpoint is 16.
    assert!(b["usage"]["completion_tokens"].as_u64().unwrap() <= 16);
    assert_eq!(b["usage"]["prompt_tokens"], 5);
}

#[tokio::test]
async fn models_are_listed_and_named() {
    let d = Daemon::start(Setup::model(SMOL)).await;
    let r: Value = d
        .http
        .get(format!("{}/v1/models", d.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["object"], "list");
    assert_eq!(r["data"][0]["id"], SMOL);
    let r = d
        .http
        .get(format!("{}/v1/models/{SMOL}", d.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = d
        .http
        .get(format!("{}/v1/models/gpt-4", d.base))
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    assert_openai_error(s, &r.json().await.unwrap(), 404);
    let mut req = paris_request(false);
    req["model"] = json!("gpt-4o");
    let (s, b) = d.chat(req).await;
    assert_openai_error(s, &b, 404);
    assert_eq!(b["error"]["code"], "model_not_found");
}

#[tokio::test]
async fn client_disconnect_cancels_generation() {
    let mut s = Setup::model(SMOL);
    s.model_extra = "n_parallel = 1".into();
    let d = Daemon::start(s).await;
    let req = json!({"model": SMOL, "stream": true, "max_tokens": 3000, "temperature": 0.8, "seed": 7,
                     "messages": [{"role": "user", "content": "Write a very long story about a cat."}]});
    let resp = d
        .http
        .post(format!("{}/v1/chat/completions", d.base))
        .json(&req)
        .send()
        .await
        .unwrap();
    let mut sse = SseReader::new(resp);
    for _ in 0..3 {
        sse.next().await.expect("chunk");
    }
    drop(sse);
    // One sequence at a time (n_parallel = 1): this only completes if the abandoned
    // 3000-token generation was cancelled.
    let (s, b) = tokio::time::timeout(Duration::from_secs(60), d.chat(paris_request(false)))
        .await
        .expect("the abandoned generation still occupies the worker");
    assert_eq!(s, 200, "{b}");
}

#[tokio::test]
async fn tiny_mistral_uses_its_gguf_template_and_fallback_works() {
    for (id, template) in [(TINY, "gguf"), (TINY_NO_TEMPLATE, "mistral_fallback")] {
        let d = Daemon::start(Setup::model(id)).await;
        let h = d.health().await;
        assert_eq!(h["model"]["chat_template"], template, "{h}");
        let ask =
            |msgs: Value| json!({"model": id, "max_tokens": 8, "temperature": 0, "messages": msgs});
        let (s, with_sys) = d
            .chat(ask(json!([{"role": "system", "content": "Sois bref."}, {"role": "user", "content": "Bonjour"}])))
            .await;
        assert_eq!(s, 200, "{with_sys}");
        let (_, without) = d
            .chat(ask(json!([{"role": "user", "content": "Bonjour"}])))
            .await;
        // The system prompt reaches the model (it is not dropped as llama.cpp's matcher does).
        assert!(
            with_sys["usage"]["prompt_tokens"].as_u64()
                > without["usage"]["prompt_tokens"].as_u64(),
            "{with_sys} {without}"
        );
        // Greedy decoding is deterministic across requests (KV cache cleared between them).
        let (_, again) = d
            .chat(ask(json!([{"role": "user", "content": "Bonjour"}])))
            .await;
        assert_eq!(again["choices"], without["choices"]);
    }
}

#[tokio::test]
async fn prompt_longer_than_the_context_is_refused() {
    let mut s = Setup::model(TINY);
    s.model_extra = "context_length = 256".into();
    let d = Daemon::start(s).await;
    // llama.cpp rounds the window up to a multiple of 256; /health reports the real one.
    let n_ctx = d.health().await["model"]["context_length"]
        .as_u64()
        .unwrap();
    assert_eq!(n_ctx, 256);
    let long = "bonjour ".repeat(400);
    let (s, b) = d
        .chat(json!({"model": TINY, "messages": [{"role": "user", "content": long}]}))
        .await;
    assert_openai_error(s, &b, 400);
    assert_eq!(b["error"]["code"], "context_length_exceeded");
    // Generation is cut at the end of the window, with finish_reason "length".
    let (s, b) = d
        .chat(json!({"model": TINY, "max_tokens": 4000, "temperature": 0, "messages": [{"role": "user", "content": "Bonjour"}]}))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["choices"][0]["finish_reason"], "length");
    let u = &b["usage"];
    assert_eq!(u["total_tokens"].as_u64(), Some(n_ctx), "{u}");
}
