//! The WebSocket gateway: LeanCloud's realtime protocol (`realtime-protocol.md`) over axum's WebSocket, so
//! the official realtime SDKs log in, chat and receive what the REST API sends. An adapter: it decodes
//! commands, calls the domain operations (`crate::domain`) and the store's reads, and renders replies.
//!
//! - this file: the upgrade on any path, and `GET /v1/route`;
//! - `frame`: subprotocols and the binary/base64 framing;
//! - `connection`: one socket's loop and its sessions; the commands in `session`, `conversations`, `messages`;
//!   conversation administration (roles, shutups, blacklist) in `admin`; replies and refusals in `replies`.

mod admin;
mod connection;
mod conversations;
pub mod frame;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod messages;
mod replies;
mod session;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, RawQuery, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::error::AppError;
use crate::protocol::codes;
use crate::state::{AppState, ConnInfo};
use frame::Subprotocol;

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
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .map(|o| o.to_str().unwrap_or("(not text)"));
    if !state.svc.presence.config.origin_allowed(origin) {
        tracing::info!(?origin, "realtime: WebSocket from a page not allowed");
        return AppError::new(
            StatusCode::FORBIDDEN,
            codes::FORBIDDEN,
            "This web page may not open the realtime WebSocket: its origin is not in --realtime-allowed-origins.",
        )
        .into_response();
    }
    // Sockets have their own budget under the connection cap: refused here, the connection goes back to
    // HTTP's share at once.
    let ticket = match state.svc.presence.sockets.admit(peer.map(|p| p.ip())) {
        Ok(ticket) => ticket,
        Err(refused) => {
            tracing::warn!(?peer, %refused, "realtime: WebSocket refused");
            return AppError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                codes::SERVICE_UNAVAILABLE,
                format!("Too many WebSocket connections: {refused}; retry later."),
            )
            .into_response();
        }
    };
    let (mut parts, _body) = req.into_parts();
    let ws = match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let max = state.svc.presence.config.max_frame_bytes;
    ws.protocols([protocol.name()])
        // The SDK's frames are small; the buffer grows for a larger one.
        .read_buffer_size(1024)
        .write_buffer_size(0)
        // Room for the largest frame the gateway builds (the budgets of `protocol::limits`): a frame longer than
        // this buffer could never be written, and the connection would drop.
        .max_write_buffer_size((max * 4).max(crate::protocol::limits::MAX_REPLY_FRAME_BYTES))
        .max_message_size(max)
        .max_frame_size(max)
        .on_failed_upgrade(|e| tracing::warn!(error = %e, "realtime: upgrade failed"))
        .on_upgrade(move |socket| async move {
            let _slot = slot;
            let _ticket = ticket;
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
    let server = match &state.svc.presence.config.public_url {
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
