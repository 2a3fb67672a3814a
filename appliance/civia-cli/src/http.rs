//! Just enough HTTP/1.1 for the admin socket: one request per connection (`Connection: close`),
//! the response read to end of file, its body framed by `Content-Length`, by
//! `Transfer-Encoding: chunked` or by the end of the connection.

use crate::Error;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Read and write timeout on the socket.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The largest answer accepted from civiad (an admin answer is a few kilobytes).
const MAX_RESPONSE: u64 = 64 << 20;

/// An HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Header names lower-cased, values trimmed, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A client of civiad's admin socket.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
    timeout: Duration,
}

impl Client {
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self {
            socket: socket.into(),
            timeout: TIMEOUT,
        }
    }

    /// The same client with another read/write timeout (long operations: installs).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Sends one request (`target` is the already percent-encoded path and query) and reads
    /// the whole response.
    pub fn send(&self, method: &str, target: &str, body: Option<&[u8]>) -> Result<Response, Error> {
        let mut stream = UnixStream::connect(&self.socket).map_err(|source| Error::Connect {
            path: self.socket.clone(),
            source,
        })?;
        let io_err = |source: io::Error| self.io_error(source);
        stream
            .set_read_timeout(Some(self.timeout))
            .map_err(io_err)?;
        stream
            .set_write_timeout(Some(self.timeout))
            .map_err(io_err)?;
        let written = stream
            .write_all(&build_request(method, target, body))
            .and_then(|()| stream.flush());
        let mut raw = Vec::new();
        let read = (&mut stream).take(MAX_RESPONSE + 1).read_to_end(&mut raw);
        // civiad may answer (e.g. "body too large") and close before reading everything we
        // sent: prefer its answer to our write error.
        if let Err(e) = written {
            if raw.is_empty() {
                return Err(self.io_error(e));
            }
        }
        read.map_err(io_err)?;
        if raw.len() as u64 > MAX_RESPONSE {
            return Err(Error::Http(format!(
                "the answer is larger than {} MiB",
                MAX_RESPONSE >> 20
            )));
        }
        parse_response(&raw, method)
    }

    fn io_error(&self, source: io::Error) -> Error {
        match source.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::Timeout {
                secs: self.timeout.as_secs(),
                path: self.socket.clone(),
            },
            _ => Error::Io {
                path: self.socket.clone(),
                source,
            },
        }
    }
}

/// The bytes of a request.
pub fn build_request(method: &str, target: &str, body: Option<&[u8]>) -> Vec<u8> {
    let body = body.unwrap_or_default();
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut req = req.into_bytes();
    req.extend_from_slice(body);
    req
}

/// Parses a whole response as read to end of file (interim `1xx` responses are skipped).
pub fn parse_response(raw: &[u8], method: &str) -> Result<Response, Error> {
    if raw.is_empty() {
        return Err(Error::Http(
            "civiad closed the connection without answering".into(),
        ));
    }
    let mut rest = raw;
    loop {
        let end = find(rest, b"\r\n\r\n")
            .ok_or_else(|| Error::Http("the answer ends before the end of its headers".into()))?;
        let head = std::str::from_utf8(&rest[..end])
            .map_err(|_| Error::Http("the response headers are not UTF-8".into()))?;
        let after = &rest[end + 4..];
        let mut lines = head.split("\r\n");
        let status = parse_status_line(lines.next().unwrap_or_default())?;
        let mut headers = Vec::new();
        for line in lines {
            let (name, value) = line
                .split_once(':')
                .filter(|(n, _)| !n.is_empty() && !n.contains(|c: char| c.is_whitespace()))
                .ok_or_else(|| Error::Http(format!("malformed header line {:?}", clip(line))))?;
            headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
        }
        if (100..200).contains(&status) {
            rest = after;
            continue;
        }
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if method == "HEAD" || status == 204 || status == 304 {
            return Ok(response);
        }
        let chunked = response.header("transfer-encoding").is_some_and(|te| {
            te.rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
        });
        response.body = if chunked {
            decode_chunked(after)?
        } else if response.header("transfer-encoding").is_some() {
            after.to_vec()
        } else if let Some(len) = response.header("content-length") {
            let len: usize = len
                .parse()
                .map_err(|_| Error::Http(format!("bad Content-Length {:?}", clip(len))))?;
            if after.len() < len {
                return Err(Error::Http(format!(
                    "the body is truncated: {} of {len} bytes received",
                    after.len()
                )));
            }
            after[..len].to_vec()
        } else {
            after.to_vec()
        };
        return Ok(response);
    }
}

fn parse_status_line(line: &str) -> Result<u16, Error> {
    let bad = || Error::Http(format!("malformed status line {:?}", clip(line)));
    let (version, rest) = line.split_once(' ').ok_or_else(bad)?;
    if !version.starts_with("HTTP/1.") {
        return Err(bad());
    }
    let code = rest.split(' ').next().unwrap_or_default();
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    code.parse().map_err(|_| bad())
}

/// Decodes a chunked body, extensions and trailers ignored.
fn decode_chunked(mut data: &[u8]) -> Result<Vec<u8>, Error> {
    let truncated = |what: &str| Error::Http(format!("the chunked body is truncated ({what})"));
    let mut body = Vec::new();
    loop {
        let (line, rest) = take_line(data).ok_or_else(|| truncated("in a chunk size"))?;
        data = rest;
        let size = std::str::from_utf8(line)
            .ok()
            .map(|l| l.split(';').next().unwrap_or_default().trim())
            .filter(|s| !s.is_empty())
            .and_then(|s| usize::from_str_radix(s, 16).ok())
            .ok_or_else(|| {
                Error::Http(format!(
                    "bad chunk size line {:?}",
                    clip(&String::from_utf8_lossy(line))
                ))
            })?;
        if size == 0 {
            // Trailers up to an empty line; a missing final CRLF loses nothing of the body.
            while let Some((line, rest)) = take_line(data) {
                data = rest;
                if line.is_empty() {
                    break;
                }
            }
            return Ok(body);
        }
        let end = size
            .checked_add(2)
            .filter(|&end| end <= data.len())
            .ok_or_else(|| truncated("in a chunk's data"))?;
        if &data[size..end] != b"\r\n" {
            return Err(Error::Http("a chunk is not followed by CRLF".into()));
        }
        body.extend_from_slice(&data[..size]);
        data = &data[end..];
    }
}

fn take_line(data: &[u8]) -> Option<(&[u8], &[u8])> {
    find(data, b"\r\n").map(|i| (&data[..i], &data[i + 2..]))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

/// Percent-encodes everything but RFC 3986's unreserved characters (for a query value).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-encodes one path segment; `.` and `..` are encoded too, so that nothing between
/// here and the router can take them for dot-segments.
pub fn encode_segment(s: &str) -> String {
    if s == "." || s == ".." {
        s.replace('.', "%2E")
    } else {
        encode(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<Response, Error> {
        parse_response(raw.as_bytes(), "GET")
    }

    fn err(raw: &str) -> String {
        match parse(raw) {
            Ok(r) => panic!("parsed: {r:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn content_length_body() {
        let r = parse("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: 7\r\n\r\n{\"a\":1}").unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("Content-Type"), Some("application/json"));
        assert_eq!(r.body, b"{\"a\":1}");
        // Bytes beyond Content-Length are not part of the body.
        let r = parse("HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}xx").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (201, &b"{}"[..]));
    }

    #[test]
    fn chunked_body() {
        let r = parse(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\nA\r\n:12345678}\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.body, b"{\"a\":12345678}");
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let r = parse(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n3;name=value\r\nabc\r\n2 ; x\r\nde\r\n0;last\r\nX-Trailer: 1\r\nY: 2\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.body, b"abcde");
        // Without the final CRLF the body is still complete.
        let r =
            parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n").unwrap();
        assert_eq!(r.body, b"z");
    }

    #[test]
    fn no_length_reads_to_eof_and_204_is_empty() {
        assert_eq!(parse("HTTP/1.1 200 OK\r\n\r\nabc").unwrap().body, b"abc");
        assert_eq!(parse("HTTP/1.1 204 No Content\r\n\r\n").unwrap().body, b"");
    }

    #[test]
    fn interim_responses_are_skipped() {
        let r = parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx")
            .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"x"[..]));
    }

    #[test]
    fn malformed_answers_are_clear_errors() {
        assert!(err("HTTP/1.1 OK\r\n\r\n").contains("malformed status line \"HTTP/1.1 OK\""));
        assert!(err("SSH-2.0-OpenSSH\r\n\r\n").contains("malformed status line"));
        assert!(err("HTTP/1.1 2000 OK\r\n\r\n").contains("malformed status line"));
        assert!(err("HTTP/1.1 200 OK\r\nbroken\r\n\r\n").contains("malformed header line"));
        assert!(err("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").contains("bad Content-Length"));
        assert!(err("HTTP/1.1 200 OK\r\nContent-Le").contains("before the end of its headers"));
        assert!(err("").contains("without answering"));
        assert!(
            err("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
                .contains("bad chunk size line \"zz\"")
        );
        assert!(
            err("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n")
                .contains("not followed by CRLF")
        );
    }

    #[test]
    fn truncated_bodies_are_clear_errors() {
        let e = err("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{\"a\"");
        assert!(e.contains("truncated: 4 of 10 bytes"), "{e}");
        let e = err("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc");
        assert!(
            e.contains("chunked body is truncated (in a chunk's data)"),
            "{e}"
        );
        let e = err("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
        assert!(
            e.contains("chunked body is truncated (in a chunk size)"),
            "{e}"
        );
    }

    #[test]
    fn request_bytes() {
        let r = build_request("POST", "/admin/users", Some(b"{}"));
        assert_eq!(
            r,
            b"POST /admin/users HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        );
        let r = build_request("GET", "/admin/status", None);
        assert_eq!(
            r,
            b"GET /admin/status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn percent_encoding() {
        assert_eq!(encode("alice.B-2_~"), "alice.B-2_~");
        assert_eq!(encode("a b/c?d&e=f%"), "a%20b%2Fc%3Fd%26e%3Df%25");
        assert_eq!(encode("État"), "%C3%89tat");
        assert_eq!(encode(""), "");
        assert_eq!(encode_segment(".."), "%2E%2E");
        assert_eq!(encode_segment("."), "%2E");
        assert_eq!(encode_segment("a..b"), "a..b");
    }
}
