//! The HTTP listener: accepts connections under the connection cap, serves each with hyper (keep-alive, the
//! header timeout, upgrades to WebSocket), reads small bodies whole before routing, and drains on stop.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::config::ConnectionLimits;
use crate::error::{codes, AppError};
use crate::state::ConnInfo;

/// Accepts connections up to the cap and serves each (HTTP/1.1, upgrades to WebSocket) until `stop` turns
/// true; then waits up to 10 s for open requests.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    mut stop: watch::Receiver<bool>,
    limits: ConnectionLimits,
) {
    let mut connections = JoinSet::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let mut refused: u64 = 0;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        // Closing at once keeps the backlog moving; the client can retry elsewhere.
                        refused += 1;
                        if refused.is_power_of_two() {
                            tracing::warn!(refused, max = limits.max_connections, "connection cap reached: closing new connections");
                        }
                        drop(stream);
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    connections.spawn(serve_connection(stream, peer, router.clone(), stop.clone(), slot, limits));
                }
                Err(err) => {
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = stop.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(Duration::from_secs(10), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.abort_all();
    }
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    router: Router,
    mut stop: watch::Receiver<bool>,
    slot: tokio::sync::OwnedSemaphorePermit,
    limits: ConnectionLimits,
) {
    let kill = Arc::new(Notify::new());
    let info = ConnInfo {
        peer,
        kill: kill.clone(),
        slot: Arc::new(slot),
    };
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(info.clone());
            let router = router.clone();
            async move {
                let req = match read_small_body(req, limits.header_timeout).await {
                    Ok(req) => req,
                    Err(refused) => return Ok::<_, Infallible>(refused),
                };
                Ok::<_, Infallible>(router.oneshot(req).await.into_response())
            }
        });
    // The header timeout also bounds an idle kept-alive connection: hyper starts it whenever it waits for a
    // request head. Without a timer hyper applies none (slowloris).
    let conn = http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    let mut stopping = *stop.borrow();
    if stopping {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            _ = conn.as_mut() => break,
            // Dropping the connection future closes the socket without a response.
            _ = kill.notified() => break,
            _ = stop.changed(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Bodies up to this size are read whole before routing (see [`read_small_body`]).
const SMALL_BODY: u64 = 64 * 1024;

/// A request that declares a small body (`Content-Length` up to [`SMALL_BODY`]) has it read whole before it is
/// routed. A handler that answers without reading its body (a `DELETE` with `{}`, as the Python SDK sends every
/// delete) otherwise leaves hyper with bytes still to come when the body's packet is late, and hyper then closes
/// the kept-alive connection after the answer: the client's next request on it gets no answer at all
/// ("Remote end closed connection without response"). Larger and chunked bodies stream as before. Reading waits
/// at most `wait` (the header timeout); a body that does not arrive is answered 408, one cut short 400.
async fn read_small_body(
    req: hyper::Request<hyper::body::Incoming>,
    wait: Duration,
) -> Result<Request, Response> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let (parts, body) = req.into_parts();
    let body = axum::body::Body::new(body);
    let Some(length @ 1..=SMALL_BODY) = declared else {
        return Ok(Request::from_parts(parts, body));
    };
    match tokio::time::timeout(wait, axum::body::to_bytes(body, length as usize)).await {
        Ok(Ok(bytes)) => Ok(Request::from_parts(parts, axum::body::Body::from(bytes))),
        Ok(Err(_)) => Err(AppError::new(
            StatusCode::BAD_REQUEST,
            codes::INVALID_JSON,
            "The request body ended before its Content-Length.",
        )
        .into_response()),
        Err(_) => Err(AppError::new(
            StatusCode::REQUEST_TIMEOUT,
            codes::INVALID_JSON,
            "The request body did not arrive in time.",
        )
        .into_response()),
    }
}
