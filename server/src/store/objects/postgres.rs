//! Storage-API objects on PostgreSQL: the same checks as [`crate::store::objects`] (which holds them), on rows
//! whose fields are `jsonb`.

use deadpool_postgres::GenericClient;
use serde_json::{Map, Value};

use crate::store::objects::{
    apply_update, check_delete, created_body, encode_data, narrowings, new_object_id,
    prepare_create, select, unique_key, ConversationKind, Created, Narrowing, QueryParams, Row,
};
use crate::store::postgres::shared::conversation_in;
use crate::store::postgres::{Params, Pg};
use crate::store::{Caller, StoreError, StoreResult};

pub(crate) const COLUMNS: &str = "id, data, acl, created_at, updated_at";

pub(crate) fn row_of(r: &tokio_postgres::Row) -> Row {
    Row {
        id: r.get(0),
        data: match r.get::<_, Value>(1) {
            Value::Object(m) => m,
            _ => Map::new(),
        },
        acl: r.get(2),
        created_at: r.get(3),
        updated_at: r.get(4),
    }
}

async fn load(
    c: &impl GenericClient,
    class: &str,
    id: &str,
    for_update: bool,
) -> StoreResult<Option<Row>> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM objects WHERE class = $1 AND id = $2{lock}"
        ))
        .await?;
    Ok(c.query_opt(&stmt, &[&class, &id])
        .await?
        .as_ref()
        .map(row_of))
}

pub(crate) async fn class_exists(c: &impl GenericClient, class: &str) -> StoreResult<bool> {
    let stmt = c
        .prepare_cached("SELECT 1 FROM classes WHERE name = $1")
        .await?;
    Ok(c.query_opt(&stmt, &[&class]).await?.is_some())
}

pub async fn create(
    pg: &Pg,
    class: String,
    body: Map<String, Value>,
    fetch_when_save: bool,
) -> StoreResult<Created> {
    let mut body = body;
    let relations = crate::store::relations::extract(&mut body)?;
    let (data, acl, key) = prepare_create(&class, body)?;
    // The JSON text the size check made is what is stored (cast to jsonb by the database).
    let data_text = encode_data(&data)?;
    let mut client = pg.client().await?;
    let tx = client.transaction().await?;
    if let Some(key) = &key {
        // Two instances creating the same unique conversation at once: the second waits, then finds it.
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1 || ':' || $2, 0))",
            &[&class, key],
        )
        .await?;
        let existing = tx
            .query_opt(
                &format!("SELECT {COLUMNS} FROM objects WHERE class = $1 AND unique_key = $2 ORDER BY seq LIMIT 1"),
                &[&class, key],
            )
            .await?;
        if let Some(r) = existing {
            let row = row_of(&r);
            tx.commit().await?;
            return Ok(Created {
                existed: true,
                body: row.render(false),
                id: row.id,
            });
        }
    }
    let now = chrono::Utc::now().timestamp_millis();
    let id = new_object_id();
    tx.execute(
        "INSERT INTO classes (name) VALUES ($1) ON CONFLICT DO NOTHING",
        &[&class],
    )
    .await?;
    let insert = tx
        .prepare_cached(
            "INSERT INTO objects (class, id, data, acl, created_at, updated_at, unique_key)
             VALUES ($1, $2, $3::text::jsonb, $4, $5, $5, $6)",
        )
        .await?;
    tx.execute(&insert, &[&class, &id, &data_text, &acl, &now, &key])
        .await?;
    crate::store::relations::postgres::apply(&tx, &class, &id, &relations).await?;
    tx.commit().await?;
    let row = Row {
        id: id.clone(),
        data,
        acl,
        created_at: now,
        updated_at: now,
    };
    Ok(Created {
        existed: false,
        body: created_body(&row, fetch_when_save),
        id,
    })
}

pub async fn update(
    pg: &Pg,
    caller: Caller,
    class: String,
    id: String,
    body: Map<String, Value>,
    where_: Option<Value>,
    fetch_when_save: bool,
) -> StoreResult<Map<String, Value>> {
    let mut client = pg.client_in(caller.lane()).await?;
    let tx = client.transaction().await?;
    let Some(mut row) = load(&tx, &class, &id, true).await? else {
        return Err(StoreError::NotFound { class, id });
    };
    let mut body = body;
    let relations = crate::store::relations::extract(&mut body)?;
    let readable = apply_update(&mut row, caller, body, where_.as_ref())?;
    crate::store::relations::postgres::apply(&tx, &class, &id, &relations).await?;
    let data_text = encode_data(&row.data)?;
    let stmt = tx
        .prepare_cached(
            "UPDATE objects SET data = $3::text::jsonb, acl = $4, updated_at = $5, unique_key = $6
             WHERE class = $1 AND id = $2",
        )
        .await?;
    let key = unique_key(&class, &row.data);
    tx.execute(
        &stmt,
        &[&class, &id, &data_text, &row.acl, &row.updated_at, &key],
    )
    .await?;
    tx.commit().await?;
    Ok(crate::store::objects::updated_body(
        &row,
        fetch_when_save,
        readable,
    ))
}

pub async fn delete(
    pg: &Pg,
    caller: Caller,
    class: String,
    id: String,
    where_: Option<Value>,
) -> StoreResult<()> {
    let mut client = pg.client_in(caller.lane()).await?;
    let tx = client.transaction().await?;
    let Some(row) = load(&tx, &class, &id, true).await? else {
        return Ok(());
    };
    check_delete(&row, caller, where_.as_ref())?;
    tx.execute(
        "DELETE FROM objects WHERE class = $1 AND id = $2",
        &[&class, &id],
    )
    .await?;
    crate::store::relations::postgres::remove_owner(&tx, &class, &id).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn by_unique_key(pg: &Pg, class: String, key: String) -> StoreResult<Option<String>> {
    let client = pg.client().await?;
    Ok(client
        .query_opt(
            "SELECT id FROM objects WHERE class = $1 AND unique_key = $2 ORDER BY seq LIMIT 1",
            &[&class, &key],
        )
        .await?
        .map(|r| r.get(0)))
}

pub async fn installations_on(
    pg: &Pg,
    channels: Vec<String>,
) -> StoreResult<Vec<Map<String, Value>>> {
    let client = pg.client().await?;
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM objects WHERE class = '_Installation'
               AND id IN (SELECT id FROM installation_channels WHERE channel = ANY($1))
             ORDER BY id"
        ))
        .await?;
    Ok(client
        .query(&stmt, &[&channels])
        .await?
        .iter()
        .map(|r| row_of(r).render(false))
        .collect())
}

pub async fn get(
    pg: &Pg,
    caller: Caller,
    class: String,
    id: String,
    with_acl: bool,
) -> StoreResult<Option<Map<String, Value>>> {
    let client = pg.client().await?;
    if !class_exists(&client, &class).await? {
        return Err(StoreError::ClassNotFound(class));
    }
    Ok(load(&client, &class, &id, false)
        .await?
        .filter(|r| r.allows(&caller, "read"))
        .map(|r| r.render_answer(with_acl)))
}

pub async fn scan(pg: &Pg, class: String, after: i64, limit: i64) -> StoreResult<Vec<(i64, Row)>> {
    let client = pg.client().await?;
    if !class_exists(&client, &class).await? {
        return Err(StoreError::ClassNotFound(class));
    }
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {COLUMNS}, seq FROM objects WHERE class = $1 AND seq > $2 ORDER BY seq LIMIT $3"
        ))
        .await?;
    let rows = client.query(&stmt, &[&class, &after, &limit]).await?;
    Ok(rows.iter().map(|r| (r.get(5), row_of(r))).collect())
}

pub fn get_blocking(pg: &Pg, class: &str, id: &str) -> StoreResult<Option<Map<String, Value>>> {
    let (class, id) = (class.to_string(), id.to_string());
    pg.blocking(move |c| {
        Box::pin(async move { Ok(load(c, &class, &id, false).await?.map(|r| r.render(true))) })
    })
}

/// The PostgreSQL side of [`narrowings`]: `data @> …` checks the GIN index answers.
fn prefilter(where_: Option<&Value>, params: &mut Params) -> String {
    let mut sql = String::new();
    for narrowing in narrowings(where_) {
        match narrowing {
            Narrowing::IdIs(id) => {
                sql.push_str(&format!(" AND id = {}", params.push(id.to_string())));
            }
            Narrowing::IdIn(ids) => {
                let ids: Vec<String> = ids.into_iter().map(str::to_owned).collect();
                sql.push_str(&format!(" AND id = ANY({})", params.push(ids)));
            }
            Narrowing::Field(key, value) => {
                // The field equals the value, or is an array holding it (both as LeanCloud matches).
                let one = params.push(Value::Object(Map::from_iter([(
                    key.to_string(),
                    value.clone(),
                )])));
                let held = params.push(Value::Object(Map::from_iter([(
                    key.to_string(),
                    Value::Array(vec![value.clone()]),
                )])));
                sql.push_str(&format!(" AND (data @> {one} OR data @> {held})"));
            }
        }
    }
    sql
}

pub async fn find(
    pg: &Pg,
    caller: Caller,
    lane: crate::store::Lane,
    class: String,
    q: QueryParams,
) -> StoreResult<Value> {
    let client = pg.client_in(lane).await?;
    if !class_exists(&*client, &class).await? {
        return Err(StoreError::ClassNotFound(class));
    }
    let mut params = Params::default();
    let class_arg = params.push(class);
    let filter = prefilter(q.where_.as_ref(), &mut params);
    let sql = format!(
        "SELECT {COLUMNS} FROM objects WHERE class = {class_arg}{filter} ORDER BY seq LIMIT {}",
        q.max_scan + 1
    );
    let stmt = client.prepare_cached(&sql).await?;
    let raws = client.query(&stmt, &params.refs()).await?;
    if raws.len() > q.max_scan {
        return Err(StoreError::InvalidQuery(format!(
            "The query would read more than {} objects; narrow it with an equality on objectId or another field.",
            q.max_scan
        )));
    }
    let rows = raws.iter().map(row_of).collect();
    select(rows, caller, &q)
}

pub async fn conversation(pg: &Pg, id: &str) -> StoreResult<Option<ConversationKind>> {
    let client = pg.client().await?;
    conversation_in(&client, id, false).await
}
