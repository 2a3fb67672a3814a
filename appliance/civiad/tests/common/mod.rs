//! Test harness: starts the real `civiad` binary on a real model and stops it.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SMOL: &str = "SmolLM2-135M-Instruct.Q4_1";
pub const TINY: &str = "tiny-mistral";
pub const TINY_NO_TEMPLATE: &str = "tiny-mistral-notemplate";

pub fn model_path(id: &str) -> PathBuf {
    let dir = std::env::var_os("CIVIA_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.cache/models"));
    let p = dir.join(format!("{id}.gguf"));
    assert!(
        p.is_file(),
        "test model {} is missing: run appliance/scripts/install-models.sh",
        p.display()
    );
    p
}

pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// What goes into the generated configuration file.
#[derive(Default, Clone)]
pub struct Setup {
    pub model: String,
    pub model_path: Option<PathBuf>,
    pub api_extra: String,
    pub model_extra: String,
    pub tail: String,
    pub env: Vec<(String, String)>,
    /// Start like systemd with `WatchdogSec=`: WATCHDOG_USEC and WATCHDOG_PID (civiad's pid).
    pub watchdog_usec: Option<u64>,
}

impl Setup {
    pub fn model(id: &str) -> Self {
        Self {
            model: id.into(),
            ..Default::default()
        }
    }
}

/// The trial admin's key every daemon of these tests starts with (`CIVIA_DEV_API_KEY`),
/// unless a test sets its own.
pub const DEV_KEY: &str = "test-dev-key-0123456789";

/// A client sending `Authorization: Bearer <key>` on every request.
pub fn client_with_key(key: &str) -> reqwest::Client {
    client_builder(key).build().expect("client")
}

fn client_builder(key: &str) -> reqwest::ClientBuilder {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {key}").parse().expect("header"),
    );
    reqwest::Client::builder().default_headers(headers)
}

pub struct Daemon {
    pub child: Child,
    pub base: String,
    pub dir: tempfile::TempDir,
    /// Sends the trial admin's key.
    pub http: reqwest::Client,
    pub port: u16,
}

pub fn write_config(dir: &std::path::Path, port: u16, s: &Setup) -> PathBuf {
    let path = s.model_path.clone().unwrap_or_else(|| model_path(&s.model));
    let text = format!(
        "state_dir = {state:?}\n[api]\nlisten = \"127.0.0.1:{port}\"\n{api}\n[model]\npath = {path:?}\n{model}\n[runtime]\nrestart_backoff_initial_ms = 100\n{tail}\n",
        state = dir.join("state"),
        api = s.api_extra,
        model = s.model_extra,
        tail = s.tail,
    );
    let cfg = dir.join("civia.toml");
    std::fs::write(&cfg, text).expect("write config");
    cfg
}

pub fn civiad() -> Command {
    Command::new(env!("CARGO_BIN_EXE_civiad"))
}

impl Daemon {
    /// Starts civiad; does not wait for the model.
    pub fn spawn(s: Setup) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let cfg = write_config(dir.path(), port, &s);
        let log = std::fs::File::create(dir.path().join("civiad.log")).expect("log file");
        let mut cmd = match s.watchdog_usec {
            None => civiad(),
            Some(usec) => {
                // `exec` keeps the shell's pid, which is what WATCHDOG_PID must name.
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!(
                        "WATCHDOG_PID=$$ WATCHDOG_USEC={usec} exec \"$0\" \"$@\""
                    ))
                    .arg(env!("CARGO_BIN_EXE_civiad"));
                c
            }
        };
        cmd.arg("--config")
            .arg(&cfg)
            .env("CIVIA_DEV_API_KEY", DEV_KEY)
            .env_remove("JOURNAL_STREAM")
            .stdout(Stdio::null())
            .stderr(log);
        for (k, v) in &s.env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn civiad");
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            dir,
            http: client_with_key(DEV_KEY),
            port,
        }
    }

    /// Starts civiad and waits until the model is loaded.
    pub async fn start(s: Setup) -> Self {
        let mut d = Self::spawn(s);
        d.wait_ready(Duration::from_secs(120)).await;
        d
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("civiad.log")).unwrap_or_default()
    }

    pub async fn wait_ready(&mut self, limit: Duration) {
        let t0 = Instant::now();
        loop {
            if let Ok(r) = self.http.get(format!("{}/ready", self.base)).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "civiad exited ({status}) before ready; log:\n{}",
                    self.log()
                );
            }
            assert!(
                t0.elapsed() < limit,
                "civiad not ready after {limit:?}; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `/health` answers (the API is up, model loaded or not).
    pub async fn wait_health(&self) -> Value {
        let t0 = Instant::now();
        loop {
            if let Ok(r) = self.http.get(format!("{}/health", self.base)).send().await {
                if r.status() == 200 {
                    return r.json().await.expect("health json");
                }
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "no /health; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn health(&self) -> Value {
        self.http
            .get(format!("{}/health", self.base))
            .send()
            .await
            .expect("health")
            .json()
            .await
            .expect("health json")
    }

    /// The runtime worker's pid.
    pub fn worker_pid(&self) -> Option<i32> {
        worker_children(self.child.id())
            .into_iter()
            .find(|&c| cmdline(c).iter().any(|a| a == "runtime-worker"))
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_raw(path, serde_json::to_vec(body).expect("json"))
            .await
    }

    pub async fn post_raw(&self, path: &str, body: Vec<u8>) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("post");
        let status = r.status().as_u16();
        let text = r.text().await.expect("body");
        let v = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "raw": text }));
        (status, v)
    }

    pub async fn chat(&self, body: Value) -> (u16, Value) {
        self.post("/v1/chat/completions", &body).await
    }

    pub fn stop(&mut self) -> std::process::ExitStatus {
        // SAFETY: sending SIGTERM to our own child process.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let t0 = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                return s;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "civiad did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads an SSE response into its `data:` payloads.
pub struct SseReader {
    resp: reqwest::Response,
    buf: String,
}

impl SseReader {
    pub fn new(resp: reqwest::Response) -> Self {
        Self {
            resp,
            buf: String::new(),
        }
    }

    /// The next `data:` payload; `None` at the end of the stream.
    pub async fn next(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let event: String = self.buf.drain(..end + 2).collect();
                if let Some(data) = event
                    .lines()
                    .find_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")))
                {
                    return Some(data.to_string());
                }
                continue;
            }
            match self.resp.chunk().await {
                Ok(Some(bytes)) => self.buf.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return None,
            }
        }
    }
}

pub fn assert_openai_error(status: u16, body: &Value, want_status: u16) {
    assert_eq!(status, want_status, "unexpected status; body: {body}");
    let e = &body["error"];
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "no error message: {body}"
    );
    assert!(e["type"].is_string(), "no error type: {body}");
    assert!(e.get("code").is_some(), "no error code: {body}");
}

/// Sends an HTTP/1.1 POST over a raw socket, writing the body from another thread and ignoring
/// write errors: a server may answer (413) and close before a large body is fully sent, which
/// an ordinary client reports as a broken pipe instead of the response.
pub fn raw_post(base: &str, path: &str, headers: &str, body: Vec<u8>) -> (u16, Value) {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAuthorization: Bearer {DEV_KEY}\r\n{headers}\r\n"
    );
    stream.write_all(head.as_bytes()).expect("write head");
    let mut writer = stream.try_clone().expect("clone");
    let sender = std::thread::spawn(move || {
        for chunk in body.chunks(64 * 1024) {
            if writer.write_all(chunk).is_err() {
                return;
            }
        }
    });
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    let (status, body) = loop {
        let n = stream.read(&mut tmp).unwrap_or(0);
        buf.extend_from_slice(&tmp[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let status: u16 = text[9..12].parse().expect("status");
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len || n == 0 {
                let body = String::from_utf8_lossy(&buf[end + 4..]).into_owned();
                break (status, body);
            }
        }
        assert!(n > 0, "connection closed without a response");
    };
    drop(stream);
    let _ = sender.join();
    let v = serde_json::from_str(&body).unwrap_or_else(|_| json!({ "raw": body }));
    (status, v)
}

impl Daemon {
    /// One sample of the Prometheus metrics, by name (labels included in the name).
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text");
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no metric {name} in:\n{text}"))
    }

    /// Waits until a metric reaches at least `want`.
    pub async fn wait_metric(&self, name: &str, want: f64) {
        let t0 = Instant::now();
        while self.metric(name).await < want {
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "{name} never reached {want}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A client whose requests come from another loopback address (another "workstation").
    pub fn client_from(&self, ip: [u8; 4]) -> reqwest::Client {
        client_builder(DEV_KEY)
            .local_address(std::net::IpAddr::from(ip))
            .build()
            .expect("client")
    }

    /// Streams a chat request; returns the text, the finish reason and the final usage.
    pub async fn stream_chat(
        &self,
        http: &reqwest::Client,
        mut body: Value,
    ) -> (String, String, Value) {
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
        let resp = http
            .post(format!("{}/v1/chat/completions", self.base))
            .json(&body)
            .send()
            .await
            .expect("post");
        if resp.status() != 200 {
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            panic!("stream refused with {status}: {body}");
        }
        let mut sse = SseReader::new(resp);
        let (mut text, mut finish, mut usage) = (String::new(), String::new(), Value::Null);
        while let Some(data) = sse.next().await {
            if data == "[DONE]" {
                break;
            }
            let v: Value = serde_json::from_str(&data).expect("chunk");
            assert!(v.get("error").is_none(), "stream error: {v}");
            if let Some(c) = v["choices"][0]["delta"]["content"].as_str() {
                text.push_str(c);
            }
            if let Some(f) = v["choices"][0]["finish_reason"].as_str() {
                finish = f.to_string();
            }
            if !v["usage"].is_null() {
                usage = v["usage"].clone();
            }
        }
        (text, finish, usage)
    }

    /// Resident memory of civiad itself, in kB.
    pub fn rss_kb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}

/// The `civia` admin CLI built next to civiad.
pub fn cli_path() -> std::path::PathBuf {
    let p = std::path::Path::new(env!("CARGO_BIN_EXE_civiad")).with_file_name("civia");
    assert!(
        p.is_file(),
        "the `civia` CLI is not built next to civiad ({}): build the workspace first \
         (cargo build --release --workspace)",
        p.display()
    );
    p
}

/// Runs `civia --config <the daemon's config> ARGS`; returns (exit code, stdout, stderr).
pub fn civia(d: &Daemon, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(cli_path())
        .arg("--config")
        .arg(d.dir.path().join("civia.toml"))
        .args(args)
        .output()
        .expect("run civia");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn last_line(s: &str) -> String {
    s.lines().last().unwrap_or_default().trim().to_string()
}

/// The command line of process `pid` (empty once it is gone).
pub fn cmdline(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// The model workers among the children of `pid` (listed per thread: workers are spawned
/// from runtime threads): `civiad runtime-worker`, `civiad embed-worker`,
/// `civia-speech-worker`. civiad also runs short programs that are not workers (tesseract and
/// pdftoppm checked at start-up, document readers).
pub fn worker_children(pid: u32) -> Vec<i32> {
    children(pid)
        .into_iter()
        .filter(|&c| cmdline(c).iter().any(|a| a.ends_with("-worker")))
        .collect()
}

/// The children of process `pid`, listed per thread.
pub fn children(pid: u32) -> Vec<i32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
}
