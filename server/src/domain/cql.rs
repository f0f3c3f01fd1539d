//! CQL, LeanCloud's SQL-like query language (`GET /1.1/cloudQuery?cql=…&pvalues=[…]`), translated into the
//! query parameters of an ordinary find (`where`, `keys`, `order`, `limit`, `skip`, `count`), so a CQL query
//! runs exactly as the equivalent REST query does: class permissions, ACLs, files, private fields.
//!
//! ```text
//! select (count(*) | * | key[.key…]) [, …] from Class
//!   [where cond] [order by key [asc|desc] [, …]] [limit n | limit skip, n]
//! cond: cond and cond | cond or cond | (cond)
//!     | key (= | != | <> | < | <= | > | >=) value | key [not] in (value, …)
//!     | key like 'pattern' (% any run, _ one character) | key is [not] (exists | null)
//! value: number | 'text' | "text" | true | false | null | ? (the next of `pvalues`)
//!      | date('ISO 8601') | pointer('Class', 'objectId')
//! ```
//! Keywords are case-insensitive. Anything else is refused with the position it stopped at.

use serde_json::{json, Map, Value};

/// A CQL query as find parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Translated {
    pub class: String,
    pub where_: Option<Value>,
    /// `None`: every field (`*`).
    pub keys: Option<Vec<String>>,
    /// `(field, descending)`.
    pub order: Vec<(String, bool)>,
    pub limit: Option<u64>,
    pub skip: Option<u64>,
    /// `count(*)` was selected.
    pub count: bool,
    /// Only `count(*)` was selected: no objects are answered.
    pub count_only: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Text(String),
    Number(Value),
    Symbol(&'static str),
    Placeholder,
}

fn tokenize(cql: &str) -> Result<Vec<(usize, Token)>, String> {
    let chars: Vec<char> = cql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_.".contains(chars[i])) {
                i += 1;
            }
            out.push((start, Token::Word(chars[start..i].iter().collect())));
            continue;
        }
        if c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_digit() || ".eE".contains(chars[i])) {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            let number = if let Ok(n) = text.parse::<i64>() {
                Value::from(n)
            } else {
                text.parse::<f64>()
                    .ok()
                    .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number))
                    .ok_or_else(|| format!("Invalid number at {start}: {text}"))?
            };
            out.push((start, Token::Number(number)));
            continue;
        }
        if c == '\'' || c == '"' {
            let mut text = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(format!("Unterminated string at {start}")),
                    // A doubled quote is one quote, as in SQL.
                    Some(&q) if q == c && chars.get(i + 1) == Some(&c) => {
                        text.push(c);
                        i += 2;
                    }
                    Some(&q) if q == c => {
                        i += 1;
                        break;
                    }
                    Some(&other) => {
                        text.push(other);
                        i += 1;
                    }
                }
            }
            out.push((start, Token::Text(text)));
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let symbol = match two.as_str() {
            "!=" => Some("!="),
            "<>" => Some("!="),
            "<=" => Some("<="),
            ">=" => Some(">="),
            _ => None,
        };
        if let Some(symbol) = symbol {
            out.push((start, Token::Symbol(symbol)));
            i += 2;
            continue;
        }
        let symbol = match c {
            '=' => "=",
            '<' => "<",
            '>' => ">",
            '(' => "(",
            ')' => ")",
            ',' => ",",
            '*' => "*",
            '?' => {
                out.push((start, Token::Placeholder));
                i += 1;
                continue;
            }
            other => return Err(format!("Unexpected character at {start}: {other}")),
        };
        out.push((start, Token::Symbol(symbol)));
        i += 1;
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    at: usize,
    pvalues: Vec<Value>,
    next_pvalue: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|(_, t)| t)
    }

    fn position(&self) -> usize {
        self.tokens.get(self.at).map_or(self.end, |(p, _)| *p)
    }

    fn error<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at {}", self.position()))
    }

    fn keyword(&mut self, word: &str) -> bool {
        match self.peek() {
            Some(Token::Word(w)) if w.eq_ignore_ascii_case(word) => {
                self.at += 1;
                true
            }
            _ => false,
        }
    }

    fn expect_keyword(&mut self, word: &str) -> Result<(), String> {
        if self.keyword(word) {
            Ok(())
        } else {
            self.error(&format!("Expected {word}"))
        }
    }

    fn symbol(&mut self, symbol: &str) -> bool {
        if self.peek() == Some(&Token::Symbol(symbol_static(symbol))) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect_symbol(&mut self, symbol: &str) -> Result<(), String> {
        if self.symbol(symbol) {
            Ok(())
        } else {
            self.error(&format!("Expected {symbol}"))
        }
    }

    fn identifier(&mut self) -> Result<String, String> {
        match self.peek() {
            Some(Token::Word(w)) if !is_reserved(w) => {
                let w = w.clone();
                self.at += 1;
                Ok(w)
            }
            _ => self.error("Expected a field name"),
        }
    }

    fn integer(&mut self) -> Result<u64, String> {
        match self.peek() {
            Some(Token::Number(n)) if n.as_u64().is_some() => {
                let n = n.as_u64().unwrap_or(0);
                self.at += 1;
                Ok(n)
            }
            Some(Token::Placeholder) => {
                self.at += 1;
                let v = self.pvalue()?;
                v.as_u64()
                    .ok_or_else(|| format!("Expected a whole number in pvalues, got {v}"))
            }
            _ => self.error("Expected a whole number"),
        }
    }

    fn pvalue(&mut self) -> Result<Value, String> {
        let v = self.pvalues.get(self.next_pvalue).cloned().ok_or_else(|| {
            format!(
                "pvalues has no value for placeholder {}",
                self.next_pvalue + 1
            )
        })?;
        self.next_pvalue += 1;
        Ok(v)
    }

    fn text(&mut self) -> Result<String, String> {
        match self.peek() {
            Some(Token::Text(t)) => {
                let t = t.clone();
                self.at += 1;
                Ok(t)
            }
            Some(Token::Placeholder) => {
                self.at += 1;
                match self.pvalue()? {
                    Value::String(s) => Ok(s),
                    other => Err(format!("Expected text in pvalues, got {other}")),
                }
            }
            _ => self.error("Expected text"),
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        let token = self.peek().cloned();
        match token {
            Some(Token::Number(n)) => {
                self.at += 1;
                Ok(n)
            }
            Some(Token::Text(t)) => {
                self.at += 1;
                Ok(Value::String(t))
            }
            Some(Token::Placeholder) => {
                self.at += 1;
                self.pvalue()
            }
            Some(Token::Word(w)) => {
                self.at += 1;
                match w.to_ascii_lowercase().as_str() {
                    "true" => Ok(Value::Bool(true)),
                    "false" => Ok(Value::Bool(false)),
                    "null" => Ok(Value::Null),
                    "date" => {
                        self.expect_symbol("(")?;
                        let iso = self.text()?;
                        self.expect_symbol(")")?;
                        Ok(json!({"__type": "Date", "iso": iso}))
                    }
                    "pointer" => {
                        self.expect_symbol("(")?;
                        let class = self.text()?;
                        self.expect_symbol(",")?;
                        let id = self.text()?;
                        self.expect_symbol(")")?;
                        Ok(json!({"__type": "Pointer", "className": class, "objectId": id}))
                    }
                    _ => {
                        self.at -= 1;
                        self.error("Expected a value")
                    }
                }
            }
            _ => self.error("Expected a value"),
        }
    }

    fn or(&mut self) -> Result<Value, String> {
        let mut parts = vec![self.and()?];
        while self.keyword("or") {
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            json!({ "$or": parts })
        })
    }

    fn and(&mut self) -> Result<Value, String> {
        let mut parts = vec![self.condition()?];
        while self.keyword("and") {
            parts.push(self.condition()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            json!({ "$and": parts })
        })
    }

    fn condition(&mut self) -> Result<Value, String> {
        if self.symbol("(") {
            let inner = self.or()?;
            self.expect_symbol(")")?;
            return Ok(inner);
        }
        let field = self.identifier()?;
        let test = |op: &str, v: Value| json!({ field.clone(): { op: v } });
        if self.keyword("is") {
            let negated = self.keyword("not");
            // `is exists` / `is not null`: the field is there; `is not exists` / `is null`: it is absent.
            let present = if self.keyword("exists") {
                !negated
            } else if self.keyword("null") {
                negated
            } else {
                return self.error("Expected exists or null");
            };
            return Ok(test("$exists", Value::Bool(present)));
        }
        let not_at = self.at;
        let negated = self.keyword("not");
        if self.keyword("in") {
            self.expect_symbol("(")?;
            let mut values = vec![self.value()?];
            while self.symbol(",") {
                values.push(self.value()?);
            }
            self.expect_symbol(")")?;
            return Ok(test(
                if negated { "$nin" } else { "$in" },
                Value::Array(values),
            ));
        }
        if self.keyword("like") {
            if negated {
                // The query language has no negated `$regex` to run it as.
                self.at = not_at;
                return self.error("not like is not supported");
            }
            return Ok(test("$regex", Value::String(like_regex(&self.text()?))));
        }
        if negated {
            return self.error("Expected in or like after not");
        }
        let op = match self.peek() {
            Some(Token::Symbol(s)) => *s,
            _ => return self.error("Expected a comparison"),
        };
        let op = match op {
            "=" => None,
            "!=" => Some("$ne"),
            "<" => Some("$lt"),
            "<=" => Some("$lte"),
            ">" => Some("$gt"),
            ">=" => Some("$gte"),
            _ => return self.error("Expected a comparison"),
        };
        self.at += 1;
        let value = self.value()?;
        Ok(match op {
            None => json!({ field: value }),
            Some(op) => test(op, value),
        })
    }
}

fn symbol_static(symbol: &str) -> &'static str {
    match symbol {
        "=" => "=",
        "!=" => "!=",
        "<" => "<",
        "<=" => "<=",
        ">" => ">",
        ">=" => ">=",
        "(" => "(",
        ")" => ")",
        "," => ",",
        _ => "*",
    }
}

fn is_reserved(word: &str) -> bool {
    [
        "select", "from", "where", "order", "by", "limit", "and", "or", "not", "in", "like", "is",
        "asc", "desc",
    ]
    .iter()
    .any(|r| word.eq_ignore_ascii_case(r))
}

/// A `like` pattern as an anchored regular expression: `%` any run, `_` one character, the rest literal.
fn like_regex(pattern: &str) -> String {
    let mut out = String::from("^");
    for c in pattern.chars() {
        match c {
            '%' => out.push_str(".*"),
            '_' => out.push('.'),
            c if "\\.+*?()|[]{}^$".contains(c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push('$');
    out
}

/// Translates `cql`, with `pvalues` for its `?` placeholders in order.
pub fn translate(cql: &str, pvalues: Vec<Value>) -> Result<Translated, String> {
    let mut p = Parser {
        tokens: tokenize(cql)?,
        at: 0,
        pvalues,
        next_pvalue: 0,
        end: cql.chars().count(),
    };
    p.expect_keyword("select")?;
    let (mut count, mut star, mut keys) = (false, false, Vec::new());
    loop {
        if p.symbol("*") {
            star = true;
        } else if p.keyword("count") {
            p.expect_symbol("(")?;
            p.expect_symbol("*")?;
            p.expect_symbol(")")?;
            count = true;
        } else {
            keys.push(p.identifier()?);
        }
        if !p.symbol(",") {
            break;
        }
    }
    p.expect_keyword("from")?;
    let class = p.identifier()?;
    let where_ = if p.keyword("where") {
        Some(p.or()?)
    } else {
        None
    };
    let mut order = Vec::new();
    if p.keyword("order") {
        p.expect_keyword("by")?;
        loop {
            let field = p.identifier()?;
            let descending = if p.keyword("desc") {
                true
            } else {
                p.keyword("asc");
                false
            };
            order.push((field, descending));
            if !p.symbol(",") {
                break;
            }
        }
    }
    let (mut limit, mut skip) = (None, None);
    if p.keyword("limit") {
        let first = p.integer()?;
        if p.symbol(",") {
            skip = Some(first);
            limit = Some(p.integer()?);
        } else {
            limit = Some(first);
        }
    }
    if p.at < p.tokens.len() {
        return p.error("Unexpected text");
    }
    let count_only = count && !star && keys.is_empty();
    Ok(Translated {
        class,
        where_,
        keys: (!star && !keys.is_empty()).then_some(keys),
        order,
        limit,
        skip,
        count,
        count_only,
    })
}

impl Translated {
    /// The find's query string parameters.
    pub fn find_params(&self) -> std::collections::HashMap<String, String> {
        let mut params = std::collections::HashMap::new();
        if let Some(w) = &self.where_ {
            params.insert("where".to_owned(), w.to_string());
        }
        if let Some(keys) = &self.keys {
            params.insert("keys".to_owned(), keys.join(","));
        }
        if !self.order.is_empty() {
            let order: Vec<String> = self
                .order
                .iter()
                .map(|(f, desc)| if *desc { format!("-{f}") } else { f.clone() })
                .collect();
            params.insert("order".to_owned(), order.join(","));
        }
        if self.count_only {
            params.insert("limit".to_owned(), "0".to_owned());
        } else if let Some(limit) = self.limit {
            params.insert("limit".to_owned(), limit.to_string());
        }
        if let Some(skip) = self.skip {
            params.insert("skip".to_owned(), skip.to_string());
        }
        if self.count {
            params.insert("count".to_owned(), "1".to_owned());
        }
        params
    }
}

/// The answer of a CQL query from the find's: `className` added, `results` empty for `count(*)` alone.
pub fn answer(t: &Translated, mut found: Value) -> Value {
    if let Value::Object(map) = &mut found {
        map.insert("className".to_owned(), Value::String(t.class.clone()));
        if t.count_only {
            map.insert("results".to_owned(), Value::Array(Vec::new()));
        }
    } else {
        let mut map = Map::new();
        map.insert("className".to_owned(), Value::String(t.class.clone()));
        found = Value::Object(map);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(cql: &str) -> Translated {
        translate(cql, Vec::new()).unwrap_or_else(|e| panic!("{cql}: {e}"))
    }

    #[test]
    fn the_python_sdks_query_translates_to_a_counted_find() {
        let q = t("select count(*), * from GameScore where score<11");
        assert_eq!("GameScore", q.class);
        assert_eq!(Some(json!({"score": {"$lt": 11}})), q.where_);
        assert_eq!((true, false, None), (q.count, q.count_only, q.keys.clone()));
        let params = q.find_params();
        assert_eq!(Some(&"1".to_owned()), params.get("count"));
        assert_eq!(None, params.get("limit"));
    }

    #[test]
    fn conditions_values_order_and_limit() {
        let q = translate(
            "SELECT name, score FROM Player WHERE (name = 'a''b' OR name like \"x%_.\") AND score >= ? \
             and team = pointer('Team', ?) and at < date('2026-01-01T00:00:00.000Z') and tag not in (1, 2.5, true) \
             and gone is not exists and here is exists ORDER BY score DESC, name asc LIMIT 10, 20",
            vec![json!(3), json!("t1")],
        )
        .expect("translates");
        assert_eq!(Some(vec!["name".to_owned(), "score".to_owned()]), q.keys);
        assert_eq!(
            Some(json!({"$and": [
                {"$or": [{"name": "a'b"}, {"name": {"$regex": "^x.*.\\.$"}}]},
                {"score": {"$gte": 3}},
                {"team": {"__type": "Pointer", "className": "Team", "objectId": "t1"}},
                {"at": {"$lt": {"__type": "Date", "iso": "2026-01-01T00:00:00.000Z"}}},
                {"tag": {"$nin": [1, 2.5, true]}},
                {"gone": {"$exists": false}},
                {"here": {"$exists": true}},
            ]})),
            q.where_
        );
        assert_eq!(
            vec![("score".to_owned(), true), ("name".to_owned(), false)],
            q.order
        );
        assert_eq!((Some(20), Some(10)), (q.limit, q.skip));
        let params = q.find_params();
        assert_eq!(Some(&"-score,name".to_owned()), params.get("order"));
        assert_eq!(Some(&"name,score".to_owned()), params.get("keys"));
    }

    #[test]
    fn count_alone_answers_no_objects() {
        let q = t("select count(*) from A");
        assert!(q.count_only);
        assert_eq!(Some(&"0".to_owned()), q.find_params().get("limit"));
        assert_eq!(
            json!({"results": [], "count": 4, "className": "A"}),
            answer(&q, json!({"results": [], "count": 4}))
        );
    }

    #[test]
    fn mistakes_are_named_with_their_position() {
        for (cql, error) in [
            ("", "Expected select at 0"),
            ("select * form A", "Expected from at 9"),
            ("select * from A where", "Expected a field name at 21"),
            ("select * from A where x ==", "Expected a value at 25"),
            (
                "select * from A where x = 'open",
                "Unterminated string at 26",
            ),
            (
                "select * from A where x = ?",
                "pvalues has no value for placeholder 1",
            ),
            ("select * from A limit 5 extra", "Unexpected text at 24"),
            (
                "select * from A where x ; drop",
                "Unexpected character at 24: ;",
            ),
            (
                "select * from A where x not like 'a%'",
                "not like is not supported at 24",
            ),
        ] {
            assert_eq!(Err(error.to_owned()), translate(cql, Vec::new()), "{cql}");
        }
    }
}
