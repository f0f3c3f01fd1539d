//! The SQL pre-filter of queries and the in-memory matcher agree (review part 3): the input as a `where`
//! (JSON) runs against a SQLite database of varied documents, once through the pre-filter (equalities, `$all`,
//! the `_Conversation.m` member index) and once over every row; the rows the matcher accepts must be the same.
#![no_main]

use std::sync::OnceLock;

use leancloud_server::store::objects::PrefilterCheck;
use libfuzzer_sys::fuzz_target;

fn check() -> &'static std::sync::Mutex<PrefilterCheck> {
    static CHECK: OnceLock<std::sync::Mutex<PrefilterCheck>> = OnceLock::new();
    CHECK.get_or_init(|| {
        let path =
            std::env::temp_dir().join(format!("query-prefilter-{}.sqlite3", std::process::id()));
        std::sync::Mutex::new(PrefilterCheck::new(&path).expect("the fuzz database"))
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(where_) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if !where_.is_object() {
        return;
    }
    let check = check().lock().expect("lock");
    if let Err(why) = check.check(&where_) {
        panic!("{why}");
    }
});
