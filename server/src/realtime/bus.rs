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
//! The bus is for online delivery only: what a client misses while the bus is down (or its instance dies
//! between a commit and the publish) is in the store, and reaches it as unread counts or offline messages at
//! its next login. Health reports the bus, so a load balancer takes an instance whose listener is down out.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use futures::StreamExt;
use prost::Message;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::hub::Hub;
use super::proto::GenericCommand;
use crate::store::messages::Stored;
use crate::store::postgres::Pg;

/// The notification channel (per database, so test databases never hear each other).
const CHANNEL: &str = "leancloud_realtime";
/// Largest payload sent inline; PostgreSQL refuses notifications of 8,000 bytes and more.
const MAX_INLINE: usize = 7_900;
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

/// A notification's text: the envelope, or a reference to its row in `bus_payloads`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum Wire {
    Inline(Envelope),
    Stored { payload_id: i64 },
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

    /// Starts listening and publishing on `pg`; events from other instances go to `hub`. Needs a runtime.
    pub fn postgres(pg: Pg, hub: Arc<Hub>) -> Bus {
        let instance = rand::random();
        let listening = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::unbounded_channel();
        let elsewhere: Arc<std::sync::Mutex<Elsewhere>> = Arc::default();
        let listener = Listener {
            hub,
            instance,
            publisher: tx.clone(),
            elsewhere: elsewhere.clone(),
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
        Bus {
            instance,
            publisher: Some(tx),
            listening,
            tasks,
            elsewhere,
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
            match serde_json::to_string(&Wire::Inline(envelope)) {
                Ok(text) => texts.push(text),
                Err(e) => tracing::error!(error = %e, "bus: event not encodable"),
            }
        }
        // A failed publish is retried once on a fresh connection; then the events are dropped (they are in
        // the store).
        for attempt in 0..2 {
            match publish(&pg, &texts).await {
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

/// Sends one batch: a single statement when every event fits a notification (the usual case); otherwise a
/// transaction that first stores the large ones in `bus_payloads` (and drops rows older than 5 minutes).
async fn publish(pg: &Pg, texts: &[String]) -> crate::store::StoreResult<()> {
    // One statement, one notification per row in order; all are delivered at its commit.
    const NOTIFY: &str =
        "SELECT pg_notify($1, p) FROM unnest($2::text[]) WITH ORDINALITY AS t(p, n) ORDER BY n";
    let mut client = pg.client().await?;
    if texts.iter().all(|t| t.len() <= MAX_INLINE) {
        let stmt = client.prepare_cached(NOTIFY).await?;
        client.execute(&stmt, &[&CHANNEL, &texts]).await?;
        return Ok(());
    }
    let tx = client.transaction().await?;
    let now = chrono::Utc::now().timestamp_millis();
    tx.execute(
        "DELETE FROM bus_payloads WHERE created_at < $1",
        &[&(now - 300_000)],
    )
    .await?;
    let mut inline = Vec::with_capacity(texts.len());
    for text in texts {
        if text.len() <= MAX_INLINE {
            inline.push(text.clone());
        } else {
            let id: i64 = tx
                .query_one(
                    "INSERT INTO bus_payloads (payload, created_at) VALUES ($1, $2) RETURNING id",
                    &[text, &now],
                )
                .await?
                .get(0);
            inline.push(serde_json::json!({"payload_id": id}).to_string());
        }
    }
    tx.execute(NOTIFY, &[&CHANNEL, &inline]).await?;
    tx.commit().await?;
    Ok(())
}

/// What the listener needs to act on the others' events.
struct Listener {
    hub: Arc<Hub>,
    instance: u64,
    publisher: mpsc::UnboundedSender<Envelope>,
    elsewhere: Arc<std::sync::Mutex<Elsewhere>>,
}

impl Listener {
    fn publish(&self, event: Event) {
        let _ = self.publisher.send(Envelope {
            from: self.instance,
            event,
        });
    }
}

async fn listen_loop(pg: Pg, listener: Listener, listening: Arc<AtomicBool>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match listen(&pg, &listener, &listening).await {
            Ok(()) => return, // the database was closed
            Err(e) => {
                listening.store(false, Ordering::Release);
                tracing::warn!(error = %e, "bus: listener lost, reconnecting");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn listen(
    pg: &Pg,
    listener: &Listener,
    listening: &AtomicBool,
) -> crate::store::StoreResult<()> {
    let (client, mut connection) = pg.dedicated().await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                    if tx.send(n.payload().to_string()).is_err() {
                        return Ok(());
                    }
                }
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    listening.store(true, Ordering::Release);
    // What happened while this instance was not listening is unknown: ask the others who is online.
    listener.publish(Event::Hello);
    while let Some(text) = rx.recv().await {
        let wire = match serde_json::from_str::<Wire>(&text) {
            Ok(wire) => wire,
            Err(e) => {
                tracing::warn!(error = %e, "bus: unreadable notification");
                continue;
            }
        };
        let envelope = match wire {
            Wire::Inline(envelope) => envelope,
            Wire::Stored { payload_id } => {
                let row = client
                    .query_opt(
                        "SELECT payload FROM bus_payloads WHERE id = $1",
                        &[&payload_id],
                    )
                    .await?;
                match row.and_then(|r| serde_json::from_str::<Envelope>(r.get(0)).ok()) {
                    Some(envelope) => envelope,
                    None => continue,
                }
            }
        };
        if envelope.from != listener.instance {
            apply(listener, envelope.from, envelope.event);
        }
    }
    listening.store(false, Ordering::Release);
    match driver.await {
        Ok(Ok(())) => Err(crate::store::StoreError::internal(
            "listener connection closed",
        )),
        Ok(Err(e)) => Err(e.into()),
        Err(e) => Err(crate::store::StoreError::internal(e)),
    }
}

/// Acts on another instance's event: its deliveries and kicks reach this instance's sessions, its presence
/// goes into [`Elsewhere`].
fn apply(listener: &Listener, from: u64, event: Event) {
    let hub = &listener.hub;
    if let Ok(mut elsewhere) = listener.elsewhere.lock() {
        let now = std::time::Instant::now();
        elsewhere
            .instances
            .retain(|_, r| now.duration_since(r.heard) < ALIVE_FOR * 4);
        let remote = elsewhere.instances.entry(from).or_insert_with(|| Remote {
            heard: now,
            peers: Default::default(),
        });
        remote.heard = now;
        match &event {
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
    match event {
        Event::Deliver { msg } => {
            hub.deliver(*msg);
        }
        Event::Notify { items } => {
            for (peer, command) in items {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(command)
                    .ok()
                    .and_then(|bytes| GenericCommand::decode(bytes.as_slice()).ok());
                if let Some(command) = decoded {
                    hub.notify(std::slice::from_ref(&peer), |_| command.clone());
                }
            }
        }
        Event::Kick { peer, tag } => {
            if hub.kick_tagged(&peer, &tag) {
                listener.publish(Event::Presence {
                    peer,
                    online: false,
                });
            }
        }
        Event::Hello => listener.publish(Event::Snapshot {
            to: from,
            peers: hub.online_peers(),
        }),
        Event::Presence { .. } | Event::Alive | Event::Snapshot { .. } => {}
    }
}
