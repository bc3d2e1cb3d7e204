//! How long a message body is, from its head (RFC 9112 §6.3).
//!
//! The sides call these once a head is parsed; the answer picks the body reader. A response's
//! framing also depends on the request it answers, which the response side tracks.

use super::{BodyFraming, Headers, ParseError};

/// What a response's request was, as far as framing cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RequestKind {
    /// A HEAD request: the response has no body, whatever its headers say.
    Head,
    /// A CONNECT request: a 2xx response opens a tunnel.
    Connect,
    Other,
}

/// How a response's body is framed, and whether it ends HTTP on the connection.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ResponseFraming {
    pub(crate) body: BodyFraming,
    pub(crate) opens_tunnel: bool,
}

/// A request's body framing. Without `Transfer-Encoding` or `Content-Length` a request has no
/// body; a `Transfer-Encoding` that does not end in `chunked` leaves its length unknown.
pub(crate) fn request_framing(headers: &Headers) -> Result<BodyFraming, ParseError> {
    match transfer_coding(headers) {
        Some(TransferCoding::Chunked) => Ok(BodyFraming::Chunked),
        Some(TransferCoding::Other) => Err(ParseError::UnframedRequestBody),
        None => Ok(content_length(headers)?.map_or(BodyFraming::NoBody, BodyFraming::Length)),
    }
}

/// A response's body framing, given its status and (when known) what it answers. Without a
/// known request, HEAD and CONNECT cannot be recognised and the headers alone decide.
pub(crate) fn response_framing(
    status: u16,
    request: Option<RequestKind>,
    headers: &Headers,
) -> Result<ResponseFraming, ParseError> {
    let no_body = |opens_tunnel| {
        Ok(ResponseFraming {
            body: BodyFraming::NoBody,
            opens_tunnel,
        })
    };
    // Rule 1: 1xx, 204 and 304 responses and answers to HEAD end with their head. A 101 ends
    // HTTP on the connection.
    if (100..200).contains(&status) {
        return no_body(status == 101);
    }
    if status == 204 || status == 304 || request == Some(RequestKind::Head) {
        return no_body(false);
    }
    // Rule 2: a 2xx answer to CONNECT turns the connection into a tunnel; any length header is
    // ignored.
    if request == Some(RequestKind::Connect) && (200..300).contains(&status) {
        return no_body(true);
    }
    // Rules 3 to 7: chunked wins over Content-Length; any other coding, or no length at all,
    // means the body ends when the connection closes.
    let body = match transfer_coding(headers) {
        Some(TransferCoding::Chunked) => BodyFraming::Chunked,
        Some(TransferCoding::Other) => BodyFraming::UntilClose,
        None => content_length(headers)?.map_or(BodyFraming::UntilClose, BodyFraming::Length),
    };
    Ok(ResponseFraming {
        body,
        opens_tunnel: false,
    })
}

#[derive(Debug, PartialEq, Eq)]
enum TransferCoding {
    /// The last coding is `chunked`.
    Chunked,
    /// Some other coding is last (or the field is empty).
    Other,
}

/// The transfer coding that frames the body, if `Transfer-Encoding` is present. Only the last
/// coding matters for framing (RFC 9112 §6.3 rule 4); the field may be split over several lines.
fn transfer_coding(headers: &Headers) -> Option<TransferCoding> {
    let mut present = false;
    let mut last_coding: &[u8] = b"";
    for value in headers.get_all("transfer-encoding") {
        present = true;
        if let Some(coding) = value
            .split(|&byte| byte == b',')
            .map(<[u8]>::trim_ascii)
            .rfind(|coding| !coding.is_empty())
        {
            last_coding = coding;
        }
    }
    present.then(|| {
        if last_coding.eq_ignore_ascii_case(b"chunked") {
            TransferCoding::Chunked
        } else {
            TransferCoding::Other
        }
    })
}

/// The value of `Content-Length`, if present. Repeats of one value (in one field as a list, or
/// in several fields) are accepted, as RFC 9110 §8.6 allows; differing values are not.
fn content_length(headers: &Headers) -> Result<Option<u64>, ParseError> {
    let mut length = None;
    for value in headers.get_all("content-length") {
        for item in value.split(|&byte| byte == b',') {
            let item =
                parse_digits(item.trim_ascii(), 10).ok_or(ParseError::InvalidContentLength)?;
            match length {
                Some(seen) if seen != item => return Err(ParseError::ConflictingContentLength),
                _ => length = Some(item),
            }
        }
    }
    Ok(length)
}

/// A non-empty string of digits in `radix` (no sign, no spaces) that fits in a `u64`. Leading
/// zeros are fine however many there are: only the value has to fit.
pub(crate) fn parse_digits(digits: &[u8], radix: u32) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |value, &byte| {
        let digit = char::from(byte).to_digit(radix)?;
        value
            .checked_mul(u64::from(radix))?
            .checked_add(u64::from(digit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(fields: &[(&str, &str)]) -> Headers {
        Headers::from_fields(fields.iter().map(|(n, v)| (*n, v.as_bytes())))
    }

    #[test]
    fn requests_have_a_body_only_when_their_head_says_so() {
        assert_eq!(request_framing(&headers(&[])), Ok(BodyFraming::NoBody));
        assert_eq!(
            request_framing(&headers(&[("Content-Length", "12")])),
            Ok(BodyFraming::Length(12))
        );
        assert_eq!(
            request_framing(&headers(&[("transfer-encoding", "gzip, chunked")])),
            Ok(BodyFraming::Chunked)
        );
        assert_eq!(
            request_framing(&headers(&[("Transfer-Encoding", "chunked, gzip")])),
            Err(ParseError::UnframedRequestBody)
        );
    }

    #[test]
    fn chunked_wins_over_content_length() {
        let both = headers(&[("Content-Length", "5"), ("Transfer-Encoding", "chunked")]);
        assert_eq!(request_framing(&both), Ok(BodyFraming::Chunked));
        assert_eq!(
            response_framing(200, None, &both).map(|f| f.body),
            Ok(BodyFraming::Chunked)
        );
    }

    #[test]
    fn content_length_must_be_one_decimal_number() {
        let framing = |value| request_framing(&headers(&[("Content-Length", value)]));
        assert_eq!(framing("5, 5"), Ok(BodyFraming::Length(5)));
        assert_eq!(framing(" 007 "), Ok(BodyFraming::Length(7)));
        assert_eq!(
            framing("18446744073709551615"),
            Ok(BodyFraming::Length(u64::MAX))
        );
        assert_eq!(
            framing("99999999999999999999"),
            Err(ParseError::InvalidContentLength)
        );
        assert_eq!(framing("-1"), Err(ParseError::InvalidContentLength));
        assert_eq!(framing("+1"), Err(ParseError::InvalidContentLength));
        assert_eq!(framing(""), Err(ParseError::InvalidContentLength));
        assert_eq!(framing("1 2"), Err(ParseError::InvalidContentLength));
        assert_eq!(framing("5, 6"), Err(ParseError::ConflictingContentLength));
        let repeated = headers(&[("Content-Length", "5"), ("content-length", "6")]);
        assert_eq!(
            request_framing(&repeated),
            Err(ParseError::ConflictingContentLength)
        );
    }

    #[test]
    fn some_responses_never_have_a_body() {
        let with_length = headers(&[("Content-Length", "10")]);
        for status in [100, 103, 204, 304] {
            assert_eq!(
                response_framing(status, None, &with_length),
                Ok(ResponseFraming {
                    body: BodyFraming::NoBody,
                    opens_tunnel: false
                }),
                "{status}"
            );
        }
        assert_eq!(
            response_framing(200, Some(RequestKind::Head), &with_length).map(|f| f.body),
            Ok(BodyFraming::NoBody)
        );
    }

    #[test]
    fn upgrades_and_connect_open_a_tunnel() {
        let none = headers(&[]);
        let opens = |status, request| {
            response_framing(status, request, &none).map(|framing| framing.opens_tunnel)
        };
        assert_eq!(opens(101, None), Ok(true));
        assert_eq!(opens(200, Some(RequestKind::Connect)), Ok(true));
        assert_eq!(opens(407, Some(RequestKind::Connect)), Ok(false));
        assert_eq!(opens(200, None), Ok(false));
    }

    #[test]
    fn responses_without_length_read_until_close() {
        assert_eq!(
            response_framing(200, Some(RequestKind::Other), &headers(&[])).map(|f| f.body),
            Ok(BodyFraming::UntilClose)
        );
        assert_eq!(
            response_framing(200, None, &headers(&[("Transfer-Encoding", "gzip")])).map(|f| f.body),
            Ok(BodyFraming::UntilClose)
        );
    }
}
