//! What the box says about itself, for the administrator and the acceptance suite (which has
//! no shell on the box): `GET /admin/system` (facts read by `civia-system`) and
//! `POST /admin/system/egress-probe` (one TCP connect from the box, to check that it cannot
//! reach the Internet) and `POST /admin/system/memory-bandwidth` (the main-memory read rate
//! and, from it, the decoding speed the hardware allows for the loaded model on the CPU).
//!
//! All three need the `admin` role. The pairing code is part of the facts only on the local admin
//! socket (the console, `civia console-status`), never on a network listener. A probe only
//! connects and closes: no byte of data is sent, no name is resolved (that would itself be
//! egress); it is audited (`admin.egress_probe`) and at most `civia_system::PARALLEL_PROBES` run at once.
//! A bandwidth measurement keeps every core busy for a moment: one at a time, others get 409.

use axum::body::Body;
use axum::extract::State;
use axum::http::Extensions;
use axum::response::{IntoResponse, Response};
use axum::Json;
use civia_api::body::read_bytes;
use civia_api::error::Class;
use civia_api::extract::require;
use civia_api::{ApiError, ApiState};
use civia_auth::{Principal, Role};
use civia_system::{MeasureError, ProbeTarget, TargetError};
use serde_json::{json, Map, Value};
use std::net::SocketAddr;
use std::sync::Arc;

type Handler = Result<Response, ApiError>;

/// A probe body is a few dozen bytes.
const PROBE_BODY_LIMIT: usize = 4 * 1024;

pub(crate) async fn facts(State(st): State<Arc<ApiState>>, ext: Extensions) -> Handler {
    require(&ext, &[Role::Admin], "read the system facts")?;
    let state_dir = st.config.state_dir.clone();
    let facts = tokio::task::spawn_blocking(move || {
        let var = std::fs::canonicalize(&state_dir).unwrap_or(state_dir);
        civia_system::Collector::new("/")
            .with_var_path(var)
            .collect()
    })
    .await
    .map_err(|e| ApiError::internal(format!("system facts task failed: {e}")))?;
    let mut v = serde_json::to_value(&facts)
        .map_err(|e| ApiError::internal(format!("system facts: {e}")))?;
    let system = st.updates.as_ref().and_then(|u| u.system.as_ref().ok());
    v["civiad_version"] = json!(env!("CARGO_PKG_VERSION"));
    v["booted_slot"] = json!(system.map(|c| c.booted.name()));
    v["running_version"] = json!(system.map(|c| c.running.to_string()));
    v["trust"] = json!(st.trust);
    // Whoever can open the admin socket is root-equivalent on the box: the console shows the
    // code there. A network caller never sees it, not even an administrator.
    if matches!(ext.get::<Principal>(), Some(Principal::LocalAdmin)) {
        v["pairing_code"] = json!(st.auth.pairing_code());
    }
    Ok(Json(v).into_response())
}

fn invalid(param: &str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message, Some(param.to_string()))
}

/// `{"address": "IP:PORT", "timeout_ms": 1..=5000}`, with messages naming the field.
fn parse_probe(body: &[u8]) -> Result<ProbeTarget, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_json(format!("the request body is not valid JSON: {e}")))?;
    let Value::Object(map) = v else {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object: {\"address\": \"IP:PORT\", \"timeout_ms\": 1 to 5000}",
            None,
        ));
    };
    probe_fields(&map)
}

fn probe_fields(map: &Map<String, Value>) -> Result<ProbeTarget, ApiError> {
    if let Some(k) = map
        .keys()
        .find(|k| !["address", "timeout_ms"].contains(&k.as_str()))
    {
        let shown: String = k.chars().filter(|c| !c.is_control()).take(64).collect();
        return Err(invalid(
            &shown,
            format!("unknown field `{shown}`: only `address` and `timeout_ms` are accepted"),
        ));
    }
    let form = "`address` must be an IP address and a port, for example 192.0.2.10:443 or \
                [2001:db8::1]:443 (no name: the box resolves no name for a probe)";
    let address: SocketAddr = match map.get("address") {
        Some(Value::String(s)) => s.trim().parse().map_err(|_| invalid("address", form))?,
        Some(_) => return Err(invalid("address", form)),
        None => return Err(invalid("address", "`address` (IP:PORT) is required")),
    };
    let timeout_ms = match map.get("timeout_ms") {
        None | Some(Value::Null) => None,
        // Not a whole number of milliseconds: refused like 0, after the address is checked.
        Some(v) => Some(v.as_u64().unwrap_or(0)),
    };
    ProbeTarget::new(address, timeout_ms).map_err(target_error)
}

fn target_error(e: TargetError) -> ApiError {
    match e {
        TargetError::Address(e) => invalid("address", format!("address refused: {e}")),
        TargetError::Timeout => invalid(
            "timeout_ms",
            format!(
                "`timeout_ms` must be an integer between 1 and {}",
                civia_system::max_probe_timeout_ms()
            ),
        ),
    }
}

fn measure_error(e: MeasureError) -> ApiError {
    match e {
        MeasureError::Busy => ApiError::of(
            Class::Conflict,
            "measurement_running",
            "a bandwidth measurement is already running: retry in a few seconds",
        ),
        MeasureError::Failed(e) => ApiError::of(
            Class::Unavailable,
            "measurement_failed",
            format!("the memory bandwidth measurement failed: {e}"),
        ),
        MeasureError::Task(e) => ApiError::internal(e),
    }
}

pub(crate) async fn egress_probe(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    b: Body,
) -> Handler {
    require(&ext, &[Role::Admin], "probe egress from the box")?;
    let probe = parse_probe(&read_bytes(b, PROBE_BODY_LIMIT).await?)?;
    let result = probe.run().await.map_err(measure_error)?;
    log::info!(
        "egress probe to {} by {}: connected={} error={:?}",
        probe.address,
        civia_api::extract::principal(&ext)?.name(),
        result.connected,
        result.error
    );
    let detail = json!({
        "address": probe.address.to_string(), "timeout_ms": probe.timeout_ms,
        "connected": result.connected, "error": result.error,
    });
    st.audit_admin(&ext, "admin.egress_probe", None, detail)
        .await?;
    Ok(Json(json!({"connected": result.connected, "error": result.error})).into_response())
}

/// Measures the main-memory read rate with every core and divides it by the loaded model's
/// weight bytes: each decoded token reads every weight once, so on the CPU that quotient bounds
/// the tokens per second of one sequence. With layers on a GPU (as the worker reported when
/// it loaded the model) the bound is the GPU memory's, which the box does not measure
/// (`null`).
pub(crate) async fn memory_bandwidth(State(st): State<Arc<ApiState>>, ext: Extensions) -> Handler {
    require(&ext, &[Role::Admin], "measure the memory bandwidth")?;
    let memory = civia_system::measure_bandwidth()
        .await
        .map_err(measure_error)?;
    // Where the worker put the layers (it reports llama.cpp's devices when it loads).
    let model = st.supervisor.status().model;
    let weights = model.as_ref().map(|m| m.size_bytes);
    let gpu_layers = model.as_ref().map_or(0, |m| m.gpu_layers);
    let on_gpu = gpu_layers > 0;
    let bound = civia_system::decode_bound(&memory, weights, gpu_layers);
    log::info!(
        "memory read bandwidth {:.2} GB/s ({} threads), decode bound {:?} tokens/s",
        memory.bytes_per_second as f64 / 1e9,
        memory.threads,
        bound
    );
    Ok(Json(json!({
        "memory": memory,
        "model": {
            "id": st.model_id,
            "weights_bytes": weights,
            "gpu_layers": gpu_layers,
            "devices": model.map(|m| m.devices).unwrap_or_default(),
        },
        "device": if on_gpu { "gpu" } else { "cpu" },
        "decode_tokens_per_second_bound": bound,
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<ProbeTarget, ApiError> {
        parse_probe(body.as_bytes())
    }

    #[test]
    fn probe_bodies() {
        assert_eq!(
            parse(r#"{"address": "192.0.2.10:443", "timeout_ms": 5000}"#).expect("valid"),
            ProbeTarget {
                address: "192.0.2.10:443".parse().expect("addr"),
                timeout_ms: 5000
            }
        );
        let p = parse(r#"{"address": " [2001:db8::1]:80 "}"#).expect("valid");
        assert_eq!(p.timeout_ms, civia_system::DEFAULT_PROBE_TIMEOUT_MS);
        assert!(p.address.is_ipv6());

        for (body, code, param) in [
            ("", "invalid_json", None),
            ("{bad", "invalid_json", None),
            ("\u{ff}", "invalid_json", None),
            ("[]", "invalid_value", None),
            ("null", "invalid_value", None),
            ("{}", "invalid_value", Some("address")),
            (r#"{"address": 5}"#, "invalid_value", Some("address")),
            (
                r#"{"address": "example.org:443"}"#,
                "invalid_value",
                Some("address"),
            ),
            (
                r#"{"address": "192.0.2.1"}"#,
                "invalid_value",
                Some("address"),
            ),
            (
                r#"{"address": "192.0.2.1:70000"}"#,
                "invalid_value",
                Some("address"),
            ),
            (
                r#"{"address": "192.0.2.1:0"}"#,
                "invalid_value",
                Some("address"),
            ),
            (
                r#"{"address": "0.0.0.0:80"}"#,
                "invalid_value",
                Some("address"),
            ),
            (
                r#"{"address": "224.0.0.1:80"}"#,
                "invalid_value",
                Some("address"),
            ),
            (
                r#"{"address": "192.0.2.1:80", "timeout_ms": 0}"#,
                "invalid_value",
                Some("timeout_ms"),
            ),
            (
                r#"{"address": "192.0.2.1:80", "timeout_ms": 5001}"#,
                "invalid_value",
                Some("timeout_ms"),
            ),
            (
                r#"{"address": "192.0.2.1:80", "timeout_ms": -1}"#,
                "invalid_value",
                Some("timeout_ms"),
            ),
            (
                r#"{"address": "192.0.2.1:80", "timeout_ms": 1.5}"#,
                "invalid_value",
                Some("timeout_ms"),
            ),
            (
                r#"{"address": "192.0.2.1:80", "timeout_ms": "100"}"#,
                "invalid_value",
                Some("timeout_ms"),
            ),
            (
                r#"{"address": "192.0.2.1:80", "port": 1}"#,
                "invalid_value",
                Some("port"),
            ),
        ] {
            let e = parse(body).expect_err(body);
            assert_eq!(e.status.as_u16(), 400, "{body}");
            assert_eq!(e.code, code, "{body}");
            assert_eq!(e.param.as_deref(), param, "{body}");
            assert!(!e.message.is_empty());
        }
        // A sentence that says what is expected.
        let e = parse(r#"{"address": "example.org:443"}"#).expect_err("name");
        assert!(
            e.message.contains("must be an IP address and a port"),
            "{}",
            e.message
        );
    }
}
