//! The realtime gateway: LeanCloud's WebSocket protocol (`realtime-protocol.md`), so the official
//! realtime SDKs log in, chat and receive what the REST API sends. It speaks protobuf frames and calls the
//! same store functions as the REST routes; delivery to online clients goes through the [`hub::Hub`].
//!
//! - `frame`: subprotocols and the binary/base64 framing; `proto`: the schema;
//! - `connection`: one socket's loop (limits, idle timeout, its sessions) and the client commands;
//! - `hub`: who is online, and delivery; `bus`: delivery between instances on one PostgreSQL database;
//! - `signature`: login and conversation signatures.

pub mod bus;
mod connection;
pub mod frame;
pub mod hub;
pub mod proto;
pub mod signature;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, RawQuery, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::codes;
use crate::error::AppError;
use crate::state::{AppState, ConnInfo};
use bus::{Bus, Event};
use frame::Subprotocol;
use hub::Hub;

use crate::store::db::Db;
use crate::store::messages::Stored;

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

/// The gateway's shared state: settings, the hub, the bus to other instances, the session-token key.
#[derive(Debug)]
pub struct Realtime {
    pub config: RealtimeConfig,
    pub hub: Arc<Hub>,
    pub bus: Bus,
    /// Session tokens are signed, not stored: any instance (or this one after a restart) checks them.
    token_key: Vec<u8>,
}

type HmacSha1 = hmac::Hmac<sha1::Sha1>;

impl Realtime {
    /// The gateway of a server on `db`, its session tokens signed with `master_key`. On PostgreSQL it starts
    /// the bus (needs a runtime).
    pub fn new(config: RealtimeConfig, db: &Db, master_key: &str) -> Realtime {
        let hub = Arc::new(Hub::default());
        let bus = match db {
            Db::Postgres(pg) => Bus::postgres(pg.clone(), hub.clone()),
            Db::Sqlite(_) => Bus::local(),
        };
        Realtime {
            config,
            hub,
            bus,
            token_key: [
                b"leancloud-server session token:".as_slice(),
                master_key.as_bytes(),
            ]
            .concat(),
        }
    }

    fn token_mac(&self, client: &str, until: i64) -> String {
        use hmac::Mac;
        let mut mac = HmacSha1::new_from_slice(&self.token_key).expect("HMAC takes any key");
        mac.update(format!("{until}:{client}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// A new session token for `client`: its expiry (ms) and a MAC of both.
    fn issue_token(&self, client: &str) -> String {
        let ttl = i64::try_from(self.config.session_ttl.as_millis()).unwrap_or(i64::MAX);
        let until = chrono::Utc::now().timestamp_millis().saturating_add(ttl);
        format!("{until}.{}", self.token_mac(client, until))
    }

    /// Whether `token` is a live session token of `client`.
    fn token_valid(&self, token: &str, client: &str) -> bool {
        use subtle::ConstantTimeEq;
        let Some((until, mac)) = token.split_once('.') else {
            return false;
        };
        let Ok(until) = until.parse::<i64>() else {
            return false;
        };
        let expected = self.token_mac(client, until);
        bool::from(expected.as_bytes().ct_eq(mac.as_bytes()))
            && until > chrono::Utc::now().timestamp_millis()
    }

    /// Hands a committed message to its audience's sessions here and, through the bus, on other instances.
    pub fn deliver(&self, msg: Stored) {
        if self.bus.is_shared() {
            self.bus.publish(Event::Deliver {
                msg: Box::new(msg.clone()),
            });
        }
        self.hub.deliver(msg);
    }

    /// Sends each of `peers` the command built for it, on every instance.
    pub fn notify(&self, peers: &[String], command: impl Fn(&str) -> proto::GenericCommand) {
        if self.bus.is_shared() && !peers.is_empty() {
            let items = peers
                .iter()
                .map(|p| (p.clone(), bus::encode_command(&command(p))))
                .collect();
            self.bus.publish(Event::Notify { items });
        }
        self.hub.notify(peers, command);
    }

    /// Registers a session here (see [`Hub::register`]); the other instances learn when the client comes online.
    pub fn register(&self, session: hub::SessionRef) -> Vec<hub::SessionRef> {
        let peer = session.peer.to_string();
        let (kicked, first) = self.hub.register(session);
        if first {
            self.bus.publish(Event::Presence { peer, online: true });
        }
        kicked
    }

    /// Removes a session here; the other instances learn when the client's last one here is gone.
    pub fn unregister(&self, conn: u64, peer: &str) {
        if self.hub.unregister(conn, peer) {
            self.bus.publish(Event::Presence {
                peer: peer.to_string(),
                online: false,
            });
        }
    }

    /// Whether `peer` has a session on this instance or, as far as the bus tells, on another.
    pub fn is_online(&self, peer: &str) -> bool {
        self.hub.is_online(peer) || self.bus.online_elsewhere(peer)
    }

    /// `peer` logged in with `tag` here: sessions with that tag on other instances close.
    pub fn took_over(&self, peer: &str, tag: &str) {
        self.bus.publish(Event::Kick {
            peer: peer.to_string(),
            tag: tag.to_string(),
        });
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
