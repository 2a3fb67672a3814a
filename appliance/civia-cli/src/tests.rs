//! The client's wire format against an in-process Unix socket server, and the formatting.

use super::*;
use clap::Parser;
use std::io::Read;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

/// A request as the fake civiad received it.
#[derive(Debug)]
struct Seen {
    request_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

struct FakeCiviad {
    dir: PathBuf,
    socket: PathBuf,
    thread: Option<JoinHandle<Vec<Seen>>>,
}

impl FakeCiviad {
    /// Answers one connection per canned response, in order, then stops.
    fn start(responses: Vec<String>) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "civia-cli-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("admin.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let thread = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for response in responses {
                let (mut conn, _) = listener.accept().unwrap();
                seen.push(read_request(&mut conn));
                conn.write_all(response.as_bytes()).unwrap();
            }
            seen
        });
        Self {
            dir,
            socket,
            thread: Some(thread),
        }
    }

    fn requests(mut self) -> Vec<Seen> {
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for FakeCiviad {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn read_request(conn: &mut impl Read) -> Seen {
    let mut raw = Vec::new();
    let mut byte = [0u8];
    while !raw.ends_with(b"\r\n\r\n") {
        conn.read_exact(&mut byte).unwrap();
        raw.push(byte[0]);
    }
    let head = String::from_utf8(raw).unwrap();
    let mut lines = head.trim_end().split("\r\n");
    let request_line = lines.next().unwrap().to_string();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.to_string(), v.trim().to_string())
        })
        .collect();
    let mut seen = Seen {
        request_line,
        headers,
        body: Vec::new(),
    };
    let len: usize = seen.header("content-length").unwrap().parse().unwrap();
    seen.body = vec![0; len];
    conn.read_exact(&mut seen.body).unwrap();
    seen
}

fn ok(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn chunked(status: &str, body: &str) -> String {
    let (a, b) = body.split_at(body.len() / 2);
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
        a.len(),
        b.len()
    )
}

/// Runs `civia --socket SOCKET args...` with `stdin`; the output, or the error.
fn civia(socket: &Path, args: &[&str], stdin: &str) -> Result<String, Error> {
    let mut argv = vec!["civia", "--socket", socket.to_str().unwrap()];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(argv).unwrap();
    let mut out = Vec::new();
    run_at(&cli, &mut stdin.as_bytes(), &mut out, 1_700_000_000)?;
    Ok(String::from_utf8(out).unwrap())
}

const ALICE: &str = r#"{"id":3,"name":"alice","role":"agent","service":"État civil","created_at":1700000000,"disabled":false}"#;

#[test]
fn user_add_generated_password() {
    let civiad = FakeCiviad::start(vec![chunked(
        "201 Created",
        &format!(r#"{{"user":{ALICE},"password":"Gen-Pass-123"}}"#),
    )]);
    let out = civia(
        &civiad.socket,
        &[
            "user",
            "add",
            "alice",
            "--role",
            "agent",
            "--service",
            "État civil",
        ],
        "",
    )
    .unwrap();
    assert_eq!(out, "user alice created (role agent)\nGen-Pass-123\n");
    let seen = civiad.requests();
    assert_eq!(seen.len(), 1);
    let req = &seen[0];
    assert_eq!(req.request_line, "POST /admin/users HTTP/1.1");
    assert_eq!(req.header("host"), Some("localhost"));
    assert_eq!(req.header("connection"), Some("close"));
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(
        req.header("content-length"),
        Some(req.body.len().to_string().as_str())
    );
    assert_eq!(
        req.json(),
        json!({"name": "alice", "role": "agent", "service": "État civil"})
    );
}

#[test]
fn user_add_password_from_stdin() {
    let civiad = FakeCiviad::start(vec![ok("201 Created", &format!(r#"{{"user":{ALICE}}}"#))]);
    let out = civia(
        &civiad.socket,
        &[
            "user",
            "add",
            "alice",
            "--role",
            "agent",
            "--password-stdin",
        ],
        "correct horse\r\nignored\n",
    )
    .unwrap();
    assert_eq!(out, "user alice created (role agent)\n");
    let req = &civiad.requests()[0];
    assert_eq!(
        req.json(),
        json!({"name": "alice", "role": "agent", "password": "correct horse"})
    );
}

#[test]
fn empty_stdin_password_is_a_usage_error() {
    let e = civia(
        Path::new("/nonexistent/admin.sock"),
        &["user", "passwd", "alice", "--password-stdin"],
        "",
    )
    .unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(
        e.to_string().contains("no password on standard input"),
        "{e}"
    );
}

#[test]
fn key_create() {
    let civiad = FakeCiviad::start(vec![ok(
        "201 Created",
        r#"{"key":"civia-abcdef123456secret","info":{"id":7,"user":"alice","name":"laptop","prefix":"civia-abcdef","model":null,"created_at":1700000000,"expires_at":1707776000,"last_used_at":null,"revoked":false}}"#,
    )]);
    let out = civia(
        &civiad.socket,
        &[
            "key",
            "create",
            "--user",
            "alice",
            "--name",
            "laptop",
            "--expires-days",
            "90",
        ],
        "",
    )
    .unwrap();
    assert_eq!(
        out,
        "key #7 for alice (prefix civia-abcdef), shown once:\ncivia-abcdef123456secret\n"
    );
    let req = &civiad.requests()[0];
    assert_eq!(req.request_line, "POST /admin/keys HTTP/1.1");
    assert_eq!(
        req.json(),
        json!({"user": "alice", "name": "laptop", "expires_in_days": 90})
    );
}

#[test]
fn key_list_encodes_the_query_and_prints_a_table() {
    let civiad = FakeCiviad::start(vec![ok(
        "200 OK",
        r#"{"keys":[
            {"id":1,"user":"a b","name":"laptop","prefix":"civia-aaaaaa","model":null,"created_at":1690000000,"expires_at":null,"last_used_at":1699990000,"revoked":false},
            {"id":12,"user":"a b","name":"","prefix":"civia-bbbbbb","model":"mistral","created_at":1690000000,"expires_at":1690000001,"last_used_at":null,"revoked":false},
            {"id":13,"user":"a b","name":"old","prefix":"civia-cccccc","model":null,"created_at":1690000000,"expires_at":null,"last_used_at":null,"revoked":true}]}"#,
    )]);
    let out = civia(&civiad.socket, &["key", "list", "--user", "a b"], "").unwrap();
    assert_eq!(
        out,
        "\
ID  USER  NAME    PREFIX        MODEL    EXPIRES     LAST-USED   STATUS
1   a b   laptop  civia-aaaaaa  -        never       2023-11-14  active
12  a b   -       civia-bbbbbb  mistral  2023-07-22  never       expired
13  a b   old     civia-cccccc  -        never       never       revoked
"
    );
    let req = &civiad.requests()[0];
    assert_eq!(req.request_line, "GET /admin/keys?user=a%20b HTTP/1.1");
    assert_eq!(req.header("content-length"), Some("0"));
    assert!(req.body.is_empty());
}

#[test]
fn user_list_and_patch_paths() {
    let civiad = FakeCiviad::start(vec![
        ok(
            "200 OK",
            &format!(
                r#"{{"users":[{ALICE},{{"id":4,"name":"root.admin","role":"admin","service":null,"created_at":0,"disabled":true}}]}}"#
            ),
        ),
        ok(
            "200 OK",
            r#"{"user":{"id":4,"name":"root.admin","role":"admin","service":null,"created_at":0,"disabled":true}}"#,
        ),
        "HTTP/1.1 204 No Content\r\n\r\n".to_string(),
    ]);
    let out = civia(&civiad.socket, &["user", "list"], "").unwrap();
    assert_eq!(
        out,
        "\
NAME        ROLE   SERVICE     STATUS    CREATED
alice       agent  État civil  active    2023-11-14
root.admin  admin  -           disabled  1970-01-01
"
    );
    let out = civia(&civiad.socket, &["user", "disable", "root.admin"], "").unwrap();
    assert_eq!(out, "user root.admin disabled\n");
    let out = civia(&civiad.socket, &["user", "delete", ".."], "").unwrap();
    assert_eq!(out, "user .. deleted\n");
    let seen = civiad.requests();
    assert_eq!(seen[0].request_line, "GET /admin/users HTTP/1.1");
    assert_eq!(
        seen[1].request_line,
        "PATCH /admin/users/root.admin HTTP/1.1"
    );
    assert_eq!(seen[1].json(), json!({"disabled": true}));
    assert_eq!(seen[2].request_line, "DELETE /admin/users/%2E%2E HTTP/1.1");
}

#[test]
fn passwd_reset_prints_the_password_last() {
    let civiad = FakeCiviad::start(vec![ok(
        "200 OK",
        &format!(r#"{{"user":{ALICE},"password":"New-Pass-456"}}"#),
    )]);
    let out = civia(&civiad.socket, &["user", "passwd", "alice"], "").unwrap();
    assert_eq!(out.lines().last(), Some("New-Pass-456"));
    let req = &civiad.requests()[0];
    assert_eq!(req.request_line, "PATCH /admin/users/alice HTTP/1.1");
    assert_eq!(req.json(), json!({"reset_password": true}));
}

#[test]
fn quota_set_one_flag_keeps_the_other_override() {
    let quota = r#"{"user":"alice","role":"agent","override":{"requests_per_minute":10,"tokens_per_day":50000},"effective":{"requests_per_minute":10,"tokens_per_day":50000},"tokens_today":1234}"#;
    let after = r#"{"user":"alice","role":"agent","override":{"requests_per_minute":null,"tokens_per_day":50000},"effective":{"requests_per_minute":0,"tokens_per_day":50000},"tokens_today":1234}"#;
    let civiad = FakeCiviad::start(vec![ok("200 OK", quota), chunked("200 OK", after)]);
    let out = civia(
        &civiad.socket,
        &["quota", "set", "alice", "--rpm", "default"],
        "",
    )
    .unwrap();
    assert_eq!(
        out,
        "\
user:                alice (role agent)
requests per minute: unlimited (role default)
tokens per day:      50000 (override)
tokens today:        1234
"
    );
    let seen = civiad.requests();
    assert_eq!(
        seen[0].request_line,
        "GET /admin/users/alice/quota HTTP/1.1"
    );
    assert_eq!(
        seen[1].request_line,
        "PUT /admin/users/alice/quota HTTP/1.1"
    );
    assert_eq!(
        seen[1].json(),
        json!({"requests_per_minute": null, "tokens_per_day": 50000})
    );
}

#[test]
fn usage_table_and_json_passthrough() {
    let body = r#"{"by":"service","from":1699920000,"to":1700000000,"rows":[{"day":"2023-11-14","group":"État civil","requests":12,"prompt_tokens":3400,"completion_tokens":560}]}"#;
    let civiad = FakeCiviad::start(vec![ok("200 OK", body), ok("200 OK", body)]);
    let out = civia(
        &civiad.socket,
        &["usage", "--days", "7", "--by", "service"],
        "",
    )
    .unwrap();
    assert_eq!(
        out,
        "\
DAY         SERVICE     REQUESTS  PROMPT-TOKENS  COMPLETION-TOKENS
2023-11-14  État civil  12        3400           560
"
    );
    let out = civia(&civiad.socket, &["--json", "usage"], "").unwrap();
    assert_eq!(out, format!("{body}\n"));
    let seen = civiad.requests();
    assert_eq!(
        seen[0].request_line,
        "GET /admin/usage?days=7&by=service HTTP/1.1"
    );
    assert_eq!(
        seen[1].request_line,
        "GET /admin/usage?days=30&by=model HTTP/1.1"
    );
}

#[test]
fn status_is_key_value_lines() {
    let civiad = FakeCiviad::start(vec![ok(
        "200 OK",
        r#"{"version":"0.1.0","model":"mistral","worker":{"phase":"ready","started_at":1700000000},"users":3,"tls":null}"#,
    )]);
    let out = civia(&civiad.socket, &["status"], "").unwrap();
    assert_eq!(
        out,
        "\
model:             mistral
tls:               -
users:             3
version:           0.1.0
worker.phase:      ready
worker.started_at: 2023-11-14 22:13:20 UTC
"
    );
}

/// `GET /admin/system` of a provisioned box as civiad answers it on the admin socket.
const SYSTEM_FACTS: &str = r#"{"civiad_version":"0.1.0","booted_slot":"b","running_version":"1.4.2",
"listening":[{"protocol":"tcp","address":"0.0.0.0","port":443}],
"addresses":["192.168.1.20","fd00::14"],
"root":{"mount_point":"/","source":"/dev/mapper/root","fs_type":"erofs","device":"dm-0","dm_name":"root","read_only":true,"verity":true,"luks2":false},
"usr":{"mount_point":"/usr","source":"/dev/mapper/usr","fs_type":"erofs","device":"dm-1","dm_name":"usr","read_only":true,"verity":true,"luks2":false},
"var":{"path":"/var/lib/civia","mount_point":"/var","source":"/dev/mapper/civia-var","fs_type":"ext4","device":"dm-2","dm_name":"civia-var","read_only":false,"verity":false,"luks2":true,"unlock_method":"tpm2"},
"tpm":{"present":true,"version_major":2},"secure_boot":true,
"kernel":{"release":"6.12.43","cmdline_roothash":false,"cmdline_usrhash":true,"lockdown":"integrity"},
"gpu":[],"image":{"id":"civia","version":"1.4.2"},"pairing_code":"K7QM-3XPA",
"trust":{"ca_fingerprint_sha256":"AB:CD:EF:01","ca_not_after":"2029-12-07T10:00:00Z","secrets_protection":"tpm","secrets_message":"sealed"}}"#;

#[test]
fn console_status_is_a_stable_french_block() {
    let civiad = FakeCiviad::start(vec![ok("200 OK", SYSTEM_FACTS)]);
    let out = civia(&civiad.socket, &["console-status"], "").unwrap();
    assert_eq!(
        out,
        "\
Civia — état de la box
Version : 1.4.2 (civiad 0.1.0)
Emplacement démarré : b
Adresse IP : 192.168.1.20
Adresse IP : fd00::14
Chiffrement /var : oui (LUKS2)
Déverrouillage /var : TPM2
TPM : oui (TPM 2.0)
Démarrage sécurisé : oui
Clés de la box : scellées par le TPM
Autorité de certification (AC) de la box, valable jusqu'au 2029-12-07
Empreinte SHA-256 de l'AC (à comparer avant de l'installer) :
  AB:CD:EF:01
Code d'appairage : K7QM-3XPA
"
    );
    assert_eq!(
        civiad.requests()[0].request_line,
        "GET /admin/system HTTP/1.1"
    );
}

#[test]
fn console_status_says_what_it_does_not_know() {
    // A development machine: no image, no updates, no EFI, no TPM, a paired box.
    let facts = r#"{"civiad_version":"0.1.0","booted_slot":null,"running_version":null,
"addresses":[],"var":{"luks2":false,"unlock_method":null},"tpm":{"present":false,"version_major":null},
"secure_boot":null,"image":{"id":null,"version":null},"pairing_code":null}"#;
    let civiad = FakeCiviad::start(vec![ok("200 OK", facts), ok("200 OK", "{}")]);
    let out = civia(&civiad.socket, &["console-status"], "").unwrap();
    assert_eq!(
        out,
        "\
Civia — état de la box
Version : inconnue (civiad 0.1.0)
Emplacement démarré : inconnu
Adresse IP : aucune
Chiffrement /var : non
Déverrouillage /var : inconnu
TPM : non
Démarrage sécurisé : inconnu
Clés de la box : inconnu
Empreinte SHA-256 de l'AC : inconnue
Code d'appairage : aucun (box déjà appairée)
"
    );
    // An answer without the facts (another civiad): everything unknown, nothing invented.
    let out = civia(&civiad.socket, &["console-status"], "").unwrap();
    assert!(out.contains("Chiffrement /var : inconnu\n"), "{out}");
    assert!(out.contains("TPM : inconnu\n"), "{out}");
    assert!(out.contains("Code d'appairage : inconnu\n"), "{out}");
}

#[test]
fn console_status_json_and_no_escape_sequences() {
    let hostile = r#"{"image":{"version":"1.0\u001b[2J"},"addresses":["10.0.0.1\u0007"],"pairing_code":"AB\nCD"}"#;
    let civiad = FakeCiviad::start(vec![ok("200 OK", hostile), ok("200 OK", SYSTEM_FACTS)]);
    let out = civia(&civiad.socket, &["console-status"], "").unwrap();
    assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
    assert!(out.contains("Version : 1.0[2J\n"), "{out}");
    assert!(out.contains("Code d'appairage : ABCD\n"), "{out}");
    let out = civia(&civiad.socket, &["--json", "console-status"], "").unwrap();
    assert_eq!(out, format!("{SYSTEM_FACTS}\n"));
}

#[test]
fn refusal_is_exit_1_with_message_and_code() {
    let civiad = FakeCiviad::start(vec![
        ok(
            "409 Conflict",
            r#"{"error":{"message":"user alice already exists","type":"invalid_request_error","code":"user_exists","param":"name"}}"#,
        ),
        "HTTP/1.1 404 Not Found\r\ncontent-length: 9\r\n\r\nnot found".to_string(),
    ]);
    let e = civia(
        &civiad.socket,
        &["user", "add", "alice", "--role", "agent"],
        "",
    )
    .unwrap_err();
    assert_eq!(e.exit_code(), 1);
    assert_eq!(e.to_string(), "user alice already exists (user_exists)");
    let e = civia(&civiad.socket, &["key", "revoke", "99"], "").unwrap_err();
    assert_eq!(e.exit_code(), 1);
    assert_eq!(
        e.to_string(),
        "civiad answered HTTP 404: not found (http_404)"
    );
    assert_eq!(
        civiad.requests()[1].request_line,
        "DELETE /admin/keys/99 HTTP/1.1"
    );
}

#[test]
fn unreachable_socket_is_exit_2() {
    let e = civia(Path::new("/nonexistent/civia/admin.sock"), &["status"], "").unwrap_err();
    assert_eq!(e.exit_code(), 2);
    let message = e.to_string();
    assert!(
        message.starts_with("cannot reach civiad's admin socket /nonexistent/civia/admin.sock: ")
            && message.ends_with(" — is civiad running?"),
        "{message}"
    );
}

#[test]
fn missing_config_is_exit_2() {
    let cli = Cli::try_parse_from(["civia", "status"]).unwrap();
    let e = run_at(&cli, &mut io::empty(), &mut Vec::new(), 0).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("--config FILE is required"));
    let cli =
        Cli::try_parse_from(["civia", "--config", "/nonexistent/civia.toml", "status"]).unwrap();
    let e = run_at(&cli, &mut io::empty(), &mut Vec::new(), 0).unwrap_err();
    assert!(matches!(e, Error::Config(_)));
    assert_eq!(e.exit_code(), 2);
}

#[test]
fn truncated_answer_is_a_clear_error() {
    let civiad = FakeCiviad::start(vec![
        "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"users\":[".to_string(),
    ]);
    let e = civia(&civiad.socket, &["user", "list"], "").unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("truncated"), "{e}");
}

#[test]
fn knowledge_import_sends_the_documents_of_a_folder_and_skips_the_rest() {
    let folder = tempfile::tempdir().unwrap();
    let d = folder.path();
    std::fs::create_dir_all(d.join("Urbanisme/PLU")).unwrap();
    std::fs::write(d.join("arrêté 12.pdf"), b"%PDF-1.4 a").unwrap();
    std::fs::write(d.join("Urbanisme/PLU/règlement.docx"), b"PK docx").unwrap();
    std::fs::write(d.join("Urbanisme/notes.txt"), b"notes").unwrap();
    std::fs::write(d.join(".cache.txt"), b"hidden").unwrap();
    std::fs::write(d.join("Thumbs.db"), b"junk").unwrap();
    std::fs::write(d.join("setup.exe"), b"MZ").unwrap();
    std::os::unix::fs::symlink("/etc/shadow", d.join("shadow.txt")).unwrap();
    let civiad = FakeCiviad::start(vec![
        ok(
            "202 Accepted",
            r#"{"object":"document","id":41,"status":"queued"}"#,
        ),
        ok(
            "409 Conflict",
            r#"{"error":{"message":"Ce fichier est déjà dans la collection.","type":"invalid_request_error","code":"duplicate_document"}}"#,
        ),
        ok(
            "400 Bad Request",
            r#"{"error":{"message":"Le fichier est vide.","type":"invalid_request_error","code":"invalid_value"}}"#,
        ),
    ]);
    let e = civia(
        &civiad.socket,
        &[
            "knowledge",
            "import",
            d.to_str().unwrap(),
            "--collection",
            "7",
            "--date",
            "2024-03-01",
        ],
        "",
    )
    .unwrap_err();
    assert_eq!(e.exit_code(), 1, "{e}");
    let seen = civiad.requests();
    let lines: Vec<&str> = seen.iter().map(|s| s.request_line.as_str()).collect();
    assert_eq!(
        lines,
        [
            "POST /admin/knowledge/collections/7/documents?name=r%C3%A8glement.docx&date=2024-03-01 HTTP/1.1",
            "POST /admin/knowledge/collections/7/documents?name=notes.txt&date=2024-03-01 HTTP/1.1",
            "POST /admin/knowledge/collections/7/documents?name=arr%C3%AAt%C3%A9%2012.pdf&date=2024-03-01 HTTP/1.1",
        ]
    );
    assert_eq!(seen[0].body, b"PK docx");
    assert_eq!(seen[2].body, b"%PDF-1.4 a");
}

#[test]
fn knowledge_import_stops_when_the_collection_is_not_there() {
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(folder.path().join("a.txt"), b"a").unwrap();
    std::fs::write(folder.path().join("b.txt"), b"b").unwrap();
    let civiad = FakeCiviad::start(vec![ok(
        "404 Not Found",
        r#"{"error":{"message":"Collection introuvable.","type":"not_found_error","code":"collection_not_found"}}"#,
    )]);
    let e = civia(
        &civiad.socket,
        &[
            "knowledge",
            "import",
            folder.path().to_str().unwrap(),
            "--collection",
            "3",
        ],
        "",
    )
    .unwrap_err();
    assert!(e.to_string().contains("collection_not_found"), "{e}");
    assert_eq!(civiad.requests().len(), 1);
}
