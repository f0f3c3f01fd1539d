//! Which certificate authorities the HTTPS connections trust: Mozilla's roots compiled into the binary
//! (default), or the operating system's store.
//!
//! The default exists for cold starts. The system store (what reqwest's platform verifier reads) is loaded
//! when a client is built: on Linux the whole CA bundle and then every file in the certificate directory, about
//! 150 files and 6 ms, most of a Lambda function's start. The bundled roots are parsed from memory. Set
//! `LEANCLOUD_TLS_ROOTS=system` to trust a private CA installed on the host instead.

use crate::ConfigError;

/// `LEANCLOUD_TLS_ROOTS`: `bundled` (default) or `system`.
pub const ENV_TLS_ROOTS: &str = "LEANCLOUD_TLS_ROOTS";

/// The trust anchors of an HTTPS client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsRoots {
    /// Mozilla's root program, as shipped in the `webpki-root-certs` crate this binary was built with.
    #[default]
    Bundled,
    /// The operating system's certificate store.
    System,
}

impl TlsRoots {
    /// From `LEANCLOUD_TLS_ROOTS` in `lookup` (unset or empty: [`TlsRoots::Bundled`]).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<TlsRoots, ConfigError> {
        match lookup(ENV_TLS_ROOTS).as_deref().map(str::trim) {
            None | Some("") => Ok(TlsRoots::default()),
            Some(v) if v.eq_ignore_ascii_case("bundled") => Ok(TlsRoots::Bundled),
            Some(v) if v.eq_ignore_ascii_case("system") => Ok(TlsRoots::System),
            Some(_) => Err(ConfigError::Invalid {
                var: ENV_TLS_ROOTS,
                reason: "must be `bundled` or `system`".into(),
            }),
        }
    }

    /// `builder` trusting these roots.
    pub fn apply(self, builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        match self {
            TlsRoots::System => builder,
            TlsRoots::Bundled => builder.tls_certs_only(
                webpki_root_certs::TLS_SERVER_ROOT_CERTS
                    .iter()
                    .filter_map(|der| reqwest::Certificate::from_der(der).ok()),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(value: Option<&'static str>) -> impl Fn(&str) -> Option<String> {
        move |name| {
            (name == ENV_TLS_ROOTS)
                .then(|| value.map(str::to_owned))
                .flatten()
        }
    }

    #[test]
    fn bundled_roots_are_the_default_and_system_is_chosen_by_name() {
        assert_eq!(Ok(TlsRoots::Bundled), TlsRoots::from_lookup(lookup(None)));
        assert_eq!(
            Ok(TlsRoots::Bundled),
            TlsRoots::from_lookup(lookup(Some("")))
        );
        assert_eq!(
            Ok(TlsRoots::System),
            TlsRoots::from_lookup(lookup(Some("System")))
        );
        let err = TlsRoots::from_lookup(lookup(Some("insecure"))).expect_err("refused");
        assert_eq!(
            "LEANCLOUD_TLS_ROOTS is invalid: must be `bundled` or `system`",
            err.to_string()
        );
    }

    #[test]
    fn every_bundled_root_is_usable() {
        let parsed = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .filter(|der| reqwest::Certificate::from_der(der).is_ok())
            .count();
        assert!(parsed > 100, "{parsed} roots");
        assert_eq!(webpki_root_certs::TLS_SERVER_ROOT_CERTS.len(), parsed);
        TlsRoots::Bundled
            .apply(reqwest::Client::builder())
            .build()
            .expect("a client trusting the bundled roots");
    }
}
