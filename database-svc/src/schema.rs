//! Collection schemas: a strict subset of JSON Schema (2020-12 keywords), enough to guard a
//! collection's shape. Unsupported keywords are refused when the schema is set — a schema
//! that silently did not check what it says would be worse than none.
//!
//! Supported: `type`, `properties`, `required`, `additionalProperties`, `items`, `enum`,
//! `const`, `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum`, `minLength`,
//! `maxLength`, `minItems`, `maxItems`; annotations `$schema`, `$id`, `$comment`, `title`,
//! `description`, `default`, `examples` are accepted and ignored.

use serde_json::{Map, Value};
use tansu_shared::Problem;

use crate::body::unprocessable;

const KEYWORDS: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "const",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "$schema",
    "$id",
    "$comment",
    "title",
    "description",
    "default",
    "examples",
];

const TYPES: &[&str] = &[
    "null", "boolean", "object", "array", "number", "string", "integer",
];

fn bad_schema(path: &str, detail: &str) -> Problem {
    unprocessable(
        "invalid-schema",
        "Invalid schema",
        format!("schema at {path}: {detail}"),
    )
}

/// Checks that `schema` uses only supported keywords, with well-formed values.
pub fn check_schema(schema: &Value) -> Result<(), Problem> {
    check_at(schema, "#")
}

fn check_at(schema: &Value, path: &str) -> Result<(), Problem> {
    let obj = match schema {
        Value::Bool(_) => return Ok(()),
        Value::Object(o) => o,
        _ => return Err(bad_schema(path, "must be an object or a boolean")),
    };
    for (k, v) in obj {
        let here = format!("{path}/{k}");
        match k.as_str() {
            "type" => {
                let ok = |t: &Value| t.as_str().is_some_and(|t| TYPES.contains(&t));
                let valid = match v {
                    Value::Array(ts) => !ts.is_empty() && ts.iter().all(ok),
                    t => ok(t),
                };
                if !valid {
                    return Err(bad_schema(&here, "unknown type"));
                }
            }
            "properties" => {
                let Value::Object(props) = v else {
                    return Err(bad_schema(&here, "must be an object"));
                };
                for (name, sub) in props {
                    check_at(sub, &format!("{here}/{name}"))?;
                }
            }
            "additionalProperties" | "items" => check_at(v, &here)?,
            "required" => {
                if !v.as_array().is_some_and(|a| a.iter().all(Value::is_string)) {
                    return Err(bad_schema(&here, "must be an array of strings"));
                }
            }
            "enum" => {
                if !v.is_array() {
                    return Err(bad_schema(&here, "must be an array"));
                }
            }
            "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" => {
                if !v.is_number() {
                    return Err(bad_schema(&here, "must be a number"));
                }
            }
            "minLength" | "maxLength" | "minItems" | "maxItems" => {
                if v.as_u64().is_none() {
                    return Err(bad_schema(&here, "must be a non-negative integer"));
                }
            }
            k if KEYWORDS.contains(&k) => {}
            k => {
                return Err(bad_schema(
                    path,
                    &format!(
                        "keyword {:?} is not supported",
                        k.chars().take(40).collect::<String>()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Validates a document; the first violation is reported with its JSON Pointer.
pub fn validate(schema: &Value, doc: &Value) -> Result<(), Problem> {
    validate_at(schema, doc, "").map_err(|(at, why)| {
        let at = if at.is_empty() { "/".to_owned() } else { at };
        unprocessable(
            "schema-violation",
            "Document does not match the collection's schema",
            format!("at {at}: {why}"),
        )
        .with_extension("pointer", at)
    })
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Object(_) => "object",
        Value::Array(_) => "array",
        Value::Number(_) => "number",
        Value::String(_) => "string",
    }
}

fn has_type(v: &Value, t: &str) -> bool {
    match t {
        "integer" => {
            v.as_i64().is_some()
                || v.as_u64().is_some()
                || v.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        t => type_of(v) == t,
    }
}

type Violation = (String, String);

fn validate_at(schema: &Value, v: &Value, at: &str) -> Result<(), Violation> {
    let s: &Map<String, Value> = match schema {
        Value::Bool(true) => return Ok(()),
        Value::Bool(false) => return Err((at.to_owned(), "no value is allowed here".into())),
        Value::Object(o) => o,
        _ => return Ok(()),
    };
    let fail = |why: String| Err((at.to_owned(), why));
    if let Some(t) = s.get("type") {
        let ok = match t {
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).any(|t| has_type(v, t)),
            t => t.as_str().is_some_and(|t| has_type(v, t)),
        };
        if !ok {
            return fail(format!("expected type {t}, found {}", type_of(v)));
        }
    }
    if let Some(Value::Array(options)) = s.get("enum")
        && !options.contains(v)
    {
        return fail("value is not one of the allowed values".into());
    }
    if let Some(c) = s.get("const")
        && c != v
    {
        return fail("value does not equal the constant".into());
    }
    if let Some(n) = v.as_f64() {
        let num = |k: &str| s.get(k).and_then(Value::as_f64);
        if num("minimum").is_some_and(|m| n < m) {
            return fail(format!("{n} is below the minimum"));
        }
        if num("maximum").is_some_and(|m| n > m) {
            return fail(format!("{n} is above the maximum"));
        }
        if num("exclusiveMinimum").is_some_and(|m| n <= m) {
            return fail(format!("{n} is not above the exclusive minimum"));
        }
        if num("exclusiveMaximum").is_some_and(|m| n >= m) {
            return fail(format!("{n} is not below the exclusive maximum"));
        }
    }
    let count = |k: &str| s.get(k).and_then(Value::as_u64);
    if let Value::String(text) = v {
        let len = text.chars().count() as u64;
        if count("minLength").is_some_and(|m| len < m) {
            return fail("string is too short".into());
        }
        if count("maxLength").is_some_and(|m| len > m) {
            return fail("string is too long".into());
        }
    }
    if let Value::Array(items) = v {
        let len = items.len() as u64;
        if count("minItems").is_some_and(|m| len < m) {
            return fail("array has too few items".into());
        }
        if count("maxItems").is_some_and(|m| len > m) {
            return fail("array has too many items".into());
        }
        if let Some(item_schema) = s.get("items") {
            for (i, item) in items.iter().enumerate() {
                validate_at(item_schema, item, &format!("{at}/{i}"))?;
            }
        }
    }
    if let Value::Object(obj) = v {
        if let Some(Value::Array(required)) = s.get("required") {
            for r in required.iter().filter_map(Value::as_str) {
                if !obj.contains_key(r) {
                    return fail(format!("required property {r:?} is missing"));
                }
            }
        }
        let props = s.get("properties").and_then(Value::as_object);
        for (k, val) in obj {
            let here = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
            match props.and_then(|p| p.get(k)) {
                Some(sub) => validate_at(sub, val, &here)?,
                None => {
                    if let Some(extra) = s.get("additionalProperties") {
                        validate_at(extra, val, &here)?;
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subset() {
        let schema = json!({
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "age": {"type": "integer", "minimum": 0},
                "tags": {"type": "array", "items": {"type": "string"}}
            },
            "additionalProperties": false
        });
        check_schema(&schema).unwrap();
        validate(&schema, &json!({"name": "a", "age": 3, "tags": ["x"]})).unwrap();
        for bad in [
            json!({}),
            json!({"name": ""}),
            json!({"name": "a", "age": -1}),
            json!({"name": "a", "age": 1.5}),
            json!({"name": "a", "tags": [1]}),
            json!({"name": "a", "other": 1}),
        ] {
            assert!(validate(&schema, &bad).is_err(), "{bad}");
        }
        assert!(check_schema(&json!({"pattern": "x"})).is_err());
        assert!(check_schema(&json!({"type": "thing"})).is_err());
    }
}
