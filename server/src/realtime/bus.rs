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
    #[serde(flatten)]
    event: Event,
}

/// An event from another instance, for the registry: who sent it, and what.
pub type Incoming = (u64, Event);

/// A handle that publishes as this instance (what the registry answers events with).
#[derive(Debug, Clone)]
pub struct Publisher {
    instance: u64,
    tx: Option<mpsc::UnboundedSender<Envelope>>,
}

impl Publisher {
    /// Tells the other instances (nothing without a bus). Never waits.
    pub fn publish(&self, event: Event) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Envelope {
                from: self.instance,
                event,
            });
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
    publisher: Option<mpsc::UnboundedSender<Envelope>>,
    listening: Arc<AtomicBool>,
    tasks: Vec<tokio::task::AbortHandle>,
    elsewhere: Arc<std::sync::Mutex<Elsewhere>>,
}

impl Bus {
    /// No bus: everything is delivered by this instance's hub.
    pub fn local() -> Bus {
        Bus {
            instance: rand::random(),
            publisher: None,
            listening: Arc::new(AtomicBool::new(true)),
            tasks: Vec::new(),
            elsewhere: Arc::default(),
        }
    }

    /// Starts listening and publishing on `pg`; the other instances' events come out of the receiver, in the
    /// order they were committed. Needs a runtime.
    pub fn postgres(pg: Pg) -> (Bus, mpsc::UnboundedReceiver<Incoming>) {
        let instance = rand::random();
        let listening = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::unbounded_channel();
        let (incoming, events) = mpsc::unbounded_channel();
        let elsewhere: Arc<std::sync::Mutex<Elsewhere>> = Arc::default();
        let listener = Listener {
            instance,
            publisher: Publisher {
                instance,
                tx: Some(tx.clone()),
            },
            elsewhere: elsewhere.clone(),
            incoming,
        };
        let alive = tx.clone();
        let tasks = vec![
            tokio::spawn(publish_loop(pg.clone(), rx)).abort_handle(),
            tokio::spawn(listen_loop(pg, listener, listening.clone())).abort_handle(),
            tokio::spawn(async move {
                let mut every = tokio::time::interval(ALIVE_EVERY);
                loop {
                    every.tick().await;
                    let sent = alive.send(Envelope {
                        from: instance,
                        event: Event::Alive,
                    });
                    if sent.is_err() {
                        return;
                    }
                }
            })
            .abort_handle(),
        ];
        let bus = Bus {
            instance,
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
            let _ = tx.send(Envelope {
                from: self.instance,
                event,
            });
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

    /// Whether events travel to other instances at all.
    pub fn is_shared(&self) -> bool {
        self.publisher.is_some()
    }
}

/// A command as the `Notify` event carries it.
pub fn encode_command(command: &GenericCommand) -> String {
    base64::engine::general_purpose::STANDARD.encode(command.encode_to_vec())
}

async fn publish_loop(pg: Pg, mut rx: mpsc::UnboundedReceiver<Envelope>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut texts = Vec::with_capacity(batch.len());
        for envelope in batch.drain(..) {
            match serde_json::to_string(&envelope) {
                Ok(text) => texts.push(text),
                Err(e) => tracing::error!(error = %e, "bus: event not encodable"),
            }
        }
        // A failed publish is retried once on a fresh connection; then the events are dropped (they are in
        // the store).
        for attempt in 0..2 {
            match notify::publish(&pg, CHANNEL, &texts).await {
                Ok(()) => break,
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
    incoming: mpsc::UnboundedSender<Incoming>,
}

async fn listen_loop(pg: Pg, listener: Listener, listening: Arc<AtomicBool>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let Err(e) = listen(&pg, &listener, &listening).await;
        listening.store(false, Ordering::Release);
        if listener.incoming.is_closed() {
            return; // the registry is gone: the server stopped
        }
        tracing::warn!(error = %e, "bus: listener lost, reconnecting");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
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
        let text = channel.next().await?;
        let envelope = match serde_json::from_str::<Envelope>(&text) {
            Ok(envelope) => envelope,
            Err(e) => {
                tracing::warn!(error = %e, "bus: unreadable notification");
                continue;
            }
        };
        if envelope.from != listener.instance {
            track(listener, envelope.from, &envelope.event);
            let _ = listener.incoming.send((envelope.from, envelope.event));
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
