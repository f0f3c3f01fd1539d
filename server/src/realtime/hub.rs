//! Who is online, and delivery to them. Every logged-in client id maps to its sessions; a session is one
//! client id opened on one WebSocket connection. Delivery never waits for a client: each connection has a
//! bounded queue, and a connection whose queue is full is told to close (its messages stay in the store,
//! for `logs` and the unread count on its next login).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::{mpsc, Notify};

use crate::realtime::proto::GenericCommand;
use crate::store::messages::{MessageKind, Stored};

/// What a connection's task is handed to send.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// A stored message for `peer` (a session of this connection).
    Message { peer: Arc<str>, msg: Arc<Stored> },
    /// A ready command (a conversation notification) for `peer`.
    Command {
        peer: Arc<str>,
        command: Box<GenericCommand>,
    },
    /// Another login with the same tag took over: close `peer`'s session with this code.
    Kick {
        peer: Arc<str>,
        code: i32,
        reason: &'static str,
        /// The app's words, when its backend kicked the client.
        detail: Option<Arc<str>>,
    },
}

/// The hub's handle on one session.
#[derive(Debug, Clone)]
pub struct SessionRef {
    pub conn: u64,
    pub peer: Arc<str>,
    pub tag: Option<String>,
    pub tx: mpsc::Sender<Outbound>,
    /// Notified when the connection must close because its queue overflowed.
    pub overflow: Arc<Notify>,
}

impl SessionRef {
    fn offer(&self, item: Outbound) -> bool {
        match self.tx.try_send(item) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(conn = self.conn, peer = %self.peer, "realtime: slow consumer, disconnecting");
                self.overflow.notify_one();
                false
            }
            // The connection is closing; it unregisters itself.
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

/// An online client id and its sessions: (connection id, tag).
pub type OnlineClient = (String, Vec<(u64, Option<String>)>);

#[derive(Debug, Default)]
pub struct Hub {
    clients: RwLock<HashMap<Arc<str>, Vec<SessionRef>>>,
    next_conn: AtomicU64,
    delivered: AtomicU64,
    /// `true` once the server drains: every connection says `goaway` and closes. Each open connection holds
    /// one receiver, so their count is the number of open connections.
    drain: tokio::sync::watch::Sender<bool>,
}

/// Counts of one delivery, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivery {
    pub queued: usize,
    pub dropped: usize,
}

impl Hub {
    pub fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// A connection starts: it holds the returned drain signal, and is counted open, until it ends.
    pub fn connection_opened(&self) -> tokio::sync::watch::Receiver<bool> {
        self.drain.subscribe()
    }

    /// WebSocket connections open now.
    pub fn open_connections(&self) -> usize {
        self.drain.receiver_count()
    }

    /// Tell every connection, open or opening, to send `goaway` and close (the server is shutting down).
    pub fn drain(&self) {
        self.drain.send_replace(true);
    }

    /// Registers a session; sessions of the same client with the same non-empty tag on other
    /// connections are returned, already removed, to be kicked. `true` with them when the client had no
    /// session here before. `None` (and nothing changed) when the client already holds `max` other sessions
    /// here.
    pub fn register(&self, session: SessionRef, max: usize) -> Option<(Vec<SessionRef>, bool)> {
        let Ok(mut clients) = self.clients.write() else {
            return Some((Vec::new(), false));
        };
        let first = !clients.contains_key(&session.peer);
        let entry = clients.entry(session.peer.clone()).or_default();
        let staying = entry
            .iter()
            .filter(|s| s.conn != session.conn && !(session.tag.is_some() && s.tag == session.tag))
            .count();
        if staying >= max {
            return None;
        }
        let mut kicked = Vec::new();
        entry.retain(|s| {
            let same_socket = s.conn == session.conn;
            let conflict = session.tag.is_some() && s.tag == session.tag;
            if same_socket || conflict {
                if conflict && !same_socket {
                    kicked.push(s.clone());
                }
                false
            } else {
                true
            }
        });
        entry.push(session);
        Some((kicked, first))
    }

    /// Closes the sessions of `peer` with `tag` (another instance took them over) with a session conflict.
    /// `true` when the client has no session here any more.
    pub fn kick_tagged(&self, peer: &str, tag: &str) -> bool {
        let Ok(mut clients) = self.clients.write() else {
            return false;
        };
        let Some(list) = clients.get_mut(peer) else {
            return false;
        };
        list.retain(|s| {
            if s.tag.as_deref() != Some(tag) {
                return true;
            }
            let _ = s.tx.try_send(Outbound::Kick {
                peer: s.peer.clone(),
                code: crate::protocol::codes::SESSION_CONFLICT as i32,
                reason: "SESSION_CONFLICT",
                detail: None,
            });
            false
        });
        let gone = list.is_empty();
        if gone {
            clients.remove(peer);
        }
        gone
    }

    /// Closes every session of `peer` here (the app's backend kicked it: 4115 `KICKED_BY_APP`, with the app's
    /// `detail`). `true` when it had one.
    pub fn kick_all(&self, peer: &str, detail: Option<&str>) -> bool {
        let Ok(mut clients) = self.clients.write() else {
            return false;
        };
        let Some(list) = clients.remove(peer) else {
            return false;
        };
        let detail: Option<Arc<str>> = detail.map(Arc::from);
        for s in list {
            let _ = s.tx.try_send(Outbound::Kick {
                peer: s.peer.clone(),
                code: crate::protocol::codes::KICKED_BY_APP as i32,
                reason: "KICKED_BY_APP",
                detail: detail.clone(),
            });
        }
        true
    }

    /// Removes a session; `true` when it was the client's last one here.
    pub fn unregister(&self, conn: u64, peer: &str) -> bool {
        let Ok(mut clients) = self.clients.write() else {
            return false;
        };
        let Some(list) = clients.get_mut(peer) else {
            return false;
        };
        list.retain(|s| s.conn != conn);
        let gone = list.is_empty();
        if gone {
            clients.remove(peer);
        }
        gone
    }

    /// Every client id with a session here.
    pub fn online_peers(&self) -> Vec<String> {
        self.clients
            .read()
            .map(|c| c.keys().map(|k| k.to_string()).collect())
            .unwrap_or_default()
    }

    pub fn is_online(&self, peer: &str) -> bool {
        self.clients
            .read()
            .map(|c| c.contains_key(peer))
            .unwrap_or(false)
    }

    /// Logged-in sessions (a client id logged in on two sockets counts twice).
    pub fn session_count(&self) -> usize {
        self.clients
            .read()
            .map(|c| c.values().map(|list| list.len()).sum())
            .unwrap_or(0)
    }

    /// Client ids with at least one session.
    pub fn online_clients(&self) -> usize {
        self.clients.read().map(|c| c.len()).unwrap_or(0)
    }

    /// Every online client id with its sessions (connection id, tag), sorted by client id: a read-only
    /// view for operators (the console).
    pub fn sessions(&self) -> Vec<OnlineClient> {
        let Ok(clients) = self.clients.read() else {
            return Vec::new();
        };
        let mut out: Vec<OnlineClient> = clients
            .iter()
            .map(|(peer, list)| {
                let sessions = list.iter().map(|s| (s.conn, s.tag.clone())).collect();
                (peer.to_string(), sessions)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Messages handed to connections since start.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Hands a stored message to every online session it is for: the audience (members, or the chosen
    /// clients), or everyone for a broadcast; never to the sender, on any of its sessions.
    pub fn deliver(&self, msg: Stored) -> Delivery {
        let msg = Arc::new(msg);
        let Ok(clients) = self.clients.read() else {
            return Delivery::default();
        };
        let mut out = Delivery::default();
        let mut offer = |s: &SessionRef| {
            if *s.peer == *msg.from {
                return;
            }
            let item = Outbound::Message {
                peer: s.peer.clone(),
                msg: msg.clone(),
            };
            if s.offer(item) {
                out.queued += 1;
            } else {
                out.dropped += 1;
            }
        };
        match msg.kind {
            MessageKind::Broadcast => clients.values().flatten().for_each(&mut offer),
            MessageKind::Normal | MessageKind::ToClients => {
                for peer in &msg.audience {
                    if let Some(list) = clients.get(peer.as_str()) {
                        list.iter().for_each(&mut offer);
                    }
                }
            }
        }
        self.delivered
            .fetch_add(out.queued as u64, Ordering::Relaxed);
        out
    }

    /// Hands a command built per recipient (conversation notifications) to every session of `peers`.
    pub fn notify(&self, peers: &[String], command: impl Fn(&str) -> GenericCommand) {
        let Ok(clients) = self.clients.read() else {
            return;
        };
        for peer in peers {
            if let Some(list) = clients.get(peer.as_str()) {
                for s in list {
                    s.offer(Outbound::Command {
                        peer: s.peer.clone(),
                        command: Box::new(command(peer)),
                    });
                }
            }
        }
    }
}
