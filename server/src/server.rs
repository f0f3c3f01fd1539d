//! The router, the middleware (request log, fault mode), the accept loop and the running-server handle.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::config::{FaultConfig, FaultKind, RateLimits, ServerConfig};
use crate::domain::files::Files;
use crate::error::{codes, log_app_errors, AppError};
pub use crate::inspector::Inspector;
use crate::routes::{
    admin, aliases, classes, cloud_query, conv_admin, files, friendships, installations, push, rtm,
    rtm2, scan, users, verification,
};
use crate::state::{AppState, ConnInfo, ReceivedRequest};
use crate::store::blobs::Blobs;
use crate::store::db::{Db, SqliteDb};
use crate::ws;

/// Everything that can stop [`spawn`].
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot open the database {path}: {source}")]
    Database {
        path: String,
        source: rusqlite::Error,
    },
    #[error("cannot open the PostgreSQL database: {0}")]
    Postgres(crate::store::StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("startup task failed: {0}")]
    Startup(String),
    #[error("cannot open the file storage: {0}")]
    Files(#[from] crate::store::blobs::BlobsConfigError),
    #[error("push: {0}")]
    Push(#[from] crate::push::worker::SetupError),
}

/// The whole HTTP API. Paths with a doubled leading slash (`//1.1/…`, what the SDK sends with a trailing
/// slash in its base URL) are routed like single-slash ones.
pub fn app(state: AppState) -> Router {
    // LeanCloud's API: what fault mode exercises (clients must survive 5xx, 429, timeouts, drops).
    let routes = Router::new()
        .route(
            "/1.1/classes/_ConversationMemberInfo",
            get(conv_admin::member_infos),
        )
        .route("/1.1/rtm/notifications", get(conv_admin::notifications))
        .route(
            "/1.1/classes/{class}",
            post(classes::create).get(classes::find),
        )
        .route(
            "/1.1/classes/{class}/{id}",
            get(classes::get)
                .put(classes::update)
                .delete(classes::delete),
        )
        .route(
            "/1.1/installations",
            post(installations::save).get(installations::find),
        )
        .route(
            "/1.1/installations/{id}",
            get(installations::get)
                .put(installations::update)
                .delete(installations::delete),
        )
        .route("/1.1/push", post(push::send))
        .route("/1.1/tables/Notifications/{id}", get(push::notification))
        .route("/1.1/rtm/messages", post(rtm::send))
        .route("/1.1/rtm/broadcast", post(rtm::broadcast))
        .route("/1.1/rtm/messages/history", get(rtm::history))
        .route("/1.1/scan/classes/{class}", get(scan::scan))
        .route("/1.1/cloudQuery", get(cloud_query::cloud_query))
        .merge(rtm2::routes())
        .route("/1.1/date", get(admin::date))
        .route("/v1/route", get(ws::route))
        .route("/1.1/fileTokens", post(files::file_token))
        .route("/1.1/fileCallback", post(files::file_callback))
        .route("/1.1/files", post(files::create_external))
        .route(
            "/1.1/files/{id}",
            get(files::get)
                .delete(files::delete)
                .post(files::create_external_named),
        )
        .route("/upload/{*key}", put(files::upload))
        .route("/1.1/users", post(users::sign_up).get(aliases::find_users))
        .route("/1.1/login", post(users::login))
        .route("/1.1/users/me", get(users::me))
        .route(
            "/1.1/users/{id}",
            get(aliases::get_user)
                .put(users::update)
                .delete(users::delete),
        )
        .route(
            "/1.1/users/{id}/refreshSessionToken",
            put(users::refresh_session_token),
        )
        .route(
            "/1.1/users/{id}/updatePassword",
            put(users::update_password),
        )
        .route("/1.1/rtm/sign", post(users::rtm_sign))
        .route(
            "/1.1/requestPasswordReset",
            post(verification::password_reset),
        )
        .route("/1.1/requestEmailVerify", post(verification::email_verify))
        .route(
            "/1.1/requestMobilePhoneVerify",
            post(verification::phone_verify),
        )
        .route(
            "/1.1/requestPasswordResetBySmsCode",
            post(verification::password_reset_sms),
        )
        .route("/1.1/requestLoginSmsCode", post(verification::login_sms))
        .route(
            "/1.1/requestChangePhoneNumber",
            post(verification::change_phone),
        )
        .route("/1.1/requestSmsCode", post(verification::sms_code))
        .route("/1.1/usersByMobilePhone", post(verification::with_code))
        .route(
            "/1.1/resetPasswordBySmsCode/{code}",
            put(verification::with_code),
        )
        .route(
            "/1.1/verifyMobilePhone/{code}",
            post(verification::with_code),
        )
        .route("/1.1/verifySmsCode/{code}", post(verification::with_code))
        .route("/1.1/changePhoneNumber", post(verification::with_code))
        .route(
            "/1.1/users/{id}/friendship/{target}",
            post(friendships::follow).delete(friendships::unfollow),
        )
        .route("/1.1/users/{id}/followers", get(friendships::followers))
        .route("/1.1/users/{id}/followees", get(friendships::followees))
        .route(
            "/1.1/users/{id}/followersAndFollowees",
            get(friendships::followers_and_followees),
        )
        .route(
            "/1.1/roles",
            post(aliases::create_role).get(aliases::find_roles),
        )
        .route(
            "/1.1/roles/{id}",
            get(aliases::get_role)
                .put(aliases::update_role)
                .delete(aliases::delete_role),
        );
    // A batch's requests go through the same routes (not through fault mode or the request log: the batch is
    // the request).
    let inner: Router = routes
        .clone()
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone());
    let batch = post(
        move |access: crate::auth::Access,
              headers: axum::http::HeaderMap,
              conn: Option<axum::Extension<crate::state::ConnInfo>>,
              body: axum::body::Bytes| {
            crate::routes::batch::run(inner.clone(), access, headers, conn, body)
        },
    );
    let api = routes
        .route("/1.1/batch", batch.clone())
        .route("/1.1/batch/save", batch)
        // Everything else: a stored file's bytes at `/{key}` (GET, HEAD), or the API's 404.
        .fallback(files::serve)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), inject_faults))
        // Browser SDKs: preflights answered before anything else, on the API and the upload URL alike.
        .layer(cors());
    // The operators' doors (health, fault and limit settings, the console) stay up whatever faults are
    // injected into the API.
    let operators = Router::new()
        .route("/__admin/health", get(admin::health))
        .route(
            "/__admin/faults",
            put(admin::put_faults).get(admin::get_faults),
        )
        .route("/__admin/rate-limits", put(admin::put_rate_limits))
        .route("/__admin/messages", get(admin::messages))
        .route("/__admin/pushes", get(push::recent))
        .route(
            "/__admin/class-permissions",
            get(crate::routes::class_permissions::list),
        )
        .route(
            "/__admin/class-permissions/{class}",
            get(crate::routes::class_permissions::get)
                .put(crate::routes::class_permissions::put)
                .delete(crate::routes::class_permissions::delete),
        )
        // The pages of mailed links (password reset, e-mail verification): a user's browser, no app key.
        .merge(crate::routes::mail_links::routes())
        .nest_service("/console", crate::console::router(state.clone()));
    let mut routed = operators.merge(api);
    // The route template is only read by the metrics: without them no request pays for it.
    if state.svc.metrics.enabled() {
        routed = routed.route_layer(middleware::from_fn(mark_route));
    }
    let routed = routed
        .layer(middleware::from_fn(log_app_errors))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_request,
        ))
        .with_state(state.clone());
    // WebSocket upgrades (any path) go to the realtime gateway before routing, fault mode and the log.
    Router::new()
        .fallback_service(routed.map_request(normalize_path))
        .layer(middleware::from_fn_with_state(state, ws::upgrade_or_next))
}

/// CORS as LeanCloud's API answers it: any origin, the SDKs' headers, no cookies.
fn cors() -> tower_http::cors::CorsLayer {
    use tower_http::cors::{Any, CorsLayer};
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers(Any)
        .expose_headers([header::ETAG, header::CONTENT_RANGE, header::CONTENT_LENGTH])
        .max_age(Duration::from_secs(86_400))
}

async fn method_not_allowed() -> AppError {
    AppError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        codes::INTERNAL,
        "Method not allowed.",
    )
}

fn normalize_path<B>(mut req: axum::http::Request<B>) -> axum::http::Request<B> {
    let path = req.uri().path();
    if path.starts_with("//") {
        let trimmed = format!("/{}", path.trim_start_matches('/'));
        let pq = match req.uri().query() {
            Some(q) => format!("{trimmed}?{q}"),
            None => trimmed,
        };
        if let Ok(uri) = pq.parse::<Uri>() {
            *req.uri_mut() = uri;
        }
    }
    req
}

fn log_request(state: &AppState, method: &Method, uri: &Uri, status: u16, started: Instant) {
    // Path only: keys and signatures travel in headers, which are never logged.
    tracing::info!(
        method = %method,
        path = uri.path(),
        status,
        ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    state.requests.push(ReceivedRequest {
        method: method.to_string(),
        path: uri.path().to_string(),
        // An upload URL's query is its one-time token: never kept.
        query: uri
            .query()
            .filter(|_| !uri.path().starts_with("/upload/"))
            .map(str::to_owned),
        status,
        at: chrono::Utc::now(),
    });
}

/// The route template a request matched (`/1.1/classes/{class}/{id}`), put on its response for the metrics, which
/// label by template, never by path.
#[derive(Clone, Debug)]
struct RouteTemplate(String);

async fn mark_route(req: Request, next: Next) -> Response {
    let template = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let mut response = next.run(req).await;
    if let Some(template) = template {
        response.extensions_mut().insert(RouteTemplate(template));
    }
    response
}

async fn record_request(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (method, uri, started) = (req.method().clone(), req.uri().clone(), Instant::now());
    let response = next.run(req).await;
    let status = response.status().as_u16();
    let route = response
        .extensions()
        .get::<RouteTemplate>()
        .map_or("other", |r| r.0.as_str());
    state.svc.metrics.http(
        method.as_str(),
        route,
        status,
        started.elapsed().as_secs_f64(),
    );
    log_request(&state, &method, &uri, status, started);
    response
}

async fn inject_faults(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some((kind, delay_ms)) = state.faults.decide(req.uri().path()) else {
        return next.run(req).await;
    };
    let kill = req.extensions().get::<ConnInfo>().map(|c| c.kill.clone());
    let (method, uri, started) = (req.method().clone(), req.uri().clone(), Instant::now());
    tracing::warn!(?kind, path = uri.path(), "injecting a fault");
    match kind {
        FaultKind::ServerError => AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            codes::INTERNAL,
            "Service unavailable (injected fault).",
        )
        .into_response(),
        FaultKind::TooManyRequests => AppError::rate_limited(
            codes::TOO_MANY_REQUESTS,
            "Too many requests (injected fault).",
            1,
        )
        .into_response(),
        FaultKind::Timeout => {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            AppError::new(
                StatusCode::GATEWAY_TIMEOUT,
                codes::INTERNAL,
                "Gateway timeout (injected fault).",
            )
            .into_response()
        }
        FaultKind::Drop | FaultKind::AppliedThenDropped => {
            if kind == FaultKind::AppliedThenDropped {
                let _applied = next.run(req).await;
            }
            match kill {
                Some(kill) => {
                    log_request(&state, &method, &uri, 0, started);
                    kill.notify_one();
                    std::future::pending::<()>().await;
                    unreachable_response()
                }
                // Without the server loop (e.g. `app()` driven by `oneshot`) there is no connection to drop.
                None => AppError::new(
                    StatusCode::BAD_GATEWAY,
                    codes::INTERNAL,
                    "Connection dropped (injected fault).",
                )
                .into_response(),
            }
        }
    }
}

fn unreachable_response() -> Response {
    StatusCode::INTERNAL_SERVER_ERROR.into_response()
}

/// Starts the server: opens (and migrates) the database, binds, and serves in the background.
pub async fn spawn(config: ServerConfig) -> Result<RunningServer, ServerError> {
    // A provider key that is not one stops the start, before anything is opened.
    let providers = crate::push::worker::Providers::from_config(&config.push)?;
    tracing::info!(apns = ?providers.apns, fcm = ?providers.fcm, "push providers");
    let push_every = config.push.every;
    let db = open_database(&config).await?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: config.listen,
        source,
    })?;
    let limits = config.limits;
    let blobs = Blobs::open_configured(&config.files, &config.files_dir())?;
    tracing::info!(store = %blobs.describe(), "file bodies");
    let files = Files::new(blobs, config.files.clone());
    let mail = match &config.mail {
        Some(mail) => {
            tracing::info!(?mail, "password-reset and e-mail verification mails");
            Some(Arc::new(
                crate::mail::Mailer::new(mail).map_err(ServerError::Startup)?,
            ))
        }
        None => None,
    };
    let backups = match (&db, config.backups.clone()) {
        (Db::Sqlite(sqlite), Some(backups)) => {
            tracing::info!(dir = %backups.dir.display(), every = ?backups.every, keep = backups.keep, "periodic backups");
            Some(tokio::spawn(crate::store::sqlite::backup::backup_forever(
                sqlite.path().to_path_buf(),
                backups,
            )))
        }
        _ => None,
    };
    let metrics_listen = config.metrics_listen;
    let state = AppState::new(db, config, files, mail);
    // The metrics on their own listener: an address only the operators' scraper reaches.
    let metrics = match metrics_listen {
        Some(at) => {
            let listener = TcpListener::bind(at)
                .await
                .map_err(|source| ServerError::Bind { addr: at, source })?;
            let bound = listener
                .local_addr()
                .map_err(|source| ServerError::Bind { addr: at, source })?;
            let router = Router::new()
                .route("/metrics", get(crate::routes::admin::metrics))
                .with_state(state.clone());
            tracing::info!(addr = %bound, "metrics at /metrics");
            Some((
                bound,
                tokio::spawn(async move {
                    if let Err(e) = axum::serve(listener, router).await {
                        tracing::warn!(error = %e, "the metrics listener stopped");
                    }
                }),
            ))
        }
        None => None,
    };
    let metrics_addr = metrics.as_ref().map(|(addr, _)| *addr);
    // Uploads that never finished are deleted once their token expires.
    let sweeper = tokio::spawn(crate::domain::files::sweep_forever(
        state.svc.clone(),
        state.svc.files.config.sweep_every,
    ));
    let (stop_tx, stop_rx) = watch::channel(false);
    // The push queue: due jobs claimed and settled (shared safely by every instance of a database). Stopped
    // at shutdown after its round, so no job stays leased by an instance that is gone.
    let pusher = tokio::spawn(crate::push::worker::work_forever(
        state.svc.clone(),
        std::sync::Arc::new(providers),
        push_every,
        stop_rx.clone(),
    ));
    let background = [Some(sweeper), backups, metrics.map(|(_, task)| task)]
        .into_iter()
        .flatten()
        .map(|task| task.abort_handle())
        .collect();
    // An instance on a shared database is ready once it hears the others (health says 503 until then).
    let ready_by = tokio::time::Instant::now() + Duration::from_secs(10);
    while !state.svc.presence.bus.connected() && tokio::time::Instant::now() < ready_by {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let router = app(state.clone());
    let task = tokio::spawn(crate::listener::serve(listener, router, stop_rx, limits));
    Ok(RunningServer {
        addr,
        state,
        stop: stop_tx,
        task,
        background,
        pusher,
        metrics_addr,
    })
}

/// The database `config` names: PostgreSQL when given, else the SQLite file.
async fn open_database(config: &ServerConfig) -> Result<Db, ServerError> {
    if let Some(pg) = &config.postgres {
        let pg = crate::store::postgres::Pg::connect(&pg.url, pg.ca_file.as_deref())
            .await
            .map_err(ServerError::Postgres)?;
        return Ok(Db::Postgres(pg));
    }
    let path = config.db_path.clone();
    let durability = config.durability;
    let db = tokio::task::spawn_blocking(move || SqliteDb::open(&path, durability))
        .await
        .map_err(|e| ServerError::Startup(e.to_string()))?
        .map_err(|source| ServerError::Database {
            path: config.db_path.display().to_string(),
            source,
        })?;
    Ok(Db::Sqlite(db))
}

/// How long shutdown waits for WebSocket connections to take their `goaway` and close (a client that does not
/// read gets at most a second more to take the close frame, then its socket is dropped).
const DRAIN_WAIT: Duration = Duration::from_secs(3);
/// How long shutdown waits for the push worker's round (a provider request times out after 15 s).
const PUSH_ROUND_WAIT: Duration = Duration::from_secs(20);

/// A server started by [`spawn`].
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    state: AppState,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    /// The sweeper of unfinished uploads, the periodic backups and the metrics listener, stopped at shutdown.
    background: Vec<tokio::task::AbortHandle>,
    /// The push queue's worker: it ends its round when told to stop.
    pusher: tokio::task::JoinHandle<()>,
    metrics_addr: Option<SocketAddr>,
}

impl RunningServer {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where `/metrics` is served, with `--metrics-listen`.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn inspect(&self) -> Inspector {
        Inspector::new(self.state.clone())
    }

    /// Switches fault mode at run time (the same as `PUT /__admin/faults`).
    pub fn set_faults(&self, faults: FaultConfig) {
        self.state.faults.set(faults);
    }

    /// Replaces the rate limits and resets their counters (the shared ones too, on PostgreSQL).
    pub async fn set_rate_limits(&self, limits: RateLimits) {
        self.state.svc.limits.set(limits).await;
    }

    /// Stops accepting, tells every WebSocket client `goaway` and closes it (1001) once what is queued for it
    /// is written, lets open requests finish (up to 10 s) and the push worker its round, then closes the
    /// database.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in &self.background {
            task.abort();
        }
        let hub = &self.state.svc.presence.hub;
        hub.drain();
        let until = tokio::time::Instant::now() + DRAIN_WAIT;
        while hub.open_connections() > 0 && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = self.task.await;
        // The push worker's round ends within the providers' request timeout; past it, it is cut.
        let pusher_abort = self.pusher.abort_handle();
        if tokio::time::timeout(PUSH_ROUND_WAIT, self.pusher)
            .await
            .is_err()
        {
            pusher_abort.abort();
        }
        self.state.svc.presence.bus.stop();
        let db = self.state.svc.db.clone();
        let _ = tokio::task::spawn_blocking(move || db.close()).await;
    }
}
