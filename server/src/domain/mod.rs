//! The operations of the server, written once and reached from every door: the REST routes, the console
//! and the WebSocket gateway decode their requests, call one function here and render its answer. Nothing
//! here knows HTTP or WebSocket (no axum, prost or tungstenite types): an operation takes plain data and
//! [`Services`], applies LeanCloud's rules, runs the hooks, writes the store and tells the online clients.
//!
//! - [`messaging`]: `send` (messages and broadcasts): the size, recipients and validity rules, the rate
//!   limits (taken, and given back when the send fails), hooks → store → delivery → after-hooks;
//! - [`conv_admin`]: member roles, shutups, the blacklist; who may manage members;
//! - [`moderation`]: temporary silences, the silence check of a send, clients' own blacklists;
//! - [`conversations`]: `start`, `update` (members and attributes): before-hook → store → after-hook →
//!   notification of the online members, one policy for every caller;
//! - [`friendships`]: follow and unfollow (the status system's `_Follower`/`_Followee` graph);
//! - [`installations`]: devices (`_Installation`) saved by the SDKs, and the IM clients bound to them;
//! - [`files`]: uploads (token, body, callback), external files, deletion, expiry of unfinished uploads;
//! - [`limits`]: the app-wide rate-limit buckets;
//! - [`receipts`]: `ack` and `read` positions, the receipts they trigger, `conv/max_read`;
//! - [`patches`]: edits and recalls of a sent message;
//! - [`push`]: pushes to phones queued for devices (IM offline pushes, the push API);
//! - [`class_permissions`]: who may get, find, create, update, delete and add fields to a class;
//! - [`verification`]: the e-mail and SMS flows of users (reset and verification links mailed when an SMTP
//!   server is configured; SMS checked, then refused: none is sent);
//! - [`users`]: sign-up, login, sessions, passwords, the `_User` write rule, the IM login signature of a user.

pub mod class_permissions;
pub mod conv_admin;
pub mod conversations;
pub mod cql;
pub mod credentials;
pub mod files;
pub mod friendships;
pub mod installations;
pub mod limits;
pub mod messaging;
pub mod moderation;
pub mod patches;
pub mod push;
pub mod receipts;
pub mod users;
pub mod verification;

use std::sync::Arc;

use crate::hooks::Hooks;
use crate::realtime::Realtime;
use crate::store::db::Db;
use crate::store::messages::Stored;
use files::Files;
use limits::RateLimiter;
use messaging::PushLog;

/// What the operations need, and nothing of the transports: the database, the app's hooks, who is online
/// (and delivery to them, on every instance), the rate limits, the stream of stored messages and the record
/// of offline pushes.
#[derive(Debug, Clone)]
pub struct Services {
    pub db: Db,
    pub hooks: Arc<Hooks>,
    pub presence: Arc<Realtime>,
    pub limits: Arc<RateLimiter>,
    /// Every message as it is stored (REST and realtime sends alike), for live views such as the console.
    /// Subscribers that fall behind miss messages (they are in the store) rather than slow anyone down.
    pub feed: tokio::sync::broadcast::Sender<Arc<Stored>>,
    pub pushes: Arc<PushLog>,
    /// File bodies and the file API's settings.
    pub files: Arc<Files>,
    /// Recent failed logins (per account and address).
    pub logins: Arc<credentials::LoginFailures>,
    /// The class permissions this instance read recently.
    pub class_permissions: Arc<class_permissions::PermissionCache>,
    /// Outgoing mail (reset and verification links), when an SMTP server is configured.
    pub mail: Option<Arc<crate::mail::Mailer>>,
    /// What `--metrics-listen` serves (counting nothing without it).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The app's IM offline push payload when neither the hook nor the message gives one (`--push-template`).
    pub push_template: Option<Arc<serde_json::Value>>,
}
