//! The realtime gateway's settings, and what clients may do to the messages they sent.

use std::time::Duration;

/// The realtime gateway's settings.
#[derive(Debug, Clone)]
pub struct RealtimeConfig {
    /// The address clients reach the WebSocket at (`wss://im.example.com/` behind a TLS proxy), as
    /// `GET /v1/route` answers it; by default `ws://<Host header>/`.
    pub public_url: Option<String>,
    /// Refuse logins (and conversation creation, invites and kicks) without a valid signature.
    pub require_signatures: bool,
    /// With signatures required: how far a signature's timestamp may be from now, each signature accepted once
    /// within it; `None`: the HMAC alone (LeanCloud's own check).
    pub signature_max_age: Option<Duration>,
    /// A connection that sends nothing (not even `echo`) for this long is closed. The SDK echoes every
    /// 180 s and gives up itself after 380 s.
    pub idle_timeout: Duration,
    /// A connection with no session is closed this long after it opened (or lost its last session); its
    /// frames (`echo`, pings) do not extend it.
    pub login_timeout: Duration,
    /// WebSockets open at once; `None`: seven eighths of the connection cap, so HTTP keeps a reserve. Always
    /// below the connection cap.
    pub max_sockets: Option<usize>,
    /// WebSockets one client address may hold (0: no limit; behind a proxy every socket has its address).
    pub max_sockets_per_address: usize,
    /// Logins per minute one client id may make on an instance, after a burst of 30 (0: no limit).
    pub logins_per_minute: u32,
    /// Web pages (`Origin`s, e.g. `https://app.example.com`) whose browsers may open the WebSocket; empty: any.
    /// Native SDKs send no `Origin` and are never refused (LeanCloud's "Web security domains").
    pub allowed_origins: Vec<String>,
    /// Conversations started by clients (`conv/start`) get a members-only read ACL, so other clients and
    /// app-key REST calls do not list who talks to whom; off: public, as on LeanCloud.
    pub private_conversations: bool,
    /// Largest frame or message accepted.
    pub max_frame_bytes: usize,
    /// Commands per second one connection may send (a burst of twice that is allowed).
    pub commands_per_second: u32,
    /// Frames waiting for one connection; a client that lets more pile up is disconnected.
    pub queue_len: usize,
    /// Lifetime of the session token handed out at login (`stTtl`).
    pub session_ttl: Duration,
    /// What clients may do to messages they sent (LeanCloud's console switches).
    pub patches: PatchPolicy,
}

impl RealtimeConfig {
    /// Whether a browser page from `origin` may open the WebSocket (see [`RealtimeConfig::allowed_origins`]).
    pub fn origin_allowed(&self, origin: Option<&str>) -> bool {
        let Some(origin) = origin else {
            return true;
        };
        self.allowed_origins.is_empty()
            || self.allowed_origins.iter().any(|a| {
                a.trim_end_matches('/')
                    .eq_ignore_ascii_case(origin.trim_end_matches('/'))
            })
    }
}

/// Edits and recalls by clients, as LeanCloud's console sets them: each can be switched off, and both can be
/// limited to a time after the message was sent. The app's backend (master key) is never limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatchPolicy {
    pub edit: bool,
    pub recall: bool,
    /// A message older than this can no longer be edited or recalled by a client; `None`: no limit.
    pub window: Option<Duration>,
}

impl Default for PatchPolicy {
    fn default() -> Self {
        PatchPolicy {
            edit: true,
            recall: true,
            window: None,
        }
    }
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        RealtimeConfig {
            public_url: None,
            require_signatures: false,
            signature_max_age: Some(Duration::from_secs(3600)),
            idle_timeout: Duration::from_secs(380),
            login_timeout: Duration::from_secs(10),
            max_sockets: None,
            max_sockets_per_address: 0,
            logins_per_minute: 60,
            allowed_origins: Vec::new(),
            private_conversations: false,
            max_frame_bytes: 64 * 1024,
            commands_per_second: 100,
            queue_len: 1024,
            session_ttl: Duration::from_secs(17_280),
            patches: PatchPolicy::default(),
        }
    }
}
