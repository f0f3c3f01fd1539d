//! `GET /1.1/cloudQuery?cql=…&pvalues=[…]`: a CQL query (`domain::cql`), run as the ordinary find it translates
//! to ([`classes::find_in`]: the caller's class permissions and ACLs apply), answered with `className` added.
//! A query that does not parse: 400 / 300 with where it stopped.

use axum::extract::{RawQuery, State};
use axum::Json;
use serde_json::Value;

use crate::auth::Access;
use crate::domain::cql;
use crate::error::{codes, AppError};
use crate::routes::{classes, query_params};
use crate::state::AppState;
use crate::store::objects::validate_class_name;

pub async fn cloud_query(
    State(state): State<AppState>,
    access: Access,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    let params = query_params(raw.as_deref());
    let cql = params
        .get("cql")
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| AppError::bad_request(codes::CQL_SYNTAX, "Missing the cql parameter."))?;
    let pvalues = match params.get("pvalues") {
        None => Vec::new(),
        Some(raw) => pvalues(raw).ok_or_else(|| {
            AppError::bad_request(codes::CQL_SYNTAX, "pvalues must be a JSON array.")
        })?,
    };
    let translated = cql::translate(cql, pvalues)
        .map_err(|e| AppError::bad_request(codes::CQL_SYNTAX, format!("CQL syntax error: {e}.")))?;
    validate_class_name(&translated.class)?;
    let found =
        classes::find_in(&state, access, &translated.class, &translated.find_params()).await?;
    Ok(Json(cql::answer(&translated, found)))
}

/// `pvalues`: a JSON array, or that array encoded once more as a JSON string, which is what the Python SDK sends
/// when given one list (`do_cloud_query(cql, [v, …])` dumps it twice) and LeanCloud accepted.
fn pvalues(raw: &str) -> Option<Vec<Value>> {
    match serde_json::from_str::<Value>(raw).ok()? {
        Value::Array(values) => Some(values),
        Value::String(inner) => serde_json::from_str::<Vec<Value>>(&inner).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pvalues_are_an_array_or_an_array_encoded_twice() {
        assert_eq!(Some(vec![json!("a"), json!(1)]), pvalues(r#"["a", 1]"#));
        assert_eq!(Some(vec![json!("score")]), pvalues(r#""[\"score\"]""#));
        assert_eq!(None, pvalues(r#"{"a": 1}"#));
        assert_eq!(None, pvalues(r#""not json""#));
    }
}
