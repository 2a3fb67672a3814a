//! Malformed, oversized and hostile requests: a clear OpenAI error each time, never a 500,
//! never a crash; the daemon keeps serving afterwards.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions fail loudly

mod common;
use common::*;
use serde_json::{json, Value};

fn ok_chat() -> Value {
    json!({"model": TINY, "max_tokens": 4, "messages": [{"role": "user", "content": "Bonjour"}]})
}

fn with(mut base: Value, key: &str, v: Value) -> Value {
    base[key] = v;
    base
}

#[tokio::test]
async fn hostile_bodies_get_clear_errors_and_the_daemon_survives() {
    let mut s = Setup::model(TINY);
    s.api_extra = "max_messages = 8\nmax_tokens = 512\nmax_body_bytes = 1048576".into();
    let d = Daemon::start(s).await;
    let chat = "/v1/chat/completions";

    // Raw bodies.
    let raw_cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("malformed JSON", b"{\"model\": ".to_vec(), 400, "invalid_json"),
        ("not an object", b"[1,2,3]".to_vec(), 400, "invalid_value"),
        ("empty body", Vec::new(), 400, "invalid_json"),
        ("invalid UTF-8", b"{\"model\":\"tiny-mistral\",\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}".to_vec(), 400, "invalid_json"),
        ("deep nesting", format!("{{\"model\":\"tiny-mistral\",\"messages\":[{{\"role\":\"user\",\"content\":\"x\"}}],\"stop\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(), 400, "invalid_json"),

    ];
    for (what, body, status, code) in raw_cases {
        let (s, b) = d.post_raw(chat, body).await;
        assert_openai_error(s, &b, status);
        assert_eq!(b["error"]["code"], code, "{what}: {b}");
    }

    // 10 MB of messages: refused from Content-Length, and while streaming a chunked body.
    let msg = json!({"role": "user", "content": "x".repeat(1024)});
    let big =
        serde_json::to_vec(&json!({"model": TINY, "messages": vec![msg; 10 * 1024]})).unwrap();
    let (s, b) = raw_post(
        &d.base,
        chat,
        &format!("Content-Length: {}\r\n", big.len()),
        big.clone(),
    );
    assert_openai_error(s, &b, 413);
    assert_eq!(b["error"]["code"], "request_too_large", "{b}");
    let mut chunked = Vec::new();
    for part in big.chunks(256 * 1024) {
        chunked.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        chunked.extend_from_slice(part);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let (s, b) = raw_post(&d.base, chat, "Transfer-Encoding: chunked\r\n", chunked);
    assert_openai_error(s, &b, 413);

    // Well-formed JSON with wrong or refused values.
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "messages not a list",
            with(ok_chat(), "messages", json!("hello")),
            400,
            "invalid_value",
        ),
        (
            "temperature a string",
            with(ok_chat(), "temperature", json!("hot")),
            400,
            "invalid_value",
        ),
        (
            "temperature out of range",
            with(ok_chat(), "temperature", json!(7)),
            400,
            "invalid_value",
        ),
        (
            "top_p zero",
            with(ok_chat(), "top_p", json!(0)),
            400,
            "invalid_value",
        ),
        (
            "negative max_tokens",
            with(ok_chat(), "max_tokens", json!(-1)),
            400,
            "invalid_value",
        ),
        (
            "huge max_tokens",
            with(ok_chat(), "max_tokens", json!(1_000_000_000_000u64)),
            400,
            "invalid_value",
        ),
        (
            "huge max_tokens beside max_completion_tokens",
            with(
                with(ok_chat(), "max_tokens", json!(1_000_000_000)),
                "max_completion_tokens",
                json!(2),
            ),
            400,
            "invalid_value",
        ),
        (
            "fractional max_tokens",
            with(ok_chat(), "max_tokens", json!(2.5)),
            400,
            "invalid_value",
        ),
        (
            "seed beyond 64 bits",
            with(ok_chat(), "seed", json!(18446744073709551616.0f64)),
            400,
            "invalid_value",
        ),
        (
            "temperature as a string",
            with(ok_chat(), "temperature", json!("0.5")),
            400,
            "invalid_value",
        ),
        (
            "max_tokens over the box limit",
            with(ok_chat(), "max_tokens", json!(513)),
            400,
            "invalid_value",
        ),
        (
            "missing model",
            json!({"messages": [{"role": "user", "content": "x"}]}),
            400,
            "invalid_value",
        ),
        (
            "missing messages",
            json!({"model": TINY}),
            400,
            "invalid_value",
        ),
        (
            "empty messages",
            with(ok_chat(), "messages", json!([])),
            400,
            "invalid_value",
        ),
        (
            "too many messages",
            with(
                ok_chat(),
                "messages",
                json!(vec![json!({"role": "user", "content": "x"}); 9]),
            ),
            400,
            "invalid_value",
        ),
        (
            "unknown role",
            with(
                ok_chat(),
                "messages",
                json!([{"role": "wizard", "content": "x"}]),
            ),
            400,
            "invalid_value",
        ),
        (
            "null content",
            with(
                ok_chat(),
                "messages",
                json!([{"role": "user", "content": null}]),
            ),
            400,
            "invalid_value",
        ),
        (
            "numeric content",
            with(
                ok_chat(),
                "messages",
                json!([{"role": "user", "content": 42}]),
            ),
            400,
            "invalid_value",
        ),
        (
            "image part",
            with(
                ok_chat(),
                "messages",
                json!([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}]),
            ),
            400,
            "unsupported_parameter",
        ),
        (
            "function message",
            with(
                ok_chat(),
                "messages",
                json!([{"role": "function", "content": "x", "name": "f"}]),
            ),
            400,
            "unsupported_parameter",
        ),
        (
            "tool message without its call id",
            with(
                ok_chat(),
                "messages",
                json!([{"role": "tool", "content": "x"}]),
            ),
            400,
            "invalid_value",
        ),
        (
            "n = 2",
            with(ok_chat(), "n", json!(2)),
            400,
            "unsupported_parameter",
        ),
        (
            "tools of another type",
            with(
                ok_chat(),
                "tools",
                json!([{"type": "retrieval", "function": {"name": "f"}}]),
            ),
            400,
            "unsupported_parameter",
        ),
        (
            "tool parameters with oneOf",
            with(
                ok_chat(),
                "tools",
                json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "oneOf": []}}}]),
            ),
            400,
            "unsupported_parameter",
        ),
        (
            "tool_choice required without tools",
            with(ok_chat(), "tool_choice", json!("required")),
            400,
            "invalid_value",
        ),
        (
            "logprobs",
            with(ok_chat(), "logprobs", json!(true)),
            400,
            "unsupported_parameter",
        ),
        (
            "json schema with an unsupported keyword",
            with(
                ok_chat(),
                "response_format",
                json!({"type": "json_schema", "json_schema": {"name": "x", "schema": {"not": {}}}}),
            ),
            400,
            "unsupported_parameter",
        ),
        (
            "logit_bias",
            with(ok_chat(), "logit_bias", json!({"42": 100})),
            400,
            "unsupported_parameter",
        ),
        (
            "stop not strings",
            with(ok_chat(), "stop", json!([1, 2])),
            400,
            "invalid_value",
        ),
        (
            "too many stops",
            with(ok_chat(), "stop", json!(["a", "b", "c", "d", "e"])),
            400,
            "invalid_value",
        ),
        (
            "huge stop",
            with(ok_chat(), "stop", json!("s".repeat(10_000))),
            400,
            "invalid_value",
        ),
        (
            "unknown model",
            with(ok_chat(), "model", json!("../../etc/passwd")),
            404,
            "model_not_found",
        ),
    ];
    for (what, body, status, code) in cases {
        let (s, b) = d.post(chat, &body).await;
        assert_openai_error(s, &b, status);
        assert_eq!(b["error"]["code"], code, "{what}: {b}");
    }

    // Legacy completions.
    let comp = |extra: Value| {
        let mut v = json!({"model": TINY, "prompt": "Bonjour", "max_tokens": 2});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    };
    for (what, body, status) in [
        (
            "token array prompt",
            comp(json!({"prompt": [1, 2, 3]})),
            400,
        ),
        ("several prompts", comp(json!({"prompt": ["a", "b"]})), 400),
        ("echo", comp(json!({"echo": true})), 400),
        ("best_of", comp(json!({"best_of": 3})), 400),
        ("suffix", comp(json!({"suffix": "fin"})), 400),
        ("logprobs", comp(json!({"logprobs": 5})), 400),
        ("n", comp(json!({"n": 4})), 400),
    ] {
        let (s, b) = d.post("/v1/completions", &body).await;
        assert_openai_error(s, &b, status);
        assert!(b["error"]["message"].is_string(), "{what}");
    }

    // Routes and methods.
    let r = d
        .http
        .get(format!("{}/v1/chat/completions", d.base))
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    assert_openai_error(s, &r.json().await.unwrap(), 405);
    let r = d
        .http
        .get(format!("{}/v1/nothing-here", d.base))
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    assert_openai_error(s, &r.json().await.unwrap(), 404);

    // What real clients send and Civia does not use is ignored, not refused.
    let tolerant = json!({
        "model": TINY, "max_tokens": 2, "user": "agent-42", "metadata": {"k": "v"}, "store": false,
        "presence_penalty": 0.5, "frequency_penalty": 0.1, "stop": null, "n": 1, "stream": false,
        "tool_choice": "none", "tools": [], "parallel_tool_calls": false, "logprobs": false,
        "response_format": {"type": "text"}, "max_completion_tokens": 3, "seed": -5,
        "messages": [
            {"role": "developer", "content": [{"type": "text", "text": "Réponds en français."}]},
            {"role": "user", "content": "Bonjour", "name": "marie"}
        ]
    });
    let (s, b) = d.chat(tolerant).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["usage"]["completion_tokens"].as_u64().unwrap(), 3);

    // After all that, the daemon is healthy and the same worker still serves.
    let h = d.health().await;
    assert_eq!(h["worker"]["phase"], "ready");
    assert_eq!(h["worker"]["restarts"], 0, "{h}");
    let (s, _) = d.chat(ok_chat()).await;
    assert_eq!(s, 200);
    assert!(!d.log().contains("panicked"), "{}", d.log());
}

#[tokio::test]
async fn dev_api_key_is_required_when_set() {
    let mut s = Setup::model(TINY);
    s.env = vec![(
        "CIVIA_DEV_API_KEY".into(),
        "sk-civia-test-0123456789".into(),
    )];
    let d = Daemon::start(s).await;
    let url = format!("{}/v1/chat/completions", d.base);
    let r = d.http.post(&url).json(&ok_chat()).send().await.unwrap();
    let st = r.status().as_u16();
    let b: Value = r.json().await.unwrap();
    assert_openai_error(st, &b, 401);
    assert_eq!(b["error"]["code"], "invalid_api_key");
    for wrong in [
        "Bearer sk-civia-test-0123456788",
        "Bearer ",
        "Basic c2s6",
        "sk-civia-test-0123456789",
    ] {
        let r = d
            .http
            .post(&url)
            .header("authorization", wrong)
            .json(&ok_chat())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{wrong}");
    }
    let r = d
        .http
        .get(format!("{}/v1/models", d.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = d
        .http
        .post(&url)
        .bearer_auth("sk-civia-test-0123456789")
        .json(&ok_chat())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Health endpoints stay open for monitoring.
    let r = d
        .http
        .get(format!("{}/health", d.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
