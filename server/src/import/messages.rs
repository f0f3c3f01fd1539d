//! The import of history records and service-conversation subscribers (see the module above for the
//! formats and the rules every import follows).

use std::collections::HashMap;
use std::io::BufRead;

use rusqlite::{params, OptionalExtension, Transaction};
use serde_json::{json, Value};

use super::files::FileUrls;
use super::{sql, FileReport, ImportError, Lines};
use crate::store::db::iso_millis;
use crate::store::messages::{recipients_column, recipients_from_column, user_conversation_key};

pub(super) fn import_messages(
    tx: &Transaction<'_>,
    lines: &mut Lines<impl BufRead>,
    report: &mut FileReport,
    files: &FileUrls,
) -> Result<(), ImportError> {
    let mut last: HashMap<String, i64> = HashMap::new();
    let mut insert = tx
        .prepare(
            "INSERT OR IGNORE INTO messages (msg_id, conv_id, from_peer, data, timestamp, kind, transient, is_room, recipients, from_ip)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?8, ?9)",
        )
        .map_err(|e| sql(lines, e))?;
    let mut meta = tx
        .prepare("INSERT OR IGNORE INTO message_meta (msg_id, bin, ack_at) VALUES (?1, ?2, ?3)")
        .map_err(|e| sql(lines, e))?;
    let mut recipient = tx
        .prepare(
            "INSERT OR IGNORE INTO message_recipients (user_conv, msg_seq, client_id) VALUES (?1, ?2, ?3)",
        )
        .map_err(|e| sql(lines, e))?;
    loop {
        let Some(text) = lines.next_line()? else {
            break;
        };
        if text.trim().is_empty() {
            continue;
        }
        let record: Record = serde_json::from_str(&text)
            .map_err(|e| lines.error(format!("invalid message record: {e}")))?;
        report.rows += 1;
        if record.msg_id.is_empty() || record.conv_id.is_empty() {
            return Err(lines.error("msg-id and conv-id must not be empty"));
        }
        let mut data = match record.data {
            Value::String(s) => s,
            other => other.to_string(),
        };
        let rewritten = files.rewrite_message(&data);
        if let Some(new) = &rewritten {
            data = new.clone();
        }
        let recipients = record.recipients.unwrap_or_default();
        let kind = if recipients.is_empty() {
            "normal"
        } else {
            "to_clients"
        };
        let recipients_text = recipients_column(&recipients);
        let changed = insert
            .execute(params![
                record.msg_id,
                record.conv_id,
                record.from,
                data,
                record.timestamp,
                kind,
                record.is_room,
                recipients_text,
                record.from_ip.filter(|ip| !ip.is_empty()),
            ])
            .map_err(|e| sql(lines, e))?;
        if changed == 0 {
            if rewritten.is_some() {
                // Imported before its file's body was: it now points at the body's new home.
                tx.prepare_cached("UPDATE messages SET data = ?2 WHERE msg_id = ?1 AND data <> ?2")
                    .and_then(|mut s| s.execute(params![record.msg_id, data]))
                    .map_err(|e| sql(lines, e))?;
            }
            // The same message seen by another chosen client (a subscriber's history): add the recipient.
            if !recipients.is_empty() {
                merge_recipients(tx, &record.msg_id, &record.conv_id, &recipients)
                    .map_err(|e| sql(lines, e))?;
            }
            report.skipped += 1;
            continue;
        }
        report.inserted += 1;
        if record.bin || record.ack_at.is_some() {
            meta.execute(params![record.msg_id, record.bin, record.ack_at])
                .map_err(|e| sql(lines, e))?;
        }
        if !recipients.is_empty() {
            let seq = tx.last_insert_rowid();
            for client in &recipients {
                recipient
                    .execute(params![
                        user_conversation_key(&record.conv_id, client),
                        seq,
                        client
                    ])
                    .map_err(|e| sql(lines, e))?;
            }
        }
        let entry = last.entry(record.conv_id).or_insert(record.timestamp);
        *entry = (*entry).max(record.timestamp);
    }
    // `lm` follows the history, forward only (as the send path does).
    let mut lm = tx
        .prepare(
            "UPDATE objects SET data = json_set(data, '$.lm', json(?2))
             WHERE class = '_Conversation' AND id = ?1
               AND (json_extract(data, '$.lm.iso') IS NULL OR json_extract(data, '$.lm.iso') < ?3)",
        )
        .map_err(|e| sql(lines, e))?;
    for (conv, ts) in last {
        let iso = iso_millis(ts);
        lm.execute(params![
            conv,
            json!({"__type": "Date", "iso": iso}).to_string(),
            iso
        ])
        .map_err(|e| sql(lines, e))?;
    }
    Ok(())
}

/// Adds `recipients` to a stored message sent to chosen clients (a no-op for other messages and for
/// recipients already there, so importing again changes nothing).
fn merge_recipients(
    tx: &Transaction<'_>,
    msg_id: &str,
    conv_id: &str,
    recipients: &[String],
) -> rusqlite::Result<()> {
    let row: Option<(i64, String, Option<String>)> = tx
        .prepare_cached("SELECT seq, kind, recipients FROM messages WHERE msg_id = ?1")?
        .query_row([msg_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((seq, kind, current)) = row else {
        return Ok(());
    };
    if kind != "to_clients" {
        return Ok(());
    }
    let mut list = recipients_from_column(current);
    let before = list.len();
    for r in recipients {
        if !list.contains(r) {
            list.push(r.clone());
        }
    }
    if list.len() != before {
        tx.prepare_cached("UPDATE messages SET recipients = ?2 WHERE seq = ?1")?
            .execute(params![seq, recipients_column(&list)])?;
    }
    let mut stmt = tx.prepare_cached(
        "INSERT OR IGNORE INTO message_recipients (user_conv, msg_seq, client_id) VALUES (?1, ?2, ?3)",
    )?;
    for client in recipients {
        stmt.execute(params![user_conversation_key(conv_id, client), seq, client])?;
    }
    Ok(())
}

/// A history record as the history API returns it (`leancloud-migration.md` §1.3), plus the optional
/// `recipients` of a message sent to chosen clients of a service conversation.
#[derive(Debug, serde::Deserialize)]
struct Record {
    #[serde(rename = "msg-id")]
    msg_id: String,
    #[serde(rename = "conv-id")]
    conv_id: String,
    from: String,
    data: Value,
    timestamp: i64,
    #[serde(default)]
    bin: bool,
    #[serde(rename = "is-room", default)]
    is_room: bool,
    #[serde(rename = "from-ip", default)]
    from_ip: Option<String>,
    #[serde(rename = "ack-at", default)]
    ack_at: Option<i64>,
    #[serde(default)]
    recipients: Option<Vec<String>>,
}

#[derive(Debug, serde::Deserialize)]
struct Subscriber {
    conv_id: String,
    subscriber: String,
    timestamp: i64,
}

pub(super) fn import_subscribers(
    tx: &Transaction<'_>,
    lines: &mut Lines<impl BufRead>,
    report: &mut FileReport,
) -> Result<(), ImportError> {
    loop {
        let Some(text) = lines.next_line()? else {
            break;
        };
        if text.trim().is_empty() {
            continue;
        }
        let s: Subscriber = serde_json::from_str(&text)
            .map_err(|e| lines.error(format!("invalid subscriber record: {e}")))?;
        report.rows += 1;
        let changed = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO service_subscribers (conv_id, client_id, timestamp) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut st| st.execute(params![s.conv_id, s.subscriber, s.timestamp]))
            .map_err(|e| sql(lines, e))?;
        if changed == 1 {
            report.inserted += 1;
        } else {
            report.skipped += 1;
        }
    }
    Ok(())
}
