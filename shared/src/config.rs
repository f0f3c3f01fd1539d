//! Application credentials and the server address.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

/// `LEANCLOUD_APP_ID`
pub const ENV_APP_ID: &str = "LEANCLOUD_APP_ID";
/// `LEANCLOUD_APP_KEY`
pub const ENV_APP_KEY: &str = "LEANCLOUD_APP_KEY";
/// `LEANCLOUD_APP_MASTER_KEY`
pub const ENV_MASTER_KEY: &str = "LEANCLOUD_APP_MASTER_KEY";
/// `LEANCLOUD_APP_HOOK_KEY`
pub const ENV_HOOK_KEY: &str = "LEANCLOUD_APP_HOOK_KEY";
/// `LEANCLOUD_API_SERVER`
pub const ENV_API_SERVER: &str = "LEANCLOUD_API_SERVER";
/// `LEANCLOUD_ALLOW_INSECURE_API_SERVER=true`: accept an `http://` API server on a non-loopback host.
pub const ENV_ALLOW_INSECURE_API_SERVER: &str = "LEANCLOUD_ALLOW_INSECURE_API_SERVER";
/// `LC_API_SERVER`, the SDK's fallback name for [`ENV_API_SERVER`].
pub const ENV_API_SERVER_FALLBACK: &str = "LC_API_SERVER";
/// `LEANCLOUD_APP_ENV`
pub const ENV_APP_ENV: &str = "LEANCLOUD_APP_ENV";
/// `LEAN_CLI_HAVE_STAGING`
pub const ENV_HAVE_STAGING: &str = "LEAN_CLI_HAVE_STAGING";

/// A missing or malformed setting, naming the environment variable it comes from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required setting is not set (or is empty).
    #[error("{var} is not set")]
    Missing {
        /// The environment variable.
        var: &'static str,
    },
    /// A setting has a value that cannot be used. The value itself is never included, since it
    /// may be a key.
    #[error("{var} is invalid: {reason}")]
    Invalid {
        /// The environment variable.
        var: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Everything needed to sign requests and reach the server. `Debug` never shows the keys.
#[derive(Clone)]
pub struct Config {
    app_id: String,
    app_key: Option<SecretString>,
    master_key: SecretString,
    hook_key: Option<SecretString>,
    api_server: Url,
    production: bool,
    tls_roots: crate::TlsRoots,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |present: bool| if present { "[REDACTED]" } else { "None" };
        f.debug_struct("Config")
            .field("app_id", &self.app_id)
            .field(
                "app_key",
                &format_args!("{}", redacted(self.app_key.is_some())),
            )
            .field("master_key", &format_args!("[REDACTED]"))
            .field(
                "hook_key",
                &format_args!("{}", redacted(self.hook_key.is_some())),
            )
            .field("api_server", &self.api_server.as_str())
            .field("production", &self.production)
            .field("tls_roots", &self.tls_roots)
            .finish()
    }
}

/// The default API host for an app id, as the SDK's `AppRouter` derives it without a network call:
/// the first eight characters of the id, lower-cased, on the region's shared domain (the suffix of
/// the app id names the region).
pub fn default_api_server(app_id: &str) -> Result<Url, ConfigError> {
    let prefix: String = app_id.chars().take(8).collect::<String>().to_lowercase();
    if prefix.is_empty()
        || !prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(ConfigError::Invalid {
            var: ENV_APP_ID,
            reason: "cannot derive the API host from it; set LEANCLOUD_API_SERVER".into(),
        });
    }
    let host = if app_id.ends_with("-9Nh9j0Va") {
        format!("{prefix}.api.lncldapi.com")
    } else if app_id.ends_with("-MdYXbMMI") {
        format!("{prefix}.api.lncldglobal.com")
    } else {
        format!("{prefix}.lc-cn-n1-shared.com")
    };
    Url::parse(&format!("https://{host}")).map_err(|e| ConfigError::Invalid {
        var: ENV_APP_ID,
        reason: format!("derived API host {host:?} is not a valid URL: {e}"),
    })
}

fn parse_api_server(
    var: &'static str,
    raw: &str,
    allow_insecure: bool,
) -> Result<Url, ConfigError> {
    let url = Url::parse(raw.trim()).map_err(|e| ConfigError::Invalid {
        var,
        reason: format!("not an absolute URL: {e}"),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::Invalid {
            var,
            reason: "the scheme must be http or https".into(),
        });
    }
    if url.host_str().is_none() {
        return Err(ConfigError::Invalid {
            var,
            reason: "the URL has no host".into(),
        });
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::Invalid {
            var,
            reason: "the URL must not have a query or fragment".into(),
        });
    }
    if url.scheme() == "http" && !allow_insecure && !is_loopback(&url) {
        return Err(ConfigError::Invalid {
            var,
            reason: format!(
                "http:// would send the master signature in cleartext to {}; use https, or set \
                 {ENV_ALLOW_INSECURE_API_SERVER}=true for a private network",
                url.host_str().unwrap_or_default()
            ),
        });
    }
    Ok(url)
}

/// `localhost`, 127.0.0.0/8 or ::1: a cleartext hop that never leaves the machine.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn non_empty_secret(var: &'static str, value: String) -> Result<SecretString, ConfigError> {
    if value.is_empty() {
        return Err(ConfigError::Missing { var });
    }
    if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ConfigError::Invalid {
            var,
            reason: "contains whitespace or control characters".into(),
        });
    }
    Ok(SecretString::from(value))
}

/// X-LC-Prod as the SDK decides it: `LEANCLOUD_APP_ENV=stage` means staging, `production` means
/// production, anything else is production unless `LEAN_CLI_HAVE_STAGING=true`.
fn production_from(app_env: Option<&str>, have_staging: Option<&str>) -> bool {
    match app_env {
        Some("stage") => false,
        Some("production") => true,
        _ => have_staging != Some("true"),
    }
}

impl Config {
    /// Read the configuration from the environment variables the Python SDK and LeanEngine use:
    ///
    /// | Variable | |
    /// |---|---|
    /// | `LEANCLOUD_APP_ID` | required |
    /// | `LEANCLOUD_APP_MASTER_KEY` | required (every IM operation needs the master key) |
    /// | `LEANCLOUD_APP_KEY` | optional |
    /// | `LEANCLOUD_APP_HOOK_KEY` | optional; sent as `X-LC-Hook-Key` like the SDK |
    /// | `LEANCLOUD_API_SERVER` (or `LC_API_SERVER`) | optional base URL; default derived from the app id |
    /// | `LEANCLOUD_APP_ENV` | `stage` sends `X-LC-Prod: 0` |
    ///
    /// ```
    /// # use leancloud_im::{Config, ConfigError};
    /// // `from_lookup` is `from_env` with another source; with nothing set, the first required
    /// // variable is named.
    /// let missing = Config::from_lookup(|_| None).map(|_| ());
    /// assert_eq!(Err(ConfigError::Missing { var: "LEANCLOUD_APP_ID" }), missing);
    /// ```
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Config::from_env`] with a custom variable source (for tests and for secrets fetched
    /// elsewhere).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |var: &'static str| lookup(var).filter(|v| !v.is_empty());
        let app_id = get(ENV_APP_ID).ok_or(ConfigError::Missing { var: ENV_APP_ID })?;
        let master_key = get(ENV_MASTER_KEY).ok_or(ConfigError::Missing {
            var: ENV_MASTER_KEY,
        })?;
        let mut builder = Config::builder(app_id).master_key(master_key);
        if let Some(key) = get(ENV_APP_KEY) {
            builder = builder.app_key(key);
        }
        if let Some(key) = get(ENV_HOOK_KEY) {
            builder = builder.hook_key(key);
        }
        if let Some(server) = get(ENV_API_SERVER) {
            builder.api_server = Some((ENV_API_SERVER, server));
        } else if let Some(server) = get(ENV_API_SERVER_FALLBACK) {
            builder.api_server = Some((ENV_API_SERVER_FALLBACK, server));
        }
        if let Some(allow) = get(ENV_ALLOW_INSECURE_API_SERVER) {
            builder = builder.allow_insecure_http(matches!(allow.trim(), "true" | "1" | "yes"));
        }
        builder = builder.tls_roots(crate::TlsRoots::from_lookup(&lookup)?);
        let env = lookup(ENV_APP_ENV);
        let staging = lookup(ENV_HAVE_STAGING);
        builder = builder.production(production_from(env.as_deref(), staging.as_deref()));
        builder.build()
    }

    /// Build a configuration in code.
    ///
    /// ```
    /// # use leancloud_im::Config;
    /// let config = Config::builder("dev-app-id-gzGzoHsz")
    ///     .master_key("dev-master-key")
    ///     .api_server("http://127.0.0.1:3000")
    ///     .build()
    ///     .unwrap();
    /// assert_eq!("http://127.0.0.1:3000/", config.api_server().as_str());
    /// assert!(!format!("{config:?}").contains("dev-master-key"));
    /// ```
    pub fn builder(app_id: impl Into<String>) -> ConfigBuilder {
        ConfigBuilder {
            app_id: app_id.into(),
            app_key: None,
            master_key: None,
            hook_key: None,
            api_server: None,
            production: true,
            allow_insecure: false,
            tls_roots: crate::TlsRoots::default(),
        }
    }

    /// The application id (`X-LC-Id`).
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// The base URL requests go to (`/1.1/…` is appended).
    pub fn api_server(&self) -> &Url {
        &self.api_server
    }

    /// Whether requests go to the production environment (`X-LC-Prod: 1`).
    pub fn production(&self) -> bool {
        self.production
    }

    /// Whether an app key was configured.
    pub fn has_app_key(&self) -> bool {
        self.app_key.is_some()
    }

    /// Which certificate authorities the client trusts (`LEANCLOUD_TLS_ROOTS`).
    pub fn tls_roots(&self) -> crate::TlsRoots {
        self.tls_roots
    }

    pub(crate) fn master_key(&self) -> &str {
        self.master_key.expose_secret()
    }

    pub(crate) fn hook_key(&self) -> Option<&str> {
        self.hook_key.as_ref().map(|k| k.expose_secret())
    }
}

/// Builder for [`Config`]; see [`Config::builder`].
pub struct ConfigBuilder {
    app_id: String,
    app_key: Option<String>,
    master_key: Option<String>,
    hook_key: Option<String>,
    api_server: Option<(&'static str, String)>,
    production: bool,
    allow_insecure: bool,
    tls_roots: crate::TlsRoots,
}

impl fmt::Debug for ConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigBuilder")
            .field("app_id", &self.app_id)
            .field("api_server", &self.api_server.as_ref().map(|(_, s)| s))
            .field("production", &self.production)
            .finish_non_exhaustive()
    }
}

impl ConfigBuilder {
    /// The app key (optional: every IM operation is signed with the master key).
    pub fn app_key(mut self, key: impl Into<String>) -> Self {
        self.app_key = Some(key.into());
        self
    }

    /// The master key (required).
    pub fn master_key(mut self, key: impl Into<String>) -> Self {
        self.master_key = Some(key.into());
        self
    }

    /// A LeanEngine hook key, sent as `X-LC-Hook-Key`.
    pub fn hook_key(mut self, key: impl Into<String>) -> Self {
        self.hook_key = Some(key.into());
        self
    }

    /// The base URL, e.g. `https://abcdefgh.lc-cn-n1-shared.com` or a local server.
    pub fn api_server(mut self, url: impl Into<String>) -> Self {
        self.api_server = Some((ENV_API_SERVER, url.into()));
        self
    }

    /// Accept an `http://` API server on a host other than loopback (the master signature then travels in
    /// cleartext: only for a private network). Default `false`; `LEANCLOUD_ALLOW_INSECURE_API_SERVER`.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure = allow;
        self
    }

    /// Which certificate authorities to trust. Default [`crate::TlsRoots::Bundled`]; `LEANCLOUD_TLS_ROOTS`.
    pub fn tls_roots(mut self, roots: crate::TlsRoots) -> Self {
        self.tls_roots = roots;
        self
    }

    /// `false` targets the staging environment (`X-LC-Prod: 0`). Default `true`.
    pub fn production(mut self, production: bool) -> Self {
        self.production = production;
        self
    }

    /// Validate and build. Errors name the environment variable that corresponds to the setting.
    pub fn build(self) -> Result<Config, ConfigError> {
        if self.app_id.is_empty() {
            return Err(ConfigError::Missing { var: ENV_APP_ID });
        }
        if self
            .app_id
            .chars()
            .any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(ConfigError::Invalid {
                var: ENV_APP_ID,
                reason: "contains whitespace or control characters".into(),
            });
        }
        let master_key = non_empty_secret(
            ENV_MASTER_KEY,
            self.master_key.ok_or(ConfigError::Missing {
                var: ENV_MASTER_KEY,
            })?,
        )?;
        let app_key = self
            .app_key
            .map(|k| non_empty_secret(ENV_APP_KEY, k))
            .transpose()?;
        let hook_key = self
            .hook_key
            .map(|k| non_empty_secret(ENV_HOOK_KEY, k))
            .transpose()?;
        let api_server = match self.api_server {
            Some((var, raw)) => parse_api_server(var, &raw, self.allow_insecure)?,
            None => default_api_server(&self.app_id)?,
        };
        Ok(Config {
            app_id: self.app_id,
            app_key,
            master_key,
            hook_key,
            api_server,
            production: self.production,
            tls_roots: self.tls_roots,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    const BASE: [(&str, &str); 2] = [
        ("LEANCLOUD_APP_ID", "TestAppId-gzGzoHsz"),
        ("LEANCLOUD_APP_MASTER_KEY", "TestMasterKey"),
    ];

    #[test]
    fn missing_settings_name_the_variable() {
        assert_eq!(
            Err(ConfigError::Missing {
                var: "LEANCLOUD_APP_ID"
            }),
            from(&[]).map(|_| ())
        );
        assert_eq!(
            Err(ConfigError::Missing {
                var: "LEANCLOUD_APP_MASTER_KEY"
            }),
            from(&[("LEANCLOUD_APP_ID", "x")]).map(|_| ())
        );
        assert_eq!(
            Err(ConfigError::Missing {
                var: "LEANCLOUD_APP_MASTER_KEY"
            }),
            from(&[("LEANCLOUD_APP_ID", "x"), ("LEANCLOUD_APP_MASTER_KEY", "")]).map(|_| ())
        );
    }

    #[test]
    fn malformed_api_server_names_the_variable_without_leaking_keys() {
        let mut vars = BASE.to_vec();
        vars.push(("LEANCLOUD_API_SERVER", "not a url"));
        let err = from(&vars).unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::Invalid {
                    var: "LEANCLOUD_API_SERVER",
                    ..
                }
            ),
            "{err:?}"
        );
        let mut vars = BASE.to_vec();
        vars.push(("LEANCLOUD_API_SERVER", "ftp://example.com"));
        assert!(from(&vars).is_err());
        let mut vars = BASE.to_vec();
        vars.push(("LC_API_SERVER", "nope"));
        assert!(matches!(
            from(&vars).unwrap_err(),
            ConfigError::Invalid {
                var: "LC_API_SERVER",
                ..
            }
        ));
    }

    #[test]
    fn default_host_is_derived_from_the_app_id_like_the_sdk_app_router() {
        let cases = [
            (
                "TestAppId-gzGzoHsz",
                "https://testappi.lc-cn-n1-shared.com/",
            ),
            (
                "ABCDEFGHijkl-9Nh9j0Va",
                "https://abcdefgh.api.lncldapi.com/",
            ),
            (
                "ABCDEFGHijkl-MdYXbMMI",
                "https://abcdefgh.api.lncldglobal.com/",
            ),
        ];
        for (app_id, expected) in cases {
            assert_eq!(
                expected,
                default_api_server(app_id).unwrap().as_str(),
                "for {app_id}"
            );
        }
        assert!(default_api_server("a.b").is_err());
    }

    #[test]
    /// M3: an `http://` API server on another host was accepted, so every call carried a fresh master
    /// signature in cleartext (the template allowed it for "a self-hosted leancloud-server").
    fn m3_cleartext_http_is_refused_off_loopback_unless_allowed() {
        let build = |url: &str, allow: bool| {
            Config::builder("app")
                .master_key("TestMasterKey")
                .api_server(url)
                .allow_insecure_http(allow)
                .build()
        };
        let err = build("http://im.internal:3000", false).expect_err("refused");
        let text = err.to_string();
        assert!(
            text.contains("LEANCLOUD_API_SERVER") && text.contains("cleartext"),
            "{text}"
        );
        assert!(!text.contains("TestMasterKey"), "{text}");
        for ok in [
            "http://127.0.0.1:3000",
            "http://localhost:3000",
            "http://[::1]:3000",
            "https://im.example",
        ] {
            assert!(build(ok, false).is_ok(), "{ok}");
        }
        assert!(build("http://im.internal:3000", true).is_ok());
        let lookup = |allow: &'static str| {
            move |var: &str| match var {
                "LEANCLOUD_APP_ID" => Some("app".to_owned()),
                "LEANCLOUD_APP_MASTER_KEY" => Some("k".to_owned()),
                "LEANCLOUD_API_SERVER" => Some("http://10.0.0.5:3000".to_owned()),
                "LEANCLOUD_ALLOW_INSECURE_API_SERVER" => Some(allow.to_owned()),
                _ => None,
            }
        };
        assert!(Config::from_lookup(lookup("true")).is_ok());
        assert!(Config::from_lookup(lookup("false")).is_err());
    }

    #[test]
    fn explicit_api_server_wins_over_the_fallback_name() {
        let mut vars = BASE.to_vec();
        vars.push(("LEANCLOUD_API_SERVER", "http://127.0.0.1:3000"));
        vars.push(("LC_API_SERVER", "http://127.0.0.1:4000"));
        assert_eq!(
            "http://127.0.0.1:3000/",
            from(&vars).unwrap().api_server().as_str()
        );
        let mut vars = BASE.to_vec();
        vars.push(("LC_API_SERVER", "http://127.0.0.1:4000"));
        assert_eq!(
            "http://127.0.0.1:4000/",
            from(&vars).unwrap().api_server().as_str()
        );
    }

    #[test]
    fn app_env_stage_selects_staging() {
        let cases: [(&[(&str, &str)], bool); 5] = [
            (&[], true),
            (&[("LEANCLOUD_APP_ENV", "stage")], false),
            (&[("LEANCLOUD_APP_ENV", "production")], true),
            (
                &[
                    ("LEANCLOUD_APP_ENV", "development"),
                    ("LEAN_CLI_HAVE_STAGING", "true"),
                ],
                false,
            ),
            (
                &[
                    ("LEANCLOUD_APP_ENV", "production"),
                    ("LEAN_CLI_HAVE_STAGING", "true"),
                ],
                true,
            ),
        ];
        for (extra, expected) in cases {
            let mut vars = BASE.to_vec();
            vars.extend_from_slice(extra);
            assert_eq!(
                expected,
                from(&vars).unwrap().production(),
                "with {extra:?}"
            );
        }
    }

    #[test]
    fn debug_redacts_every_key() {
        let config = Config::builder("TestAppId-gzGzoHsz")
            .app_key("TestAppKey")
            .master_key("TestMasterKey")
            .hook_key("hk123")
            .build()
            .unwrap();
        let debug = format!("{config:?}");
        for secret in ["TestAppKey", "TestMasterKey", "hk123"] {
            assert!(!debug.contains(secret), "{secret} leaked in {debug}");
        }
        assert!(debug.contains("TestAppId-gzGzoHsz"));
        let builder = Config::builder("id").master_key("TestMasterKey");
        assert!(!format!("{builder:?}").contains("TestMasterKey"));
    }
}
