//! Request bodies and JSON helpers: every malformed, oversized or too deeply nested body is
//! answered with problem+json (400/413/422), never with a 500 or axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tansu_shared::Problem;

pub use tansu_shared::extract::{PathParams, QueryParams};

use crate::AppState;
use crate::ident::FieldPath;

/// A JSON body, bounded in size (`max_body_bytes`, 413) and nesting (`max_depth`, 400), then
/// deserialised into `T` (422 when the shape is wrong).
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Problem> {
        let limit = state.config.max_body_bytes;
        let body = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|e| {
                // `to_bytes` fails on the length limit or on a broken stream.
                if is_length_limit(&e) {
                    Problem::payload_too_large()
                        .with_detail(format!("request bodies are limited to {limit} bytes"))
                } else {
                    Problem::bad_request("the request body could not be read")
                }
            })?;
        let value = parse_json(&body, state.config.max_depth)?;
        serde_json::from_value(value)
            .map(JsonBody)
            .map_err(|e| unprocessable("invalid-body", "Invalid request body", e.to_string()))
    }
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// Parses JSON with a nesting bound checked before parsing (serde_json's own recursion guard
/// sits at 128 and answers with a generic error; ours names the limit).
pub fn parse_json(bytes: &Bytes, max_depth: usize) -> Result<Value, Problem> {
    let depth = raw_depth(bytes);
    if depth > max_depth {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "too-deep",
            "JSON nested too deeply",
        )
        .with_detail(format!("JSON nesting is limited to {max_depth} levels")));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        Problem::new(StatusCode::BAD_REQUEST, "malformed-json", "Malformed JSON")
            .with_detail(e.to_string())
    })
}

/// The maximum nesting of `[`/`{` outside strings (a lexical scan; the parser checks the rest).
fn raw_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max, mut in_str, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_str {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

pub fn unprocessable(slug: &str, title: &'static str, detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY, slug, title).with_detail(detail)
}

/// Whether any string or key in `v` contains U+0000 (PostgreSQL's `jsonb` and `text` cannot
/// store it, so it is refused on both engines alike).
pub fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// A document body must be a JSON object within the size limit.
pub fn check_document(value: &Value, max_bytes: usize) -> Result<(), Problem> {
    if !value.is_object() {
        return Err(unprocessable(
            "invalid-document",
            "Invalid document",
            "a document must be a JSON object",
        ));
    }
    if has_nul(value) {
        return Err(unprocessable(
            "invalid-document",
            "Invalid document",
            "strings must not contain U+0000",
        ));
    }
    let size = serde_json::to_vec(value)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > max_bytes {
        return Err(Problem::payload_too_large()
            .with_detail(format!("documents are limited to {max_bytes} bytes")));
    }
    Ok(())
}

/// JSON Merge Patch (RFC 7386 §2).
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in patch {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// Keeps only the given fields of a document (absent ones stay absent).
pub fn project(doc: &Value, fields: &[FieldPath]) -> Value {
    let mut out = Value::Object(Map::new());
    for f in fields {
        let mut src = doc;
        let mut found = true;
        for seg in f.segments() {
            match src.get(seg) {
                Some(v) => src = v,
                None => {
                    found = false;
                    break;
                }
            }
        }
        if !found {
            continue;
        }
        let mut dst = &mut out;
        let (last, parents) = f.segments().split_last().expect("paths are non-empty");
        for seg in parents {
            let Value::Object(m) = dst else { break };
            dst = m
                .entry(seg.clone())
                .or_insert_with(|| Value::Object(Map::new()));
        }
        if let Value::Object(m) = dst {
            m.insert(last.clone(), src.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc7386_examples() {
        // RFC 7386 Appendix A.
        let cases = [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (
                json!({"a":"b","b":"c"}),
                json!({"a":null}),
                json!({"b":"c"}),
            ),
            (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"c"}), json!({"a":["b"]}), json!({"a":["b"]})),
            (
                json!({"a":{"b":"c"}}),
                json!({"a":{"b":"d","c":null}}),
                json!({"a":{"b":"d"}}),
            ),
            (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a":"b"}), json!(["c"]), json!(["c"])),
            (json!({"a":"foo"}), json!(null), json!(null)),
            (json!({"a":"foo"}), json!("bar"), json!("bar")),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (json!([1, 2]), json!({"a":"b","c":null}), json!({"a":"b"})),
            (
                json!({}),
                json!({"a":{"bb":{"ccc":null}}}),
                json!({"a":{"bb":{}}}),
            ),
        ];
        for (mut target, patch, expected) in cases {
            merge_patch(&mut target, &patch);
            assert_eq!(target, expected, "patch {patch}");
        }
    }

    #[test]
    fn depth_is_lexical_and_ignores_strings() {
        assert_eq!(raw_depth(br#"{"a":[1,{"b":"[[[[{{"}]}"#), 3);
        assert_eq!(raw_depth(br#""\"[""#), 0);
    }

    #[test]
    fn projection() {
        let doc = json!({"a":1,"b":{"c":2,"d":3},"e":4});
        let fields = [
            FieldPath::parse("a").unwrap(),
            FieldPath::parse("b.c").unwrap(),
            FieldPath::parse("x.y").unwrap(),
        ];
        assert_eq!(project(&doc, &fields), json!({"a":1,"b":{"c":2}}));
    }
}
