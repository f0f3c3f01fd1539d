//! The realtime hub as a state machine (review part 3, R3): sequences of logins (with and without tags),
//! logouts, tag takeovers from another instance, deliveries and notifications from several connections, checked
//! step by step against a model: the sessions per client id never exceed the cap, a refused login changes
//! nothing, a tagged login kicks exactly the other connections' sessions with its tag, and a delivery reaches
//! exactly the recipient's sessions (never its sender's).
#![no_main]

use std::collections::BTreeMap;
use std::sync::Arc;

use leancloud_server::realtime::hub::{Hub, Outbound, SessionRef};
use leancloud_server::store::messages::{MessageKind, Stored};
use libfuzzer_sys::fuzz_target;
use tokio::sync::{mpsc, Notify};

const CONNS: u8 = 6;
const PEERS: u8 = 5;
const MAX: usize = 3;

type Model = BTreeMap<String, Vec<(u64, Option<String>)>>;

fn stored(from: &str, to: &str) -> Stored {
    Stored {
        seq: 1,
        msg_id: "m".into(),
        timestamp: 1,
        conv_id: "c".into(),
        from: from.into(),
        data: "x".into(),
        binary: false,
        kind: MessageKind::Normal,
        transient: false,
        room: false,
        system: false,
        audience: vec![from.into(), to.into()],
        valid_till: None,
        mention_pids: Vec::new(),
        mention_all: false,
        push: None,
        muted: Vec::new(),
    }
}

fn view(hub: &Hub) -> Model {
    hub.sessions()
        .into_iter()
        .map(|(peer, mut sessions)| {
            sessions.sort();
            (peer, sessions)
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let hub = Hub::default();
    let mut rxs = Vec::new();
    let mut txs = Vec::new();
    for _ in 0..CONNS {
        let (tx, rx) = mpsc::channel::<Outbound>(64);
        txs.push(tx);
        rxs.push(rx);
    }
    let overflow = Arc::new(Notify::new());
    let mut model: Model = BTreeMap::new();
    for op in data.chunks_exact(3) {
        let conn = u64::from(op[1] % CONNS);
        let peer = format!("p{}", op[2] % PEERS);
        let tag = match (op[2] >> 4) % 3 {
            0 => None,
            n => Some(format!("t{n}")),
        };
        match op[0] % 5 {
            0 => {
                let staying: Vec<(u64, Option<String>)> = model
                    .get(&peer)
                    .map(|l| {
                        l.iter()
                            .filter(|(c, t)| *c != conn && !(tag.is_some() && *t == tag))
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                let registered = hub.register(
                    SessionRef {
                        conn,
                        peer: Arc::from(peer.as_str()),
                        tag: tag.clone(),
                        tx: txs[conn as usize].clone(),
                        overflow: overflow.clone(),
                    },
                    MAX,
                );
                if staying.len() >= MAX {
                    assert!(registered.is_none(), "over the cap: refused");
                } else {
                    let (kicked, first) = registered.expect("under the cap: registered");
                    assert_eq!(first, !model.contains_key(&peer));
                    let before = model.get(&peer).cloned().unwrap_or_default();
                    let mut expected_kicked: Vec<u64> = before
                        .iter()
                        .filter(|(c, t)| *c != conn && tag.is_some() && *t == tag)
                        .map(|(c, _)| *c)
                        .collect();
                    let mut got: Vec<u64> = kicked.iter().map(|s| s.conn).collect();
                    expected_kicked.sort();
                    got.sort();
                    assert_eq!(expected_kicked, got);
                    let mut list = staying;
                    list.push((conn, tag));
                    model.insert(peer.clone(), list);
                }
            }
            1 => {
                let last = hub.unregister(conn, &peer);
                if let Some(list) = model.get_mut(&peer) {
                    list.retain(|(c, _)| *c != conn);
                    let gone = list.is_empty();
                    if gone {
                        model.remove(&peer);
                    }
                    assert_eq!(gone, last);
                } else {
                    assert!(!last);
                }
            }
            2 => {
                if let Some(tag) = &tag {
                    let gone = hub.kick_tagged(&peer, tag);
                    if let Some(list) = model.get_mut(&peer) {
                        list.retain(|(_, t)| t.as_deref() != Some(tag.as_str()));
                        let empty = list.is_empty();
                        if empty {
                            model.remove(&peer);
                        }
                        assert_eq!(empty, gone);
                    }
                }
            }
            3 => {
                let from = format!("p{}", op[1] % PEERS);
                let delivery = hub.deliver(stored(&from, &peer));
                let expected = if from == peer {
                    0
                } else {
                    model.get(&peer).map_or(0, Vec::len)
                };
                assert_eq!(expected, delivery.queued, "{from} → {peer}");
            }
            _ => hub.notify(std::slice::from_ref(&peer), |_| {
                leancloud_server::realtime::proto::GenericCommand::default()
            }),
        }
        let mut expected = model.clone();
        for list in expected.values_mut() {
            list.sort();
        }
        assert_eq!(expected, view(&hub));
        assert!(model.values().all(|l| l.len() <= MAX));
        for rx in &mut rxs {
            while rx.try_recv().is_ok() {}
        }
    }
});
