//! One extraction in a child process under resource limits.
//!
//! The parent ([`extract`]) starts the program it is given (civiad starts itself as
//! `civiad extract-document`) with an empty environment and these limits, set between fork
//! and exec:
//! - address space (`RLIMIT_AS`, [`Sandbox::memory_bytes`]): everything the parsers inflate
//!   or allocate, all entries and pages together — the total-inflate budget;
//! - CPU time (`RLIMIT_CPU`) and, from the parent, a wall clock ([`Sandbox::wall`]) after which
//!   the child is killed;
//! - no file may be written (`RLIMIT_FSIZE` 0), no core dump, a handful of descriptors.
//!
//! A child that is killed, runs out of memory or crashes is [`Error::Exhausted`]: the agent is
//! told the file is too complex, and nothing else on the box noticed.
//!
//! The protocol is written here (not a general IPC crate) because it is one request and one
//! answer: on stdin a little-endian `u32` length, that many bytes of JSON [`Request`], then the
//! document until end of file; on stdout one JSON [`Reply`].
//!
//! [`extract_paged`] asks the child for the pages ([`Layout`]) and then, when given [`Ocr`],
//! runs OCR from this process (the parent), each OCR program in a limited child of its own
//! (the same helper, `limited.rs`): the extraction child keeps its small budget (no files,
//! 32 descriptors, one wall clock) and OCR gets one budget per page.

use crate::limited::{self, Failure, Spec};
pub use crate::ocr::Layout;
use crate::{Error, ErrorKind, Extracted, Limits, Ocr, Paged};
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

/// How to run the extraction process.
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// The program, and the arguments that make it call [`child_main`].
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Wall-clock budget of one extraction (OCR, run afterwards by the parent, has its own:
    /// [`Ocr::page_timeout`] per page).
    pub wall: Duration,
    /// Address-space budget of the extraction process, in bytes.
    pub memory_bytes: u64,
}

/// What the parent sends before the document.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Request {
    pub hint: Option<String>,
    pub limits: Limits,
    /// Answer the pages ([`Reply::Layout`]) rather than the whole text.
    #[serde(default)]
    pub paged: bool,
}

/// The child's one answer.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    Extracted(Extracted),
    Layout(Layout),
    Refused {
        kind: ErrorKind,
        message: String,
        details: serde_json::Value,
    },
}

/// Whether a refusal's `details` from the child have the shape of [`Error::details`]: an
/// object of at most 8 scalars, a `reason` word among them, short strings. The child reads
/// hostile documents: what it says reaches the API's answer only in that shape.
fn plausible_details(d: &serde_json::Value) -> bool {
    let Some(map) = d.as_object() else {
        return false;
    };
    let word = |s: &str| {
        !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    };
    map.len() <= 8
        && map.get("reason").and_then(|r| r.as_str()).is_some_and(word)
        && map.iter().all(|(k, v)| {
            word(k)
                && match v {
                    serde_json::Value::String(s) => s.chars().count() <= 64,
                    serde_json::Value::Number(_) => true,
                    _ => false,
                }
        })
}

fn failed(reason: impl Into<String>) -> Error {
    Error::Extractor {
        reason: reason.into(),
    }
}

/// Extracts `bytes` in a child process under `sandbox`'s limits. Cheap refusals (empty,
/// too large) are answered here without a child.
pub fn extract(
    sandbox: &Sandbox,
    bytes: &[u8],
    hint: Option<&str>,
    limits: &Limits,
) -> Result<Extracted, Error> {
    match ask(sandbox, bytes, hint, limits, false)? {
        Reply::Extracted(x) => Ok(x),
        _ => Err(failed("the child answered pages to a request for text")),
    }
}

/// Extracts `bytes` page by page: the document is parsed in a child process under
/// `sandbox`'s limits (as [`extract`]); then, when `ocr` is given, this process runs OCR
/// (see `ocr.rs`) on scanned images and on the PDF pages with (nearly) no text, each program
/// in a child of its own under [`Ocr`]'s limits, for at most [`Ocr::max_pages`] pages
/// (`ocr_pages` counts them; later pages without text are left out and the result flagged
/// `truncated`). Without `ocr`, the result is [`crate::extract_paged`]'s.
pub fn extract_paged(
    sandbox: &Sandbox,
    bytes: &[u8],
    hint: Option<&str>,
    limits: &Limits,
    ocr: Option<&Ocr>,
) -> Result<Paged, Error> {
    let layout = match ask(sandbox, bytes, hint, limits, true)? {
        Reply::Layout(layout) => layout,
        _ => return Err(failed("the child answered text to a request for pages")),
    };
    match ocr {
        Some(ocr) => crate::ocr::complete(layout, bytes, limits, ocr),
        None => crate::finish(layout),
    }
}

/// Runs the child on `bytes` and decodes its answer; a refusal becomes [`Error::Reported`].
fn ask(
    sandbox: &Sandbox,
    bytes: &[u8],
    hint: Option<&str>,
    limits: &Limits,
    paged: bool,
) -> Result<Reply, Error> {
    crate::check_size(bytes, limits)?;
    let request = serde_json::to_vec(&Request {
        hint: hint.map(str::to_owned),
        limits: limits.clone(),
        paged,
    })
    .map_err(|e| failed(format!("encoding the request: {e}")))?;
    let header_len = u32::try_from(request.len()).map_err(|_| failed("request too long"))?;
    let args: Vec<&OsStr> = sandbox.args.iter().map(OsStr::new).collect();
    // The answer: the text in JSON (escapes may take several bytes per character), and for
    // pages a few bytes more per page.
    let cap = (limits.max_text_chars as u64).saturating_mul(4)
        + (limits.max_pdf_pages as u64).saturating_mul(96)
        + 64 * 1024;
    let spec = Spec {
        program: &sandbox.program,
        args: &args,
        env: &[],
        wall: sandbox.wall,
        memory_bytes: sandbox.memory_bytes,
        max_files: 32,
        max_stdout: cap,
    };
    let finished = match limited::run(&spec, &[&header_len.to_le_bytes(), &request, bytes]) {
        Ok(finished) => finished,
        Err(Failure::Spawn(e)) => {
            return Err(failed(format!(
                "starting {}: {e}",
                sandbox.program.display()
            )))
        }
        Err(Failure::TimedOut) => {
            return Err(Error::Exhausted {
                reason: format!("still running after {} s", sandbox.wall.as_secs()),
            })
        }
        Err(Failure::Wait(e)) => return Err(failed(format!("waiting for the child: {e}"))),
    };
    if !finished.status.success() {
        return Err(Error::Exhausted {
            reason: finished.describe(),
        });
    }
    if finished.overflow {
        return Err(failed(format!("the child's answer exceeds {cap} bytes")));
    }
    match serde_json::from_slice::<Reply>(&finished.stdout) {
        Ok(Reply::Refused {
            kind,
            message,
            details,
        }) if plausible_details(&details) => Err(Error::Reported {
            kind,
            // The child's English sentence reaches logs and answers: bounded, one line.
            message: message
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .take(300)
                .collect(),
            details,
        }),
        Ok(Reply::Refused { details, .. }) => Err(failed(format!(
            "the child's refusal has malformed details: {}",
            details.to_string().chars().take(200).collect::<String>()
        ))),
        Ok(reply) => Ok(reply),
        Err(e) => Err(failed(format!("unreadable answer from the child: {e}"))),
    }
}

/// The child's side: reads the request and the document on stdin, extracts, writes the reply
/// on stdout. Returns the process exit code.
pub fn child_main() -> i32 {
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().lock().read_to_end(&mut input) {
        eprintln!("extract-document: reading stdin: {e}");
        return 2;
    }
    let refused = |e: Error| Reply::Refused {
        kind: e.kind(),
        message: e.to_string(),
        details: e.details(),
    };
    let reply = match parse(&input) {
        Ok((request, document)) => {
            let (hint, limits) = (request.hint.as_deref(), &request.limits);
            if request.paged {
                crate::layout(document, hint, limits).map_or_else(refused, Reply::Layout)
            } else {
                crate::extract(document, hint, limits).map_or_else(refused, Reply::Extracted)
            }
        }
        Err(why) => {
            eprintln!("extract-document: {why}");
            return 2;
        }
    };
    let mut stdout = std::io::stdout().lock();
    match serde_json::to_writer(&mut stdout, &reply).map(|()| stdout.flush()) {
        Ok(Ok(())) => 0,
        _ => 2,
    }
}

fn parse(input: &[u8]) -> Result<(Request, &[u8]), String> {
    let (len, rest) = input
        .split_first_chunk::<4>()
        .ok_or("the input is shorter than its header")?;
    let len = u32::from_le_bytes(*len) as usize;
    if rest.len() < len {
        return Err("the input is shorter than its header says".into());
    }
    let (head, document) = rest.split_at(len);
    let request = serde_json::from_slice(head).map_err(|e| format!("bad request: {e}"))?;
    Ok((request, document))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn sandbox(script: &str) -> Sandbox {
        Sandbox {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            wall: Duration::from_secs(2),
            memory_bytes: 512 * 1024 * 1024,
        }
    }

    #[test]
    fn a_child_past_its_wall_clock_is_killed() {
        let t0 = Instant::now();
        let r = extract(&sandbox("sleep 30"), b"x", None, &Limits::default());
        assert!(matches!(r, Err(Error::Exhausted { .. })), "{r:?}");
        assert!(t0.elapsed() < Duration::from_secs(20));
    }

    #[test]
    fn a_child_that_crashes_or_babbles_is_a_clear_error() {
        let r = extract(&sandbox("kill -SEGV $$"), b"x", None, &Limits::default());
        assert!(matches!(r, Err(Error::Exhausted { .. })), "{r:?}");
        let r = extract(&sandbox("echo nonsense"), b"x", None, &Limits::default());
        assert!(matches!(r, Err(Error::Extractor { .. })), "{r:?}");
    }

    #[test]
    fn a_compromised_childs_refusal_reaches_the_api_only_in_the_details_shape() {
        let refusal = |details: &str| {
            format!(
                r#"cat >/dev/null; printf '%s' '{{"refused":{{"kind":"invalid","message":"m","details":{details}}}}}'"#
            )
        };
        for bad in [
            r#""text""#,
            r#"{"reason":"<script>"}"#,
            r#"{"no_reason":1}"#,
            r#"{"reason":"corrupt","format":{"nested":1}}"#,
            r#"{"reason":"corrupt","a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8}"#,
        ] {
            let r = extract(&sandbox(&refusal(bad)), b"x", None, &Limits::default());
            assert!(matches!(r, Err(Error::Extractor { .. })), "{bad}: {r:?}");
        }
        let long = format!(r#"{{"reason":"corrupt","format":"{}"}}"#, "P".repeat(65));
        let r = extract(&sandbox(&refusal(&long)), b"x", None, &Limits::default());
        assert!(matches!(r, Err(Error::Extractor { .. })), "{r:?}");
        let good = r#"{"reason":"encrypted","format":"PDF"}"#;
        match extract(&sandbox(&refusal(good)), b"x", None, &Limits::default()) {
            Err(e @ Error::Reported { .. }) => {
                assert_eq!(
                    e.details(),
                    serde_json::json!({"reason": "encrypted", "format": "PDF"})
                );
                assert_eq!(e.code(), "document_invalid");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_child_runs_under_the_limits_with_an_empty_environment() {
        // The shell reports its limits and environment as a refusal the parent decodes.
        let script = r#"cat >/dev/null; printf '{"refused":{"kind":"invalid","message":"%s %s %s %s","details":{"reason":"corrupt"}}}' "$(ulimit -v)" "$(ulimit -f)" "$(env | grep -c .)" "$(grep -c 'NoNewPrivs:.1' /proc/$$/status)""#;
        std::env::set_var("CIVIA_SECRET_FOR_TEST", "leak");
        match extract(&sandbox(script), b"x", None, &Limits::default()) {
            Err(Error::Reported { message, .. }) => {
                let v: Vec<&str> = message.split(' ').collect();
                assert_eq!(v[0], (512 * 1024).to_string(), "address space in KiB");
                assert_eq!(v[1], "0", "no file may be written");
                // sh sets PWD (and maybe SHLVL, _) itself; nothing is inherited.
                assert!(v[2].parse::<u32>().unwrap() <= 3, "environment: {message}");
                assert_eq!(v[3], "1", "no_new_privs");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn what_the_child_left_running_goes_with_it() {
        // The background sleep holds stdout open; without the group kill after the child's
        // exit, reading the answer would wait for it.
        let t0 = Instant::now();
        let script = r#"cat >/dev/null; sleep 30 & printf '{"refused":{"kind":"invalid","message":"m","details":{"reason":"corrupt"}}}'"#;
        let r = extract(&sandbox(script), b"x", None, &Limits::default());
        assert!(matches!(r, Err(Error::Reported { .. })), "{r:?}");
        assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    }

    #[test]
    fn an_answer_past_its_cap_is_not_read_whole() {
        let limits = Limits {
            max_text_chars: 10,
            max_pdf_pages: 1,
            ..Limits::default()
        };
        let r = extract(
            &sandbox("cat >/dev/null; yes | head -c 1000000"),
            b"x",
            None,
            &limits,
        );
        // Killed by SIGPIPE when the parent stops reading, or refused for its size.
        assert!(
            matches!(r, Err(Error::Exhausted { .. } | Error::Extractor { .. })),
            "{r:?}"
        );
    }

    #[test]
    fn the_protocol_round_trips() {
        let req = serde_json::to_vec(&Request {
            hint: Some("a.txt".into()),
            limits: Limits::default(),
            paged: false,
        })
        .unwrap();
        let mut input = (req.len() as u32).to_le_bytes().to_vec();
        input.extend_from_slice(&req);
        input.extend_from_slice(b"Bonjour");
        let (r, doc) = parse(&input).unwrap();
        assert_eq!((r.hint.as_deref(), doc), (Some("a.txt"), &b"Bonjour"[..]));
        assert!(parse(&input[..3]).is_err());
        assert!(parse(&[255, 255, 0, 0, b'{']).is_err());
    }
}
