//! Credentials of users, apart from who they are: session tokens as LeanCloud makes them, password hashes —
//! argon2id for new passwords, LeanCloud's exported scheme checked (`leancloud-users-files-push.md` §1.8) — and
//! the memory of failed logins behind the lockout. Used by [`super::users`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine as _;
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

/// Failed logins of one account within [`LOCK_WINDOW`] after which it is locked.
pub const MAX_ACCOUNT_FAILURES: usize = 6;
/// Failed logins from one address within [`LOCK_WINDOW`] after which it is refused.
pub const MAX_ADDRESS_FAILURES: usize = 60;
const LOCK_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Recent failed logins, per account and per address (in this instance's memory).
#[derive(Debug, Default)]
pub struct LoginFailures {
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl LoginFailures {
    pub(crate) fn recent(&self, key: &str) -> usize {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let Some(times) = map.get_mut(key) else {
            return 0;
        };
        times.retain(|t| t.elapsed() < LOCK_WINDOW);
        let n = times.len();
        if n == 0 {
            map.remove(key);
        }
        n
    }

    pub(crate) fn record(&self, key: String) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded: forget the oldest keys' history wholesale if an attacker sprays names.
        if map.len() > 100_000 {
            map.retain(|_, times| times.iter().any(|t| t.elapsed() < LOCK_WINDOW));
        }
        map.entry(key).or_default().push(Instant::now());
    }

    pub(crate) fn clear(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

/// A new session token: 25 characters of `[0-9a-z]`, as LeanCloud's.
pub fn new_session_token() -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    (0..25)
        .map(|_| ALPHABET[rand::Rng::random_range(&mut rng, 0..ALPHABET.len())] as char)
        .collect()
}

/// argon2id of `password`, as a PHC string.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
}

/// LeanCloud's export hash (§1.8): base64 of SHA-512 over `salt + password`, then 512 more SHA-512 rounds.
pub fn leancloud_hash(salt: &str, password: &str) -> String {
    let mut digest = Sha512::new()
        .chain_update(salt.as_bytes())
        .chain_update(password.as_bytes())
        .finalize();
    for _ in 0..512 {
        digest = Sha512::digest(digest);
    }
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// How a password checked out against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    Ok,
    /// Right, but stored with LeanCloud's scheme: re-hash it.
    OkUpgrade,
    Wrong,
}

/// Checks `password` against a stored hash: argon2id (ours) or LeanCloud's with its `salt`.
pub fn check_password(stored: &str, salt: Option<&str>, password: &str) -> Checked {
    if stored.starts_with("$argon2") {
        return match PasswordHash::new(stored) {
            Ok(parsed)
                if Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok() =>
            {
                Checked::Ok
            }
            _ => Checked::Wrong,
        };
    }
    match salt {
        Some(salt)
            if bool::from(
                leancloud_hash(salt, password)
                    .as_bytes()
                    .ct_eq(stored.as_bytes()),
            ) =>
        {
            Checked::OkUpgrade
        }
        _ => Checked::Wrong,
    }
}

/// The login limiter every instance's [`Services`] holds.
pub fn login_failures() -> Arc<LoginFailures> {
    Arc::new(LoginFailures::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leanclouds_documented_test_vector_checks_out() {
        let salt = "h60d8x797d3oa0naxybxxv9bn7xpt2yiowz68mpiwou7gwr2";
        let expected =
            "tA7BLW+NK0UeARng0693gCaVnljkglCB9snqlpCSUKjx2RgYp8VZZOQt0S5iUtlDrkJXfT3gknS4rRqjYsd/Ug==";
        assert_eq!(expected, leancloud_hash(salt, "password"));
        assert_eq!(
            Checked::OkUpgrade,
            check_password(expected, Some(salt), "password")
        );
        assert_eq!(
            Checked::Wrong,
            check_password(expected, Some(salt), "Password")
        );
        assert_eq!(Checked::Wrong, check_password(expected, None, "password"));
    }

    #[test]
    fn new_passwords_are_argon2id_and_check_out() {
        let hash = hash_password("s3cret").expect("hash");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert_eq!(Checked::Ok, check_password(&hash, None, "s3cret"));
        assert_eq!(Checked::Wrong, check_password(&hash, None, "s3cret "));
        assert_ne!(hash, hash_password("s3cret").expect("hash"), "salted");
    }

    #[test]
    fn session_tokens_look_like_leanclouds() {
        let t = new_session_token();
        assert_eq!(25, t.len());
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()),
            "{t}"
        );
        assert_ne!(t, new_session_token());
    }
}
