//! A byte-at-a-time check of a start line, so that bytes which cannot begin an HTTP message are
//! refused at the first byte that proves it.
//!
//! The head reader feeds every start-line byte through [`StartLineCheck`] as it arrives: the
//! check never looks at a byte twice, and where it refuses does not depend on how the stream
//! was cut. It follows the grammar `httparse` applies with the parser's settings (repeated
//! spaces allowed), and accepts at least what `httparse` accepts; where it is looser (it does
//! not check that a target is UTF-8), `httparse` has the last word when the line ends.

/// Where in the start line the check is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// Request: in the method token (`len` bytes of it so far).
    Method { len: usize },
    /// Request: in the spaces after the method.
    AfterMethod,
    /// Request: in the target.
    Target,
    /// Request: in the spaces after the target.
    AfterTarget,
    /// Request: `matched` bytes of `HTTP/1.x` so far.
    RequestVersion { matched: usize },
    /// Response: `matched` bytes of `HTTP/1.x` so far.
    ResponseVersion { matched: usize },
    /// Response: in the spaces before the status code.
    BeforeCode,
    /// Response: `digits` digits of the status code so far.
    Code { digits: usize },
    /// Response: in the spaces between the status code and the reason.
    BeforeReason,
    /// Response: in the reason phrase.
    Reason,
    /// After a `\r`, where `\n` must follow.
    Cr,
    /// The line has ended.
    Done,
}

/// The incremental check of one start line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StartLineCheck {
    place: Place,
}

/// `HTTP/1.` and then `0` or `1`: the only versions `httparse` accepts.
const VERSION_LEN: usize = 8;

impl StartLineCheck {
    pub(crate) fn request() -> StartLineCheck {
        StartLineCheck {
            place: Place::Method { len: 0 },
        }
    }

    pub(crate) fn response() -> StartLineCheck {
        StartLineCheck {
            place: Place::ResponseVersion { matched: 0 },
        }
    }

    /// Checks the next bytes of the line. Returns the index in `bytes` of the first byte that
    /// cannot be there, if one cannot. Bytes after the line's end are refused.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Option<usize> {
        bytes.iter().position(|&byte| !self.accept(byte))
    }

    /// Moves past `byte`; false (staying put) if it cannot come next.
    fn accept(&mut self, byte: u8) -> bool {
        let next = match (self.place, byte) {
            (Place::Method { len }, _) if is_token(byte) => Place::Method { len: len + 1 },
            (Place::Method { len }, b' ') if len > 0 => Place::AfterMethod,
            (Place::AfterMethod, b' ') => Place::AfterMethod,
            (Place::AfterMethod | Place::Target, _) if is_target_byte(byte) => Place::Target,
            (Place::Target | Place::AfterTarget, b' ') => Place::AfterTarget,
            (Place::AfterTarget, b'H') => Place::RequestVersion { matched: 1 },
            (Place::RequestVersion { matched }, _) if matched < VERSION_LEN => {
                if !is_version_byte(matched, byte) {
                    return false;
                }
                Place::RequestVersion {
                    matched: matched + 1,
                }
            }
            (Place::RequestVersion { .. }, b'\r') => Place::Cr,
            (Place::RequestVersion { .. }, b'\n') => Place::Done,
            (Place::ResponseVersion { matched }, _) if matched < VERSION_LEN => {
                if !is_version_byte(matched, byte) {
                    return false;
                }
                Place::ResponseVersion {
                    matched: matched + 1,
                }
            }
            (Place::ResponseVersion { .. } | Place::BeforeCode, b' ') => Place::BeforeCode,
            (Place::BeforeCode, b'0'..=b'9') => Place::Code { digits: 1 },
            (Place::Code { digits }, b'0'..=b'9') if digits < 3 => {
                Place::Code { digits: digits + 1 }
            }
            (Place::Code { digits: 3 } | Place::BeforeReason, b' ') => Place::BeforeReason,
            (Place::Code { digits: 3 } | Place::BeforeReason | Place::Reason, b'\r') => Place::Cr,
            (Place::Code { digits: 3 } | Place::BeforeReason | Place::Reason, b'\n') => Place::Done,
            (Place::BeforeReason | Place::Reason, _) if is_reason_byte(byte) => Place::Reason,
            (Place::Cr, b'\n') => Place::Done,
            _ => return false,
        };
        self.place = next;
        true
    }
}

/// Whether `byte` can be byte `index` of the version (`HTTP/1.0` or `HTTP/1.1`).
fn is_version_byte(index: usize, byte: u8) -> bool {
    match b"HTTP/1.".get(index) {
        Some(&expected) => byte == expected,
        None => byte == b'0' || byte == b'1',
    }
}

/// `tchar` (RFC 9110 §5.6.2): what `httparse` accepts in a method.
fn is_token(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// What `httparse` accepts in a request target: visible ASCII and any byte above 0x7f.
fn is_target_byte(byte: u8) -> bool {
    (b'!'..=b'~').contains(&byte) || byte >= 0x80
}

/// What `httparse` accepts in a reason phrase: tab, space, visible ASCII, bytes above 0x7f.
fn is_reason_byte(byte: u8) -> bool {
    byte == b'\t' || (b' '..=b'~').contains(&byte) || byte >= 0x80
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::http1::head::parser_config;

    /// `httparse`'s verdict on what has arrived of a start line: `false` if it refuses it.
    fn httparse_accepts(request: bool, line: &[u8]) -> bool {
        let config = parser_config();
        let mut no_fields = [];
        let parsed = if request {
            config.parse_request(&mut httparse::Request::new(&mut no_fields), line)
        } else {
            config.parse_response(&mut httparse::Response::new(&mut no_fields), line)
        };
        parsed.is_ok()
    }

    fn check_accepts(request: bool, line: &[u8]) -> bool {
        let mut check = if request {
            StartLineCheck::request()
        } else {
            StartLineCheck::response()
        };
        check.feed(line).is_none()
    }

    #[test]
    fn well_formed_lines_pass() {
        for line in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"M-SEARCH  *  HTTP/1.0\n",
            b"CONNECT example.com:443 HTTP/1.1\r\n",
            b"GET /caf\xc3\xa9?a=b HTTP/1.1\r\n",
        ] {
            assert!(check_accepts(true, line), "{line:?}");
        }
        for line in [
            &b"HTTP/1.1 200 OK\r\n"[..],
            b"HTTP/1.0  404\n",
            b"HTTP/1.1 200 \tOK \xe9t\xe9\r\n",
            b"HTTP/1.1 999\r\n",
        ] {
            assert!(check_accepts(false, line), "{line:?}");
        }
    }

    #[test]
    fn the_first_byte_that_cannot_be_there_is_named() {
        let mut check = StartLineCheck::request();
        assert_eq!(check.feed(b"GET /a"), None);
        assert_eq!(check.feed(b" HTTP/1.2"), Some(8));
        let mut check = StartLineCheck::response();
        assert_eq!(check.feed(b"HTTP/1.1 20x"), Some(11));
        assert_eq!(StartLineCheck::request().feed(b"\x16\x03\x01"), Some(0));
        assert_eq!(
            StartLineCheck::request().feed(b"GET / HTTP/1.1\r\nX"),
            Some(16)
        );
    }

    /// Over many generated lines and every prefix of them, the check never refuses what
    /// httparse accepts; on ASCII it agrees with httparse exactly (beyond ASCII, httparse also
    /// wants a UTF-8 target, which it checks itself when the line ends).
    #[test]
    fn the_check_agrees_with_httparse() {
        const PIECES: &[&[u8]] = &[
            b"GET",
            b"POST",
            b"X",
            b"1",
            b" ",
            b"  ",
            b"/",
            b"/a?b=c",
            b"*",
            b"HTTP/1.",
            b"HTTP/1.1",
            b"HTTP/1.0",
            b"HTTP/2",
            b"0",
            b"200",
            b"20",
            b"2000",
            b"OK",
            b"\t",
            b"\r",
            b"\n",
            b"\r\n",
            b"\x7f",
            b"\x00",
            b"\x80",
            b"\xe9",
            b"H",
            b"T",
            b"P",
            b"\"",
            b"(",
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let request = next() % 2 == 0;
            let mut line = Vec::new();
            if next() % 2 == 0 {
                line.extend_from_slice(if request { b"GET / " } else { b"HTTP/1.1 " });
            }
            for _ in 0..next() % 8 {
                line.extend_from_slice(PIECES[(next() % PIECES.len() as u64) as usize]);
            }
            // The check sees one line, up to its first `\n`; the head reader skips empty lines
            // before a head, so a start line never begins with a line end.
            if let Some(end) = line.iter().position(|&byte| byte == b'\n') {
                line.truncate(end + 1);
            }
            if line
                .first()
                .is_some_and(|&byte| byte == b'\r' || byte == b'\n')
            {
                continue;
            }
            for len in 0..=line.len() {
                let prefix = &line[..len];
                let by_httparse = httparse_accepts(request, prefix);
                let by_check = check_accepts(request, prefix);
                if by_httparse {
                    assert!(by_check, "check refuses what httparse accepts: {prefix:?}");
                }
                if prefix.is_ascii() {
                    assert_eq!(by_check, by_httparse, "disagreement on {prefix:?}");
                }
            }
        }
    }
}
