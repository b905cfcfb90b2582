//! Properties of database-svc's query language over generated filters and sorts: parsing
//! never panics, every accepted query compiles to SQL in which every value is a bound
//! parameter (never text of the statement) and the placeholders match the arguments, and a
//! query served over HTTP answers only the asking tenant's documents, page after page. The
//! `db_query` fuzz target's committed inputs replay here too.

mod common;

use std::collections::BTreeSet;

use common::{TENANT_A, TENANT_B, envs};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};
use tansu_database::fuzzing::placeholders;
use tansu_database::query::{Dialect, DocQuery, QueryRequest};

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "\\PC{0,24}".prop_map(Value::from),
    ]
}

fn op_spec() -> impl Strategy<Value = Value> {
    let ordered = prop_oneof![
        any::<i64>().prop_map(Value::from),
        "\\PC{0,24}".prop_map(Value::from)
    ];
    prop_oneof![
        4 => scalar(),
        2 => (prop_oneof![Just("$gt"), Just("$gte"), Just("$lt"), Just("$lte")], ordered)
            .prop_map(|(op, v)| json!({ op: v })),
        2 => proptest::collection::vec(scalar(), 1..4).prop_map(|v| json!({ "$in": v })),
        1 => any::<bool>().prop_map(|b| json!({ "$exists": b })),
        1 => ("\\$[a-z]{0,6}", scalar()).prop_map(|(op, v)| json!({ op: v })),
    ]
}

fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z_]{1,8}(\\.[a-z_0-9]{1,8}){0,2}",
        1 => "\\PC{0,16}",
    ]
}

fn request() -> impl Strategy<Value = QueryRequest> {
    (
        proptest::collection::btree_map(field(), op_spec(), 0..4),
        proptest::collection::vec(prop_oneof![4 => "-?[a-z_]{1,8}", 1 => "\\PC{0,10}"], 0..3),
        proptest::option::of(0u32..2000),
    )
        .prop_map(|(filter, sort, limit)| QueryRequest {
            filter: filter.into_iter().collect::<Map<String, Value>>(),
            sort,
            fields: None,
            limit,
            cursor: None,
        })
}

fn strings_in(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|v| strings_in(v, out)),
        Value::Object(o) => o.values().for_each(|v| strings_in(v, out)),
        _ => {}
    }
}

proptest! {
    #[test]
    fn accepted_queries_bind_every_value(req in request()) {
        let mut values = Vec::new();
        req.filter.values().for_each(|v| strings_in(v, &mut values));
        let Ok(q) = DocQuery::parse(req, 50, 1000) else { return Ok(()) };
        prop_assert!(q.limit >= 1 && q.limit <= 1000);
        for d in [Dialect::Sqlite, Dialect::Postgres] {
            let (sql, args) = q.to_sql(d, "id, body");
            let expected: BTreeSet<usize> = (1..=args.len() + 1).collect();
            prop_assert_eq!(placeholders(&sql), expected, "{}", sql);
            prop_assert_eq!(sql.matches('\'').count() % 2, 0, "unbalanced quote: {}", sql);
            prop_assert!(!sql.contains(';') && !sql.contains("--"), "{}", sql);
            for v in values.iter().filter(|v| v.len() >= 4 && v.contains(['\'', '"', ';', ' '])) {
                prop_assert!(!sql.contains(v.as_str()), "value {v:?} in {sql}");
            }
        }
    }
}

/// The generator reaches the compiler: a good share of generated queries is accepted (a
/// property over refused queries alone would hold vacuously).
#[test]
fn generated_queries_are_often_valid() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = request();
    let tries = 400;
    let accepted = (0..tries)
        .filter(|_| {
            let req = strategy.new_tree(&mut runner).unwrap().current();
            DocQuery::parse(req, 50, 1000).is_ok()
        })
        .count();
    eprintln!("{accepted} of {tries} generated queries accepted");
    assert!(accepted * 5 >= tries, "{accepted} of {tries}");
}

/// The `db_query` fuzz target's committed inputs replay without a fault.
#[test]
fn the_db_query_fuzz_corpus_replays() {
    for (name, data) in tansu_shared::testing::fuzz_corpus("db_query") {
        eprintln!("{name}");
        tansu_database::fuzzing::query(&data);
    }
}

/// The documents of tenant `t` (ids `a-…` for A, `b-…` for B): the same fields and values in
/// both tenants, so that any filter matching one tenant's document would match the other's.
fn documents(prefix: &str) -> Vec<Value> {
    (0..12)
        .map(|i| {
            let status = ["paid", "open", "void"][i % 3];
            json!({ "id": format!("{prefix}-{i}"), "data": {
                "status": status,
                "total": (i as i64) * 7 - 20,
                "tags": ["x", "y"],
                "flag": i % 2 == 0,
                "customer": { "name": format!("c{}", i % 4), "tier": i % 3 },
                "note": if i % 4 == 0 { Value::Null } else { Value::from("n") },
            }})
        })
        .collect()
}

fn tenant_query() -> impl Strategy<Value = Value> {
    let field = prop_oneof![
        Just("status"),
        Just("total"),
        Just("tags"),
        Just("flag"),
        Just("customer.name"),
        Just("customer.tier"),
        Just("note"),
        Just("missing"),
        Just("id"),
    ];
    let operand = prop_oneof![
        Just(json!("paid")),
        Just(json!("c1")),
        Just(json!(0)),
        Just(json!(13)),
        Just(json!(true)),
        Just(Value::Null),
        Just(json!("b-1")),
    ];
    let spec = prop_oneof![
        operand.clone(),
        (
            prop_oneof![
                Just("$gt"),
                Just("$gte"),
                Just("$lt"),
                Just("$lte"),
                Just("$eq")
            ],
            operand.clone()
        )
            .prop_map(|(op, v)| json!({ op: v })),
        proptest::collection::vec(operand, 0..3).prop_map(|v| json!({ "$in": v })),
        any::<bool>().prop_map(|b| json!({ "$exists": b })),
    ];
    (
        proptest::collection::btree_map(field.clone(), spec, 0..3),
        proptest::collection::vec(
            (field, any::<bool>()).prop_map(|(f, d)| format!("{}{f}", if d { "-" } else { "" })),
            0..3,
        ),
        1u32..6,
    )
        .prop_map(|(filter, sort, limit)| {
            let filter: Map<String, Value> =
                filter.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            json!({ "filter": filter,
                    "sort": sort, "limit": limit })
        })
}

/// Whatever a tenant asks (filter, sort, page size, the pages after), the documents answered
/// are that tenant's own; and a request whose tenant header is not its token's tenant is
/// refused whatever it asks. SQLite, and PostgreSQL when configured.
#[test]
fn a_query_answers_only_the_asking_tenants_documents() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let envs = rt.block_on(async {
        let envs = envs("database properties").await;
        for env in &envs {
            for (t, prefix) in [(TENANT_A, "a"), (TENANT_B, "b")] {
                env.provision(t).await;
                env.create_collection(t, "shared").await;
                let resp = env.bulk(t, "shared", &documents(prefix)).await;
                assert!(
                    resp.status().is_success(),
                    "{}: bulk {}",
                    env.name,
                    resp.status()
                );
            }
        }
        envs
    });
    let mut runner = TestRunner::new(Config {
        cases: 40,
        ..Config::default()
    });
    let strategy = (tenant_query(), any::<bool>(), 0usize..3);
    let outcome = runner.run(&strategy, |(query, as_b, header)| {
        let (asker, other, prefix) = if as_b {
            (TENANT_B, TENANT_A, "b-")
        } else {
            (TENANT_A, TENANT_B, "a-")
        };
        for env in &envs {
            rt.block_on(async {
                let token = env.rw(asker);
                let header_tenant = [Some(asker), Some(other), None][header];
                let mut body = query.clone();
                // Bounded: a page holds at least one document, and a tenant has 12.
                for _page in 0..13 {
                    let resp = env
                        .req(
                            Method::POST,
                            "/api/collections/shared/query",
                            &token,
                            header_tenant,
                        )
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    let status = resp.status();
                    if header_tenant != Some(asker) {
                        prop_assert_eq!(status, StatusCode::FORBIDDEN, "{}", env.name);
                        return Ok(());
                    }
                    if status == StatusCode::UNPROCESSABLE_ENTITY {
                        return Ok(());
                    }
                    prop_assert_eq!(status, StatusCode::OK, "{}: {}", env.name, body);
                    let answer: Value = resp.json().await.unwrap();
                    for d in answer["documents"].as_array().unwrap() {
                        let id = d["id"].as_str().unwrap_or_default();
                        prop_assert!(
                            id.starts_with(prefix),
                            "{}: {} answered {}",
                            env.name,
                            prefix,
                            id
                        );
                    }
                    match answer["next_cursor"].as_str() {
                        Some(c) => body["cursor"] = json!(c),
                        None => return Ok(()),
                    }
                }
                Err(TestCaseError::fail("more pages than documents"))
            })?;
        }
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
}
