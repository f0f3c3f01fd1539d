//! `leancloud-migrate export`: every object of the chosen classes (Scan API), the complete history of every
//! conversation (1.2 history API, oldest first, 1,000 per page, cursor `(timestamp, msg-id)`), and the
//! subscribers of every service conversation, into one directory of JSONL files (format: `README.md`).
//!
//! Then the body of every `_File` object is downloaded into `files/` ([`crate::files`]): the one part of an
//! app that nothing can fetch once LeanCloud's file domain stops answering. `--files-only` runs just that:
//! `_File` and its bodies, continued later into a full export in the same directory.
//!
//! Resumable. After each page the rows are appended and fsynced, then `checkpoint.json` is replaced
//! atomically (write, fsync, rename) with the new length of every data file and the cursor to continue
//! from. A run killed at any point restarts from the last checkpoint: files are cut back to the recorded
//! lengths (dropping rows written after it), and the page after the cursor is fetched again, so no row is
//! lost or written twice.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::api::{
    Api, ClassPermissionsList, History, HistoryOf, RelatedIds, Scan, Subscribers, HISTORY_LIMIT,
    RELATION_LIMIT, SCAN_LIMIT, SUBSCRIBER_LIMIT,
};
use crate::files::{self, committed_rows, DownloadOptions, FileRow, FilesSummary, FILE_CLASS};
use crate::{bar_style, Error, FORMAT};

pub const CHECKPOINT: &str = "checkpoint.json";
pub const MANIFEST: &str = "manifest.json";
pub const MESSAGES: &str = "messages.jsonl";
pub const SUBSCRIBERS: &str = "subscribers.jsonl";
/// With `--subscriber-history`: what each subscriber of a service conversation received.
pub const SUBSCRIBER_MESSAGES: &str = "subscriber-messages.jsonl";
/// The members of every `Relation` field of the exported objects (a role's users and child roles, …).
pub const RELATIONS: &str = "relations.jsonl";
/// The class permissions set on the source (when it is a leancloud-server: LeanCloud's API does not answer them).
pub const CLASS_PERMISSIONS: &str = "class-permissions.jsonl";
pub const CLASSES_DIR: &str = "classes";
/// Exported unless told otherwise: conversations, upstream messages to system conversations, files (whose
/// bodies follow), users, roles and devices. LeanCloud's REST API never shows `password` and `salt`, so users
/// exported here keep their ids and fields but not their passwords: those come with the console's export
/// (the tarball), which `import` reads too.
pub const DEFAULT_CLASSES: [&str; 6] = [
    "_Conversation",
    "_SysMessage",
    FILE_CLASS,
    "_User",
    "_Role",
    "_Installation",
];

/// The relative path of a class's file: `classes/<Class>.0.jsonl`, as the console names them.
pub fn class_file(class: &str) -> String {
    format!("{CLASSES_DIR}/{class}.0.jsonl")
}

fn header(kind: &str, class: Option<&str>) -> String {
    let mut meta = Map::new();
    meta.insert("type".into(), json!(kind));
    if let Some(class) = class {
        meta.insert("class".into(), json!(class));
    }
    meta.insert("format".into(), json!(FORMAT));
    format!(
        "{} {}\n",
        leancloud_server::import::HEADER_PREFIX,
        Value::Object(meta)
    )
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
enum Stage {
    /// Scanning `classes[index]` (each class has its own file, so a class whose cursor the server forgot
    /// — LeanCloud keeps them 10 minutes — is exported again from an empty file).
    Classes {
        index: usize,
        cursor: Option<String>,
    },
    /// History of conversation `index` (in `_Conversation` file order), after `after`.
    Messages {
        index: usize,
        after: Option<(i64, String)>,
    },
    /// Subscribers of conversation `index`, after client id `after`.
    Subscribers {
        index: usize,
        after: Option<String>,
    },
    /// History of subscriber `index` (in subscriber file order), after `after`.
    SubscriberMessages {
        index: usize,
        after: Option<(i64, String)>,
    },
    Done,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Checkpoint {
    format: String,
    app_id: String,
    api_server: String,
    classes: Vec<String>,
    /// Committed length of every data file, by path relative to the export directory.
    files: BTreeMap<String, u64>,
    /// Committed rows: `class:<Class>`, `messages`, `subscribers`, `conversations_done`.
    counts: BTreeMap<String, u64>,
    stage: Stage,
    /// Also walk every subscriber's history (`--subscriber-history`).
    #[serde(default)]
    subscriber_history: bool,
    /// Only `_File` and the file bodies (`--files-only`); a later full run in the same directory goes on from
    /// there.
    #[serde(default)]
    files_only: bool,
}

/// The outcome of an export.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExportSummary {
    pub classes: BTreeMap<String, u64>,
    pub conversations: u64,
    pub messages: u64,
    pub subscribers: u64,
    /// Records from subscribers' histories (`--subscriber-history`).
    pub subscriber_messages: u64,
    pub requests: u64,
    pub retries: u64,
    pub rate_limited: u64,
    pub elapsed_secs: f64,
    /// The run continued an earlier one.
    pub resumed: bool,
    /// Rows fetched by this run (all of them unless it resumed).
    pub rows_this_run: u64,
    /// The file bodies.
    pub files: FilesSummary,
    /// Only `_File` and the bodies were exported.
    pub files_only: bool,
    /// Classes whose permissions were exported; `None`: the source does not answer them (LeanCloud).
    pub class_permissions: Option<u64>,
    /// Members of `Relation` fields.
    pub relations: u64,
}

impl ExportSummary {
    pub fn rows(&self) -> u64 {
        self.classes.values().sum::<u64>() + self.messages + self.subscribers
    }

    /// Prints the counts table.
    pub fn print(&self) {
        println!("export summary");
        for (class, n) in &self.classes {
            println!("  {:<28} {n:>10} objects", format!("class {class}"));
        }
        if !self.files_only {
            println!("  {:<28} {:>10}", "conversations", self.conversations);
            println!("  {:<28} {:>10}", "messages", self.messages);
            println!("  {:<28} {:>10}", "service subscribers", self.subscribers);
        }
        if self.subscriber_messages > 0 {
            println!(
                "  {:<28} {:>10}",
                "subscriber history records", self.subscriber_messages
            );
        }
        println!(
            "  {:<28} {:>10} ({} retried, {} rate-limited)",
            "requests", self.requests, self.retries, self.rate_limited
        );
        let rate = if self.elapsed_secs > 0.0 {
            self.rows_this_run as f64 / self.elapsed_secs
        } else {
            0.0
        };
        println!(
            "  {:<28} {:>10.1} s ({rate:.0} rows/s this run{})",
            "elapsed",
            self.elapsed_secs,
            if self.resumed { ", resumed" } else { "" }
        );
        println!("  {:<28} {:>10}", "relation members", self.relations);
        match self.class_permissions {
            Some(n) => println!("  {:<28} {n:>10} classes", "class permissions"),
            None if !self.files_only => println!(
                "  class permissions: not offered by the source (LeanCloud shows them in its console only); set them on the new server"
            ),
            None => {}
        }
        self.files.print();
    }
}

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub out: PathBuf,
    /// Classes besides `_Conversation` and `_SysMessage`.
    pub extra_classes: Vec<String>,
    pub progress: bool,
    /// Also export each service-conversation subscriber's history, where LeanCloud keeps the messages a
    /// service conversation sent to chosen clients (one or more requests per subscriber).
    pub subscriber_history: bool,
    /// Only `_File` and the file bodies.
    pub files_only: bool,
    /// How file bodies are downloaded.
    pub downloads: DownloadOptions,
}

/// A conversation as the export needs it.
#[derive(Debug, Clone)]
struct Conv {
    id: String,
    chat_room: bool,
    system: bool,
}

struct Writer {
    dir: PathBuf,
    open: HashMap<String, File>,
}

impl Writer {
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// Appends `text` to `rel` and fsyncs; returns the new length.
    fn append(&mut self, rel: &str, text: &str) -> Result<u64, Error> {
        let path = self.path(rel);
        if !self.open.contains_key(rel) {
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(|e| Error::io(&path, e))?;
            }
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| Error::io(&path, e))?;
            self.open.insert(rel.to_string(), file);
        }
        let file = self
            .open
            .get_mut(rel)
            .ok_or_else(|| Error::Other("file handle vanished".into()))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(|e| Error::io(&path, e))?;
        file.metadata()
            .map(|m| m.len())
            .map_err(|e| Error::io(&path, e))
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = path.with_extension("json.tmp");
    let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    if let Some(dir) = path.parent() {
        // The rename itself must reach the disk before the run goes on.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

impl Checkpoint {
    fn save(&self, dir: &Path) -> Result<(), Error> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| Error::Other(e.to_string()))?;
        write_atomically(&dir.join(CHECKPOINT), &bytes)
    }

    fn add(&mut self, key: &str, n: u64) {
        *self.counts.entry(key.to_string()).or_insert(0) += n;
    }

    fn count(&self, key: &str) -> u64 {
        self.counts.get(key).copied().unwrap_or(0)
    }
}

/// The conversations of the export, in file order (the committed part of the `_Conversation` file).
fn conversations(dir: &Path, committed: u64) -> Result<Vec<Conv>, Error> {
    let truthy = |v: Option<&Value>| match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0) != 0,
        _ => false,
    };
    let rows = committed_rows(&dir.join(class_file("_Conversation")), committed)?;
    Ok(rows
        .iter()
        .filter_map(|obj| {
            Some(Conv {
                id: obj.get("objectId")?.as_str()?.to_string(),
                chat_room: truthy(obj.get("tr")),
                system: truthy(obj.get("sys")),
            })
        })
        .collect())
}

/// `(conversation, client)` of every exported subscriber, in file order.
fn subscriber_list(dir: &Path, committed: u64) -> Result<Vec<(String, String)>, Error> {
    let rows = committed_rows(&dir.join(SUBSCRIBERS), committed)?;
    Ok(rows
        .iter()
        .filter_map(|s| {
            Some((
                s.get("conv_id")?.as_str()?.to_string(),
                s.get("subscriber")?.as_str()?.to_string(),
            ))
        })
        .collect())
}

/// Replaces `dir/name` with `text` whole: written beside it, synced, renamed over it.
fn replace_file(dir: &Path, name: &str, text: &str) -> Result<(), Error> {
    let path = dir.join(name);
    let partial = dir.join(format!("{name}.partial"));
    fs::write(&partial, text)
        .and_then(|()| File::open(&partial)?.sync_all())
        .and_then(|()| fs::rename(&partial, &path))
        .map_err(|e| Error::io(&path, e))
}

/// The class permissions set on the source into [`CLASS_PERMISSIONS`], rewritten whole on every run (one request).
/// A source that refuses the request (LeanCloud has no such endpoint) leaves no file: `None`.
async fn export_class_permissions(api: &Api, dir: &Path) -> Result<Option<u64>, Error> {
    let page = match api.call(&ClassPermissionsList).await {
        Ok(page) => page,
        Err(e) if e.status().is_some_and(|s| (400..500).contains(&s)) => return Ok(None),
        Err(e) => return Err(Error::Api(e)),
    };
    let mut text = header("ClassPermissions", None);
    let mut n = 0;
    for row in page
        .results
        .iter()
        .filter(|r| r.get("default") != Some(&Value::Bool(true)))
    {
        let line =
            json!({"className": row.get("className"), "permissions": row.get("permissions")});
        text.push_str(&line.to_string());
        text.push('\n');
        n += 1;
    }
    replace_file(dir, CLASS_PERMISSIONS, &text)?;
    Ok(Some(n))
}

/// The members of every `Relation` field (`{"__type":"Relation","className"}`) of the objects exported into
/// `classes/`, into [`RELATIONS`] (`{"owner_class","owner_id","key","target_class","target_id"}` per member):
/// one query per field of each such object (`$relatedTo`, 1,000 ids a page), rewritten whole on every run. Objects
/// without relations cost nothing.
async fn export_relations(api: &Api, dir: &Path, classes: &[String]) -> Result<u64, Error> {
    let mut text = header("Relations", None);
    let mut n = 0;
    for class in classes {
        let path = dir.join(class_file(class));
        let Ok(file) = File::open(&path) else {
            continue;
        };
        for line in std::io::BufRead::lines(std::io::BufReader::new(file)) {
            let line = line.map_err(|e| Error::io(&path, e))?;
            let Ok(Value::Object(row)) = serde_json::from_str::<Value>(&line) else {
                continue; // the header
            };
            let Some(id) = row.get("objectId").and_then(Value::as_str) else {
                continue;
            };
            for (key, value) in &row {
                if value.get("__type").and_then(Value::as_str) != Some("Relation") {
                    continue;
                }
                let Some(target) = value.get("className").and_then(Value::as_str) else {
                    continue;
                };
                let mut after = None;
                loop {
                    let page = api
                        .call(&RelatedIds {
                            owner_class: class.clone(),
                            owner_id: id.to_string(),
                            key: key.clone(),
                            target_class: target.to_string(),
                            after: after.clone(),
                            limit: RELATION_LIMIT,
                        })
                        .await?;
                    let ids: Vec<&str> = page
                        .results
                        .iter()
                        .filter_map(|r| r.get("objectId").and_then(Value::as_str))
                        .collect();
                    for target_id in &ids {
                        let member = json!({"owner_class": class, "owner_id": id, "key": key,
                            "target_class": target, "target_id": target_id});
                        text.push_str(&member.to_string());
                        text.push('\n');
                        n += 1;
                    }
                    match ids.last() {
                        Some(last) if ids.len() == RELATION_LIMIT as usize => {
                            after = Some(last.to_string())
                        }
                        _ => break,
                    }
                }
            }
        }
    }
    replace_file(dir, RELATIONS, &text)?;
    Ok(n)
}

/// Runs (or continues) an export into `options.out`.
pub async fn export(api: &Api, options: &ExportOptions) -> Result<ExportSummary, Error> {
    let started = Instant::now();
    let dir = options.out.clone();
    fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let config = api.client().config();
    let app_id = config.app_id().to_string();
    let api_server = config.api_server().to_string();
    let mut classes: Vec<String> = if options.files_only {
        vec![FILE_CLASS.to_string()]
    } else {
        DEFAULT_CLASSES.iter().map(|c| c.to_string()).collect()
    };
    for c in options.extra_classes.iter().filter(|_| !options.files_only) {
        if !classes.contains(c) {
            classes.push(c.clone());
        }
    }

    let checkpoint_path = dir.join(CHECKPOINT);
    let (mut cp, resumed) = match fs::read(&checkpoint_path) {
        Ok(bytes) => {
            let cp: Checkpoint = serde_json::from_slice(&bytes).map_err(|e| {
                Error::Other(format!("{} is unreadable: {e}", checkpoint_path.display()))
            })?;
            if cp.app_id != app_id || cp.api_server != api_server {
                return Err(Error::Other(format!(
                    "{} holds an export of app {} from {}; use another directory for app {app_id} from {api_server}",
                    dir.display(),
                    cp.app_id,
                    cp.api_server
                )));
            }
            let mut cp = cp;
            if options.files_only && !cp.files_only {
                return Err(Error::Other(format!(
                    "{} holds a full export; run it without --files-only (it saves the file bodies too)",
                    dir.display()
                )));
            }
            if cp.files_only && !options.files_only {
                // A files-only export grows into a full one: the other classes, then everything after them.
                // Its history stages never ran, so starting them from the beginning repeats nothing.
                let first_new = cp.classes.len();
                for c in &classes {
                    if !cp.classes.contains(c) {
                        cp.classes.push(c.clone());
                    }
                }
                if !matches!(cp.stage, Stage::Classes { .. }) {
                    cp.stage = Stage::Classes {
                        index: first_new,
                        cursor: None,
                    };
                }
                cp.files_only = false;
                cp.save(&dir)?;
            }
            for c in &classes {
                if !cp.classes.contains(c) {
                    let hint = if c == FILE_CLASS {
                        " (an export begun before file bodies were exported: save them with `leancloud-migrate export --files-only --out OTHER_DIR`)"
                    } else {
                        ""
                    };
                    return Err(Error::Other(format!(
                        "class {c} was not part of the export being resumed in {}; export it into another directory{hint}",
                        dir.display()
                    )));
                }
            }
            (cp, true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Files without a checkpoint come from a run killed before its first page: start over.
            for rel in [MESSAGES, SUBSCRIBERS, MANIFEST] {
                let _ = fs::remove_file(dir.join(rel));
            }
            let _ = fs::remove_dir_all(dir.join(CLASSES_DIR));
            let cp = Checkpoint {
                format: FORMAT.to_string(),
                app_id: app_id.clone(),
                api_server: api_server.clone(),
                classes: classes.clone(),
                files: BTreeMap::new(),
                counts: BTreeMap::new(),
                stage: Stage::Classes {
                    index: 0,
                    cursor: None,
                },
                subscriber_history: options.subscriber_history,
                files_only: options.files_only,
            };
            cp.save(&dir)?;
            (cp, false)
        }
        Err(e) => return Err(Error::io(&checkpoint_path, e)),
    };

    // Cut every file back to what the checkpoint vouches for; a file it does not know yet holds only rows
    // written after it, so it goes.
    let mut known: Vec<String> = cp.classes.iter().map(|c| class_file(c)).collect();
    known.extend([
        MESSAGES.to_string(),
        SUBSCRIBERS.to_string(),
        SUBSCRIBER_MESSAGES.to_string(),
    ]);
    if options.subscriber_history && !cp.subscriber_history && cp.stage != Stage::Done {
        cp.subscriber_history = true;
    }
    for rel in known.iter().filter(|rel| !cp.files.contains_key(*rel)) {
        let _ = fs::remove_file(dir.join(rel));
    }
    for (rel, len) in &cp.files {
        let path = dir.join(rel);
        let f = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        f.set_len(*len)
            .and_then(|()| f.sync_all())
            .map_err(|e| Error::io(&path, e))?;
    }
    let mut writer = Writer {
        dir: dir.clone(),
        open: HashMap::new(),
    };
    let requests_before = api.stats.requests.load(Ordering::Relaxed);
    let retries_before = api.stats.retries.load(Ordering::Relaxed);
    let limited_before = api.stats.rate_limited.load(Ordering::Relaxed);
    let rows_before = cp
        .counts
        .iter()
        .filter(|(k, _)| k.starts_with("class:") || *k == "messages" || *k == "subscribers")
        .map(|(_, v)| *v)
        .sum::<u64>();

    // Without bars (--quiet, or stderr not a terminal) a line per class and per 100 conversations instead.
    let lines = !options.progress || !std::io::stderr().is_terminal();
    let multi = MultiProgress::with_draw_target(if options.progress {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });

    // 1. Classes.
    while let Stage::Classes { index, cursor } = cp.stage.clone() {
        let Some(class) = cp.classes.get(index).cloned() else {
            cp.stage = if cp.files_only {
                Stage::Done
            } else {
                Stage::Messages {
                    index: 0,
                    after: None,
                }
            };
            cp.save(&dir)?;
            break;
        };
        let rel = class_file(&class);
        let bar = multi.add(ProgressBar::new_spinner());
        bar.set_style(bar_style(
            "{spinner} class {prefix}: {pos} objects ({per_sec})",
        ));
        bar.set_prefix(class.clone());
        bar.set_position(cp.count(&format!("class:{class}")));
        let mut cursor = cursor;
        let mut restarted = false;
        loop {
            let page = match api
                .call(&Scan {
                    class: class.clone(),
                    limit: SCAN_LIMIT,
                    cursor: cursor.clone(),
                })
                .await
            {
                Ok(page) => page,
                Err(e) if e.api_code() == Some(101) && cursor.is_none() => {
                    // The class does not exist in this app: nothing to export.
                    break;
                }
                Err(e) if cursor.is_some() && !restarted && e.status().is_some_and(|s| s < 500) => {
                    // An expired cursor: scan the class again from its start.
                    tracing::warn!(%class, error = %e, "scan cursor refused; restarting the class");
                    eprintln!("class {class}: the server refused the scan cursor ({e}); exporting the class again");
                    restarted = true;
                    writer.open.remove(&rel);
                    cp.files.remove(&rel);
                    cp.counts.insert(format!("class:{class}"), 0);
                    cursor = None;
                    cp.stage = Stage::Classes {
                        index,
                        cursor: None,
                    };
                    cp.save(&dir)?;
                    let path = dir.join(&rel);
                    fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
                    bar.set_position(0);
                    continue;
                }
                Err(e) => return Err(Error::Api(e)),
            };
            let mut text = String::new();
            if !cp.files.contains_key(&rel) {
                text.push_str(&header("Class", Some(&class)));
            }
            for row in &page.results {
                text.push_str(&Value::Object(row.clone()).to_string());
                text.push('\n');
            }
            let n = page.results.len() as u64;
            let next = page.cursor.filter(|c| !c.is_empty());
            let len = writer.append(&rel, &text)?;
            cp.files.insert(rel.clone(), len);
            cp.add(&format!("class:{class}"), n);
            cp.stage = match &next {
                Some(c) => Stage::Classes {
                    index,
                    cursor: Some(c.clone()),
                },
                None => Stage::Classes {
                    index: index + 1,
                    cursor: None,
                },
            };
            bar.inc(n);
            match next {
                Some(c) => {
                    cursor = Some(c);
                    cp.save(&dir)?;
                }
                None => break,
            }
        }
        if matches!(cp.stage, Stage::Classes { index: i, .. } if i == index) {
            cp.stage = Stage::Classes {
                index: index + 1,
                cursor: None,
            };
        }
        cp.save(&dir)?;
        bar.finish();
        if lines {
            eprintln!(
                "class {class}: {} objects",
                cp.count(&format!("class:{class}"))
            );
        }
    }

    let (class_permissions, relations) = if cp.files_only {
        (None, 0)
    } else {
        (
            export_class_permissions(api, &dir).await?,
            export_relations(api, &dir, &cp.classes).await?,
        )
    };

    // 2. File bodies, on every run once the classes are in: the directory itself records which are saved, so
    // this retries what failed before and costs one stat per file otherwise.
    let file_rows: Vec<FileRow> = match cp.files.get(&class_file(FILE_CLASS)) {
        Some(&committed) => committed_rows(&dir.join(class_file(FILE_CLASS)), committed)?
            .iter()
            .filter_map(|obj| FileRow::from_object(obj, options.downloads.file_domain.as_deref()))
            .collect(),
        None => Vec::new(),
    };
    let files_summary = files::download_all(&dir, &file_rows, &options.downloads, &multi).await?;
    if lines {
        eprintln!(
            "file bodies: {} saved, {} failed",
            files_summary.present + files_summary.downloaded,
            files_summary.failed.len()
        );
    }

    let committed = cp
        .files
        .get(&class_file("_Conversation"))
        .copied()
        .unwrap_or(0);
    let convs = conversations(&dir, committed)?;
    let total = multi.add(ProgressBar::new(convs.len() as u64));
    total.set_style(bar_style(
        "{bar:30} {pos}/{len} conversations, {msg} ({elapsed})",
    ));

    // 3. Message history, conversation by conversation.
    while let Stage::Messages { index, after } = cp.stage.clone() {
        total.set_position(index as u64);
        total.set_message(format!("{} messages", cp.count("messages")));
        let Some(conv) = convs.get(index) else {
            cp.stage = Stage::Subscribers {
                index: 0,
                after: None,
            };
            cp.save(&dir)?;
            break;
        };
        let of = if conv.chat_room {
            HistoryOf::ChatRoom(conv.id.clone())
        } else {
            HistoryOf::Conversation(conv.id.clone())
        };
        let bar = multi.add(ProgressBar::new_spinner());
        bar.set_style(bar_style("{spinner} conversation {prefix}: {pos} messages"));
        bar.set_prefix(conv.id.clone());
        let mut after = after;
        loop {
            let page = api
                .call(&History {
                    of: of.clone(),
                    limit: HISTORY_LIMIT,
                    after: after.clone(),
                })
                .await
                .map_err(Error::Api)?;
            let full = page.len() as u32 >= HISTORY_LIMIT;
            let mut text = String::new();
            if !cp.files.contains_key(MESSAGES) {
                text.push_str(&header("Messages", None));
            }
            let mut n = 0u64;
            let mut last = after.clone();
            for mut record in page {
                let ts = record.get("timestamp").and_then(Value::as_i64);
                let id = record
                    .get("msg-id")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let (Some(ts), Some(id)) = (ts, id) else {
                    return Err(Error::Other(format!(
                        "conversation {}: a history record without timestamp or msg-id: {}",
                        conv.id,
                        Value::Object(record)
                    )));
                };
                // A server that answers the cursor record itself again must not duplicate it.
                if after.as_ref().is_some_and(|(t, m)| *t == ts && *m == id) {
                    continue;
                }
                record
                    .entry("conv-id")
                    .or_insert_with(|| Value::String(conv.id.clone()));
                text.push_str(&Value::Object(record).to_string());
                text.push('\n');
                n += 1;
                last = Some((ts, id));
            }
            // Done when the page was short, or when the cursor did not move (nothing new).
            let done = !full || last == after;
            if !text.is_empty() {
                let len = writer.append(MESSAGES, &text)?;
                cp.files.insert(MESSAGES.to_string(), len);
            }
            cp.add("messages", n);
            bar.inc(n);
            cp.stage = if done {
                Stage::Messages {
                    index: index + 1,
                    after: None,
                }
            } else {
                Stage::Messages {
                    index,
                    after: last.clone(),
                }
            };
            cp.save(&dir)?;
            if done {
                break;
            }
            after = last;
        }
        bar.finish_and_clear();
        multi.remove(&bar);
        if lines && (index + 1) % 100 == 0 {
            eprintln!(
                "{}/{} conversations, {} messages",
                index + 1,
                convs.len(),
                cp.count("messages")
            );
        }
    }
    total.set_position(convs.len() as u64);
    total.set_message(format!("{} messages", cp.count("messages")));
    total.finish();

    // 4. Subscribers of service conversations.
    while let Stage::Subscribers { index, after } = cp.stage.clone() {
        let Some(conv) = convs.get(index) else {
            cp.stage = if cp.subscriber_history {
                Stage::SubscriberMessages {
                    index: 0,
                    after: None,
                }
            } else {
                Stage::Done
            };
            cp.save(&dir)?;
            break;
        };
        if !conv.system {
            cp.stage = Stage::Subscribers {
                index: index + 1,
                after: None,
            };
            continue;
        }
        let mut after = after;
        loop {
            let page = api
                .call(&Subscribers {
                    conv_id: conv.id.clone(),
                    after: after.clone(),
                })
                .await
                .map_err(Error::Api)?;
            let full = page.len() as u32 >= SUBSCRIBER_LIMIT;
            let mut text = String::new();
            if !cp.files.contains_key(SUBSCRIBERS) {
                text.push_str(&header("Subscribers", None));
            }
            let mut last = after.clone();
            let mut n = 0;
            for mut s in page {
                let Some(client) = s
                    .get("subscriber")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                else {
                    continue;
                };
                if after.as_deref() == Some(client.as_str()) {
                    continue;
                }
                s.entry("conv_id")
                    .or_insert_with(|| Value::String(conv.id.clone()));
                text.push_str(&Value::Object(s).to_string());
                text.push('\n');
                n += 1;
                last = Some(client);
            }
            let done = !full || last == after;
            if !text.is_empty() {
                let len = writer.append(SUBSCRIBERS, &text)?;
                cp.files.insert(SUBSCRIBERS.to_string(), len);
            }
            cp.add("subscribers", n);
            cp.stage = if done {
                Stage::Subscribers {
                    index: index + 1,
                    after: None,
                }
            } else {
                Stage::Subscribers {
                    index,
                    after: last.clone(),
                }
            };
            cp.save(&dir)?;
            if done {
                break;
            }
            after = last;
        }
    }
    // 5. Optionally, every subscriber's own history.
    let subscribers = if matches!(cp.stage, Stage::SubscriberMessages { .. }) {
        subscriber_list(&dir, cp.files.get(SUBSCRIBERS).copied().unwrap_or(0))?
    } else {
        Vec::new()
    };
    while let Stage::SubscriberMessages { index, after } = cp.stage.clone() {
        let Some((conv, client)) = subscribers.get(index) else {
            cp.stage = Stage::Done;
            cp.save(&dir)?;
            break;
        };
        let of = HistoryOf::Subscriber {
            conv: conv.clone(),
            client: client.clone(),
        };
        let mut after = after;
        loop {
            let page = api
                .call(&History {
                    of: of.clone(),
                    limit: HISTORY_LIMIT,
                    after: after.clone(),
                })
                .await
                .map_err(Error::Api)?;
            let full = page.len() as u32 >= HISTORY_LIMIT;
            let mut text = String::new();
            if !cp.files.contains_key(SUBSCRIBER_MESSAGES) {
                text.push_str(&header("Messages", None));
            }
            let mut n = 0u64;
            let mut last = after.clone();
            for mut record in page {
                let ts = record.get("timestamp").and_then(Value::as_i64);
                let id = record
                    .get("msg-id")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let (Some(ts), Some(id)) = (ts, id) else {
                    continue;
                };
                if after.as_ref().is_some_and(|(t, m)| *t == ts && *m == id) {
                    continue;
                }
                record
                    .entry("conv-id")
                    .or_insert_with(|| Value::String(conv.clone()));
                record
                    .entry("recipients")
                    .or_insert_with(|| json!([client]));
                text.push_str(&Value::Object(record).to_string());
                text.push('\n');
                n += 1;
                last = Some((ts, id));
            }
            let done = !full || last == after;
            let len = writer.append(SUBSCRIBER_MESSAGES, &text)?;
            cp.files.insert(SUBSCRIBER_MESSAGES.to_string(), len);
            cp.add("subscriber_messages", n);
            cp.stage = if done {
                Stage::SubscriberMessages {
                    index: index + 1,
                    after: None,
                }
            } else {
                Stage::SubscriberMessages {
                    index,
                    after: last.clone(),
                }
            };
            cp.save(&dir)?;
            if done {
                break;
            }
            after = last;
        }
    }

    // A run that was complete already, or whose last stage just ended.
    if cp.stage != Stage::Done {
        cp.stage = Stage::Done;
        cp.save(&dir)?;
    }

    let mut summary = ExportSummary {
        classes: BTreeMap::new(),
        conversations: convs.len() as u64,
        messages: cp.count("messages"),
        subscribers: cp.count("subscribers"),
        subscriber_messages: cp.count("subscriber_messages"),
        requests: api.stats.requests.load(Ordering::Relaxed) - requests_before,
        retries: api.stats.retries.load(Ordering::Relaxed) - retries_before,
        rate_limited: api.stats.rate_limited.load(Ordering::Relaxed) - limited_before,
        elapsed_secs: started.elapsed().as_secs_f64(),
        resumed,
        rows_this_run: 0,
        files: files_summary,
        files_only: cp.files_only,
        class_permissions,
        relations,
    };
    for class in &cp.classes {
        summary
            .classes
            .insert(class.clone(), cp.count(&format!("class:{class}")));
    }
    summary.rows_this_run = summary.rows().saturating_sub(rows_before);
    let manifest = json!({
        "format": FORMAT,
        "app_id": app_id,
        "api_server": api_server,
        "finished_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "classes": summary.classes,
        "conversations": summary.conversations,
        "messages": summary.messages,
        "subscribers": summary.subscribers,
        "subscriber_messages": summary.subscriber_messages,
        "file_bodies": summary.files.present + summary.files.downloaded,
        "file_bodies_failed": summary.files.failed.len(),
        "files_only": cp.files_only,
        "files": cp.files,
    });
    let bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Other(e.to_string()))?;
    write_atomically(&dir.join(MANIFEST), &bytes)?;
    Ok(summary)
}
