//! The two signed tokens the push providers want, signed with `ring`:
//!
//! - APNs token auth: `{"alg":"ES256","kid":<key id>}` . `{"iss":<team id>,"iat":<s>}`, signed with the app's
//!   `.p8` key (PKCS#8 P-256) — the signature is r‖s, 64 bytes (JWS), not DER;
//! - the FCM OAuth assertion: `{"alg":"RS256","typ":"JWT"}` . claims, signed with the service account's RSA key.
//!
//! Errors name what is wrong with a key, never its bytes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivatePkcs8KeyDer;
use serde_json::{json, Value};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("the key is not PEM (-----BEGIN PRIVATE KEY----- … -----END PRIVATE KEY-----)")]
    NotPem,
    #[error("the key is not a PKCS#8 {0} private key")]
    Rejected(&'static str),
    #[error("signing failed")]
    Signing,
}

/// The DER bytes of a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), as `.p8` files and service accounts hold them.
fn pkcs8_der(pem: &str) -> Result<PrivatePkcs8KeyDer<'static>, KeyError> {
    PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes()).map_err(|_| KeyError::NotPem)
}

fn segment(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// An APNs signing key (a `.p8` file's P-256 key), its key id and team id.
pub struct ApnsKey {
    pair: EcdsaKeyPair,
    key_id: String,
    team_id: String,
}

impl std::fmt::Debug for ApnsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApnsKey")
            .field("key_id", &self.key_id)
            .field("team_id", &self.team_id)
            .finish_non_exhaustive()
    }
}

impl ApnsKey {
    pub fn from_p8(pem: &str, key_id: &str, team_id: &str) -> Result<ApnsKey, KeyError> {
        let der = pkcs8_der(pem)?;
        let pair = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            der.secret_pkcs8_der(),
            &SystemRandom::new(),
        )
        .map_err(|_| KeyError::Rejected("P-256 (ES256)"))?;
        Ok(ApnsKey {
            pair,
            key_id: key_id.to_string(),
            team_id: team_id.to_string(),
        })
    }

    /// The provider token issued at `iat` (unix seconds).
    pub fn token(&self, iat: i64) -> Result<String, KeyError> {
        let signing_input = format!(
            "{}.{}",
            segment(&json!({"alg": "ES256", "kid": self.key_id})),
            segment(&json!({"iss": self.team_id, "iat": iat}))
        );
        let sig = self
            .pair
            .sign(&SystemRandom::new(), signing_input.as_bytes())
            .map_err(|_| KeyError::Signing)?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(sig.as_ref())
        ))
    }
}

/// A service account's RSA key.
pub struct RsaKey {
    pair: RsaKeyPair,
}

impl std::fmt::Debug for RsaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RsaKey(..)")
    }
}

impl RsaKey {
    pub fn from_pem(pem: &str) -> Result<RsaKey, KeyError> {
        let der = pkcs8_der(pem)?;
        let pair = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
            .map_err(|_| KeyError::Rejected("RSA (RS256)"))?;
        Ok(RsaKey { pair })
    }

    /// A JWT of `claims`, RS256.
    pub fn sign(&self, claims: &Value) -> Result<String, KeyError> {
        let signing_input = format!(
            "{}.{}",
            segment(&json!({"alg": "RS256", "typ": "JWT"})),
            segment(claims)
        );
        let mut sig = vec![0; self.pair.public().modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut sig,
            )
            .map_err(|_| KeyError::Signing)?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use ring::signature::{
        KeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED, RSA_PKCS1_2048_8192_SHA256,
    };

    fn pem(der: &[u8]) -> String {
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(der)
        )
    }

    fn parts(jwt: &str) -> (Value, Value, Vec<u8>, String) {
        let p: Vec<&str> = jwt.split('.').collect();
        assert_eq!(3, p.len(), "{jwt}");
        let json = |s: &str| {
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(s).expect("b64")).expect("json")
        };
        (
            json(p[0]),
            json(p[1]),
            URL_SAFE_NO_PAD.decode(p[2]).expect("sig"),
            format!("{}.{}", p[0], p[1]),
        )
    }

    #[test]
    fn an_apns_token_is_es256_with_a_64_byte_signature_that_verifies() {
        let doc =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .expect("key");
        let key = ApnsKey::from_p8(&pem(doc.as_ref()), "ABC123DEFG", "TEAM123456").expect("p8");
        // A key file saved with Windows line ends reads the same.
        let crlf = pem(doc.as_ref()).replace('\n', "\r\n");
        assert!(ApnsKey::from_p8(&crlf, "ABC123DEFG", "TEAM123456").is_ok());
        let (header, claims, sig, input) = parts(&key.token(1_800_000_000).expect("token"));
        assert_eq!(json!({"alg": "ES256", "kid": "ABC123DEFG"}), header);
        assert_eq!(json!({"iss": "TEAM123456", "iat": 1_800_000_000}), claims);
        assert_eq!(64, sig.len(), "r‖s, not DER");
        let public = key.pair.public_key().as_ref().to_vec();
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public)
            .verify(input.as_bytes(), &sig)
            .expect("the signature verifies");
        assert!(
            !format!("{key:?}").contains("pair"),
            "no key material in Debug"
        );
    }

    #[test]
    fn a_service_account_assertion_is_rs256_and_verifies() {
        let key = RsaKey::from_pem(include_str!("test-rsa-key.pem")).expect("pem");
        let claims = json!({"iss": "sa@p.iam.gserviceaccount.com", "aud": "https://oauth2.googleapis.com/token"});
        let (header, got, sig, input) = parts(&key.sign(&claims).expect("jwt"));
        assert_eq!(
            (json!({"alg": "RS256", "typ": "JWT"}), claims),
            (header, got)
        );
        let public = key.pair.public().as_ref().to_vec();
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public)
            .verify(input.as_bytes(), &sig)
            .expect("the signature verifies");
    }

    #[test]
    fn bad_keys_are_named_not_shown() {
        assert_eq!(
            Some(KeyError::NotPem),
            ApnsKey::from_p8("nope", "k", "t").err()
        );
        let rsa = include_str!("test-rsa-key.pem");
        assert_eq!(
            Some(KeyError::Rejected("P-256 (ES256)")),
            ApnsKey::from_p8(rsa, "k", "t").err()
        );
    }
}
