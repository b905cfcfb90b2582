//! Properties of database-svc's query language over generated filters and sorts: parsing
//! never panics, and every accepted query compiles to SQL in which every value is a bound
//! parameter (never text of the statement) and the placeholders match the arguments.

use std::collections::BTreeSet;

use proptest::prelude::*;
use serde_json::{Map, Value, json};
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

/// The numbers of the `$n` placeholders in a statement.
fn placeholders(sql: &str) -> BTreeSet<usize> {
    let mut found = BTreeSet::new();
    let bytes = sql.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'$' {
            let digits: String = sql[i + 1..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if let Ok(n) = digits.parse() {
                found.insert(n);
            }
        }
    }
    found
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
