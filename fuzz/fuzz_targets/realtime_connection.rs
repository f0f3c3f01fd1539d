//! The realtime connection as a state machine (review part 3): sequences of commands — session open/close with
//! and without tags, conversation start/add/remove/query/update/mute/shutup/blacklist, sends (transient, will,
//! mentions), reads, acks, history, recalls, garbage frames and vanishing sockets — from four client ids over
//! three connections, through the real `Conn` (decoding, dispatch, domain operations, SQLite, the hub). After
//! every command:
//! - a command with an `i` gets exactly one answer carrying that `i` (`ack` and `read`, sent without one as the
//!   SDK does, get none), and no answer is an internal error;
//! - the hub's sessions are exactly the sessions the connections hold;
//! - a message pushed to a client id is for a conversation it is a member of, and a send the server
//!   acknowledged reached exactly the other members' sessions (a `will` message: nobody until its socket
//!   vanishes).
//!
//! When the input ends, every connection closes and the hub holds none of its client ids.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, OnceLock};

use leancloud_server::realtime::proto::{
    AckCommand, BlacklistCommand, CommandType, ConvCommand, DirectCommand, GenericCommand,
    JsonObjectMessage, LogsCommand, OpType, PatchCommand, PatchItem, ReadCommand, SessionCommand,
};
use leancloud_server::ws::fuzzing::{Harness, Link};
use libfuzzer_sys::fuzz_target;

const LINKS: usize = 3;
const PEERS: u8 = 4;
/// Inputs on one database before it is replaced (keeps the file, and each exec, small).
const INPUTS_PER_DATABASE: u64 = 2_000;

struct Fixture {
    harness: Option<Harness>,
    inputs: u64,
}

fn fixture() -> &'static Mutex<Fixture> {
    static FIXTURE: OnceLock<Mutex<Fixture>> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        Mutex::new(Fixture {
            harness: None,
            inputs: 0,
        })
    })
}

fn harness(fixture: &mut Fixture) -> &Harness {
    if fixture.inputs % INPUTS_PER_DATABASE == 0 {
        fixture.harness = None;
        let dir = if std::path::Path::new("/dev/shm").is_dir() {
            std::path::PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let path = dir.join(format!(
            "realtime-connection-{}.sqlite3",
            std::process::id()
        ));
        fixture.harness = Some(Harness::new(&path).expect("the fuzz database"));
    }
    fixture.inputs += 1;
    fixture.harness.as_ref().expect("a harness")
}

struct Run<'h> {
    h: &'h Harness,
    links: Vec<Link>,
    generation: u64,
    next_i: i32,
    cids: Vec<String>,
    /// (cid, message id, timestamp) of the acknowledged sends.
    sent: Vec<(String, String, i64)>,
}

fn is_internal(frame: &GenericCommand) -> bool {
    let reasons = [
        frame.error_message.as_ref().map(|e| e.reason.as_str()),
        frame.ack_message.as_ref().and_then(|a| a.reason.as_deref()),
        frame
            .session_message
            .as_ref()
            .and_then(|s| s.reason.as_deref()),
    ];
    reasons.contains(&Some("INTERNAL_ERROR"))
}

impl Run<'_> {
    fn peer(&self, n: u8) -> String {
        format!("g{}p{}", self.generation, n % PEERS)
    }

    fn members(&self, mask: u8) -> Vec<String> {
        (0..PEERS)
            .filter(|b| mask & (1 << b) != 0)
            .map(|b| self.peer(b))
            .collect()
    }

    fn cid(&self, n: u8) -> String {
        if self.cids.is_empty() || n == 255 {
            format!("{:024x}", u64::from(n))
        } else {
            self.cids[usize::from(n) % self.cids.len()].clone()
        }
    }

    /// Sends `req` on link `l`, checks the answer and every push, and returns the answer.
    fn send(&mut self, l: usize, mut req: GenericCommand) -> Option<GenericCommand> {
        self.next_i += 1;
        let i = self.next_i;
        req.i = Some(i);
        let out = self.h.frame(&mut self.links[l], &req);
        let mut answers = out.iter().filter(|f| f.i == Some(i));
        let answer = answers.next().cloned();
        assert!(answer.is_some(), "no answer to {req:?}: {out:?}");
        assert!(answers.next().is_none(), "two answers to {req:?}: {out:?}");
        assert!(
            !out.iter().any(is_internal),
            "internal error for {req:?}: {out:?}"
        );
        answer
    }

    /// Sends `req` on link `l` without an `i`, as the SDK sends `ack` and `read`: nothing is answered.
    fn tell(&mut self, l: usize, req: GenericCommand) {
        let out = self.h.frame(&mut self.links[l], &req);
        assert!(
            out.is_empty(),
            "an answer to {req:?}, which asked for none: {out:?}"
        );
    }

    /// Drains every connection's pushes: each message is for a conversation its client id is in. Returns who got
    /// which message ids, as (client id, connection).
    fn pushes(&mut self) -> BTreeMap<String, BTreeSet<(String, usize)>> {
        let mut got: BTreeMap<String, BTreeSet<(String, usize)>> = BTreeMap::new();
        for l in 0..LINKS {
            for frame in self.h.pushed(&mut self.links[l]) {
                assert!(!is_internal(&frame), "internal error pushed: {frame:?}");
                let (Some(CommandType::Direct), Some(direct)) =
                    (frame.command(), frame.direct_message.as_ref())
                else {
                    continue;
                };
                let peer = frame.peer_id.clone().expect("a push names its session");
                let cid = direct
                    .cid
                    .clone()
                    .expect("a message names its conversation");
                let members = self.h.members(&cid);
                assert!(
                    members.contains(&peer),
                    "{peer} got a message of {cid}, whose members are {members:?}"
                );
                got.entry(direct.id.clone().unwrap_or_default())
                    .or_default()
                    .insert((peer, l));
            }
        }
        got
    }

    fn check_sessions(&self) {
        let mut held: BTreeSet<(String, u64)> = BTreeSet::new();
        let mut online: BTreeSet<(String, u64)> = BTreeSet::new();
        for link in &self.links {
            for (conn, peer) in Harness::sessions_of(link) {
                held.insert((peer, conn));
            }
        }
        let prefix = format!("g{}p", self.generation);
        for (peer, sessions) in self.h.hub_sessions() {
            if peer.starts_with(&prefix) {
                for (conn, _) in sessions {
                    online.insert((peer.clone(), conn));
                }
            }
        }
        assert_eq!(held, online, "the connections' sessions and the hub's");
    }

    /// Which links hold a session for `peer`.
    fn links_of(&self, peer: &str) -> BTreeSet<usize> {
        (0..LINKS)
            .filter(|&l| {
                Harness::sessions_of(&self.links[l])
                    .iter()
                    .any(|(_, p)| p == peer)
            })
            .collect()
    }

    fn op(&mut self, bytes: &[u8]) {
        let [op, who, a, b] = [bytes[0], bytes[1], bytes[2], bytes[3]];
        let l = usize::from(who) % LINKS;
        let me = self.peer(who >> 2);
        let with_peer = |mut c: GenericCommand| {
            c.peer_id = Some(me.clone());
            c
        };
        let conv = |cid: String, m: Vec<String>| ConvCommand {
            cid: Some(cid),
            m,
            ..Default::default()
        };
        let mut expected_delivery = None;
        match op % 16 {
            0 => {
                let tag = (a % 3 != 0).then(|| format!("t{}", a % 3));
                let mut c = with_peer(GenericCommand::new(
                    CommandType::Session,
                    Some(OpType::Open),
                ));
                c.session_message = Some(SessionCommand {
                    tag,
                    r: Some(b & 1 == 1),
                    ua: Some("fuzz".into()),
                    ..Default::default()
                });
                self.send(l, c);
            }
            1 => {
                self.send(
                    l,
                    with_peer(GenericCommand::new(
                        CommandType::Session,
                        Some(OpType::Close),
                    )),
                );
            }
            2 => {
                let mut c = with_peer(GenericCommand::new(CommandType::Conv, Some(OpType::Start)));
                c.conv_message = Some(ConvCommand {
                    m: self.members(a),
                    transient: Some(b & 1 == 1),
                    unique: Some(b & 2 == 2),
                    temp_conv: Some(b & 4 == 4),
                    ..Default::default()
                });
                if let Some(answer) = self.send(l, c) {
                    if let Some(cid) = answer.conv_message.and_then(|c| c.cid) {
                        if !self.cids.contains(&cid) {
                            self.cids.push(cid);
                        }
                    }
                }
            }
            3 | 4 => {
                let kind = if op % 16 == 3 {
                    OpType::Add
                } else {
                    OpType::Remove
                };
                let mut c = with_peer(GenericCommand::new(CommandType::Conv, Some(kind)));
                c.conv_message = Some(conv(self.cid(b), self.members(a)));
                self.send(l, c);
            }
            5 | 6 => {
                let cid = self.cid(b);
                let will = a & 16 == 16;
                let mut c = with_peer(GenericCommand::new(CommandType::Direct, None));
                c.direct_message = Some(DirectCommand {
                    cid: Some(cid.clone()),
                    msg: Some(format!("{{\"_lctype\":-1,\"_lctext\":\"{a}\"}}")),
                    transient: Some(a & 1 == 1),
                    will: Some(will),
                    r: Some(a & 2 == 2),
                    mention_pids: self.members(a >> 4),
                    mention_all: Some(a & 4 == 4),
                    ..Default::default()
                });
                let before = self.h.members(&cid);
                if let Some(answer) = self.send(l, c) {
                    if let Some(ack) = answer.ack_message.filter(|a| a.code.is_none()) {
                        let uid = ack.uid.clone().unwrap_or_default();
                        if let (Some(t), false) = (ack.t, uid.is_empty()) {
                            self.sent.push((cid.clone(), uid.clone(), t));
                        }
                        let mut to: BTreeSet<(String, usize)> = BTreeSet::new();
                        if !will {
                            for member in before.iter().filter(|m| **m != me) {
                                for link in self.links_of(member) {
                                    to.insert((member.clone(), link));
                                }
                            }
                        }
                        expected_delivery = Some((uid, to));
                    }
                }
            }
            7 => {
                let mut c = with_peer(GenericCommand::new(CommandType::Conv, Some(OpType::Query)));
                c.conv_message = Some(ConvCommand {
                    r#where: Some(JsonObjectMessage {
                        data: format!("{{\"m\":\"{}\"}}", self.peer(a)),
                    }),
                    limit: Some(i32::from(b % 20)),
                    ..Default::default()
                });
                self.send(l, c);
            }
            8 => {
                let mut c = with_peer(GenericCommand::new(CommandType::Read, None));
                c.read_message = Some(ReadCommand {
                    cid: Some(self.cid(b)),
                    ..Default::default()
                });
                self.tell(l, c);
            }
            9 => {
                let (cid, mid, t) = self
                    .sent
                    .get(usize::from(a))
                    .cloned()
                    .unwrap_or_else(|| (self.cid(b), "m".into(), i64::from(a)));
                let mut c = with_peer(GenericCommand::new(CommandType::Ack, None));
                c.ack_message = Some(AckCommand {
                    cid: Some(cid),
                    mid: Some(mid),
                    t: Some(t),
                    ..Default::default()
                });
                self.tell(l, c);
            }
            10 => {
                let mut c = with_peer(GenericCommand::new(CommandType::Logs, None));
                c.logs_message = Some(LogsCommand {
                    cid: Some(self.cid(b)),
                    limit: Some(i32::from(a % 30)),
                    direction: Some(i32::from(a & 1)),
                    ..Default::default()
                });
                self.send(l, c);
            }
            11 => {
                let kind = if a & 1 == 0 {
                    OpType::Mute
                } else {
                    OpType::Unmute
                };
                let mut c = with_peer(GenericCommand::new(CommandType::Conv, Some(kind)));
                c.conv_message = Some(conv(self.cid(b), Vec::new()));
                self.send(l, c);
            }
            12 => {
                let mut c = with_peer(GenericCommand::new(CommandType::Conv, Some(OpType::Update)));
                c.conv_message = Some(ConvCommand {
                    cid: Some(self.cid(b)),
                    attr: Some(JsonObjectMessage {
                        data: format!("{{\"name\":\"n{a}\",\"attr.k\":{a}}}"),
                    }),
                    ..Default::default()
                });
                self.send(l, c);
            }
            13 => {
                let kind = if a & 1 == 0 {
                    OpType::AddShutup
                } else {
                    OpType::RemoveShutup
                };
                let mut c = with_peer(GenericCommand::new(CommandType::Conv, Some(kind)));
                c.conv_message = Some(conv(self.cid(b), self.members(a >> 1)));
                self.send(l, c);
            }
            14 => {
                let kind = if a & 1 == 0 {
                    OpType::Block
                } else {
                    OpType::Unblock
                };
                let mut c = with_peer(GenericCommand::new(CommandType::Blacklist, Some(kind)));
                c.blacklist_message = Some(BlacklistCommand {
                    src_cid: Some(self.cid(b)),
                    to_pids: self.members(a >> 1),
                    ..Default::default()
                });
                self.send(l, c);
            }
            _ if a & 3 == 2 => {
                // The socket vanishes (its sessions end, their will messages are sent) and a new one takes its
                // place.
                let fresh = self.h.connect();
                let gone = std::mem::replace(&mut self.links[l], fresh);
                self.h.close(gone);
            }
            _ => {
                if a & 1 == 1 {
                    if let Some((cid, mid, t)) = self.sent.get(usize::from(b)).cloned() {
                        let mut c = with_peer(GenericCommand::new(
                            CommandType::Patch,
                            Some(OpType::Modify),
                        ));
                        c.patch_message = Some(PatchCommand {
                            patches: vec![PatchItem {
                                cid: Some(cid),
                                mid: Some(mid),
                                timestamp: Some(t),
                                recall: Some(a & 2 == 2),
                                data: Some(format!("edited {a}")),
                                ..Default::default()
                            }],
                            ..Default::default()
                        });
                        self.send(l, c);
                    }
                } else {
                    // A frame that is no command: refused without an `i`, the connection goes on.
                    let out = self.h.raw(&mut self.links[l], &bytes[1..]);
                    assert!(
                        !out.iter().any(is_internal),
                        "internal error for garbage: {out:?}"
                    );
                }
            }
        }
        let got = self.pushes();
        if let Some((uid, to)) = expected_delivery {
            let reached = got.get(&uid).cloned().unwrap_or_default();
            assert_eq!(to, reached, "who got message {uid}");
        }
        self.check_sessions();
    }
}

fuzz_target!(|data: &[u8]| {
    let mut fixture = fixture().lock().expect("lock");
    let generation = fixture.inputs;
    let h = harness(&mut fixture);
    let mut run = Run {
        h,
        links: (0..LINKS).map(|_| h.connect()).collect(),
        generation,
        next_i: 0,
        cids: Vec::new(),
        sent: Vec::new(),
    };
    for op in data.chunks_exact(4) {
        run.op(op);
    }
    let prefix = format!("g{generation}p");
    for link in std::mem::take(&mut run.links) {
        h.close(link);
    }
    let left: Vec<_> = h
        .hub_sessions()
        .into_iter()
        .filter(|(peer, _)| peer.starts_with(&prefix))
        .collect();
    assert!(
        left.is_empty(),
        "sessions left after every connection closed: {left:?}"
    );
});
