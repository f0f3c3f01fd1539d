//! `leancloud-migrate verify`: a source (export directory or live API) against a target server, class by
//! class and conversation by conversation. Each side is summarised as counts plus an order-independent
//! digest (the wrapping sum of the MD5 of every row's key: `objectId|createdAt|updatedAt` for objects,
//! `msg-id|timestamp` for messages, the client id for subscribers), so equal digests mean the same ids
//! with the same times, whatever the order. File bodies are compared by `objectId|size|MD5` of each body a
//! side has: the saved files of an export, the bytes each `_File.url` of a live API serves.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use md5::{Digest as _, Md5};
use serde_json::{Map, Value};

use crate::api::{
    Api, History, HistoryOf, Scan, Subscribers, HISTORY_LIMIT, SCAN_LIMIT, SUBSCRIBER_LIMIT,
};
use crate::export::{CLASSES_DIR, MESSAGES, SUBSCRIBERS, SUBSCRIBER_MESSAGES};
use crate::import::export_files;
use crate::Error;

/// Count and digest of a set of rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Digest {
    pub count: u64,
    sum: u128,
}

impl Digest {
    pub fn add(&mut self, key: &str) {
        let hash: [u8; 16] = Md5::digest(key.as_bytes()).into();
        self.count += 1;
        self.sum = self.sum.wrapping_add(u128::from_be_bytes(hash));
    }

    /// The first 12 hex digits of the digest.
    pub fn short(&self) -> String {
        format!("{:032x}", self.sum)[..12].to_string()
    }
}

/// One side of a comparison.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Side {
    pub classes: BTreeMap<String, Digest>,
    /// Messages per conversation.
    pub conversations: BTreeMap<String, Digest>,
    /// Subscribers per service conversation.
    pub subscribers: BTreeMap<String, Digest>,
    /// The file bodies the side has, by `objectId|size|md5`.
    pub files: Digest,
}

fn millis(v: Option<&Value>) -> String {
    let parse = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp_millis().to_string())
            .unwrap_or_else(|_| s.to_string())
    };
    match v {
        Some(Value::String(s)) => parse(s),
        Some(Value::Object(m)) => m
            .get("iso")
            .and_then(Value::as_str)
            .map(parse)
            .unwrap_or_default(),
        _ => String::new(),
    }
}

fn object_key(obj: &Map<String, Value>) -> String {
    format!(
        "{}|{}|{}",
        obj.get("objectId").and_then(Value::as_str).unwrap_or(""),
        millis(obj.get("createdAt")),
        millis(obj.get("updatedAt"))
    )
}

fn message_key(rec: &Map<String, Value>) -> Option<(String, String)> {
    let conv = rec.get("conv-id")?.as_str()?.to_string();
    let id = rec.get("msg-id")?.as_str()?;
    let ts = rec.get("timestamp")?.as_i64()?;
    Some((conv, format!("{id}|{ts}")))
}

fn data_lines(path: &Path, mut each: impl FnMut(Map<String, Value>)) -> Result<(), Error> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| Error::io(path, e))?;
        if n == 0 || line.trim().is_empty() {
            continue;
        }
        let obj: Map<String, Value> = serde_json::from_str(&line)
            .map_err(|e| Error::Other(format!("{}, line {}: {e}", path.display(), n + 1)))?;
        each(obj);
    }
    Ok(())
}

/// Summarises a finished export directory.
pub fn from_dir(dir: &Path) -> Result<Side, Error> {
    let mut side = Side::default();
    // With subscribers' histories, a message may be in several files: count it once.
    let dedupe = dir.join(SUBSCRIBER_MESSAGES).exists();
    let mut seen: HashSet<String> = HashSet::new();
    for path in export_files(dir)? {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let in_classes = path.parent().and_then(|p| p.file_name()) == Some(CLASSES_DIR.as_ref());
        if in_classes {
            let class = leancloud_server::import::class_from_file_name(&name).unwrap_or(name);
            let digest = side.classes.entry(class).or_default();
            data_lines(&path, |obj| digest.add(&object_key(&obj)))?;
        } else if name == MESSAGES || name == SUBSCRIBER_MESSAGES {
            data_lines(&path, |rec| {
                if let Some((conv, key)) = message_key(&rec) {
                    if !dedupe || seen.insert(key.clone()) {
                        side.conversations.entry(conv).or_default().add(&key);
                    }
                }
            })?;
        } else if name == SUBSCRIBERS {
            data_lines(&path, |s| {
                if let (Some(conv), Some(client)) = (
                    s.get("conv_id").and_then(Value::as_str),
                    s.get("subscriber").and_then(Value::as_str),
                ) {
                    side.subscribers
                        .entry(conv.to_string())
                        .or_default()
                        .add(client);
                }
            })?;
        }
    }
    // File bodies: those the export saved.
    let file_class = dir.join(crate::export::class_file(crate::files::FILE_CLASS));
    if file_class.exists() {
        let mut ids = Vec::new();
        data_lines(&file_class, |obj| {
            if let Some(id) = obj.get("objectId").and_then(Value::as_str) {
                ids.push(id.to_string());
            }
        })?;
        for id in ids {
            let path = dir.join(crate::files::body_path(&id));
            match std::fs::read(&path) {
                Ok(bytes) => side.files.add(&format!(
                    "{id}|{}|{}",
                    bytes.len(),
                    hex::encode(Md5::digest(&bytes))
                )),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
    }
    // Conversations without messages count as empty on both sides.
    Ok(side)
}

/// Adds to `digest` every `_File` of `files` whose `url` serves its bytes (size and MD5 of what it serves).
async fn body_digests(files: &[(String, String)], digest: &mut Digest) -> Result<(), Error> {
    use futures::stream::{self, StreamExt};
    let client = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .read_timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| Error::Other(format!("HTTP client: {e}")))?;
    let sums: Vec<Option<String>> = stream::iter(files)
        .map(|(id, url)| {
            let client = client.clone();
            async move {
                let (size, md5) = crate::files::fetch_md5(&client, url).await?;
                Some(format!("{id}|{size}|{md5}"))
            }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    for key in sums.into_iter().flatten() {
        digest.add(&key);
    }
    Ok(())
}

/// Summarises a live API: `classes` by Scan; the history of every conversation of its `_Conversation`
/// class and of `also` (the source's conversations); the subscribers of its service conversations; the bytes
/// each `_File.url` serves — asked of the API's own server by the URL's path when `bodies_by_path` (a
/// leancloud-server serves every body it holds at its path, whatever public host its URLs name).
pub async fn from_api(
    api: &Api,
    classes: &[String],
    also: &[String],
    bodies_by_path: bool,
) -> Result<Side, Error> {
    let mut side = Side::default();
    let mut kinds: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    let mut file_urls: Vec<(String, String)> = Vec::new();
    for class in classes {
        let mut digest = Digest::default();
        let mut cursor = None;
        let mut exists = true;
        loop {
            let page = match api
                .call(&Scan {
                    class: class.clone(),
                    limit: SCAN_LIMIT,
                    cursor: cursor.clone(),
                })
                .await
            {
                Ok(p) => p,
                Err(e) if e.api_code() == Some(101) => {
                    exists = false;
                    break;
                }
                Err(e) => return Err(e.into()),
            };
            for obj in &page.results {
                digest.add(&object_key(obj));
                if class == crate::files::FILE_CLASS {
                    if let (Some(id), Some(url)) = (
                        obj.get("objectId").and_then(Value::as_str),
                        obj.get("url").and_then(Value::as_str),
                    ) {
                        file_urls.push((id.to_string(), url.to_string()));
                    }
                }
                if class == "_Conversation" {
                    if let Some(id) = obj.get("objectId").and_then(Value::as_str) {
                        let flag = |k: &str| obj.get(k) == Some(&Value::Bool(true));
                        kinds.insert(id.to_string(), (flag("tr"), flag("sys")));
                    }
                }
            }
            match page.cursor.filter(|c| !c.is_empty()) {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        if exists {
            side.classes.insert(class.clone(), digest);
        }
    }
    if bodies_by_path {
        let server = api.client().config().api_server().to_string();
        for (_, url) in file_urls.iter_mut() {
            if let Ok(parsed) = url::Url::parse(url) {
                *url = format!("{}{}", server.trim_end_matches('/'), parsed.path());
            }
        }
    }
    body_digests(&file_urls, &mut side.files).await?;
    for id in also {
        kinds.entry(id.clone()).or_insert((false, false));
    }
    for (id, (chat_room, system)) in &kinds {
        let of = if *chat_room {
            HistoryOf::ChatRoom(id.clone())
        } else {
            HistoryOf::Conversation(id.clone())
        };
        let mut digest = Digest::default();
        let mut after: Option<(i64, String)> = None;
        loop {
            let page = api
                .call(&History {
                    of: of.clone(),
                    limit: HISTORY_LIMIT,
                    after: after.clone(),
                })
                .await?;
            let full = page.len() as u32 >= HISTORY_LIMIT;
            let mut last = after.clone();
            for rec in &page {
                let (Some(ts), Some(mid)) = (
                    rec.get("timestamp").and_then(Value::as_i64),
                    rec.get("msg-id").and_then(Value::as_str),
                ) else {
                    continue;
                };
                if after.as_ref().is_some_and(|(t, m)| *t == ts && m == mid) {
                    continue;
                }
                digest.add(&format!("{mid}|{ts}"));
                last = Some((ts, mid.to_string()));
            }
            if !full || last == after {
                break;
            }
            after = last;
        }
        if digest.count > 0 {
            side.conversations.insert(id.clone(), digest);
        }
        if *system {
            let mut digest = Digest::default();
            let mut after: Option<String> = None;
            loop {
                let page = api
                    .call(&Subscribers {
                        conv_id: id.clone(),
                        after: after.clone(),
                    })
                    .await?;
                let full = page.len() as u32 >= SUBSCRIBER_LIMIT;
                let mut last = after.clone();
                for s in &page {
                    if let Some(c) = s.get("subscriber").and_then(Value::as_str) {
                        if after.as_deref() != Some(c) {
                            digest.add(c);
                            last = Some(c.to_string());
                        }
                    }
                }
                if !full || last == after {
                    break;
                }
                after = last;
            }
            if digest.count > 0 {
                side.subscribers.insert(id.clone(), digest);
            }
        }
    }
    Ok(side)
}

/// One line of the comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub what: String,
    pub source: Option<Digest>,
    pub target: Option<Digest>,
}

impl Line {
    pub fn ok(&self) -> bool {
        self.source.unwrap_or_default() == self.target.unwrap_or_default()
    }
}

/// Compares two sides: one line per class, per conversation with messages on either side, per service
/// conversation with subscribers, and the message total.
pub fn compare(source: &Side, target: &Side) -> Vec<Line> {
    let mut lines = Vec::new();
    let classes: BTreeSet<&String> = source.classes.keys().chain(target.classes.keys()).collect();
    for class in classes {
        lines.push(Line {
            what: format!("class {class}"),
            source: source.classes.get(class).copied(),
            target: target.classes.get(class).copied(),
        });
    }
    let total = |side: &Side| {
        let mut d = Digest::default();
        for m in side.conversations.values() {
            d.count += m.count;
            d.sum = d.sum.wrapping_add(m.sum);
        }
        d
    };
    if source.files.count > 0 || target.files.count > 0 {
        lines.push(Line {
            what: "file bodies (id, size, MD5)".to_string(),
            source: Some(source.files),
            target: Some(target.files),
        });
    }
    lines.push(Line {
        what: format!(
            "messages ({} conversations)",
            source.conversations.len().max(target.conversations.len())
        ),
        source: Some(total(source)),
        target: Some(total(target)),
    });
    let convs: BTreeSet<&String> = source
        .conversations
        .keys()
        .chain(target.conversations.keys())
        .collect();
    for conv in convs {
        lines.push(Line {
            what: format!("conversation {conv}"),
            source: source.conversations.get(conv).copied(),
            target: target.conversations.get(conv).copied(),
        });
    }
    let subs: BTreeSet<&String> = source
        .subscribers
        .keys()
        .chain(target.subscribers.keys())
        .collect();
    for conv in subs {
        lines.push(Line {
            what: format!("subscribers of {conv}"),
            source: source.subscribers.get(conv).copied(),
            target: target.subscribers.get(conv).copied(),
        });
    }
    lines
}

/// Prints the table (conversation lines only when they differ, unless `all`); returns whether every line
/// matched.
pub fn print(lines: &[Line], all: bool) -> bool {
    let cell = |d: &Option<Digest>| match d {
        Some(d) => format!("{} {}", d.count, d.short()),
        None => "-".to_string(),
    };
    println!(
        "{:<48} {:>26} {:>26}  status",
        "what", "source (count digest)", "target (count digest)"
    );
    let mut hidden = 0;
    for line in lines {
        let per_conv =
            line.what.starts_with("conversation ") || line.what.starts_with("subscribers of ");
        if per_conv && line.ok() && !all {
            hidden += 1;
            continue;
        }
        println!(
            "{:<48} {:>26} {:>26}  {}",
            line.what,
            cell(&line.source),
            cell(&line.target),
            if line.ok() { "ok" } else { "MISMATCH" }
        );
    }
    let bad = lines.iter().filter(|l| !l.ok()).count();
    if hidden > 0 {
        println!("({hidden} matching conversation lines not shown; --all shows them)");
    }
    if bad == 0 {
        println!("verify: everything matches");
    } else {
        println!("verify: {bad} line(s) differ");
    }
    bad == 0
}
