//! The description of a call, independent of HTTP, so wire bytes can be tested without a socket.

use serde::de::DeserializeOwned;

use crate::error::{Error, ValidationError};

/// The API version prefix every SDK request uses.
pub const API_VERSION: &str = "1.1";

/// The version prefix of LeanCloud's REST server API for conversations (`/1.2/rtm/…`, [`crate::rtm2`]).
pub const API_VERSION_2: &str = "1.2";

/// One LeanCloud operation as plain data. [`Client::execute`](crate::Client::execute) turns it into
/// an HTTP request; every request type also has an inherent `.send(&client)` shortcut.
pub trait Request {
    /// What a successful call returns.
    type Response: DeserializeOwned;

    /// HTTP method.
    fn method(&self) -> http::Method;

    /// The API version prefix of the path: [`API_VERSION`](crate::API_VERSION) (`1.1`, the SDK's) unless
    /// the request belongs to the 1.2 REST server API ([`API_VERSION_2`](crate::API_VERSION_2)).
    fn api_version(&self) -> &'static str {
        API_VERSION
    }

    /// Path after `<base>/<api_version>`, e.g. `/rtm/messages`.
    fn path(&self) -> String;

    /// Query parameters in wire order, with raw (not yet URL-encoded) values; values the SDK
    /// JSON-encodes (`where`) are already JSON here. [`encode_query`] does the rest.
    fn query(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    /// The exact body bytes (compact JSON, `ensure_ascii`, the SDK's key order), if any.
    fn body(&self) -> Result<Option<Vec<u8>>, Error>;

    /// Checks made before anything is sent.
    fn validate(&self) -> Result<(), ValidationError> {
        Ok(())
    }

    /// May a retry re-apply this request harmlessly (GET, DELETE, `AddUnique`/`Remove` updates)?
    /// Requests that are not idempotent are only retried when the connection could not be
    /// established, since then nothing reached the server.
    fn is_idempotent(&self) -> bool;

    /// Turn a successful (2xx, JSON, no `error` key) body into the response.
    fn decode(&self, status: u16, body: serde_json::Value) -> Result<Self::Response, Error> {
        serde_json::from_value(body).map_err(|source| Error::Decode { status, source })
    }
}

/// Python's `urllib.parse.quote_plus`: unreserved characters (`A-Z a-z 0-9 _ . - ~`) stay, space
/// becomes `+`, every other UTF-8 byte is `%XX` with upper-case hex.
pub fn quote_plus(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 0xf) as usize] as char);
            }
        }
    }
    out
}

/// Encode query parameters as `requests` does for the SDK's `params` dict (`urlencode`).
///
/// ```
/// # use leancloud_im::encode_query;
/// let q = encode_query(&[("where", r#"{"name":"\u6d4b\u8bd5 conv"}"#.to_string()), ("limit", "1".into())]);
/// assert_eq!("where=%7B%22name%22%3A%22%5Cu6d4b%5Cu8bd5+conv%22%7D&limit=1", q);
/// ```
pub fn encode_query(params: &[(&str, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", quote_plus(k), quote_plus(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// One URL path segment: every byte but the unreserved ones (`A-Z a-z 0-9 _ . - ~`) as `%XX`, so an id
/// taken from a server answer (a message id may hold `/` or `+`) cannot change the path it is placed in.
pub(crate) fn path_segment(s: &str) -> String {
    quote_plus(s).replace('+', "%20")
}

/// An id placed in a URL path by [`path_segment`] must not be a dot segment: URL parsing removes `.` and `..`
/// (escaped or not), so `clients/../kick` would go out as another resource, signed with the master key.
pub(crate) fn check_segment(kind: &'static str, s: &str) -> Result<(), ValidationError> {
    if s == "." || s == ".." {
        return Err(ValidationError::InvalidId {
            kind,
            reason: "is a dot segment (. or ..), which URL parsing would remove from the path",
        });
    }
    Ok(())
}

/// Python's `str(bool)`, which is how the SDK's boolean query parameters reach the wire.
pub(crate) fn py_bool(b: bool) -> String {
    if b { "True" } else { "False" }.to_owned()
}

/// Adds the `.send(&client)` shortcut to request types.
macro_rules! impl_send {
    ($($ty:ty),* $(,)?) => {$(
        impl $ty {
            /// Execute this request with `client` (see [`Client::execute`](crate::Client::execute)).
            pub async fn send(
                &self,
                client: &$crate::Client,
            ) -> Result<<Self as $crate::Request>::Response, $crate::Error> {
                client.execute(self).await
            }
        }
    )*};
}
pub(crate) use impl_send;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_keep_only_unreserved_characters() {
        let cases = [
            ("qNkRkFWOeSqP65S9fDyHJw", "qNkRkFWOeSqP65S9fDyHJw"),
            ("a/b+c", "a%2Fb%2Bc"),
            ("u 1", "u%201"),
            ("..", ".."),
            ("é?#", "%C3%A9%3F%23"),
        ];
        for (input, expected) in cases {
            assert_eq!(expected, path_segment(input), "when escaping {input:?}");
        }
    }

    #[test]
    fn quote_plus_matches_python() {
        // Expected values from Python 3.11: urllib.parse.quote_plus(s)
        let cases = [
            ("a b", "a+b"),
            ("name,m", "name%2Cm"),
            ("-updatedAt", "-updatedAt"),
            ("~_.", "~_."),
            ("*", "%2A"),
            ("{\"$or\":[]}", "%7B%22%24or%22%3A%5B%5D%7D"),
            ("é", "%C3%A9"),
            ("a+b/c", "a%2Bb%2Fc"),
        ];
        for (input, expected) in cases {
            assert_eq!(expected, quote_plus(input), "when quoting {input:?}");
        }
    }
}
