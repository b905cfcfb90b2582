//! Collection schemas: JSON Schema as implemented by the `jsonschema` crate (every draft it
//! knows; 2020-12 when `$schema` does not say otherwise).
//!
//! A schema is compiled when the collection is created — one the crate refuses (not valid
//! against its meta-schema, an unresolvable `$ref`, a bad `pattern`) is `422 invalid-schema` —
//! and again for each write that validates against it. Remote `$ref`s are never fetched (the
//! crate is built without its HTTP and file resolvers): only references inside the schema
//! resolve. `pattern` uses the linear-time `regex` engine, so a tenant's pattern cannot make
//! validation backtrack for ever. `format` is checked (not only annotated).
//!
//! Violations are `422 schema-violation` with `errors: [{pointer, schema_pointer, keyword,
//! message}]` (at most [`MAX_ERRORS`]) and the first error's `pointer` at the top level.
//! Messages mask the offending values: they name what is wrong, not the data.

use std::collections::HashMap;
use std::sync::Arc;

use jsonschema::{PatternOptions, Validator};
use serde_json::{Value, json};
use tansu_shared::Problem;

use crate::body::unprocessable;

/// Violations reported per document.
pub const MAX_ERRORS: usize = 10;

fn compile(schema: &Value) -> Result<Validator, jsonschema::ValidationError<'static>> {
    jsonschema::options()
        .should_validate_formats(true)
        .with_pattern_options(PatternOptions::regex())
        .build(schema)
}

/// Compiles `schema`: `422 invalid-schema` naming where it is wrong when the crate refuses it.
pub fn check_schema(schema: &Value) -> Result<(), Problem> {
    compile(schema).map(|_| ()).map_err(|e| {
        unprocessable(
            "invalid-schema",
            "Invalid schema",
            format!("schema at #{}: {}", e.instance_path(), e.masked()),
        )
        .with_extension("pointer", format!("#{}", e.instance_path()))
    })
}

/// A compiled collection schema (compile once per request, validate many documents).
pub struct CompiledSchema(Validator);

impl CompiledSchema {
    /// A stored schema that no longer compiles (a newer crate being stricter) is a server
    /// fault, not the client's: 500 without detail.
    pub fn new(schema: &Value) -> Result<Self, Problem> {
        compile(schema)
            .map(CompiledSchema)
            .map_err(|e| Problem::internal(&format!("stored collection schema: {e}")))
    }

    /// `422 schema-violation` with the crate's error paths when `doc` does not match.
    pub fn validate(&self, doc: &Value) -> Result<(), Problem> {
        let mut errors = Vec::new();
        let mut more = false;
        for e in self.0.iter_errors(doc) {
            if errors.len() == MAX_ERRORS {
                more = true;
                break;
            }
            errors.push(json!({
                "pointer": format!("#{}", e.instance_path()),
                "schema_pointer": format!("#{}", e.schema_path()),
                "keyword": e.kind().keyword(),
                "message": e.masked().to_string(),
            }));
        }
        let Some(first) = errors.first() else {
            return Ok(());
        };
        let pointer = first["pointer"].as_str().unwrap_or("#").to_owned();
        let message = first["message"].as_str().unwrap_or_default().to_owned();
        let mut p = unprocessable(
            "schema-violation",
            "Document does not match the collection schema",
            format!("at {pointer}: {message}"),
        )
        .with_extension("pointer", pointer)
        .with_extension("errors", Value::Array(errors));
        if more {
            p = p.with_extension("truncated", true);
        }
        Err(p)
    }
}

/// Compiled schemas by their JSON text, so a write compiles its collection's schema once per
/// process rather than once per request. Bounded: emptied when it reaches [`CACHE_SIZE`].
#[derive(Default)]
pub struct SchemaCache(std::sync::Mutex<HashMap<String, Arc<CompiledSchema>>>);

const CACHE_SIZE: usize = 1024;

impl std::fmt::Debug for SchemaCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaCache").finish_non_exhaustive()
    }
}

impl SchemaCache {
    pub fn get(&self, schema: &Value) -> Result<Arc<CompiledSchema>, Problem> {
        let key = schema.to_string();
        if let Some(c) = self.0.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(c.clone());
        }
        let compiled = Arc::new(CompiledSchema::new(schema)?);
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= CACHE_SIZE {
            map.clear();
        }
        map.insert(key, compiled.clone());
        Ok(compiled)
    }
}

/// Validates one document against a stored schema.
#[cfg(test)]
pub fn validate(schema: &Value, doc: &Value) -> Result<(), Problem> {
    CompiledSchema::new(schema)?.validate(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_vocabulary_with_error_paths() {
        let schema = json!({
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "minLength": 1, "pattern": "^[A-Z]"},
                "age": {"type": "integer", "minimum": 0},
                "email": {"type": "string", "format": "email"},
                "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": true},
                "kind": {"oneOf": [{"const": "a"}, {"const": "b"}]},
                "home": {"$ref": "#/$defs/address"}
            },
            "$defs": {"address": {"type": "object", "required": ["city"]}},
            "additionalProperties": false
        });
        check_schema(&schema).unwrap();
        let s = CompiledSchema::new(&schema).unwrap();
        s.validate(&json!({"name": "Ada", "age": 3, "tags": ["x"], "kind": "a",
                           "email": "ada@example.com", "home": {"city": "X"}}))
            .unwrap();
        for (bad, pointer) in [
            (json!({}), "#"),
            (json!({"name": ""}), "#/name"),
            (json!({"name": "ada"}), "#/name"),
            (json!({"name": "A", "age": -1}), "#/age"),
            (json!({"name": "A", "age": 1.5}), "#/age"),
            (json!({"name": "A", "tags": [1]}), "#/tags/0"),
            (json!({"name": "A", "tags": ["x", "x"]}), "#/tags"),
            (json!({"name": "A", "kind": "c"}), "#/kind"),
            (json!({"name": "A", "email": "nope"}), "#/email"),
            (json!({"name": "A", "home": {}}), "#/home"),
            (json!({"name": "A", "other": 1}), "#"),
        ] {
            let p = s.validate(&bad).expect_err(&bad.to_string());
            let body = serde_json::to_value(&p).unwrap();
            assert_eq!(body["pointer"], pointer, "{bad}: {body}");
            assert!(body["errors"].as_array().is_some_and(|e| !e.is_empty()));
        }
        // The cache hands out the same compiled schema.
        let cache = SchemaCache::default();
        assert!(Arc::ptr_eq(
            &cache.get(&schema).unwrap(),
            &cache.get(&schema).unwrap()
        ));
        // Many violations: capped.
        let many = json!({"type": "array", "items": {"type": "string"}});
        let p = validate(&many, &json!([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])).unwrap_err();
        let body = serde_json::to_value(&p).unwrap();
        assert_eq!(body["errors"].as_array().unwrap().len(), MAX_ERRORS);
        assert_eq!(body["truncated"], true);
    }

    #[test]
    fn invalid_schemas_are_refused() {
        for bad in [
            json!({"type": "thing"}),
            json!({"minLength": -1}),
            json!({"pattern": "("}),
            json!({"$ref": "https://example.com/remote.json"}),
            json!({"$ref": "#/$defs/missing"}),
            json!(3),
        ] {
            assert!(check_schema(&bad).is_err(), "{bad}");
        }
        // Keywords the old subset refused are now simply supported.
        check_schema(&json!({"pattern": "^x", "anyOf": [{"type": "string"}]})).unwrap();
    }
}
