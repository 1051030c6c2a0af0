//! The little HTTP/1.1 `plan release serve` speaks: one request per connection
//! (`Connection: close`), a bounded head, a body only with `Content-Length` and only up to
//! a limit, every read under a deadline. Over `Read`/`Write`, so it is tested without a
//! socket.
//!
//! Why not a server crate: the service answers a few requests a minute, synchronously, and
//! must bound what a hostile client can hold. `tiny_http` 0.12 (the small synchronous
//! candidate) sets no socket timeouts and offers no hook to set them on the connections it
//! accepts, so one client that stops sending holds a thread and a stalled body blocks the
//! handler for ever; its accept thread also ends at the first accept error. `axum`/`hyper`
//! would bring an async runtime to a service that runs one rollback at a time. What is
//! needed (request line, headers, `Content-Length`, `Expect: 100-continue`) is small
//! enough to write and test here, with the limits where they can be seen.

use std::io::{BufRead, Read, Write};
use std::time::Instant;

/// The request line and headers together.
pub(crate) const MAX_HEAD: usize = 16 << 10;

/// Headers in one request.
const MAX_HEADERS: usize = 64;

/// A request as the service reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    pub(crate) method: String,
    /// The path, without the query.
    pub(crate) path: String,
    /// Header names in lower case.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Request {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A request refused before it was read whole: the status to answer and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refused {
    pub(crate) status: u16,
    pub(crate) why: String,
}

fn refused(status: u16, why: impl Into<String>) -> Refused {
    Refused {
        status,
        why: why.into(),
    }
}

/// The head of a request: its method, path and headers. `deadline` bounds the whole read
/// (the socket's own read timeout bounds each read).
pub(crate) fn read_head(r: &mut impl BufRead, deadline: Instant) -> Result<Request, Refused> {
    let mut head_bytes = 0usize;
    let mut line = Vec::new();
    let mut next_line = |line: &mut Vec<u8>| -> Result<String, Refused> {
        line.clear();
        let limit = (MAX_HEAD - head_bytes.min(MAX_HEAD)) as u64 + 1;
        let n = r
            .by_ref()
            .take(limit)
            .read_until(b'\n', line)
            .map_err(|e| timeout_or(e, 400))?;
        head_bytes += n;
        if head_bytes > MAX_HEAD {
            return Err(refused(
                431,
                format!("a head of more than {MAX_HEAD} bytes"),
            ));
        }
        if Instant::now() > deadline {
            return Err(refused(408, "the request was not received in time"));
        }
        if n == 0 || line.last() != Some(&b'\n') {
            return Err(refused(400, "the request ended in its head"));
        }
        let text =
            std::str::from_utf8(line).map_err(|_| refused(400, "a head that is not text"))?;
        Ok(text.trim_end_matches(['\r', '\n']).to_string())
    };
    let request_line = next_line(&mut line)?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(refused(400, "not an HTTP request line"));
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return Err(refused(400, "not an HTTP/1 request"));
    }
    let mut headers = Vec::new();
    loop {
        let l = next_line(&mut line)?;
        if l.is_empty() {
            break;
        }
        if headers.len() == MAX_HEADERS {
            return Err(refused(431, format!("more than {MAX_HEADERS} headers")));
        }
        let Some((k, v)) = l.split_once(':') else {
            return Err(refused(400, "a header line without `:`"));
        };
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    Ok(Request {
        method: method.to_string(),
        path: target.split('?').next().unwrap_or("").to_string(),
        headers,
        body: Vec::new(),
    })
}

/// Reads `req`'s body, at most `max` bytes, by `deadline`. A body needs `Content-Length`
/// (Alertmanager sends it); `Expect: 100-continue` is answered on `w` once the length is
/// known to be acceptable, so a client never sends a body that will be refused.
pub(crate) fn read_body(
    req: &mut Request,
    r: &mut impl Read,
    w: &mut impl Write,
    max: usize,
    deadline: Instant,
) -> Result<(), Refused> {
    if req.header("transfer-encoding").is_some() {
        return Err(refused(411, "a body without Content-Length"));
    }
    let len = match req.header("content-length") {
        None => 0,
        Some(v) => v
            .parse::<u64>()
            .map_err(|_| refused(400, "a Content-Length that is not a number"))?,
    };
    if len > max as u64 {
        return Err(refused(
            413,
            format!("a body of {len} bytes (at most {max} are read)"),
        ));
    }
    let len = usize::try_from(len).unwrap_or(max);
    if len > 0
        && req
            .header("expect")
            .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
    {
        let _ = w
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .and_then(|()| w.flush());
    }
    let mut body = vec![0u8; len];
    let mut got = 0;
    while got < len {
        let n = r.read(&mut body[got..]).map_err(|e| timeout_or(e, 400))?;
        if n == 0 {
            return Err(refused(400, "the body ended before its Content-Length"));
        }
        got += n;
        if Instant::now() > deadline {
            return Err(refused(408, "the body was not received in time"));
        }
    }
    req.body = body;
    Ok(())
}

/// A read error: 408 when the socket's read timeout ran out, else `status`.
fn timeout_or(e: std::io::Error, status: u16) -> Refused {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            refused(408, "the request was not received in time")
        }
        _ => refused(status, format!("the request could not be read: {e}")),
    }
}

/// An answer: plain text, closing the connection. `extra` headers are the service's own
/// (`Retry-After`, `WWW-Authenticate`), never a request's.
pub(crate) fn respond(
    w: &mut impl Write,
    status: u16,
    content_type: &str,
    extra: &[(&str, &str)],
    body: &str,
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n",
        reason(status),
        body.len()
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())?;
    w.write_all(body.as_bytes())?;
    w.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(10)
    }

    fn read(raw: &[u8], max: usize) -> (Result<Request, Refused>, Vec<u8>) {
        let mut r = std::io::BufReader::new(raw);
        let mut w = Vec::new();
        let got = read_head(&mut r, later()).and_then(|mut req| {
            read_body(&mut req, &mut r, &mut w, max, later())?;
            Ok(req)
        });
        (got, w)
    }

    #[test]
    fn a_post_with_its_body() {
        let (req, w) = read(
            b"POST /alerts?x=1 HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer t\r\nContent-Length: 4\r\n\r\nbodyEXTRA",
            100,
        );
        let req = req.unwrap();
        assert_eq!(req.method, "POST");
        assert_eq!(req.path, "/alerts");
        assert_eq!(req.header("authorization"), Some("Bearer t"));
        assert_eq!(req.body, b"body");
        assert!(w.is_empty());
    }

    #[test]
    fn expect_continue_is_answered_only_for_a_body_that_fits() {
        let raw = b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok";
        let (req, w) = read(raw, 10);
        assert_eq!(req.unwrap().body, b"ok");
        assert_eq!(w, b"HTTP/1.1 100 Continue\r\n\r\n");
        let raw = b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 20000000\r\n\r\n";
        let (req, w) = read(raw, 10);
        assert_eq!(req.unwrap_err().status, 413);
        assert!(w.is_empty(), "no 100 Continue for a body that is refused");
    }

    #[test]
    fn bad_requests_get_the_status_that_says_why() {
        let cases: &[(&[u8], u16)] = &[
            (b"", 400),
            (b"GET /\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a", 400),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                411,
            ),
            (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nshort", 400),
            (b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\n\xff: x\r\n\r\n", 400),
        ];
        for (raw, status) in cases {
            let (got, _) = read(raw, 10);
            assert_eq!(
                got.unwrap_err().status,
                *status,
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(read(big.as_bytes(), 10).0.unwrap_err().status, 431);
        let many = format!("GET / HTTP/1.1\r\n{}\r\n", "X: y\r\n".repeat(100));
        assert_eq!(read(many.as_bytes(), 10).0.unwrap_err().status, 431);
    }

    #[test]
    fn an_answer_closes_the_connection() {
        let mut w = Vec::new();
        respond(
            &mut w,
            429,
            "text/plain",
            &[("Retry-After", "1")],
            "slow down\n",
        )
        .unwrap();
        let text = String::from_utf8(w).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 429 Too Many Requests\r\n"),
            "{text}"
        );
        assert!(text.contains("Content-Length: 10\r\n"));
        assert!(text.contains("Connection: close\r\n"));
        assert!(text.contains("Retry-After: 1\r\n"));
        assert!(text.ends_with("\r\n\r\nslow down\n"));
    }
}
