//! Bad input is answered with 400/413/422 problem+json — never a 500, never executed as SQL.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tansu_shared::testing::http::SendOk;

const T: uuid::Uuid = TENANT_A;

async fn send_raw(
    env: &Env,
    method: Method,
    path: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    env.as_tenant(method, path, T)
        .header("content-type", "application/json")
        .body(body)
        .send_ok()
        .await
}

#[tokio::test]
async fn bad_input_is_a_client_error() {
    let small = |c: &mut tansu_database::Config| {
        c.max_body_bytes = 64 * 1024;
        c.max_document_bytes = 16 * 1024;
        c.max_depth = 16;
        c.max_bulk = 10;
        c.max_page = 50;
    };
    for env in envs_with("database bad input", small).await {
        let n = env.ready(T, "c").await;
        let docs = "/api/collections/c/documents";
        let deep = format!("{}1{}", "[".repeat(40), "]".repeat(40));
        let deep_doc = format!("{{\"a\":{}1{}}}", "{\"b\":".repeat(20), "}".repeat(20));
        let huge_body = format!("{{\"a\":\"{}\"}}", "x".repeat(100 * 1024));
        let big_doc = format!("{{\"a\":\"{}\"}}", "x".repeat(20 * 1024));
        let cases: Vec<(Method, String, String, StatusCode, &str)> = vec![
            (
                Method::POST,
                docs.into(),
                "{\"a\":".into(),
                StatusCode::BAD_REQUEST,
                "truncated JSON",
            ),
            (
                Method::POST,
                docs.into(),
                "not json".into(),
                StatusCode::BAD_REQUEST,
                "not JSON",
            ),
            (
                Method::POST,
                docs.into(),
                "".into(),
                StatusCode::BAD_REQUEST,
                "empty body",
            ),
            (
                Method::POST,
                docs.into(),
                "\"\\ud800\"".into(),
                StatusCode::BAD_REQUEST,
                "lone surrogate",
            ),
            (
                Method::POST,
                docs.into(),
                "[1,2]".into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "array document",
            ),
            (
                Method::POST,
                docs.into(),
                "42".into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "number document",
            ),
            (
                Method::POST,
                docs.into(),
                deep.clone(),
                StatusCode::BAD_REQUEST,
                "deep nesting",
            ),
            (
                Method::POST,
                docs.into(),
                deep_doc,
                StatusCode::BAD_REQUEST,
                "deep document",
            ),
            (
                Method::POST,
                docs.into(),
                huge_body,
                StatusCode::PAYLOAD_TOO_LARGE,
                "oversized body",
            ),
            (
                Method::POST,
                docs.into(),
                big_doc,
                StatusCode::PAYLOAD_TOO_LARGE,
                "oversized document",
            ),
            (
                Method::POST,
                docs.into(),
                "{\"a\":\"x\\u0000y\"}".into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "NUL in a string",
            ),
            (
                Method::POST,
                docs.into(),
                "{\"a\\u0000\":1}".into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "NUL in a key",
            ),
            (
                Method::POST,
                "/api/collections".into(),
                "{\"name\":1}".into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "wrong type",
            ),
            (
                Method::POST,
                "/api/collections".into(),
                "{\"name\":\"a\",\"extra\":1}".into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown field",
            ),
            (
                Method::POST,
                "/api/collections".into(),
                "{\"name\":\"Bad-Name\"}".into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "bad collection name",
            ),
            (
                Method::POST,
                "/api/collections".into(),
                "{\"name\":\"x\\\"; DROP TABLE documents; --\"}".into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "injection in a name",
            ),
            (
                Method::POST,
                "/api/collections/c/indexes".into(),
                "{\"name\":\"i\",\"field\":\"a') ; DROP TABLE documents; --\"}".into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "injection in an index field",
            ),
            (
                Method::POST,
                "/api/collections/c/query".into(),
                "{\"filter\":{\"a\":{\"$regex\":\"x\"}}}".into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown operator",
            ),
            (
                Method::POST,
                "/api/collections/c/query".into(),
                "{\"filter\":{\"$where\":\"1\"}}".into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "top-level operator",
            ),
            (
                Method::POST,
                "/api/collections/c/query".into(),
                "{\"filter\":{\"a') OR 1=1 --\":1}}".into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "injection in a field",
            ),
            (
                Method::POST,
                "/api/collections/c/query".into(),
                "{\"filter\":{\"a\":{\"$gt\":[1]}}}".into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "array operand",
            ),
            (
                Method::POST,
                "/api/collections/c/query".into(),
                "{\"filter\":{\"a\":{\"$in\":\"x\"}}}".into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "$in without array",
            ),
            (
                Method::POST,
                "/api/collections/c/query".into(),
                "{\"filter\":{\"a\":\"x\\u0000\"}}".into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "NUL in a filter",
            ),
            (
                Method::POST,
                "/api/collections/c/query".into(),
                "{\"limit\":100000}".into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "limit too large",
            ),
            (
                Method::POST,
                "/api/collections/c/query".into(),
                "{\"limit\":-1}".into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "negative limit",
            ),
            (
                Method::POST,
                "/api/collections/c/query".into(),
                "{\"cursor\":\"garbage!\"}".into(),
                StatusCode::BAD_REQUEST,
                "bad cursor",
            ),
            (
                Method::POST,
                "/api/collections/c/query".into(),
                "{\"sort\":[\"a;b\"]}".into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "bad sort",
            ),
            (
                Method::POST,
                "/api/collections/c/bulk".into(),
                "{\"documents\":[]}".into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "empty bulk",
            ),
            (
                Method::POST,
                "/api/collections/c/bulk".into(),
                json!({"documents": vec![json!({"data": {}}); 11]}).to_string(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "bulk too large",
            ),
            (
                Method::POST,
                "/api/collections/c/bulk".into(),
                "{\"documents\":[{\"id\":\"a/b\",\"data\":{}}]}".into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "bad id in bulk",
            ),
            (
                Method::PUT,
                "/api/collections/c/documents/bad%20id".into(),
                "{}".into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "bad id",
            ),
            (
                Method::PUT,
                format!("/api/collections/c/documents/{}", "a".repeat(200)),
                "{}".into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "long id",
            ),
            (
                Method::GET,
                "/api/collections/c/documents?limit=abc".into(),
                String::new(),
                StatusCode::BAD_REQUEST,
                "non-numeric limit",
            ),
            (
                Method::GET,
                "/api/collections/c/documents?bogus=1".into(),
                String::new(),
                StatusCode::BAD_REQUEST,
                "unknown parameter",
            ),
            (
                Method::GET,
                "/api/changes?since=-5".into(),
                String::new(),
                StatusCode::BAD_REQUEST,
                "negative since",
            ),
            (
                Method::GET,
                "/api/changes?since=x".into(),
                String::new(),
                StatusCode::BAD_REQUEST,
                "non-numeric since",
            ),
            (
                Method::GET,
                "/api/changes?limit=0".into(),
                String::new(),
                StatusCode::BAD_REQUEST,
                "zero limit",
            ),
            (
                Method::GET,
                "/api/collections/%FF%FE".into(),
                String::new(),
                StatusCode::BAD_REQUEST,
                "invalid UTF-8 in the path",
            ),
            (
                Method::GET,
                "/api/collections/nope/documents".into(),
                String::new(),
                StatusCode::NOT_FOUND,
                "unknown collection",
            ),
            (
                Method::PATCH,
                "/api/collections/c".into(),
                String::new(),
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed",
            ),
        ];
        for (method, path, body, status, what) in cases {
            let resp = send_raw(&env, method.clone(), &path, body).await;
            let p: Value = problem(resp, status, &format!("{n}: {what} ({method} {path})")).await;
            assert_eq!(p["status"], status.as_u16(), "{n}: {what}");
        }
        // If-Match that can never match is a 412, not a 500.
        env.put(T, "/api/collections/c/documents/d", &json!({"a": 1}))
            .await;
        for tag in ["garbage", "W/\"1\"", "\"99999999999999999999999\""] {
            let resp = env
                .as_tenant(Method::PUT, "/api/collections/c/documents/d", T)
                .header("if-match", tag)
                .json(&json!({"a": 2}))
                .send_ok()
                .await;
            problem(
                resp,
                StatusCode::PRECONDITION_FAILED,
                &format!("{n}: If-Match {tag}"),
            )
            .await;
        }
        // Nothing of the above reached the tables: the collection still holds one document.
        let page: Value = env.get_json(T, docs).await;
        assert_eq!(page["documents"].as_array().unwrap().len(), 1, "{n}");
        // A value too large for an index (PostgreSQL's btree row limit) is the client's: 422.
        assert_eq!(
            env.post(
                T,
                "/api/collections/c/indexes",
                &json!({"name": "by_s", "field": "s"}),
            )
            .await
            .status(),
            StatusCode::CREATED,
            "{n}"
        );
        // Random hex, under max_document_bytes, over the ~2.7 kB btree limit even compressed.
        let long: String = (0..350)
            .map(|_| uuid::Uuid::now_v7().simple().to_string())
            .collect();
        let resp = env
            .put(T, "/api/collections/c/documents/long", &json!({"s": long}))
            .await;
        if env.name == "postgres" {
            problem(resp, StatusCode::UNPROCESSABLE_ENTITY, n).await;
        } else {
            assert_eq!(resp.status(), StatusCode::CREATED, "{n}");
            env.delete(T, "/api/collections/c/documents/long").await;
        }
        // Large numbers, unicode and odd-but-valid strings round-trip.
        let odd = json!({"big": 18446744073709551615u64, "neg": -9223372036854775808i64, "f": 1.5e300,
                         "s": "'; DROP TABLE documents; --", "u": "żółw 🐢", "e": ""});
        assert_eq!(
            env.put(T, "/api/collections/c/documents/odd", &odd)
                .await
                .status(),
            StatusCode::CREATED,
            "{n}"
        );
        let got: Value = env.get_json(T, "/api/collections/c/documents/odd").await;
        assert_eq!(got["data"]["s"], odd["s"], "{n}");
        assert_eq!(got["data"]["u"], odd["u"], "{n}");
        let page: Value = env
            .post_json(
                T,
                "/api/collections/c/query",
                &json!({"filter": {"s": "'; DROP TABLE documents; --"}}),
            )
            .await;
        assert_eq!(page["documents"][0]["id"], "odd", "{n}");
        env.finish().await;
    }
}
