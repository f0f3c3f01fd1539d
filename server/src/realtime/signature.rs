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
}
