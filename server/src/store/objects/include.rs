//! `include` on queries and gets: pointers at the named (dotted) paths replaced by the objects they point to, as
//! LeanCloud answers them (`{"__type":"Object","className",…fields}`), read as the caller may read them (its ACL);
//! a pointer the caller may not read, or to nothing, stays a pointer. One query per class and path level.

use std::collections::{BTreeMap, HashMap};

use futures::future::BoxFuture;
use serde_json::{json, Map, Value};

use super::{find, QueryParams};
use crate::store::db::Db;
use crate::store::users::{PRIVATE_FIELDS, USER_CLASS};
use crate::store::{Caller, StoreError, StoreResult};

/// Most paths one request may include, and most levels a path may have.
pub const MAX_INCLUDE_PATHS: usize = 20;
pub const MAX_INCLUDE_DEPTH: usize = 5;

/// The paths of an `include` parameter (`"author,post.author"`) as a tree of field names; `None` when there are
/// more paths or deeper ones than allowed.
#[derive(Debug, Default, PartialEq)]
pub struct IncludeTree(BTreeMap<String, IncludeTree>);

impl IncludeTree {
    pub fn parse(param: Option<&str>) -> Option<IncludeTree> {
        let mut tree = IncludeTree::default();
        let paths: Vec<&str> = param
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        if paths.len() > MAX_INCLUDE_PATHS {
            return None;
        }
        for path in paths {
            let parts: Vec<&str> = path.split('.').collect();
            if parts.len() > MAX_INCLUDE_DEPTH || parts.iter().any(|p| p.is_empty()) {
                return None;
            }
            let mut node = &mut tree;
            for part in parts {
                node = node.0.entry(part.to_string()).or_default();
            }
        }
        Some(tree)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `(className, objectId)` of a pointer.
fn pointer(value: &Value) -> Option<(&str, &str)> {
    let obj = value.as_object()?;
    if obj.get("__type").and_then(Value::as_str) != Some("Pointer") {
        return None;
    }
    Some((
        obj.get("className").and_then(Value::as_str)?,
        obj.get("objectId").and_then(Value::as_str)?,
    ))
}

/// The pointers (or arrays of pointers) at `key` of each object.
fn pointers_at<'v>(objects: &'v [&mut Map<String, Value>], key: &str) -> Vec<(&'v str, &'v str)> {
    let mut out = Vec::new();
    for object in objects {
        match object.get(key) {
            Some(Value::Array(items)) => out.extend(items.iter().filter_map(pointer)),
            Some(v) => out.extend(pointer(v)),
            None => {}
        }
    }
    out
}

/// Replaces the pointers of `tree` in `objects` by the objects `caller` may read.
pub async fn expand_includes(
    db: &Db,
    caller: &Caller,
    objects: &mut [&mut Map<String, Value>],
    tree: &IncludeTree,
    max_scan: usize,
) -> StoreResult<()> {
    expand_level(db, caller, objects, tree, max_scan).await
}

fn expand_level<'a>(
    db: &'a Db,
    caller: &'a Caller,
    objects: &'a mut [&mut Map<String, Value>],
    tree: &'a IncludeTree,
    max_scan: usize,
) -> BoxFuture<'a, StoreResult<()>> {
    Box::pin(async move {
        for (key, below) in &tree.0 {
            let mut wanted: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (class, id) in pointers_at(objects, key) {
                let ids = wanted.entry(class.to_string()).or_default();
                if !ids.iter().any(|known| known == id) {
                    ids.push(id.to_string());
                }
            }
            let mut found: HashMap<(String, String), Map<String, Value>> = HashMap::new();
            for (class, ids) in wanted {
                let q = QueryParams {
                    where_: Some(json!({"objectId": {"$in": ids}})),
                    limit: ids.len(),
                    max_scan,
                    ..QueryParams::default()
                };
                let answer = match find(db, caller.clone(), class.clone(), q).await {
                    Ok(answer) => answer,
                    Err(StoreError::ClassNotFound(_)) => continue,
                    Err(e) => return Err(e),
                };
                let Some(Value::Array(rows)) = answer.get("results").cloned() else {
                    continue;
                };
                for row in rows {
                    let Value::Object(mut row) = row else {
                        continue;
                    };
                    if class == USER_CLASS {
                        for field in PRIVATE_FIELDS {
                            row.remove(field);
                        }
                    }
                    let Some(id) = row
                        .get("objectId")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                    else {
                        continue;
                    };
                    row.insert("__type".into(), json!("Object"));
                    row.insert("className".into(), json!(class));
                    found.insert((class.clone(), id), row);
                }
            }
            let replace = |value: &mut Value| {
                let whole = pointer(value)
                    .and_then(|(class, id)| found.get(&(class.to_string(), id.to_string())));
                if let Some(whole) = whole {
                    *value = Value::Object(whole.clone());
                }
            };
            for object in objects.iter_mut() {
                match object.get_mut(key) {
                    Some(Value::Array(items)) => items.iter_mut().for_each(replace),
                    Some(v) => replace(v),
                    None => {}
                }
            }
            if below.is_empty() {
                continue;
            }
            let mut children: Vec<&mut Map<String, Value>> = Vec::new();
            for object in objects.iter_mut() {
                match object.get_mut(key) {
                    Some(Value::Array(items)) => children.extend(
                        items
                            .iter_mut()
                            .filter_map(Value::as_object_mut)
                            .filter(|o| o.get("__type") == Some(&json!("Object"))),
                    ),
                    Some(Value::Object(o)) if o.get("__type") == Some(&json!("Object")) => {
                        children.push(o)
                    }
                    _ => {}
                }
            }
            expand_level(db, caller, &mut children, below, max_scan).await?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_paths_parse_into_a_tree_with_limits() {
        let tree = IncludeTree::parse(Some("author, post.author,post")).unwrap();
        let mut expected = IncludeTree::default();
        expected.0.insert("author".into(), IncludeTree::default());
        let mut post = IncludeTree::default();
        post.0.insert("author".into(), IncludeTree::default());
        expected.0.insert("post".into(), post);
        assert_eq!(tree, expected);
        assert!(IncludeTree::parse(None).unwrap().is_empty());
        assert!(IncludeTree::parse(Some("a.b.c.d.e.f")).is_none());
        assert!(IncludeTree::parse(Some("a..b")).is_none());
        let many: Vec<String> = (0..21).map(|i| format!("f{i}")).collect();
        assert!(IncludeTree::parse(Some(&many.join(","))).is_none());
    }
}
