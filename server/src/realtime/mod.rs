//! The realtime gateway: LeanCloud's WebSocket protocol (`realtime-protocol.md`), so the official
//! realtime SDKs log in, chat and receive what the REST API sends. It speaks protobuf frames and calls the
//! same store functions as the REST routes; delivery to online clients goes through the [`hub::Hub`].
//!
//! - `frame`: subprotocols and the binary/base64 framing; `proto`: the schema;
//! - `connection`: one socket's loop (limits, idle timeout, its sessions) and the client commands;
//! - `hub`: who is online, and delivery; `bus`: delivery between instances on one PostgreSQL database;
//! - `signature`: login and conversation signatures.

pub mod admission;
pub mod bus;
pub mod hub;
pub mod proto;
pub mod pushes;
pub mod signature;

use std::sync::Arc;

use crate::config::RealtimeConfig;
use bus::{Bus, Event};
use hub::Hub;
pub use pushes::{ConvNotice, Patch, Receipt};

use crate::store::db::Db;
use crate::store::messages::Stored;
use crate::store::realtime::LastMessage;

/// The gateway's shared state: settings, the hub, the bus to other instances, the session-token key.
#[derive(Debug)]
pub struct Realtime {
    pub config: RealtimeConfig,
    pub hub: Arc<Hub>,
    pub bus: Bus,
    /// Session tokens are signed, not stored: any instance (or this one after a restart) checks them.
    token_key: Vec<u8>,
    /// Signatures accepted within their window (each is good once).
    pub seen_signatures: signature::SeenSignatures,
    /// The WebSockets' own share of the connection cap.
    pub sockets: admission::SocketBudget,
    /// Logins per client id.
    pub logins: admission::LoginThrottle,
}

type HmacSha1 = hmac::Hmac<sha1::Sha1>;

impl Realtime {
    /// The gateway of a server on `db`, its session tokens signed with `master_key`. On PostgreSQL it starts
    /// the bus (needs a runtime).
    pub fn new(config: RealtimeConfig, db: &Db, master_key: &str) -> Realtime {
        let hub = Arc::new(Hub::default());
        let bus = match db {
            Db::Postgres(pg) => {
                let (bus, events) = Bus::postgres(pg.clone(), bus::Seal::new(master_key));
                tokio::spawn(apply_events(events, hub.clone(), bus.publisher()));
                bus
            }
            Db::Sqlite(_) => Bus::local(),
        };
        Realtime {
            hub,
            bus,
            token_key: [
                b"leancloud-server session token:".as_slice(),
                master_key.as_bytes(),
            ]
            .concat(),
            seen_signatures: signature::SeenSignatures::default(),
            sockets: admission::SocketBudget::new(
                config.max_sockets.unwrap_or(usize::MAX),
                config.max_sockets_per_address,
            ),
            logins: admission::LoginThrottle::new(config.logins_per_minute),
            config,
        }
    }

    fn token_mac(&self, client: &str, until: i64) -> String {
        use hmac::Mac;
        let mut mac = HmacSha1::new_from_slice(&self.token_key).expect("HMAC takes any key");
        mac.update(format!("{until}:{client}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// A new session token for `client`: its expiry (ms) and a MAC of both.
    pub fn issue_token(&self, client: &str) -> String {
        let ttl = i64::try_from(self.config.session_ttl.as_millis()).unwrap_or(i64::MAX);
        let until = chrono::Utc::now().timestamp_millis().saturating_add(ttl);
        format!("{until}.{}", self.token_mac(client, until))
    }

    /// Whether `token` is a live session token of `client`.
    pub fn token_valid(&self, token: &str, client: &str) -> bool {
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

    /// Registers a session here (see [`Hub::register`]), at most
    /// [`MAX_SESSIONS_PER_CLIENT`](crate::protocol::limits::MAX_SESSIONS_PER_CLIENT) per client id (`None`
    /// beyond); the other instances learn when the client comes online.
    pub fn register(&self, session: hub::SessionRef) -> Option<Vec<hub::SessionRef>> {
        let peer = session.peer.to_string();
        let (kicked, first) = self
            .hub
            .register(session, crate::protocol::limits::MAX_SESSIONS_PER_CLIENT)?;
        if first {
            self.bus.publish(Event::Presence { peer, online: true });
        }
        Some(kicked)
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

    /// How many clients have a session here or, as far as the bus tells, on another instance.
    pub fn online_count(&self) -> usize {
        let mut peers = self.bus.peers_elsewhere();
        peers.extend(self.hub.online_peers());
        peers.len()
    }

    /// Whether `peer` has a session on this instance or, as far as the bus tells, on another.
    pub fn is_online(&self, peer: &str) -> bool {
        self.hub.is_online(peer) || self.bus.online_elsewhere(peer)
    }

    /// Tells the online sessions of `peers`, here and on every instance, of a change to conversation `cid`
    /// made by `by` at `at` (ms).
    pub fn notify_conversation(
        &self,
        peers: &[String],
        cid: &str,
        by: Option<&str>,
        notice: ConvNotice<'_>,
        at: i64,
    ) {
        self.notify(peers, |p| pushes::conv_notice(p, cid, by, notice, at));
    }

    /// Tells `sender`'s online sessions, on every instance, of a receipt for one of its messages.
    pub fn receipt(&self, sender: &str, receipt: Receipt<'_>) {
        self.notify(&[sender.to_string()], |p| pushes::receipt(p, receipt));
    }

    /// Tells `reader`'s online sessions, on every instance, that it read conversation `cid` (`unread` with 0),
    /// so its other devices clear their count.
    pub fn read_elsewhere(&self, reader: &str, cid: &str, last: Option<&LastMessage>, now: i64) {
        self.notify(&[reader.to_string()], |p| {
            pushes::unread_cleared(p, cid, last, now)
        });
    }

    /// Tells the online sessions of `peers`, on every instance, of a message's edit or recall.
    pub fn patched(&self, peers: &[String], patch: Patch<'_>) {
        self.notify(peers, |p| pushes::patch(p, patch));
    }

    /// The app's backend kicks `peer`: its sessions close with 4115 `KICKED_BY_APP`, here and on every
    /// instance. `true` when it was online here.
    pub fn kick(&self, peer: &str, detail: Option<&str>) -> bool {
        let here = self.hub.kick_all(peer, detail);
        if here {
            self.bus.publish(Event::Presence {
                peer: peer.to_string(),
                online: false,
            });
        }
        self.bus.publish(Event::KickOut {
            peer: peer.to_string(),
            detail: detail.map(str::to_owned),
        });
        here
    }

    /// `peer` logged in with `tag` here: sessions with that tag on other instances close.
    pub fn took_over(&self, peer: &str, tag: &str) {
        self.bus.publish(Event::Kick {
            peer: peer.to_string(),
            tag: tag.to_string(),
        });
    }
}

/// Acts on the other instances' events, in order: their deliveries, notifications and kicks reach this
/// instance's sessions; a newcomer's `Hello` is answered with who is online here.
async fn apply_events(
    mut events: tokio::sync::mpsc::Receiver<bus::Incoming>,
    hub: Arc<Hub>,
    publisher: bus::Publisher,
) {
    while let Some((from, event)) = events.recv().await {
        match event {
            Event::Deliver { msg } => {
                hub.deliver(*msg);
            }
            Event::Notify { items } => {
                for (peer, command) in items {
                    if let Some(command) = bus::decode_command(&command) {
                        hub.notify(std::slice::from_ref(&peer), |_| command.clone());
                    }
                }
            }
            Event::Kick { peer, tag } => {
                if hub.kick_tagged(&peer, &tag) {
                    publisher.publish(Event::Presence {
                        peer,
                        online: false,
                    });
                }
            }
            Event::KickOut { peer, detail } => {
                if hub.kick_all(&peer, detail.as_deref()) {
                    publisher.publish(Event::Presence {
                        peer,
                        online: false,
                    });
                }
            }
            Event::Hello => publisher.publish(Event::Snapshot {
                to: from,
                peers: hub.online_peers(),
            }),
            Event::Presence { .. } | Event::Alive | Event::Snapshot { .. } => {}
        }
    }
}
