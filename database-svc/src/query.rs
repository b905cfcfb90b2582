//! Document queries: a small filter language on JSON fields, translated to SQL in both
//! dialects with every value bound as a parameter.
//!
//! ```json
//! { "filter": { "status": "paid", "total": { "$gte": 10, "$lt": 100 },
//!               "tags": { "$in": ["a", "b"] }, "note": { "$exists": false } },
//!   "sort": ["-total", "customer.name"], "fields": ["total", "customer.name"],
//!   "limit": 50, "cursor": "…" }
//! ```
//!
//! Semantics shared by both engines: a comparison matches only fields of the operand's JSON
//! type (`"5"` never equals `5`, `true` never equals `1`); a missing field matches nothing but
//! `{"$exists": false}`. Field names are [`FieldPath`]s (validated, spliced as JSON-path
//! literals so that indexes on the same expression apply); values are bound.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tansu_shared::Problem;

use crate::body::unprocessable;
use crate::ident::FieldPath;

pub use tansu_shared::db::Dialect;

/// A bound value.
#[derive(Debug, Clone)]
pub enum Arg {
    Text(String),
    Int(i64),
    Float(f64),
    Json(Value),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Cmp {
    fn sql(self) -> &'static str {
        match self {
            Cmp::Gt => ">",
            Cmp::Gte => ">=",
            Cmp::Lt => "<",
            Cmp::Lte => "<=",
        }
    }
}

#[derive(Debug, Clone)]
enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl Scalar {
    fn from_json(v: &Value, field: &str) -> Result<Self, Problem> {
        Ok(match v {
            Value::Null => Scalar::Null,
            Value::Bool(b) => Scalar::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Scalar::Int(i),
                None => Scalar::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => Scalar::Str(s.clone()),
            Value::Array(_) | Value::Object(_) => {
                return Err(invalid(format!(
                    "filter on {field}: only strings, numbers, booleans and null can be compared"
                )));
            }
        })
    }

    fn to_json(&self) -> Value {
        match self {
            Scalar::Null => Value::Null,
            Scalar::Bool(b) => Value::Bool(*b),
            Scalar::Int(i) => Value::from(*i),
            Scalar::Float(f) => Value::from(*f),
            Scalar::Str(s) => Value::String(s.clone()),
        }
    }
}

#[derive(Debug, Clone)]
enum Cond {
    Eq(FieldPath, Scalar),
    Range(FieldPath, Cmp, Scalar),
    In(FieldPath, Vec<Scalar>),
    Exists(FieldPath, bool),
}

/// The wire form of a query (`POST …/query`).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct QueryRequest {
    /// Conditions on field paths (`{"age": {"$gte": 18}}`).
    #[schema(value_type = Object)]
    pub filter: Map<String, Value>,
    pub sort: Vec<String>,
    pub fields: Option<Vec<String>>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Where a page starts: after the last row of the previous page — its id in the default
/// order; its sort keys and id with an explicit sort (keyset paging: rows inserted or deleted
/// meanwhile never shift a later page, so no row is skipped or repeated).
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Cursor {
    #[serde(rename = "a")]
    After(String),
    #[serde(rename = "k")]
    Keyset {
        /// The sort this cursor belongs to (`-a.b` for descending).
        s: Vec<String>,
        /// The last row's value of each sort field.
        k: Vec<Key>,
        id: String,
    },
}

/// A sort key in a cursor: JSON `null` and a missing field sort differently on PostgreSQL,
/// so they are kept apart (an `Option<Value>` would read `null` back as missing).
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Key {
    #[serde(rename = "m")]
    Missing,
    #[serde(rename = "v")]
    Value(Value),
}

/// A validated query.
#[derive(Debug, Clone)]
pub struct DocQuery {
    conds: Vec<Cond>,
    sort: Vec<(FieldPath, bool)>,
    pub fields: Option<Vec<FieldPath>>,
    pub limit: u32,
    cursor: Option<Cursor>,
}

const MAX_CONDS: usize = 32;
const MAX_IN: usize = 100;
const MAX_SORT: usize = 4;

fn invalid(detail: String) -> Problem {
    unprocessable("invalid-query", "Invalid query", detail)
}

impl DocQuery {
    pub fn parse(req: QueryRequest, default_limit: u32, max_limit: u32) -> Result<Self, Problem> {
        let mut conds = Vec::new();
        for (field, spec) in &req.filter {
            if field.starts_with('$') {
                return Err(invalid(format!("unknown operator {}", short(field))));
            }
            let path = FieldPath::parse(field)?;
            match spec {
                Value::Object(ops) => {
                    if ops.is_empty() {
                        return Err(invalid(format!("filter on {field}: no operator")));
                    }
                    for (op, v) in ops {
                        conds.push(parse_op(&path, field, op, v)?);
                    }
                }
                v => conds.push(Cond::Eq(path, Scalar::from_json(v, field)?)),
            }
        }
        if conds.len() > MAX_CONDS {
            return Err(invalid(format!("at most {MAX_CONDS} conditions per query")));
        }
        if req.sort.len() > MAX_SORT {
            return Err(invalid(format!("at most {MAX_SORT} sort fields")));
        }
        let sort = req
            .sort
            .iter()
            .map(|s| match s.strip_prefix('-') {
                Some(f) => FieldPath::parse(f).map(|p| (p, true)),
                None => FieldPath::parse(s.strip_prefix('+').unwrap_or(s)).map(|p| (p, false)),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let fields = req
            .fields
            .map(|fs| {
                if fs.len() > MAX_CONDS {
                    return Err(invalid(format!("at most {MAX_CONDS} projected fields")));
                }
                fs.iter()
                    .map(|f| FieldPath::parse(f))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        let limit = req.limit.unwrap_or(default_limit);
        if limit == 0 || limit > max_limit {
            return Err(invalid(format!("limit must be between 1 and {max_limit}")));
        }
        let cursor = req.cursor.as_deref().map(decode_cursor).transpose()?;
        let belongs = match &cursor {
            None => true,
            Some(Cursor::After(_)) => sort.is_empty(),
            Some(Cursor::Keyset { s, k, .. }) => {
                !sort.is_empty() && k.len() == sort.len() && *s == sort_spec(&sort)
            }
        };
        if !belongs {
            return Err(invalid("the cursor belongs to a different query".into()));
        }
        Ok(Self {
            conds,
            sort,
            fields,
            limit,
            cursor,
        })
    }

    /// The cursor for the page after one ending with the document `last_id` = `last`.
    pub fn next_cursor(&self, last_id: &str, last: &Value) -> String {
        let c = if self.sort.is_empty() {
            Cursor::After(last_id.to_owned())
        } else {
            Cursor::Keyset {
                s: sort_spec(&self.sort),
                k: self
                    .sort
                    .iter()
                    .map(|(p, _)| lookup(last, p).map_or(Key::Missing, |v| Key::Value(v.clone())))
                    .collect(),
                id: last_id.to_owned(),
            }
        };
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap_or_default())
    }

    /// `SELECT {columns} FROM documents WHERE collection = $1 AND …`; the collection is bound
    /// first by the caller, then the returned arguments in order. Fetches one row more than
    /// the limit to tell whether a next page exists.
    pub fn to_sql(&self, d: Dialect, columns: &str) -> (String, Vec<Arg>) {
        let mut b = Builder {
            d,
            args: Vec::new(),
        };
        let mut sql = format!("SELECT {columns} FROM documents WHERE collection = $1");
        for c in &self.conds {
            sql.push_str(" AND ");
            sql.push_str(&b.cond(c));
        }
        match &self.cursor {
            Some(Cursor::After(id)) => {
                let p = b.bind(Arg::Text(id.clone()));
                sql.push_str(&format!(" AND id > {p}"));
            }
            Some(Cursor::Keyset { k, id, .. }) => {
                sql.push_str(" AND ");
                sql.push_str(&b.after(&self.sort, k, id));
            }
            None => {}
        }
        sql.push_str(" ORDER BY ");
        for (path, desc) in &self.sort {
            let dir = if *desc { "DESC" } else { "ASC" };
            let nulls = match (d, desc) {
                // PostgreSQL puts NULLs first on DESC; SQLite last. Missing fields go last in
                // both.
                (Dialect::Postgres, true) => " NULLS LAST",
                (Dialect::Sqlite, false) => " NULLS LAST",
                _ => "",
            };
            sql.push_str(&format!("{} {dir}{nulls}, ", value_expr(d, path)));
        }
        sql.push_str("id ASC");
        let limit = b.bind(Arg::Int(i64::from(self.limit) + 1));
        sql.push_str(&format!(" LIMIT {limit}"));
        (sql, b.args)
    }
}

fn sort_spec(sort: &[(FieldPath, bool)]) -> Vec<String> {
    sort.iter()
        .map(|(p, desc)| format!("{}{}", if *desc { "-" } else { "" }, p.dotted()))
        .collect()
}

/// The value at a field path, as both engines' path expressions find it: through objects
/// only; `None` when missing.
fn lookup<'a>(doc: &'a Value, p: &FieldPath) -> Option<&'a Value> {
    p.segments()
        .iter()
        .try_fold(doc, |v, seg| v.as_object().and_then(|o| o.get(seg)))
}

fn short(s: &str) -> String {
    s.chars().take(40).collect()
}

fn parse_op(path: &FieldPath, field: &str, op: &str, v: &Value) -> Result<Cond, Problem> {
    let cmp = |c: Cmp| -> Result<Cond, Problem> {
        let s = Scalar::from_json(v, field)?;
        match s {
            Scalar::Int(_) | Scalar::Float(_) | Scalar::Str(_) => {
                Ok(Cond::Range(path.clone(), c, s))
            }
            _ => Err(invalid(format!(
                "{op} on {field}: only numbers and strings can be ordered"
            ))),
        }
    };
    match op {
        "$eq" => Ok(Cond::Eq(path.clone(), Scalar::from_json(v, field)?)),
        "$gt" => cmp(Cmp::Gt),
        "$gte" => cmp(Cmp::Gte),
        "$lt" => cmp(Cmp::Lt),
        "$lte" => cmp(Cmp::Lte),
        "$in" => {
            let Value::Array(items) = v else {
                return Err(invalid(format!("$in on {field}: expects an array")));
            };
            if items.len() > MAX_IN {
                return Err(invalid(format!("$in on {field}: at most {MAX_IN} values")));
            }
            let values = items
                .iter()
                .map(|i| Scalar::from_json(i, field))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Cond::In(path.clone(), values))
        }
        "$exists" => match v {
            Value::Bool(b) => Ok(Cond::Exists(path.clone(), *b)),
            _ => Err(invalid(format!(
                "$exists on {field}: expects true or false"
            ))),
        },
        other => Err(invalid(format!("unknown operator {}", short(other)))),
    }
}

fn decode_cursor(s: &str) -> Result<Cursor, Problem> {
    URL_SAFE_NO_PAD
        .decode(s.as_bytes())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| Problem::bad_request("invalid cursor"))
}

/// The expression a field path compares and sorts by (and that indexes are built on).
fn value_expr(d: Dialect, p: &FieldPath) -> String {
    match d {
        Dialect::Sqlite => format!("json_extract(body, '{}')", p.sqlite_path()),
        Dialect::Postgres => format!("(body #> '{}')", p.pg_path()),
    }
}

struct Builder {
    d: Dialect,
    args: Vec<Arg>,
}

impl Builder {
    /// Adds an argument; returns its placeholder (`$2`, `$3`, … after the collection's `$1`).
    fn bind(&mut self, a: Arg) -> String {
        self.args.push(a);
        format!("${}", self.args.len() + 1)
    }

    /// The sort key as the engine's sort expression yields it, or `None` when that is SQL
    /// `NULL`. PostgreSQL: the jsonb value (JSON `null` included; only a missing field is
    /// `NULL`). SQLite: what `json_extract` returns — `NULL` for JSON `null`, 1/0 for booleans,
    /// the minified JSON text for arrays and objects.
    fn sort_key(&mut self, key: &Key) -> Option<String> {
        let Key::Value(v) = key else { return None };
        let arg = match self.d {
            Dialect::Postgres => Arg::Json(v.clone()),
            Dialect::Sqlite => match v {
                Value::Null => return None,
                Value::Bool(b) => Arg::Int(i64::from(*b)),
                Value::Number(n) => match n.as_i64() {
                    Some(i) => Arg::Int(i),
                    None => Arg::Float(n.as_f64().unwrap_or(f64::NAN)),
                },
                Value::String(t) => Arg::Text(t.clone()),
                other => Arg::Text(other.to_string()),
            },
        };
        Some(self.bind(arg))
    }

    /// Rows after the cursor's row in `ORDER BY k1, …, kn, id` (each key ascending or
    /// descending, missing keys last): lexicographic, as a disjunction
    /// `k1 after c1 OR (k1 = c1 AND k2 after c2) OR … OR (all equal AND id > cid)`.
    fn after(&mut self, sort: &[(FieldPath, bool)], keys: &[Key], id: &str) -> String {
        let mut ors = Vec::new();
        let mut equal: Vec<String> = Vec::new();
        for ((path, desc), key) in sort.iter().zip(keys) {
            let e = value_expr(self.d, path);
            match self.sort_key(key) {
                Some(v) => {
                    let cmp = if *desc { "<" } else { ">" };
                    // A missing key sorts after every present one.
                    let after = format!("({e} {cmp} {v} OR {e} IS NULL)");
                    let mut conj = equal.clone();
                    conj.push(after);
                    ors.push(format!("({})", conj.join(" AND ")));
                    let v = self.sort_key(key).unwrap_or_default();
                    equal.push(format!("{e} = {v}"));
                }
                // Nothing present sorts after a missing key: only equally missing rows follow.
                None => equal.push(format!("{e} IS NULL")),
            }
        }
        let p = self.bind(Arg::Text(id.to_owned()));
        equal.push(format!("id > {p}"));
        ors.push(format!("({})", equal.join(" AND ")));
        format!("({})", ors.join(" OR "))
    }

    fn cond(&mut self, c: &Cond) -> String {
        match c {
            Cond::Eq(p, s) => self.eq(p, s),
            Cond::Range(p, cmp, s) => {
                let e = value_expr(self.d, p);
                let guard = self.type_guard(p, s);
                let v = self.value(s);
                format!("({guard} AND {e} {} {v})", cmp.sql())
            }
            Cond::In(p, values) => {
                if values.is_empty() {
                    return "1 = 0".into();
                }
                let parts: Vec<String> = values.iter().map(|s| self.eq(p, s)).collect();
                format!("({})", parts.join(" OR "))
            }
            Cond::Exists(p, yes) => {
                let e = match self.d {
                    Dialect::Sqlite => format!("json_type(body, '{}')", p.sqlite_path()),
                    Dialect::Postgres => value_expr(self.d, p),
                };
                if *yes {
                    format!("{e} IS NOT NULL")
                } else {
                    format!("{e} IS NULL")
                }
            }
        }
    }

    fn eq(&mut self, p: &FieldPath, s: &Scalar) -> String {
        match self.d {
            // jsonb equality is type-exact already.
            Dialect::Postgres => {
                let v = self.bind(Arg::Json(s.to_json()));
                format!("{} = {v}", value_expr(self.d, p))
            }
            Dialect::Sqlite => {
                let t = format!("json_type(body, '{}')", p.sqlite_path());
                match s {
                    Scalar::Null => format!("{t} = 'null'"),
                    Scalar::Bool(true) => format!("{t} = 'true'"),
                    Scalar::Bool(false) => format!("{t} = 'false'"),
                    _ => {
                        let guard = self.type_guard(p, s);
                        let v = self.value(s);
                        format!("({guard} AND {} = {v})", value_expr(self.d, p))
                    }
                }
            }
        }
    }

    fn type_guard(&self, p: &FieldPath, s: &Scalar) -> String {
        let numeric = matches!(s, Scalar::Int(_) | Scalar::Float(_));
        match self.d {
            Dialect::Sqlite => {
                let t = format!("json_type(body, '{}')", p.sqlite_path());
                if numeric {
                    format!("{t} IN ('integer', 'real')")
                } else {
                    format!("{t} = 'text'")
                }
            }
            Dialect::Postgres => {
                let t = format!("jsonb_typeof{}", value_expr(self.d, p));
                if numeric {
                    format!("{t} = 'number'")
                } else {
                    format!("{t} = 'string'")
                }
            }
        }
    }

    /// The bound operand of an ordered comparison.
    fn value(&mut self, s: &Scalar) -> String {
        match self.d {
            Dialect::Postgres => self.bind(Arg::Json(s.to_json())),
            Dialect::Sqlite => match s {
                Scalar::Int(i) => self.bind(Arg::Int(*i)),
                Scalar::Float(f) => self.bind(Arg::Float(*f)),
                Scalar::Str(t) => self.bind(Arg::Text(t.clone())),
                Scalar::Null | Scalar::Bool(_) => self.bind(Arg::Json(s.to_json())),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(v: Value) -> Result<DocQuery, Problem> {
        DocQuery::parse(serde_json::from_value(v).unwrap(), 100, 1000)
    }

    #[test]
    fn values_are_bound_and_paths_validated() {
        let dq = q(json!({"filter": {"name": "x' OR 1=1 --", "age": {"$gte": 18}}})).unwrap();
        let (sql, args) = dq.to_sql(Dialect::Sqlite, "id");
        assert!(!sql.contains("OR 1=1"), "{sql}");
        assert_eq!(args.len(), 3, "{args:?}");
        let (sql, _) = dq.to_sql(Dialect::Postgres, "id");
        assert!(sql.contains("(body #> '{age}')"), "{sql}");
        assert!(q(json!({"filter": {"a') OR 1=1 --": 1}})).is_err());
        assert!(q(json!({"sort": ["a'"]})).is_err());
    }

    #[test]
    fn sorted_cursors_are_keysets_that_keep_null_apart_from_missing() {
        let first = q(json!({"sort": ["-a", "b.c"], "limit": 2})).unwrap();
        let cursor = first.next_cursor("d1", &json!({"a": null}));
        let next = q(json!({"sort": ["-a", "b.c"], "cursor": cursor})).unwrap();
        match &next.cursor {
            Some(Cursor::Keyset { k, id, .. }) => {
                assert!(matches!(&k[0], Key::Value(Value::Null)), "{k:?}");
                assert!(matches!(&k[1], Key::Missing), "{k:?}");
                assert_eq!(id, "d1");
            }
            other => panic!("{other:?}"),
        }
        // PostgreSQL: JSON null is a value (bound), missing is IS NULL; no OFFSET anywhere.
        let (sql, args) = next.to_sql(Dialect::Postgres, "id");
        assert!(sql.contains("IS NULL") && !sql.contains("OFFSET"), "{sql}");
        assert!(
            args.iter().any(|a| matches!(a, Arg::Json(Value::Null))),
            "{args:?}"
        );
        // SQLite: json_extract yields NULL for both.
        let (sql, _) = next.to_sql(Dialect::Sqlite, "id");
        assert!(!sql.contains("OFFSET"), "{sql}");
        // A cursor belongs to its sort.
        assert!(q(json!({"sort": ["a", "b.c"], "cursor": cursor})).is_err());
        assert!(q(json!({"cursor": cursor})).is_err());
        let plain = q(json!({})).unwrap().next_cursor("d1", &json!({}));
        assert!(q(json!({"sort": ["a"], "cursor": plain})).is_err());
    }

    #[test]
    fn unknown_operators_and_bad_operands_are_rejected() {
        assert!(q(json!({"filter": {"a": {"$regex": "x"}}})).is_err());
        assert!(q(json!({"filter": {"$or": []}})).is_err());
        assert!(q(json!({"filter": {"a": {"$gt": true}}})).is_err());
        assert!(q(json!({"filter": {"a": {"$in": 3}}})).is_err());
        assert!(q(json!({"filter": {"a": [1]}})).is_err());
        assert!(q(json!({"limit": 0})).is_err());
        assert!(q(json!({"cursor": "!!"})).is_err());
    }
}
