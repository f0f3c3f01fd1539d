//! File URLs on import: when `leancloud-migrate import` has moved the exported file bodies into the server's
//! file storage, each `_File` row gets the server's URL for its body, and every message that carries the file
//! (`_lcfile`, by `objId`, or else by its old `url`) gets the same, so no image in the history points at
//! LeanCloud's file domain after it stops answering.

use std::collections::HashMap;

use serde_json::{Map, Value};

/// Old file → new URL.
#[derive(Debug, Clone, Default)]
pub struct FileUrls {
    /// `_File` objectId → the URL of its body on this server.
    pub by_id: HashMap<String, String>,
    /// The URL a file had → its new one (for messages whose `_lcfile` has no `objId`).
    pub by_url: HashMap<String, String>,
}

impl FileUrls {
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty() && self.by_url.is_empty()
    }

    /// Gives a `_File` row whose body was moved its new `url` (and marks it as stored here, so deleting it
    /// deletes the body); answers the new URL.
    pub fn rewrite_object(
        &self,
        class: &str,
        id: &str,
        data: &mut Map<String, Value>,
    ) -> Option<String> {
        if class != "_File" {
            return None;
        }
        let url = self.by_id.get(id)?;
        data.insert("url".into(), Value::String(url.clone()));
        data.insert("provider".into(), Value::String("s3".into()));
        Some(url.clone())
    }

    /// The message text with its `_lcfile.url` rewritten, or `None` when nothing changes (not a typed message,
    /// no file, or a file that was not moved).
    pub fn rewrite_message(&self, data: &str) -> Option<String> {
        if self.is_empty() || !data.contains("_lcfile") {
            return None;
        }
        let mut message = match serde_json::from_str::<Value>(data) {
            Ok(Value::Object(m)) => m,
            _ => return None,
        };
        let file = message.get_mut("_lcfile")?.as_object_mut()?;
        let by_id = file
            .get("objId")
            .and_then(Value::as_str)
            .and_then(|id| self.by_id.get(id));
        let by_url = file
            .get("url")
            .and_then(Value::as_str)
            .and_then(|u| self.by_url.get(u));
        let new = by_id.or(by_url)?.clone();
        if file.get("url").and_then(Value::as_str) == Some(new.as_str()) {
            return None;
        }
        file.insert("url".into(), Value::String(new));
        Some(Value::Object(message).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn urls() -> FileUrls {
        FileUrls {
            by_id: HashMap::from([("f1".into(), "https://im.example.com/k1.jpg".into())]),
            by_url: HashMap::from([(
                "http://lc-files.example.com/old2.png".into(),
                "https://im.example.com/k2.png".into(),
            )]),
        }
    }

    #[test]
    fn a_message_s_file_is_found_by_its_id_or_else_its_old_url() {
        let by_id = r#"{"_lctype":-2,"_lcfile":{"objId":"f1","url":"http://lc-files.example.com/old1.jpg","metaData":{"size":3}},"_lctext":"hi"}"#;
        assert_eq!(
            Some(r#"{"_lctype":-2,"_lcfile":{"objId":"f1","url":"https://im.example.com/k1.jpg","metaData":{"size":3}},"_lctext":"hi"}"#.to_string()),
            urls().rewrite_message(by_id),
            "the fields keep their order"
        );
        let by_url = r#"{"_lctype":-6,"_lcfile":{"url":"http://lc-files.example.com/old2.png"}}"#;
        assert_eq!(
            Some(r#"{"_lctype":-6,"_lcfile":{"url":"https://im.example.com/k2.png"}}"#.to_string()),
            urls().rewrite_message(by_url)
        );
        for unchanged in [
            "plain text mentioning _lcfile",
            r#"{"_lctype":-1,"_lctext":"no file"}"#,
            r#"{"_lcfile":{"objId":"other","url":"http://elsewhere/x"}}"#,
            r#"{"_lcfile":{"objId":"f1","url":"https://im.example.com/k1.jpg"}}"#,
        ] {
            assert_eq!(None, urls().rewrite_message(unchanged), "{unchanged}");
        }
    }

    #[test]
    fn a_moved_file_s_row_gets_its_new_url() {
        let mut row = json!({"name": "a.jpg", "url": "http://lc-files.example.com/old1.jpg"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            Some("https://im.example.com/k1.jpg".to_string()),
            urls().rewrite_object("_File", "f1", &mut row)
        );
        assert_eq!(json!("https://im.example.com/k1.jpg"), row["url"]);
        assert_eq!(json!("s3"), row["provider"]);
        let mut other = row.clone();
        assert_eq!(None, urls().rewrite_object("Post", "f1", &mut other));
        assert_eq!(row, other);
    }
}
