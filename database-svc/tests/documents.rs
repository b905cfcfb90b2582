//! The document API end to end, on SQLite and PostgreSQL.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tansu_shared::testing::http::SendOk;

const T: uuid::Uuid = TENANT_A;

#[tokio::test]
async fn document_lifecycle_etags_and_merge_patch() {
    for env in envs("database documents").await {
        let n = env.ready(T, "orders").await;

        // Create: 201, Location, ETag "1".
        let resp = env
            .post(
                T,
                "/api/collections/orders/documents",
                &json!({"total": 10, "customer": {"name": "Ada", "city": "Paris"}}),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED, "{n}");
        assert_eq!(resp.headers()["etag"], "\"1\"", "{n}");
        let loc = resp.headers()["location"].to_str().unwrap().to_owned();
        let doc: Value = resp.json().await.unwrap();
        let id = doc["id"].as_str().unwrap().to_owned();
        assert_eq!(loc, format!("/api/collections/orders/documents/{id}"));

        // Get; If-None-Match → 304.
        let resp = env.get(T, &loc).await;
        assert_eq!(resp.status(), 200, "{n}");
        let got: Value = resp.json().await.unwrap();
        assert_eq!(got["data"]["customer"]["name"], "Ada");
        let resp = env
            .as_tenant(Method::GET, &loc, T)
            .header("if-none-match", "\"1\"")
            .send_ok()
            .await;
        assert_eq!(resp.status(), StatusCode::NOT_MODIFIED, "{n}");

        // Merge patch with the right version → "2"; with the stale one → 412.
        let resp = env
            .as_tenant(Method::PATCH, &loc, T)
            .header("if-match", "\"1\"")
            .json(&json!({"customer": {"city": null, "vip": true}, "total": 12}))
            .send_ok()
            .await;
        assert_eq!(resp.status(), 200, "{n}");
        assert_eq!(resp.headers()["etag"], "\"2\"");
        let patched: Value = resp.json().await.unwrap();
        assert_eq!(
            patched["data"],
            json!({"total": 12, "customer": {"name": "Ada", "vip": true}}),
            "{n}"
        );
        let resp = env
            .as_tenant(Method::PATCH, &loc, T)
            .header("if-match", "\"1\"")
            .json(&json!({"total": 0}))
            .send_ok()
            .await;
        problem(resp, StatusCode::PRECONDITION_FAILED, n).await;

        // A list of entity tags matches any of them.
        let resp = env.get(T, &loc).await;
        assert_eq!(resp.headers()["etag"], "\"2\"");
        // Replace with If-Match → "3"; PUT with If-None-Match: * on an existing id → 412.
        let resp = env
            .as_tenant(Method::PUT, &loc, T)
            .header("if-match", "W/\"2\", \"7\", \"2\"")
            .json(&json!({"total": 1}))
            .send_ok()
            .await;
        assert_eq!(resp.status(), 200, "{n}");
        assert_eq!(resp.headers()["etag"], "\"3\"");
        let resp = env
            .as_tenant(Method::PUT, &loc, T)
            .header("if-none-match", "*")
            .json(&json!({"total": 1}))
            .send_ok()
            .await;
        problem(resp, StatusCode::PRECONDITION_FAILED, n).await;

        // PUT with a client id creates (201); PATCH of a missing document is 404.
        assert_eq!(
            env.put(
                T,
                "/api/collections/orders/documents/order-7",
                &json!({"total": 7}),
            )
            .await
            .status(),
            StatusCode::CREATED,
            "{n}"
        );
        let resp = env
            .patch(
                T,
                "/api/collections/orders/documents/nope",
                &json!({"a": 1}),
            )
            .await;
        problem(resp, StatusCode::NOT_FOUND, n).await;

        // Delete with a stale version → 412; right version → 204; then 404.
        let resp = env
            .as_tenant(Method::DELETE, &loc, T)
            .header("if-match", "\"2\"")
            .send_ok()
            .await;
        problem(resp, StatusCode::PRECONDITION_FAILED, n).await;
        let resp = env
            .as_tenant(Method::DELETE, &loc, T)
            .header("if-match", "\"3\"")
            .send_ok()
            .await;
        assert_eq!(resp.status(), StatusCode::NO_CONTENT, "{n}");
        let resp = env.get(T, &loc).await;
        problem(resp, StatusCode::NOT_FOUND, n).await;

        // Collections: list, describe, 409 on duplicate, delete, then 404.
        let resp = env
            .post(T, "/api/collections", &json!({"name": "orders"}))
            .await;
        problem(resp, StatusCode::CONFLICT, n).await;
        let list: Value = env.get_json(T, "/api/collections").await;
        assert_eq!(list["collections"][0]["name"], "orders", "{n}");
        assert_eq!(
            env.delete(T, "/api/collections/orders").await.status(),
            StatusCode::NO_CONTENT
        );
        let resp = env
            .get(T, "/api/collections/orders/documents/order-7")
            .await;
        problem(resp, StatusCode::NOT_FOUND, n).await;
        env.finish().await;
    }
}

async fn query(env: &Env, body: Value) -> Value {
    let resp = env.post(T, "/api/collections/items/query", &body).await;
    assert_eq!(resp.status(), 200, "{}: query {body}", env.name);
    resp.json().await.unwrap()
}

fn ids(page: &Value) -> Vec<String> {
    page["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn queries_filters_sort_projection_pagination_and_indexes() {
    for env in envs("database queries").await {
        let n = env.ready(T, "items").await;
        let docs: Vec<Value> = (0..30)
            .map(|i| {
                json!({
                    "id": format!("i{i:02}"),
                    "data": {
                        "n": i,
                        "kind": if i % 3 == 0 { "fizz" } else { "plain" },
                        "price": f64::from(i) + 0.5,
                        "nested": {"even": i % 2 == 0},
                        "label": format!("{i}"),
                        "opt": if i < 5 { json!(null) } else { json!(i) },
                    }
                })
            })
            .collect();
        assert_eq!(
            env.bulk(T, "items", &docs).await.status(),
            StatusCode::CREATED,
            "{n}"
        );
        // A string that merely looks like a number, and a bool that SQLite would store as 1.
        env.put(
            T,
            "/api/collections/items/documents/s1",
            &json!({"n": "3", "flag": true}),
        )
        .await;
        env.put(
            T,
            "/api/collections/items/documents/s2",
            &json!({"n": 1.0, "flag": 1}),
        )
        .await;

        // Equality is type-exact.
        let p = query(&env, json!({"filter": {"n": 3}})).await;
        assert_eq!(ids(&p), ["i03"], "{n}");
        let p = query(&env, json!({"filter": {"n": "3"}})).await;
        assert_eq!(ids(&p), ["s1"], "{n}");
        let p = query(&env, json!({"filter": {"flag": true}})).await;
        assert_eq!(ids(&p), ["s1"], "{n}");
        let p = query(&env, json!({"filter": {"n": 1}})).await;
        assert_eq!(ids(&p), ["i01", "s2"], "{n}: 1 == 1.0");
        let p = query(&env, json!({"filter": {"opt": null}})).await;
        assert_eq!(ids(&p).len(), 5, "{n}: explicit nulls only");
        let p = query(
            &env,
            json!({"filter": {"nested.even": true, "kind": "fizz"}}),
        )
        .await;
        assert_eq!(ids(&p), ["i00", "i06", "i12", "i18", "i24"], "{n}");

        // Ranges, $in, $exists.
        let p = query(&env, json!({"filter": {"n": {"$gte": 10, "$lt": 13}}})).await;
        assert_eq!(ids(&p), ["i10", "i11", "i12"], "{n}");
        let p = query(&env, json!({"filter": {"price": {"$gt": 28.0}}})).await;
        assert_eq!(ids(&p), ["i28", "i29"], "{n}");
        let p = query(&env, json!({"filter": {"label": {"$in": ["7", "8", 9]}}})).await;
        assert_eq!(ids(&p), ["i07", "i08"], "{n}");
        let p = query(&env, json!({"filter": {"flag": {"$exists": true}}})).await;
        assert_eq!(ids(&p), ["s1", "s2"], "{n}");
        let p = query(&env, json!({"filter": {"kind": {"$exists": false}}})).await;
        assert_eq!(ids(&p), ["s1", "s2"], "{n}");

        // Sort descending with projection.
        let p = query(
            &env,
            json!({"filter": {"kind": "fizz"}, "sort": ["-n"], "fields": ["n", "nested.even"], "limit": 3}),
        )
        .await;
        assert_eq!(ids(&p), ["i27", "i24", "i21"], "{n}");
        assert_eq!(
            p["documents"][0]["data"],
            json!({"n": 27, "nested": {"even": false}})
        );

        // Cursor pagination, default order and sorted: every document exactly once.
        for sort in [json!([]), json!(["-price"])] {
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            for _ in 0..20 {
                let mut body = json!({"filter": {"n": {"$gte": 0}}, "limit": 7, "sort": sort});
                if let Some(c) = &cursor {
                    body["cursor"] = json!(c);
                }
                let page = query(&env, body).await;
                seen.extend(ids(&page));
                match page["next_cursor"].as_str() {
                    Some(c) => cursor = Some(c.to_owned()),
                    None => break,
                }
            }
            let mut sorted = seen.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), 31, "{n}: {sort} {seen:?}");
            assert_eq!(seen.len(), 31, "{n}: no duplicates");
        }

        // GET list with query-string sort and fields.
        let resp = env
            .get(
                T,
                "/api/collections/items/documents?limit=2&sort=-price,n&fields=n",
            )
            .await;
        assert_eq!(resp.status(), 200);
        let p: Value = resp.json().await.unwrap();
        assert_eq!(p["documents"][0]["data"], json!({"n": 29}), "{n}");

        // Indexes: create, list, same answers, 409 on duplicate, drop.
        assert_eq!(
            env.post(
                T,
                "/api/collections/items/indexes",
                &json!({"name": "by_n", "field": "n"}),
            )
            .await
            .status(),
            StatusCode::CREATED,
            "{n}"
        );
        let resp = env
            .post(
                T,
                "/api/collections/items/indexes",
                &json!({"name": "by_n", "field": "n"}),
            )
            .await;
        problem(resp, StatusCode::CONFLICT, n).await;
        let p = query(&env, json!({"filter": {"n": {"$gte": 10, "$lt": 13}}})).await;
        assert_eq!(ids(&p), ["i10", "i11", "i12"], "{n}: with index");
        let info: Value = env.get_json(T, "/api/collections/items").await;
        assert_eq!(info["indexes"][0]["field"], "n");
        assert_eq!(
            env.delete(T, "/api/collections/items/indexes/by_n")
                .await
                .status(),
            StatusCode::NO_CONTENT
        );
        env.finish().await;
    }
}

#[tokio::test]
async fn bulk_insert_is_one_transaction() {
    for env in envs("database bulk").await {
        let n = env.ready(T, "c").await;
        env.put(T, "/api/collections/c/documents/taken", &json!({"x": 0}))
            .await;
        let resp = env
            .post(
                T,
                "/api/collections/c/bulk",
                &json!({"documents": [
                    {"id": "a", "data": {"x": 1}},
                    {"id": "b", "data": {"x": 2}},
                    {"id": "taken", "data": {"x": 3}},
                ]}),
            )
            .await;
        problem(resp, StatusCode::CONFLICT, n).await;
        assert_eq!(
            env.get(T, "/api/collections/c/documents/a").await.status(),
            StatusCode::NOT_FOUND,
            "{n}: rolled back"
        );
        let feed: Value = env.get_json(T, "/api/changes").await;
        assert_eq!(
            feed["changes"].as_array().unwrap().len(),
            2,
            "{n}: no change for the failed bulk"
        );
        env.finish().await;
    }
}

#[tokio::test]
async fn concurrent_if_match_updates_exactly_one_wins() {
    for env in envs("database if-match").await {
        let n = env.ready(T, "c").await;
        env.put(T, "/api/collections/c/documents/d", &json!({"v": 0}))
            .await;
        for round in 1..=3i64 {
            let attempts = (0..12).map(|i| {
                env.as_tenant(Method::PUT, "/api/collections/c/documents/d", T)
                    .header("if-match", format!("\"{round}\""))
                    .json(&json!({"v": i}))
                    .send()
            });
            let results = futures::future::join_all(attempts).await;
            let statuses: Vec<u16> = results
                .iter()
                .map(|r| r.as_ref().unwrap().status().as_u16())
                .collect();
            assert_eq!(
                statuses.iter().filter(|s| **s == 200).count(),
                1,
                "{n}: {statuses:?}"
            );
            assert_eq!(
                statuses.iter().filter(|s| **s == 412).count(),
                11,
                "{n}: {statuses:?}"
            );
        }
        let resp = env.get(T, "/api/collections/c/documents/d").await;
        assert_eq!(resp.headers()["etag"], "\"4\"", "{n}");
        env.finish().await;
    }
}

#[tokio::test]
async fn collection_schema_is_enforced() {
    for env in envs("database schema").await {
        let n = env.provisioned(T).await;
        assert_eq!(env
            .post(T, "/api/collections", &json!({"name": "people", "schema": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}}
            }})).await.status(), StatusCode::CREATED, "{n}");
        let resp = env
            .post(T, "/api/collections/people/documents", &json!({"age": 3}))
            .await;
        let p = problem(resp, StatusCode::UNPROCESSABLE_ENTITY, n).await;
        assert_eq!(p["type"], "urn:tansu:problem:schema-violation");
        assert_eq!(p["pointer"], "#", "{n}: {p}");
        assert_eq!(p["errors"][0]["keyword"], "required", "{n}: {p}");
        assert_eq!(
            env.put(
                T,
                "/api/collections/people/documents/p1",
                &json!({"name": "Ada", "age": 36}),
            )
            .await
            .status(),
            StatusCode::CREATED,
            "{n}"
        );
        // Replace: the crate's instance path names the field.
        let resp = env
            .put(
                T,
                "/api/collections/people/documents/p1",
                &json!({"name": "Ada", "age": "old"}),
            )
            .await;
        let p = problem(resp, StatusCode::UNPROCESSABLE_ENTITY, n).await;
        assert_eq!(p["type"], "urn:tansu:problem:schema-violation");
        assert_eq!(p["pointer"], "#/age", "{n}: {p}");
        assert_eq!(p["errors"][0]["schema_pointer"], "#/properties/age/type");
        // Patch: the merged document is validated.
        let resp = env
            .patch(
                T,
                "/api/collections/people/documents/p1",
                &json!({"age": -1}),
            )
            .await;
        let p = problem(resp, StatusCode::UNPROCESSABLE_ENTITY, n).await;
        assert_eq!(p["type"], "urn:tansu:problem:schema-violation");
        assert_eq!(p["pointer"], "#/age", "{n}: {p}");
        assert_eq!(p["errors"][0]["keyword"], "minimum");
        // Bulk: the failing document's index and path; nothing inserted.
        let resp = env
            .post(
                T,
                "/api/collections/people/bulk",
                &json!({"documents": [
                    {"data": {"name": "Bo"}},
                    {"data": {"name": 5}}
                ]}),
            )
            .await;
        let p = problem(resp, StatusCode::UNPROCESSABLE_ENTITY, n).await;
        assert_eq!(p["index"], 1, "{n}: {p}");
        assert_eq!(p["pointer"], "#/name", "{n}: {p}");
        let list: Value = env.get_json(T, "/api/collections/people/documents").await;
        assert_eq!(list["documents"].as_array().unwrap().len(), 1, "{n}");
        // Invalid schemas are refused at creation, with where they are wrong.
        for bad in [
            json!({"type": "thing"}),
            json!({"properties": {"a": {"minLength": -1}}}),
            json!({"pattern": "("}),
            json!({"$ref": "https://example.com/elsewhere.json"}),
        ] {
            let resp = env
                .post(
                    T,
                    "/api/collections",
                    &json!({"name": "bad", "schema": bad}),
                )
                .await;
            let p = problem(resp, StatusCode::UNPROCESSABLE_ENTITY, n).await;
            assert_eq!(p["type"], "urn:tansu:problem:invalid-schema", "{n}: {bad}");
        }
        // Keywords beyond the old subset work (pattern, format, $ref to $defs).
        assert_eq!(env
            .post(T, "/api/collections", &json!({"name": "rich", "schema": {
                "type": "object",
                "properties": {"code": {"pattern": "^[A-Z]{3}$"}, "home": {"$ref": "#/$defs/a"}},
                "$defs": {"a": {"type": "object", "required": ["city"]}}
            }})).await.status(), StatusCode::CREATED, "{n}");
        let resp = env
            .post(
                T,
                "/api/collections/rich/documents",
                &json!({"code": "abc", "home": {}}),
            )
            .await;
        let p = problem(resp, StatusCode::UNPROCESSABLE_ENTITY, n).await;
        assert_eq!(p["errors"].as_array().unwrap().len(), 2, "{n}: {p}");
        env.finish().await;
    }
}

/// Writes racing a collection delete leave no orphans behind: a re-created collection is empty.
#[tokio::test]
async fn deleting_a_collection_under_concurrent_writes_leaves_no_orphans() {
    for env in envs("database delete race").await {
        let n = env.provisioned(T).await;
        for round in 0..3 {
            env.create_collection(T, "race").await;
            let inserts = (0..20).map(|i| {
                env.as_tenant(Method::POST, "/api/collections/race/documents", T)
                    .json(&json!({"round": round, "i": i}))
                    .send()
            });
            let delete = env
                .as_tenant(Method::DELETE, "/api/collections/race", T)
                .send();
            let (inserted, deleted) = tokio::join!(futures::future::join_all(inserts), delete);
            assert_eq!(deleted.unwrap().status(), StatusCode::NO_CONTENT, "{n}");
            for r in inserted {
                let s = r.unwrap().status();
                assert!(
                    s == StatusCode::CREATED || s == StatusCode::NOT_FOUND,
                    "{n}: {s}"
                );
            }
            env.create_collection(T, "race").await;
            let page: Value = env.get_json(T, "/api/collections/race/documents").await;
            assert_eq!(page["documents"], json!([]), "{n}: round {round}");
            assert_eq!(
                env.delete(T, "/api/collections/race").await.status(),
                StatusCode::NO_CONTENT
            );
        }
        env.finish().await;
    }
}

/// Keyset paging of sorted queries: paging through a sorted query while documents are
/// inserted on both sides of the cursor (equal keys included) returns every pre-existing
/// document exactly once, in the order of an unpaged query.
#[tokio::test]
async fn sorted_paging_is_stable_under_concurrent_inserts() {
    for env in envs("database keyset").await {
        let n = env.ready(T, "items").await;
        // Mixed sort keys: ints and floats that tie, strings, booleans, null, objects, and a
        // missing field (sorted last).
        let score = |i: usize| match i % 9 {
            0 => None,
            1 => Some(json!(i % 4)),
            2 => Some(json!((i % 4) as f64 + 0.5)),
            3 => Some(json!(format!("s{}", i % 3))),
            4 => Some(json!(i.is_multiple_of(2))),
            5 => Some(json!(null)),
            6 => Some(json!({"a": i % 2})),
            _ => Some(json!(i % 3)),
        };
        let doc = |i: usize, id: String| {
            let mut data = json!({ "rank": i % 5, "i": i });
            if let Some(s) = score(i) {
                data["score"] = s;
            }
            json!({ "id": id, "data": data })
        };
        let docs: Vec<Value> = (0..60).map(|i| doc(i, format!("p{i:03}"))).collect();
        assert_eq!(
            env.bulk(T, "items", &docs).await.status(),
            StatusCode::CREATED,
            "{n}"
        );

        let mut next = 0usize;
        for sort in [
            json!(["score", "-rank"]),
            json!(["-score"]),
            json!(["rank"]),
        ] {
            let expected: Vec<String> =
                ids(&query(&env, json!({"sort": sort, "limit": 1000})).await)
                    .into_iter()
                    .filter(|id| id.starts_with('p'))
                    .collect();
            assert_eq!(expected.len(), 60, "{n}");
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            for page_no in 0.. {
                assert!(page_no < 100, "{n}: paging ends");
                let mut body = json!({"sort": sort, "limit": 7});
                if let Some(c) = &cursor {
                    body["cursor"] = json!(c);
                }
                let page = query(&env, body).await;
                seen.extend(ids(&page));
                // Between pages: new documents before, at and after the cursor, with ids
                // on both sides of the pre-existing ones.
                let fresh: Vec<Value> = (0..3)
                    .map(|j| {
                        next += 1;
                        let prefix = if j % 2 == 0 { "a" } else { "z" };
                        doc(page_no * 3 + j + next, format!("{prefix}{next:05}"))
                    })
                    .collect();
                assert_eq!(
                    env.bulk(T, "items", &fresh).await.status(),
                    StatusCode::CREATED,
                    "{n}"
                );
                match page["next_cursor"].as_str() {
                    Some(c) => cursor = Some(c.to_owned()),
                    None => break,
                }
            }
            let old: Vec<String> = seen.into_iter().filter(|id| id.starts_with('p')).collect();
            assert_eq!(
                old, expected,
                "{n}: {sort}: every pre-existing document once, in order"
            );
        }

        // A cursor of one sort is refused for another.
        let page = query(&env, json!({"sort": ["rank"], "limit": 2})).await;
        let cursor = page["next_cursor"].as_str().unwrap();
        let resp = env
            .post(
                T,
                "/api/collections/items/query",
                &json!({"sort": ["-rank"], "cursor": cursor}),
            )
            .await;
        problem(resp, StatusCode::UNPROCESSABLE_ENTITY, n).await;
        env.finish().await;
    }
}
