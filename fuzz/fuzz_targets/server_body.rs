//! The storage API's request bodies and query strings, without HTTP or SQLite: objects built by applying
//! JSON bodies (`__op` included) the way create/update do, then a find's `where`, `keys`, `order`, `limit`,
//! `skip`, `count` and `returnACL` over them. Errors are fine; a panic or a hang is a finding.
//!
//! Input, one part per line (so seeds are readable and JSON stays on one line):
//! ```text
//! {"n":{"$gt":1}}                 where (empty: none)
//! n,-color.text                   keys (empty: none)
//! -n,createdAt                    order
//! app limit=2&skip=1&count=1      `app ` for the app key (else master), then more of the raw query string
//! +{"n":1,"m":["a"]}              `+`: create an object from this body
//! {"n":{"__op":"Increment"}}      anything else: update the last object
//! ```
#![no_main]

use std::cmp::Ordering;

use leancloud_server::routes::classes::find_params;
use leancloud_server::routes::scan::strip_private_value;
use leancloud_server::routes::{json_object, query_params};
use leancloud_server::store::objects::{select, Row};
use leancloud_server::store::ops::apply_body;
use leancloud_server::store::query::{lookup, matches, sort_cmp};
use leancloud_server::store::Caller;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

/// Objects per input: enough for `order`, `skip` and `limit` to matter, few enough to stay fast.
const MAX_OBJECTS: usize = 8;

fn apply(row: &mut Row, body: &[u8]) {
    let Ok(body) = json_object(&bytes::Bytes::copy_from_slice(body)) else {
        return;
    };
    // A refused update leaves the object as it was, as the server drops the row it loaded.
    let (mut data, mut acl) = (row.data.clone(), row.acl.clone());
    if apply_body(&mut data, &mut acl, body).is_ok() {
        // What the store writes must encode (and decode back).
        let text = serde_json::to_string(&data).expect("data encodes");
        let _: Map<String, Value> = serde_json::from_str(&text).expect("data decodes");
        row.data = data;
        row.acl = acl;
        row.updated_at += 1;
    }
}

fuzz_target!(|input: &[u8]| {
    let mut lines = input.split(|b| *b == b'\n');
    let mut part = || std::str::from_utf8(lines.next().unwrap_or_default()).unwrap_or_default();
    let (where_, keys, order, extra) = (part(), part(), part(), part());
    let (caller, extra) = match extra.strip_prefix("app ") {
        Some(rest) => (Caller::App, rest),
        None => (Caller::Master, extra),
    };

    let mut rows: Vec<Row> = Vec::new();
    for line in lines {
        if let Some(body) = line.strip_prefix(b"+") {
            if rows.len() == MAX_OBJECTS {
                break;
            }
            let at = 1_700_000_000_000 + 1000 * rows.len() as i64;
            rows.push(Row {
                id: format!("obj{}", rows.len()),
                data: Map::new(),
                acl: None,
                created_at: at,
                updated_at: at,
            });
            let last = rows.len() - 1;
            apply(&mut rows[last], body);
        } else if let Some(row) = rows.last_mut() {
            apply(row, line);
        }
    }

    // The query string as an SDK sends it: JSON `where`, comma-separated `keys` and `order`, URL-encoded.
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in [("where", where_), ("keys", keys), ("order", order)] {
        if !value.is_empty() {
            query.append_pair(name, value);
        }
    }
    let mut raw = query.finish();
    if !extra.is_empty() {
        raw.push('&');
        raw.push_str(extra);
    }
    let Ok(q) = find_params(&query_params(Some(&raw)), 100_000) else {
        return;
    };

    // `order`'s comparison must be a total order, or sorting may panic or answer in no stable order.
    for (field, _) in &q.order {
        for a in &rows {
            for b in &rows {
                let (x, y) = (lookup(&a.data, field), lookup(&b.data, field));
                assert_eq!(
                    sort_cmp(x, y),
                    sort_cmp(y, x).reverse(),
                    "sort_cmp is not antisymmetric on {x:?} and {y:?}"
                );
                if sort_cmp(x, y) == Ordering::Equal {
                    assert_eq!(Ordering::Equal, sort_cmp(x, x), "{x:?}");
                }
            }
        }
    }
    if let Some(w) = &q.where_ {
        for row in &rows {
            let _ = matches(&row.data, w);
        }
    }

    let (limit, skip, count) = (q.limit, q.skip, q.count);
    let total = rows.len();
    let Ok(mut found) = select(rows, caller, &q) else {
        return;
    };
    let results = found["results"].as_array().map_or(0, Vec::len);
    assert!(
        results <= limit && results + skip.min(total) <= total,
        "{found}"
    );
    if count {
        let counted = found["count"].as_u64().expect("count") as usize;
        assert!(results <= counted && counted <= total, "{found}");
    }
    strip_private_value("_User", &mut found);
    let _ = serde_json::to_vec(&found).expect("the answer encodes");
});
