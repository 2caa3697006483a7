//! The request side of a minimal HTTP/1.x metrics endpoint, pure (no I/O), so it is fuzzed
//! (`fuzz/fuzz_targets/metrics_request.rs`): where a request head ends, and what its first
//! line asks for. `bitcraps-node listen --metrics` serves on it.

/// The largest request head an endpoint reads; [`parse`] calls a longer one
/// [`Request::TooLarge`].
pub const MAX_HEAD: usize = 8 * 1024;

/// What a request head asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// `GET /metrics` (a query string is ignored).
    Metrics,
    /// `GET` of another path.
    NotFound,
    /// Another method.
    BadMethod,
    /// A head over [`MAX_HEAD`] bytes.
    TooLarge,
    /// Not an HTTP/1.x request line.
    Malformed,
}

/// Where the head ends: the index of its blank line (`\r\n\r\n`, or `\n\n`), if it has one.
pub fn find_end(head: &[u8]) -> Option<usize> {
    let end = head.windows(4).position(|w| w == b"\r\n\r\n");
    end.or_else(|| head.windows(2).position(|w| w == b"\n\n"))
}

/// Parses a request head's first line.
pub fn parse(head: &[u8]) -> Request {
    if head.len() > MAX_HEAD {
        return Request::TooLarge;
    }
    let Ok(text) = std::str::from_utf8(head) else {
        return Request::Malformed;
    };
    let line = text.lines().next().unwrap_or("");
    let mut words = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Request::Malformed;
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return Request::Malformed;
    }
    if method != "GET" {
        return Request::BadMethod;
    }
    let path = target.split('?').next().unwrap_or(target);
    if path == "/metrics" {
        Request::Metrics
    } else {
        Request::NotFound
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_told_apart() {
        let p = |s: &str| parse(s.as_bytes());
        assert_eq!(p("GET /metrics HTTP/1.1\r\nHost: x\r\n"), Request::Metrics);
        assert_eq!(p("GET /metrics?x=1 HTTP/1.0"), Request::Metrics);
        assert_eq!(p("GET / HTTP/1.1"), Request::NotFound);
        assert_eq!(p("GET /metricsx HTTP/1.1"), Request::NotFound);
        assert_eq!(p("POST /metrics HTTP/1.1"), Request::BadMethod);
        assert_eq!(p("GET /metrics"), Request::Malformed);
        assert_eq!(p("GET metrics HTTP/1.1"), Request::Malformed);
        assert_eq!(p("GET /metrics SPDY/3"), Request::Malformed);
        assert_eq!(p("GET  /metrics HTTP/1.1"), Request::Malformed);
        assert_eq!(parse(&[0xff, 0xfe]), Request::Malformed);
        assert_eq!(parse(&vec![b'a'; MAX_HEAD + 1]), Request::TooLarge);
    }

    #[test]
    fn the_head_ends_at_the_blank_line() {
        assert_eq!(find_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nbody"), Some(20));
        assert_eq!(find_end(b"GET / HTTP/1.1\n\n"), Some(14));
        assert_eq!(find_end(b"GET / HTTP/1.1\r\n"), None);
    }
}
