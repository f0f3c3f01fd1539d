//! LeanCloud's realtime signatures: `hex(HMAC-SHA1(master key, colon-joined fields))`, computed by the
//! app's backend and checked here (`realtime-protocol.md` §8.8).

use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// What a signature covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signed<'a> {
    /// `appid:clientid::timestamp:nonce`.
    Login { client: &'a str },
    /// `appid:clientid:sorted_member_ids:timestamp:nonce` (the members include the creator).
    Create {
        client: &'a str,
        members: &'a [String],
    },
    /// `appid:clientid:convid:sorted_member_ids:timestamp:nonce:invite`.
    Add {
        client: &'a str,
        conv: &'a str,
        members: &'a [String],
    },
    /// `appid:clientid:convid:sorted_member_ids:timestamp:nonce:kick`.
    Remove {
        client: &'a str,
        conv: &'a str,
        members: &'a [String],
    },
    /// `appid:clientid:convid:sorted_member_ids:timestamp:nonce:conversation-block-clients` (or
    /// `conversation-unblock-clients`).
    Block {
        client: &'a str,
        conv: &'a str,
        members: &'a [String],
        block: bool,
    },
}

fn ids(members: &[String]) -> Vec<&str> {
    members.iter().map(String::as_str).collect()
}

impl<'a> Signed<'a> {
    /// The client-chosen fields the signed string joins with `:`.
    fn fields(&self) -> Vec<&'a str> {
        match *self {
            Signed::Login { client } => vec![client],
            Signed::Create { client, members } => [vec![client], ids(members)].concat(),
            Signed::Add {
                client,
                conv,
                members,
            }
            | Signed::Remove {
                client,
                conv,
                members,
            }
            | Signed::Block {
                client,
                conv,
                members,
                ..
            } => [vec![client, conv], ids(members)].concat(),
        }
    }
}

/// Signatures seen within their freshness window, so each is accepted once (per instance).
#[derive(Debug, Default)]
pub struct SeenSignatures {
    seen: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
}

impl SeenSignatures {
    /// Whether `signature` is new (and remembers it until `keep` has passed).
    fn first_use(&self, signature: &str, keep: std::time::Duration) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        if seen.len() > 100_000 {
            seen.retain(|_, until| *until > now);
        }
        // One key per signature whatever the case of its hex: `verify` accepts either.
        let key = signature.to_ascii_lowercase();
        match seen.get(&key) {
            Some(until) if *until > now => false,
            _ => {
                seen.insert(key, now + keep);
                true
            }
        }
    }
}

/// Whether `t` (seconds or ms, as the SDKs send it) is within `max_age` of now.
fn fresh(t: i64, max_age: std::time::Duration) -> bool {
    let ms = if t < 100_000_000_000 {
        t.saturating_mul(1000)
    } else {
        t
    };
    let now = chrono::Utc::now().timestamp_millis();
    now.saturating_sub(ms).unsigned_abs() <= max_age.as_millis() as u64
}

/// [`verify`], and more than the HMAC (review part 3, R7): no `:` inside a signed field or the nonce, so one
/// signed string cannot be re-cut into another; with `max_age`, a timestamp within that of now and each
/// signature accepted once within it.
#[allow(clippy::too_many_arguments)]
pub fn verify_fresh(
    master_key: &str,
    app_id: &str,
    what: Signed<'_>,
    t: Option<i64>,
    n: Option<&str>,
    s: Option<&str>,
    max_age: Option<std::time::Duration>,
    seen: &SeenSignatures,
) -> bool {
    let (Some(t), Some(n), Some(s)) = (t, n, s) else {
        return false;
    };
    if n.is_empty() || n.contains(':') || what.fields().iter().any(|f| f.contains(':')) {
        return false;
    }
    if max_age.is_some_and(|age| !fresh(t, age)) {
        return false;
    }
    if !verify(master_key, app_id, what, Some(t), Some(n), Some(s)) {
        return false;
    }
    match max_age {
        // Remembered for the whole window on either side of now.
        Some(age) => seen.first_use(s.trim(), age * 2),
        None => true,
    }
}

fn sorted(ids: &[String]) -> String {
    let mut ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    ids.sort_unstable();
    ids.join(":")
}

/// The string that is signed. `timestamp` is the decimal form of `t` as received (seconds or ms).
pub fn signed_string(app_id: &str, what: Signed<'_>, timestamp: i64, nonce: &str) -> String {
    match what {
        Signed::Login { client } => format!("{app_id}:{client}::{timestamp}:{nonce}"),
        Signed::Create { client, members } => {
            format!("{app_id}:{client}:{}:{timestamp}:{nonce}", sorted(members))
        }
        Signed::Add {
            client,
            conv,
            members,
        } => {
            format!(
                "{app_id}:{client}:{conv}:{}:{timestamp}:{nonce}:invite",
                sorted(members)
            )
        }
        Signed::Remove {
            client,
            conv,
            members,
        } => {
            format!(
                "{app_id}:{client}:{conv}:{}:{timestamp}:{nonce}:kick",
                sorted(members)
            )
        }
        Signed::Block {
            client,
            conv,
            members,
            block,
        } => {
            let action = if block {
                "conversation-block-clients"
            } else {
                "conversation-unblock-clients"
            };
            format!(
                "{app_id}:{client}:{conv}:{}:{timestamp}:{nonce}:{action}",
                sorted(members)
            )
        }
    }
}

pub fn sign(master_key: &str, message: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha1>::new_from_slice(master_key.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Checks `(t, n, s)` as sent in a command; a missing part is a failed check.
pub fn verify(
    master_key: &str,
    app_id: &str,
    what: Signed<'_>,
    t: Option<i64>,
    n: Option<&str>,
    s: Option<&str>,
) -> bool {
    let (Some(t), Some(n), Some(s)) = (t, n, s) else {
        return false;
    };
    let expected = sign(master_key, &signed_string(app_id, what, t, n));
    expected
        .as_bytes()
        .ct_eq(s.trim().to_ascii_lowercase().as_bytes())
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_vector_of_the_protocol_notes_verifies() {
        let what = Signed::Login { client: "Tom" };
        assert_eq!(
            "emuAppId0000000-gzGzoHsz:Tom::1700000000:n0nce",
            signed_string("emuAppId0000000-gzGzoHsz", what, 1_700_000_000, "n0nce")
        );
        let s = "e3ecdece0a2aba0a7d3baba9d00717514b908e50";
        assert!(verify(
            "emuMasterKey",
            "emuAppId0000000-gzGzoHsz",
            what,
            Some(1_700_000_000),
            Some("n0nce"),
            Some(s)
        ));
        assert!(!verify(
            "emuMasterKey",
            "emuAppId0000000-gzGzoHsz",
            what,
            Some(1_700_000_001),
            Some("n0nce"),
            Some(s)
        ));
        assert!(!verify(
            "emuMasterKey",
            "emuAppId0000000-gzGzoHsz",
            what,
            Some(1_700_000_000),
            Some("n0nce"),
            None
        ));
    }

    #[test]
    fn the_create_vector_sorts_the_members() {
        let members = vec!["Tom".to_string(), "Zed".to_string(), "Bob".to_string()];
        let what = Signed::Create {
            client: "Tom",
            members: &members,
        };
        assert_eq!(
            "emuAppId0000000-gzGzoHsz:Tom:Bob:Tom:Zed:1700000001:n1",
            signed_string("emuAppId0000000-gzGzoHsz", what, 1_700_000_001, "n1")
        );
        assert!(verify(
            "emuMasterKey",
            "emuAppId0000000-gzGzoHsz",
            what,
            Some(1_700_000_001),
            Some("n1"),
            Some("49b3949a14e620abfa6f062b45740637cb372e20")
        ));
    }

    #[test]
    fn fresh_signatures_are_accepted_once_and_colons_never() {
        let (key, app) = ("emuMasterKey", "emuAppId0000000-gzGzoHsz");
        let seen = SeenSignatures::default();
        let hour = Some(std::time::Duration::from_secs(3600));
        let now_s = chrono::Utc::now().timestamp();
        fn login<'c>(
            key: &str,
            app: &str,
            client: &'c str,
            t: i64,
            n: &str,
        ) -> (Signed<'c>, String) {
            let what = Signed::Login { client };
            (what, sign(key, &signed_string(app, what, t, n)))
        }
        let login = |client: &'static str, t: i64, n: &str| login(key, app, client, t, n);
        let (what, s) = login("Tom", now_s, "abc");
        assert!(verify_fresh(
            key,
            app,
            what,
            Some(now_s),
            Some("abc"),
            Some(&s),
            hour,
            &seen
        ));
        assert!(
            !verify_fresh(
                key,
                app,
                what,
                Some(now_s),
                Some("abc"),
                Some(&s),
                hour,
                &seen
            ),
            "a replay"
        );
        assert!(
            !verify_fresh(
                key,
                app,
                what,
                Some(now_s),
                Some("abc"),
                Some(&s.to_ascii_uppercase()),
                hour,
                &seen
            ),
            "a replay in upper-case hex"
        );
        let ms = now_s * 1000;
        let (what, s) = login("Tom", ms, "def");
        assert!(verify_fresh(
            key,
            app,
            what,
            Some(ms),
            Some("def"),
            Some(&s),
            hour,
            &seen
        ));
        let old = now_s - 400 * 24 * 3600;
        let (what, s) = login("Tom", old, "ghi");
        assert!(!verify_fresh(
            key,
            app,
            what,
            Some(old),
            Some("ghi"),
            Some(&s),
            hour,
            &seen
        ));
        assert!(
            verify_fresh(
                key,
                app,
                what,
                Some(old),
                Some("ghi"),
                Some(&s),
                None,
                &seen
            ),
            "no window: the HMAC alone"
        );
        // `app:victim7::1700000000:x::T:nn` signed for client `victim7::1700000000:x` is not a login of `victim7`.
        let (_, s) = login("victim7::1700000000:x", now_s, "nn");
        let recut = Signed::Login { client: "victim7" };
        assert!(!verify_fresh(
            key,
            app,
            recut,
            Some(1_700_000_000),
            Some(&format!("x::{now_s}:nn")),
            Some(&s),
            None,
            &seen
        ));
        let (what, s) = login("victim7::1700000000:x", now_s, "nn2");
        assert!(!verify_fresh(
            key,
            app,
            what,
            Some(now_s),
            Some("nn2"),
            Some(&s),
            None,
            &seen
        ));
    }
}
