//! Realtime delivery between server instances that share one PostgreSQL database, over its `LISTEN/NOTIFY`.
//!
//! Every instance delivers what it sends to its own sessions at once ([`super::hub::Hub`]) and publishes it on
//! the bus; every other instance hands it to its sessions. What travels: a stored message (after its commit), a
//! conversation notification for named clients, a session kick (a login with a tag takes over that tag's
//! session on any instance), and presence (a client's first and last session on an instance, a heartbeat, and on
//! joining a snapshot of who is online where), so the offline-push decision and the hooks' `onlinePeers` count a
//! client online on any live instance. One publisher task per instance sends them in the order they were
//! published, several per statement under load; PostgreSQL delivers notifications in commit order, so a client
//! sees messages sent through one instance in the order they were sent. A payload over PostgreSQL's 8,000-byte
//! limit goes through the `bus_payloads` table and the notification names its row.
//!
//! The bus only carries events: the transport is `crate::store::postgres::notify`, and what an event from
//! another instance does to this instance's sessions is the registry's business ([`super::Realtime`] takes
//! them from the receiver [`Bus::postgres`] returns); the bus itself keeps only who is online elsewhere.
//!
//! The bus is for online delivery only: what a client misses while the bus is down (or its instance dies
//! between a commit and the publish) is in the store, and reaches it as unread counts or offline messages at
//! its next login. Health reports the bus, so a load balancer takes an instance whose listener is down out.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use prost::Message;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::proto::GenericCommand;
use crate::store::messages::Stored;
use crate::store::postgres::{notify, Pg};

/// Notifications are sealed with an HMAC-SHA256 under a key every instance derives from the master key:
/// `NOTIFY` needs no privilege in PostgreSQL, so any role that may connect could otherwise forge deliveries,
/// kicks and presence (review part 3, R8). An unsealed, forged or stale notification is dropped and counted.
#[derive(Clone)]
pub struct Seal {
    key: [u8; 32],
}

impl std::fmt::Debug for Seal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Seal(..)")
    }
}

type HmacSha256 = hmac::Hmac<sha2::Sha256>;
/// Hex digits of a seal, before the envelope's JSON.
const SEAL_HEX: usize = 64;
/// How far an envelope's time may be from this instance's clock.
const MAX_SKEW_MS: i64 = 60_000;

impl Seal {
    pub fn new(master_key: &str) -> Seal {
        use sha2::Digest;
        let key = sha2::Sha256::new()
            .chain_update(b"leancloud-server realtime bus:")
            .chain_update(master_key.as_bytes())
            .finalize()
            .into();
        Seal { key }
    }

    fn mac(&self, text: &str) -> HmacSha256 {
        use hmac::Mac;
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(text.as_bytes());
        mac
    }

    /// The notification for `text`: its seal in hex, then the text.
    pub fn seal(&self, text: &str) -> String {
        use hmac::Mac;
        let tag = hex::encode(self.mac(text).finalize().into_bytes());
        format!("{tag}{text}")
    }

    /// The text of a notification sealed with this key, or `None`.
    pub fn open<'a>(&self, payload: &'a str) -> Option<&'a str> {
        use hmac::Mac;
        let tag = hex::decode(payload.get(..SEAL_HEX)?).ok()?;
        let text = &payload[SEAL_HEX..];
        self.mac(text).verify_slice(&tag).ok()?;
        Some(text)
    }
}

/// The notification channel (per database, so test databases never hear each other).
const CHANNEL: &str = "leancloud_realtime";
/// Most events per publishing statement.
const MAX_BATCH: usize = 256;

/// What one instance tells the others.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A committed message, for its audience's sessions.
    Deliver { msg: Box<Stored> },
    /// Conversation notifications: protobuf commands (base64), one per client id.
    Notify { items: Vec<(String, String)> },
    /// `peer` logged in with `tag` elsewhere: close its sessions with that tag here.
    Kick { peer: String, tag: String },
    /// The app's backend kicked `peer`: close all its sessions here.
    KickOut {
        peer: String,
        detail: Option<String>,
    },
    /// `peer` got its first session on the publisher (`online`), or lost its last one there.
    Presence { peer: String, online: bool },
    /// The publisher is alive (every [`ALIVE_EVERY`]); an instance not heard for [`ALIVE_FOR`] counts as gone.
    Alive,
    /// The publisher (re)joined: every instance answers with a [`Event::Snapshot`] of its online clients.
    Hello,
    /// The client ids online on the publisher, for instance `to`.
    Snapshot { to: u64, peers: Vec<String> },
}

/// How often an instance says it is alive, and how long the others believe it.
const ALIVE_EVERY: Duration = Duration::from_secs(5);
const ALIVE_FOR: Duration = Duration::from_secs(15);

/// The clients online on the other instances, as their events tell: what the offline-push decision and the
/// hooks' `onlinePeers` need.
#[derive(Debug, Default)]
struct Elsewhere {
    instances: std::collections::HashMap<u64, Remote>,
}

#[derive(Debug)]
struct Remote {
    heard: std::time::Instant,
    peers: std::collections::HashSet<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    /// The publishing instance, which ignores its own events.
    from: u64,
    /// When it was published (ms): an envelope further than [`MAX_SKEW_MS`] from now is dropped, so a
    /// recorded notification cannot be replayed later.
    #[serde(default)]
    at: i64,
    #[serde(flatten)]
    event: Event,
}

impl Envelope {
    fn new(from: u64, event: Event) -> Envelope {
        Envelope {
            from,
            at: chrono::Utc::now().timestamp_millis(),
            event,
        }
    }
}

/// An event from another instance, for the registry: who sent it, and what.
pub type Incoming = (u64, Event);

/// Events waiting to be published, and events from the others waiting for the registry: bounded, so a slow
/// or unreachable database cannot pile them up in memory (review part 3, L-c). What does not fit is dropped
/// and counted; the store keeps every message, which reaches its clients at their next login.
const QUEUE_LEN: usize = 65_536;

/// A bounded queue that never waits: a full queue drops the item and counts it.
#[derive(Debug)]
struct Queue<T> {
    tx: mpsc::Sender<T>,
    dropped: Arc<std::sync::atomic::AtomicU64>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            tx: self.tx.clone(),
            dropped: self.dropped.clone(),
        }
    }
}

impl<T> Queue<T> {
    /// `false` once the receiving side is gone.
    fn offer(&self, item: T) -> bool {
        match self.tx.try_send(item) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    tracing::warn!(dropped = n, "bus: queue full, event dropped");
                }
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

/// A handle that publishes as this instance (what the registry answers events with).
#[derive(Debug, Clone)]
pub struct Publisher {
    instance: u64,
    tx: Option<Queue<Envelope>>,
}

impl Publisher {
    /// Tells the other instances (nothing without a bus). Never waits.
    pub fn publish(&self, event: Event) {
        if let Some(tx) = &self.tx {
            tx.offer(Envelope::new(self.instance, event));
        }
    }

    /// This instance's id on the bus.
    pub fn instance(&self) -> u64 {
        self.instance
    }
}

/// The bus of one instance: none on SQLite (one instance owns the file), `LISTEN/NOTIFY` on PostgreSQL.
#[derive(Debug)]
pub struct Bus {
    instance: u64,
    /// Notifications dropped as unsealed, forged, stale or unreadable.
    rejected: Arc<std::sync::atomic::AtomicU64>,
    /// Events dropped because a queue was full.
    dropped: Arc<std::sync::atomic::AtomicU64>,
    /// Events published to the other instances, and received from them (for the metrics).
    published: Arc<std::sync::atomic::AtomicU64>,
    received: Arc<std::sync::atomic::AtomicU64>,
    publisher: Option<Queue<Envelope>>,
    listening: Arc<AtomicBool>,
    tasks: Vec<tokio::task::AbortHandle>,
    elsewhere: Arc<std::sync::Mutex<Elsewhere>>,
}

impl Bus {
    /// No bus: everything is delivered by this instance's hub.
    pub fn local() -> Bus {
        Bus {
            instance: rand::random(),
            rejected: Arc::default(),
            dropped: Arc::default(),
            published: Arc::default(),
            received: Arc::default(),
            publisher: None,
            listening: Arc::new(AtomicBool::new(true)),
            tasks: Vec::new(),
            elsewhere: Arc::default(),
        }
    }

    /// Starts listening and publishing on `pg`; the other instances' events come out of the receiver, in the
    /// order they were committed. Needs a runtime.
    pub fn postgres(pg: Pg, seal: Seal) -> (Bus, mpsc::Receiver<Incoming>) {
        let instance = rand::random();
        let rejected: Arc<std::sync::atomic::AtomicU64> = Arc::default();
        let listening = Arc::new(AtomicBool::new(false));
        let dropped: Arc<std::sync::atomic::AtomicU64> = Arc::default();
        let published: Arc<std::sync::atomic::AtomicU64> = Arc::default();
        let received: Arc<std::sync::atomic::AtomicU64> = Arc::default();
        let (tx, rx) = mpsc::channel(QUEUE_LEN);
        let tx = Queue {
            tx,
            dropped: dropped.clone(),
        };
        let (incoming, events) = mpsc::channel(QUEUE_LEN);
        let incoming = Queue {
            tx: incoming,
            dropped: dropped.clone(),
        };
        let elsewhere: Arc<std::sync::Mutex<Elsewhere>> = Arc::default();
        let listener = Listener {
            instance,
            publisher: Publisher {
                instance,
                tx: Some(tx.clone()),
            },
            elsewhere: elsewhere.clone(),
            incoming,
            seal: seal.clone(),
            rejected: rejected.clone(),
            received: received.clone(),
        };
        let alive = tx.clone();
        let tasks = vec![
            tokio::spawn(publish_loop(pg.clone(), rx, seal, published.clone())).abort_handle(),
            tokio::spawn(listen_loop(pg, listener, listening.clone())).abort_handle(),
            tokio::spawn(async move {
                let mut every = tokio::time::interval(ALIVE_EVERY);
                loop {
                    every.tick().await;
                    if !alive.offer(Envelope::new(instance, Event::Alive)) {
                        return;
                    }
                }
            })
            .abort_handle(),
        ];
        let bus = Bus {
            instance,
            rejected,
            dropped,
            published,
            received,
            publisher: Some(tx),
            listening,
            tasks,
            elsewhere,
        };
        (bus, events)
    }

    /// A handle that publishes as this instance.
    pub fn publisher(&self) -> Publisher {
        Publisher {
            instance: self.instance,
            tx: self.publisher.clone(),
        }
    }

    /// Stops listening and publishing (the server is shutting down).
    pub fn stop(&self) {
        for task in &self.tasks {
            task.abort();
        }
        self.listening.store(false, Ordering::Release);
    }

    /// Whether events from other instances reach this one now (always on SQLite).
    pub fn connected(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    /// For health: `local`, `connected` or `disconnected`.
    pub fn describe(&self) -> &'static str {
        match (&self.publisher, self.connected()) {
            (None, _) => "local",
            (Some(_), true) => "connected",
            (Some(_), false) => "disconnected",
        }
    }

    /// Tells the other instances (nothing without a bus). Never waits.
    pub fn publish(&self, event: Event) {
        if let Some(tx) = &self.publisher {
            tx.offer(Envelope::new(self.instance, event));
        }
    }

    /// Whether `peer` has a session on another live instance.
    pub fn online_elsewhere(&self, peer: &str) -> bool {
        // Without a bus (SQLite) there is no elsewhere: no lock on every recipient of every send.
        if !self.is_shared() {
            return false;
        }
        let Ok(elsewhere) = self.elsewhere.lock() else {
            return false;
        };
        elsewhere
            .instances
            .values()
            .any(|r| r.heard.elapsed() < ALIVE_FOR && r.peers.contains(peer))
    }

    /// The clients with a session on another live instance.
    pub fn peers_elsewhere(&self) -> std::collections::HashSet<String> {
        let Ok(elsewhere) = self.elsewhere.lock() else {
            return Default::default();
        };
        elsewhere
            .instances
            .values()
            .filter(|r| r.heard.elapsed() < ALIVE_FOR)
            .flat_map(|r| r.peers.iter().cloned())
            .collect()
    }

    /// Events dropped since start because the publishing or the receiving queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Notifications dropped since start as unsealed, forged, stale or unreadable.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// Events published to the other instances, and received from them, since start.
    pub fn traffic(&self) -> (u64, u64) {
        (
            self.published.load(Ordering::Relaxed),
            self.received.load(Ordering::Relaxed),
        )
    }

    /// Whether events travel to other instances at all.
    pub fn is_shared(&self) -> bool {
        self.publisher.is_some()
    }
}

/// A command as the `Notify` event carries it.
pub fn encode_command(command: &GenericCommand) -> String {
    base64::engine::general_purpose::STANDARD.encode(command.encode_to_vec())
}

async fn publish_loop(
    pg: Pg,
    mut rx: mpsc::Receiver<Envelope>,
    seal: Seal,
    published: Arc<std::sync::atomic::AtomicU64>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut texts = Vec::with_capacity(batch.len());
        for envelope in batch.drain(..) {
            match serde_json::to_string(&envelope) {
                Ok(text) => texts.push(seal.seal(&text)),
                Err(e) => tracing::error!(error = %e, "bus: event not encodable"),
            }
        }
        // A failed publish is retried once on a fresh connection; then the events are dropped (they are in
        // the store).
        for attempt in 0..2 {
            match notify::publish(&pg, CHANNEL, &texts).await {
                Ok(()) => {
                    published.fetch_add(texts.len() as u64, Ordering::Relaxed);
                    break;
                }
                Err(e) if attempt == 0 => {
                    tracing::warn!(error = %e, "bus: publish failed, retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => tracing::error!(error = %e, events = texts.len(), "bus: events dropped"),
            }
        }
    }
}

/// What the listener needs: who this instance is, where presence goes, where events go.
struct Listener {
    instance: u64,
    publisher: Publisher,
    elsewhere: Arc<std::sync::Mutex<Elsewhere>>,
    incoming: Queue<Incoming>,
    seal: Seal,
    rejected: Arc<std::sync::atomic::AtomicU64>,
    /// Events accepted from other instances.
    received: Arc<std::sync::atomic::AtomicU64>,
}

/// The listener's wait before reconnecting: doubling from [`Backoff::FIRST`] up to [`Backoff::MOST`] while
/// connections keep failing, and back to the first after a connection that listened (so a database blip
/// costs an instance a tenth of a second, however many it has seen).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Backoff {
    pub(crate) const FIRST: Duration = Duration::from_millis(100);
    pub(crate) const MOST: Duration = Duration::from_secs(5);

    pub(crate) fn new() -> Backoff {
        Backoff { next: Self::FIRST }
    }

    /// The wait after a lost connection; `listened`: it was listening before it was lost.
    pub(crate) fn after_loss(&mut self, listened: bool) -> Duration {
        if listened {
            self.next = Self::FIRST;
        }
        let wait = self.next;
        self.next = (self.next * 2).min(Self::MOST);
        wait
    }
}

async fn listen_loop(pg: Pg, listener: Listener, listening: Arc<AtomicBool>) {
    let mut backoff = Backoff::new();
    loop {
        let Err(e) = listen(&pg, &listener, &listening).await;
        let listened = listening.swap(false, Ordering::AcqRel);
        if listener.incoming.tx.is_closed() {
            return; // the registry is gone: the server stopped
        }
        tracing::warn!(error = %e, "bus: listener lost, reconnecting");
        tokio::time::sleep(backoff.after_loss(listened)).await;
    }
}

/// Listens until the connection is lost.
async fn listen(
    pg: &Pg,
    listener: &Listener,
    listening: &AtomicBool,
) -> Result<std::convert::Infallible, crate::store::StoreError> {
    let mut channel = notify::listen(pg, CHANNEL).await?;
    listening.store(true, Ordering::Release);
    // What happened while this instance was not listening is unknown: ask the others who is online.
    listener.publisher.publish(Event::Hello);
    loop {
        let payload = channel.next().await?;
        let Some(envelope) = listener.accept(&payload) else {
            continue;
        };
        if envelope.from != listener.instance {
            listener.received.fetch_add(1, Ordering::Relaxed);
            track(listener, envelope.from, &envelope.event);
            listener.incoming.offer((envelope.from, envelope.event));
        }
    }
}

impl Listener {
    /// The envelope of a notification sealed by an instance of this app and published within
    /// [`MAX_SKEW_MS`]; anything else is dropped and counted.
    fn accept(&self, payload: &str) -> Option<Envelope> {
        let envelope = self
            .seal
            .open(payload)
            .ok_or("unsealed or forged")
            .and_then(|text| serde_json::from_str::<Envelope>(text).map_err(|_| "unreadable"))
            .and_then(|e| {
                let skew = (chrono::Utc::now().timestamp_millis() - e.at).abs();
                if skew > MAX_SKEW_MS {
                    Err("stale")
                } else {
                    Ok(e)
                }
            });
        match envelope {
            Ok(e) => Some(e),
            Err(why) => {
                let n = self.rejected.fetch_add(1, Ordering::Relaxed) + 1;
                // Logged sparsely: a flood of forgeries must not flood the log.
                if n.is_power_of_two() {
                    tracing::warn!(why, rejected = n, "bus: notification dropped");
                }
                None
            }
        }
    }
}

/// Keeps [`Elsewhere`] up to date with another instance's event.
fn track(listener: &Listener, from: u64, event: &Event) {
    let Ok(mut elsewhere) = listener.elsewhere.lock() else {
        return;
    };
    let now = std::time::Instant::now();
    elsewhere
        .instances
        .retain(|_, r| now.duration_since(r.heard) < ALIVE_FOR * 4);
    let remote = elsewhere.instances.entry(from).or_insert_with(|| Remote {
        heard: now,
        peers: Default::default(),
    });
    remote.heard = now;
    match event {
        Event::Presence { peer, online: true } => {
            remote.peers.insert(peer.clone());
        }
        Event::Presence {
            peer,
            online: false,
        } => {
            remote.peers.remove(peer);
        }
        Event::Snapshot { to, peers } if *to == listener.instance => {
            remote.peers = peers.iter().cloned().collect();
        }
        _ => {}
    }
}

/// A `Notify` item's command, decoded.
pub fn decode_command(command: &str) -> Option<GenericCommand> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(command)
        .ok()?;
    GenericCommand::decode(bytes.as_slice()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_opens_only_under_the_key_that_sealed_it() {
        let seal = Seal::new("master");
        let text = r#"{"from":1,"at":0,"type":"alive"}"#;
        let sealed = seal.seal(text);
        assert_eq!(seal.open(&sealed), Some(text));
        assert_eq!(Seal::new("other master").open(&sealed), None);
        assert_eq!(seal.open(text), None, "an unsealed notification");
        let mut forged = sealed.clone();
        forged.push(' ');
        assert_eq!(seal.open(&forged), None, "a changed text");
        assert_eq!(seal.open("ab"), None);
    }

    /// Review part 3: the delay doubled on every lost connection and never came back down, so from its fifth
    /// blip on an instance stayed disconnected (503 on health) for seconds after each one.
    #[test]
    fn the_reconnect_delay_starts_over_after_a_connection_that_listened() {
        let mut backoff = Backoff::new();
        let waits: Vec<Duration> = (0..8).map(|_| backoff.after_loss(true)).collect();
        assert_eq!(waits, vec![Backoff::FIRST; 8]);
        let mut backoff = Backoff::new();
        let failing: Vec<u128> = (0..8)
            .map(|_| backoff.after_loss(false).as_millis())
            .collect();
        assert_eq!(failing, vec![100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(backoff.after_loss(true), Backoff::FIRST);
    }
}

#[cfg(test)]
mod queue_tests {
    use super::*;

    /// L-c: the bus's queues were unbounded, so a slow database piled events up in memory.
    #[test]
    fn a_full_queue_drops_and_counts_instead_of_growing() {
        let (tx, mut rx) = mpsc::channel(2);
        let queue = Queue {
            tx,
            dropped: Arc::default(),
        };
        assert!((0..5).all(|i| queue.offer(i)));
        assert_eq!(3, queue.dropped.load(Ordering::Relaxed));
        assert_eq!((Ok(0), Ok(1)), (rx.try_recv(), rx.try_recv()));
        drop(rx);
        assert!(!queue.offer(9), "a closed queue says so");
    }
}
