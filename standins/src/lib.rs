//! Local stand-ins for the push providers, speaking their real protocols:
//!
//! - APNs: HTTP/2 over TLS with a certificate of a CA made for the run. It checks what Apple checks — the provider
//!   token (an ES256 JWT whose `kid` and `iss` name the key and team, signed by the key made for the run), the path
//!   `/3/device/<token>`, the `apns-topic` (the app's bundle ids), an `aps` payload — and answers as Apple does: 200
//!   with an `apns-id`, 403 `InvalidProviderToken`, 400 `TopicDisallowed` / `BadPath` / `PayloadEmpty`, 410
//!   `Unregistered` for a token it was told is gone, 503 while it is told to be down.
//! - FCM HTTP v1: the OAuth token endpoint (a JWT-bearer grant whose RS256 assertion must be signed by the
//!   service account's key, name its e-mail, the token URL and the messaging scope) and
//!   `POST /v1/projects/<id>/messages:send` with an access token it issued; `UNREGISTERED` (404) for a gone token.
//!
//! Every request is recorded with the answer it got, so a test can say exactly what reached the provider. Used by
//! the server's black-box tests (`server/tests/api/push_delivery.rs`) and the push benchmark (`bench`).

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, KeyPair, RsaKeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED,
    ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_2048_8192_SHA256,
};
use serde_json::{json, Value};

pub const KEY_ID: &str = "KEY1234567";
pub const TEAM_ID: &str = "TEAM123456";
pub const TOPIC: &str = "com.example.chat";
/// Another bundle of the same team (a device's own `apnsTopic`).
pub const OTHER_TOPIC: &str = "com.example.chat.beta";
pub const PROJECT: &str = "demo-chat";
pub const CLIENT_EMAIL: &str = "push@demo-chat.iam.gserviceaccount.com";
/// The service account's key (the server's own unit tests use it too).
pub const RSA_KEY: &str = include_str!("../../server/src/push/test-rsa-key.pem");

/// One request as the stand-in saw it, and its answer's status.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    /// The device token (APNs) or registration token (FCM).
    pub device: String,
    /// APNs: `apns-topic`, `apns-push-type`, `apns-expiration`; FCM: empty.
    pub headers: Vec<(String, String)>,
    pub body: Value,
    pub status: u16,
}

impl Seen {
    /// The request's header `name` (APNs), when it came.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Default)]
pub struct Shared {
    seen: Mutex<Vec<Seen>>,
    gone: Mutex<HashSet<String>>,
    down: AtomicBool,
    /// How long each answer waits (ms): the network and the provider of a real push.
    latency_ms: AtomicU64,
    /// Requests being answered now, and the most at once so far.
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
}

impl Shared {
    fn record(&self, seen: Seen) {
        self.seen.lock().expect("lock").push(seen);
    }

    /// Waits the configured latency, counted as a request in flight meanwhile.
    async fn wait_latency(&self) {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let ms = self.latency_ms.load(Ordering::SeqCst);
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What both stand-ins offer a test.
pub trait Recorded {
    fn shared(&self) -> &Shared;

    /// Every request so far.
    fn seen(&self) -> Vec<Seen> {
        self.shared().seen.lock().expect("lock").clone()
    }

    /// The requests answered 200.
    fn delivered(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.status == 200)
            .collect()
    }

    /// From now on `token` is answered as a device that is gone.
    fn forget(&self, token: &str) {
        self.shared()
            .gone
            .lock()
            .expect("lock")
            .insert(token.to_string());
    }

    /// While down, every request is answered 503 (and still recorded).
    fn set_down(&self, down: bool) {
        self.shared().down.store(down, Ordering::SeqCst);
    }

    /// The most requests that were being answered at once.
    fn max_in_flight(&self) -> u64 {
        self.shared().max_in_flight.load(Ordering::SeqCst)
    }

    /// Every answer waits `latency` first, as a provider across the internet would.
    fn set_latency(&self, latency: Duration) {
        self.shared()
            .latency_ms
            .store(latency.as_millis() as u64, Ordering::SeqCst);
    }

    /// Waits (at most `within`) until `n` requests were answered 200; what was delivered by then.
    #[allow(async_fn_in_trait)]
    async fn wait_delivered(&self, n: usize, within: Duration) -> Vec<Seen> {
        let until = tokio::time::Instant::now() + within;
        loop {
            let got = self.delivered();
            if got.len() >= n || tokio::time::Instant::now() > until {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

fn answer(status: u16, headers: &[(&str, String)], body: Value) -> Response<Full<Bytes>> {
    let mut res = Response::builder().status(status);
    for (k, v) in headers {
        res = res.header(*k, v);
    }
    res.header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("response")
}

/// The JWT's three parts decoded: header, claims, and the signing input with its signature.
fn jwt_parts(jwt: &str) -> Option<(Value, Value, String, Vec<u8>)> {
    let mut parts = jwt.split('.');
    let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
    let header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
    let claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).ok()?).ok()?;
    Some((
        header,
        claims,
        format!("{h}.{c}"),
        URL_SAFE_NO_PAD.decode(s).ok()?,
    ))
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("ascii"))
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// The APNs stand-in.
#[derive(Debug)]
pub struct Apns {
    /// `https://localhost:<port>`: what `--apns-endpoint` takes.
    pub url: String,
    /// The run's CA (PEM): what `--apns-ca-file` takes.
    pub ca_pem: Vec<u8>,
    /// The `.p8` key the server signs with: what `--apns-key` takes.
    pub key_pem: String,
    shared: Arc<Shared>,
    tokens_seen: Arc<Mutex<HashSet<String>>>,
}

impl Recorded for Apns {
    fn shared(&self) -> &Shared {
        &self.shared
    }
}

impl Apns {
    /// How many different provider tokens were presented (the server reuses one).
    pub fn provider_tokens(&self) -> usize {
        self.tokens_seen.lock().expect("lock").len()
    }

    pub async fn start() -> Apns {
        // The key the app's server signs with (as a `.p8` file holds it) and its public half Apple keeps.
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .expect("key");
        let public = pair.public_key().as_ref().to_vec();
        let key_pem = pem("PRIVATE KEY", pkcs8.as_ref());

        // A CA made for this run and the stand-in's certificate for localhost.
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "push stand-in test CA");
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = rcgen::KeyPair::generate().expect("key");
        let leaf = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("params")
            .signed_by(&leaf_key, &issuer)
            .expect("certificate");
        let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .expect("TLS config");
        tls.alpn_protocols = vec![b"h2".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let shared = Arc::new(Shared::default());
        let tokens_seen = Arc::new(Mutex::new(HashSet::new()));
        let ids = Arc::new(AtomicU64::new(1));
        let (state, seen_tokens) = (shared.clone(), tokens_seen.clone());
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, state, public, seen_tokens, ids) = (
                    acceptor.clone(),
                    state.clone(),
                    public.clone(),
                    seen_tokens.clone(),
                    ids.clone(),
                );
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |req| {
                        let (state, public, seen_tokens, ids) = (
                            state.clone(),
                            public.clone(),
                            seen_tokens.clone(),
                            ids.clone(),
                        );
                        async move {
                            Ok::<_, Infallible>(
                                apns_answer(&state, &public, &seen_tokens, &ids, req).await,
                            )
                        }
                    });
                    let _ = hyper::server::conn::http2::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
                });
            }
        });
        Apns {
            url: format!("https://localhost:{port}"),
            ca_pem: ca_cert.pem().into_bytes(),
            key_pem,
            shared,
            tokens_seen,
        }
    }
}

/// Whether `bearer` is a provider token of the run's key and team, issued within the hour.
fn provider_token_ok(bearer: &str, public: &[u8]) -> bool {
    let Some((header, claims, input, signature)) = jwt_parts(bearer) else {
        return false;
    };
    let fresh = claims["iat"]
        .as_i64()
        .is_some_and(|iat| (now_secs() - iat).abs() < 3600);
    header == json!({"alg": "ES256", "kid": KEY_ID})
        && claims["iss"] == json!(TEAM_ID)
        && fresh
        && UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public)
            .verify(input.as_bytes(), &signature)
            .is_ok()
}

async fn apns_answer(
    state: &Shared,
    public: &[u8],
    tokens_seen: &Mutex<HashSet<String>>,
    ids: &AtomicU64,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let headers: Vec<(String, String)> = ["apns-topic", "apns-push-type", "apns-expiration"]
        .iter()
        .filter_map(|h| header(h).map(|v| (h.to_string(), v)))
        .collect();
    let topic = header("apns-topic");
    let bearer = header("authorization")
        .and_then(|a| a.strip_prefix("bearer ").map(str::to_owned))
        .unwrap_or_default();
    let device = req
        .uri()
        .path()
        .strip_prefix("/3/device/")
        .map(str::to_owned);
    let post = req.method() == hyper::Method::POST;
    let bytes = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    state.wait_latency().await;
    tokens_seen.lock().expect("lock").insert(bearer.clone());
    let gone = device
        .as_ref()
        .is_some_and(|d| state.gone.lock().expect("lock").contains(d));
    let (status, reason) = if state.down.load(Ordering::SeqCst) {
        (503, "ServiceUnavailable")
    } else if !provider_token_ok(&bearer, public) {
        (403, "InvalidProviderToken")
    } else if !post || device.as_deref().is_none_or(|d| d.is_empty()) {
        (400, "BadPath")
    } else if topic.as_deref() != Some(TOPIC) && topic.as_deref() != Some(OTHER_TOPIC) {
        (400, "TopicDisallowed")
    } else if !body["aps"].is_object() {
        (400, "PayloadEmpty")
    } else if gone {
        (410, "Unregistered")
    } else {
        (200, "")
    };
    state.record(Seen {
        device: device.unwrap_or_default(),
        headers,
        body,
        status,
    });
    let id = format!(
        "00000000-0000-0000-0000-{:012}",
        ids.fetch_add(1, Ordering::SeqCst)
    );
    match status {
        200 => answer(200, &[("apns-id", id)], Value::Null),
        410 => answer(
            410,
            &[("apns-id", id)],
            json!({"reason": reason, "timestamp": chrono::Utc::now().timestamp_millis()}),
        ),
        _ => answer(status, &[("apns-id", id)], json!({ "reason": reason })),
    }
}

/// The FCM stand-in (plain HTTP: `--fcm-endpoint` and the service account's `token_uri` point at it).
#[derive(Debug)]
pub struct Fcm {
    pub url: String,
    shared: Arc<Shared>,
    grants: Arc<AtomicU64>,
}

impl Recorded for Fcm {
    fn shared(&self) -> &Shared {
        &self.shared
    }
}

#[derive(Clone)]
struct FcmState {
    shared: Arc<Shared>,
    public: Arc<Vec<u8>>,
    token_uri: Arc<String>,
    issued: Arc<Mutex<HashSet<String>>>,
    grants: Arc<AtomicU64>,
}

impl Fcm {
    /// The service-account JSON a server needs to push here (what `--fcm-service-account` reads); `--fcm-endpoint`
    /// is [`Fcm::url`].
    pub fn service_account(&self) -> String {
        json!({
            "type": "service_account", "project_id": PROJECT, "private_key_id": "k1",
            "private_key": RSA_KEY, "client_email": CLIENT_EMAIL,
            "token_uri": format!("{}/token", self.url),
        })
        .to_string()
    }

    /// How many access tokens were granted (the server keeps one until it nears expiry).
    pub fn grants(&self) -> u64 {
        self.grants.load(Ordering::SeqCst)
    }

    pub async fn start() -> Fcm {
        let der = {
            let b64: String = RSA_KEY
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect();
            STANDARD.decode(b64).expect("base64")
        };
        let pair = RsaKeyPair::from_pkcs8(&der).expect("RSA key");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let state = FcmState {
            shared: Arc::new(Shared::default()),
            public: Arc::new(pair.public_key().as_ref().to_vec()),
            token_uri: Arc::new(format!("{url}/token")),
            issued: Arc::default(),
            grants: Arc::default(),
        };
        let router = axum::Router::new()
            .route("/token", axum::routing::post(fcm_token))
            .route(
                "/v1/projects/{project}/{send}",
                axum::routing::post(fcm_send),
            )
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Fcm {
            url,
            shared: state.shared,
            grants: state.grants,
        }
    }
}

async fn fcm_token(
    axum::extract::State(state): axum::extract::State<FcmState>,
    body: Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(&body).into_owned().collect();
    let ok = form.get("grant_type").map(String::as_str)
        == Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
        && form
            .get("assertion")
            .and_then(|a| jwt_parts(a))
            .is_some_and(|(header, claims, input, signature)| {
                header["alg"] == json!("RS256")
                    && claims["iss"] == json!(CLIENT_EMAIL)
                    && claims["aud"] == json!(*state.token_uri)
                    && claims["scope"]
                        .as_str()
                        .is_some_and(|s| s.contains("firebase.messaging"))
                    && claims["exp"].as_i64() > Some(now_secs())
                    && UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, state.public.as_slice())
                        .verify(input.as_bytes(), &signature)
                        .is_ok()
            });
    if !ok {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            axum::Json(
                json!({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}),
            ),
        )
            .into_response();
    }
    let n = state.grants.fetch_add(1, Ordering::SeqCst) + 1;
    let token = format!("ya29.stand-in-{n}");
    state.issued.lock().expect("lock").insert(token.clone());
    axum::Json(json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"}))
        .into_response()
}

fn fcm_error(status: u16, code: &str, message: &str) -> (axum::http::StatusCode, Value) {
    let status_name = match status {
        401 => "UNAUTHENTICATED",
        404 => "NOT_FOUND",
        503 => "UNAVAILABLE",
        _ => "INVALID_ARGUMENT",
    };
    (
        axum::http::StatusCode::from_u16(status).expect("status"),
        json!({"error": {"code": status, "message": message, "status": status_name,
            "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}]}}),
    )
}

async fn fcm_send(
    axum::extract::State(state): axum::extract::State<FcmState>,
    axum::extract::Path((project, send)): axum::extract::Path<(String, String)>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> (axum::http::StatusCode, axum::Json<Value>) {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    state.shared.wait_latency().await;
    let device = body["message"]["token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let authorized = state.issued.lock().expect("lock").contains(bearer);
    let gone = state.shared.gone.lock().expect("lock").contains(&device);
    let (status, answer) = if state.shared.down.load(Ordering::SeqCst) {
        fcm_error(503, "UNAVAILABLE", "The service is currently unavailable.")
    } else if !authorized {
        fcm_error(
            401,
            "THIRD_PARTY_AUTH_ERROR",
            "Request had invalid authentication credentials.",
        )
    } else if project != PROJECT || send != "messages:send" || device.is_empty() {
        fcm_error(400, "INVALID_ARGUMENT", "Invalid request.")
    } else if gone {
        fcm_error(404, "UNREGISTERED", "Requested entity was not found.")
    } else {
        (
            axum::http::StatusCode::OK,
            json!({"name": format!("projects/{PROJECT}/messages/0:{}", state.shared.seen.lock().expect("lock").len())}),
        )
    };
    state.shared.record(Seen {
        device,
        headers: Vec::new(),
        body,
        status: status.as_u16(),
    });
    (status, axum::Json(answer))
}
