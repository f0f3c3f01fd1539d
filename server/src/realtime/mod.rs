//! The realtime gateway: LeanCloud's WebSocket protocol (`realtime-protocol.md`), so the official
//! realtime SDKs log in, chat and receive what the REST API sends. It speaks protobuf frames and calls the
//! same store functions as the REST routes; delivery to online clients goes through the [`hub::Hub`].
//!
//! - `frame`: subprotocols and the binary/base64 framing; `proto`: the schema;
//! - `connection`: one socket's loop (limits, idle timeout, its sessions) and the client commands;
//! - `hub`: who is online, and delivery; `signature`: login and conversation signatures.

mod connection;
pub mod frame;
pub mod hub;
pub mod proto;
pub mod signature;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, RawQuery, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use rand::distr::{Alphanumeric, SampleString};
use serde_json::json;

use crate::codes;
use crate::error::AppError;
use crate::state::{AppState, ConnInfo};
use frame::Subprotocol;
use hub::Hub;

/// The realtime gateway's settings.
#[derive(Debug, Clone)]
pub struct RealtimeConfig {
    /// The address clients reach the WebSocket at (`wss://im.example.com/` behind a TLS proxy), as
    /// `GET /v1/route` answers it; by default `ws://<Host header>/`.
    pub public_url: Option<String>,
    /// Refuse logins (and conversation creation, invites and kicks) without a valid signature.
    pub require_signatures: bool,
    /// A connection that sends nothing (not even `echo`) for this long is closed. The SDK echoes every
    /// 180 s and gives up itself after 380 s.
    pub idle_timeout: Duration,
    /// Largest frame or message accepted.
    pub max_frame_bytes: usize,
    /// Commands per second one connection may send (a burst of twice that is allowed).
    pub commands_per_second: u32,
    /// Frames waiting for one connection; a client that lets more pile up is disconnected.
    pub queue_len: usize,
    /// Lifetime of the session token handed out at login (`stTtl`).
    pub session_ttl: Duration,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        RealtimeConfig {
            public_url: None,
            require_signatures: false,
            idle_timeout: Duration::from_secs(380),
            max_frame_bytes: 64 * 1024,
            commands_per_second: 100,
            queue_len: 1024,
            session_ttl: Duration::from_secs(17_280),
        }
    }
}

/// The gateway's shared state: settings, the hub, session tokens.
#[derive(Debug)]
pub struct Realtime {
    pub config: RealtimeConfig,
    pub hub: Hub,
    tokens: Mutex<HashMap<String, (String, Instant)>>,
}

impl Realtime {
    pub fn new(config: RealtimeConfig) -> Realtime {
        Realtime {
            config,
            hub: Hub::default(),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// A new session token for `client`.
    fn issue_token(&self, client: &str) -> String {
        let token = Alphanumeric.sample_string(&mut rand::rng(), 32);
        if let Ok(mut tokens) = self.tokens.lock() {
            let now = Instant::now();
            if tokens.len() > 100_000 {
                tokens.retain(|_, (_, until)| *until > now);
            }
            tokens.insert(
                token.clone(),
                (client.to_string(), now + self.config.session_ttl),
            );
        }
        token
    }

    /// Whether `token` is a live session token of `client`.
    fn token_valid(&self, token: &str, client: &str) -> bool {
        self.tokens
            .lock()
            .map(|t| {
                t.get(token)
                    .is_some_and(|(c, until)| c == client && *until > Instant::now())
            })
            .unwrap_or(false)
    }
}

fn is_websocket(req: &Request) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Middleware: WebSocket upgrades on any path go to the gateway, everything else to the REST API.
pub async fn upgrade_or_next(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if !is_websocket(&req) {
        return next.run(req).await;
    }
    let offered = req
        .headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let Some((_, protocol)) = Subprotocol::negotiate(&offered) else {
        return AppError::bad_request(
            codes::INTERNAL,
            format!(
                "Unsupported WebSocket subprotocol {offered:?}; offer one of {}.",
                Subprotocol::ALL.join(", ")
            ),
        )
        .into_response();
    };
    let peer = req.extensions().get::<ConnInfo>().map(|c| c.peer);
    // The socket keeps its slot under the connection cap for as long as it is open.
    let slot = req.extensions().get::<ConnInfo>().map(|c| c.slot.clone());
    let (mut parts, _body) = req.into_parts();
    let ws = match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let max = state.realtime.config.max_frame_bytes;
    ws.protocols([protocol.name()])
        // The SDK's frames are small; the buffer grows for a larger one.
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_write_buffer_size(max * 4)
        .max_message_size(max)
        .max_frame_size(max)
        .on_failed_upgrade(|e| tracing::warn!(error = %e, "realtime: upgrade failed"))
        .on_upgrade(move |socket| async move {
            let _slot = slot;
            connection::run(state, socket, protocol, peer).await
        })
}

/// `GET /v1/route?appId=…`: the RTM router's answer, so an SDK given only `server` finds the socket.
pub async fn route(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<serde_json::Value>, AppError> {
    let params = crate::routes::query_params(raw.as_deref());
    match params.get("appId") {
        Some(id) if *id == state.credentials.app_id => {}
        _ => {
            return Err(AppError::new(
                StatusCode::BAD_REQUEST,
                codes::APP_NOT_AVAILABLE,
                "Unknown or missing appId.",
            ))
        }
    }
    let server = match &state.realtime.config.public_url {
        Some(url) => url.clone(),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("127.0.0.1");
            format!("ws://{host}/")
        }
    };
    Ok(Json(
        json!({"server": server, "secondary": server, "ttl": 3600}),
    ))
}
