//! Token verification throughput next to the machine's raw RS256 verify rate.
//!
//! `cargo bench -p tansu-shared --bench verify` runs criterion on
//! - `raw_rs256_verify`: aws-lc-rs verifying one RS256 signature with a pre-parsed key (the
//!   cryptographic limit of one core), and
//! - `verifier_rs256` / `verifier_es256` / `verifier_eddsa`: `Verifier::verify` on a whole token
//!   (header and claims parsing, key lookup, signature, claim checks),
//!
//! then prints verifications/s of each measured back to back over a fixed window, and the ratio
//! verifier/raw (target ≥ 80%).

use std::time::{Duration, Instant};
use tansu_shared::testing::issuer as fixture;

use aws_lc_rs::signature::{ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use criterion::{Criterion, Throughput};
use tansu_shared::auth::{Verifier, VerifierConfig};

struct Setup {
    rt: tokio::runtime::Runtime,
    verifier: Verifier,
    tokens: Vec<(&'static str, String)>,
    raw_key: ParsedPublicKey,
    raw_msg: Vec<u8>,
    raw_sig: Vec<u8>,
    raw_key_der: Vec<u8>,
    _issuer: fixture::TestIssuer,
}

fn setup() -> Setup {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (rsa, ec, ed) = (
        fixture::rsa_key("rsa"),
        fixture::ec_key("ec"),
        fixture::ed_key("ed"),
    );
    let (issuer, verifier) = rt.block_on(async {
        let issuer = fixture::TestIssuer::start(&[&rsa, &ec, &ed]).await;
        let verifier = Verifier::new(VerifierConfig::new(
            issuer.issuer.clone(),
            fixture::AUDIENCE,
        ))
        .await
        .unwrap();
        (issuer, verifier)
    });
    let mut claims = issuer.claims();
    claims.exp = fixture::now() + 24 * 3600;
    let tokens = vec![
        ("verifier_rs256", fixture::sign(&rsa, &claims)),
        ("verifier_es256", fixture::sign(&ec, &claims)),
        ("verifier_eddsa", fixture::sign(&ed, &claims)),
    ];
    let rs = &tokens[0].1;
    let (msg, sig) = rs.rsplit_once('.').unwrap();
    use base64::Engine;
    let raw_sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sig)
        .unwrap();
    let raw_key = ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &rsa.public_der).unwrap();
    raw_key.verify_sig(msg.as_bytes(), &raw_sig).unwrap();
    Setup {
        rt,
        verifier,
        raw_msg: msg.as_bytes().to_vec(),
        tokens,
        raw_key,
        raw_sig,
        raw_key_der: rsa.public_der.clone(),
        _issuer: issuer,
    }
}

fn per_second(window: Duration, mut f: impl FnMut()) -> f64 {
    for _ in 0..200 {
        f();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < window {
        for _ in 0..100 {
            f();
        }
        n += 100;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let s = setup();
    let mut c = Criterion::default().configure_from_args();
    {
        let mut g = c.benchmark_group("verify");
        g.throughput(Throughput::Elements(1));
        g.bench_function("raw_rs256_verify", |b| {
            b.iter(|| s.raw_key.verify_sig(&s.raw_msg, &s.raw_sig).unwrap())
        });
        let spki = s.raw_key_der.clone();
        g.bench_function("raw_rs256_verify_unparsed", |b| {
            b.iter(|| {
                aws_lc_rs::signature::UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &spki)
                    .verify(&s.raw_msg, &s.raw_sig)
                    .unwrap()
            })
        });
        g.bench_function("decode_header_only", |b| {
            b.iter(|| jsonwebtoken::decode_header(&s.tokens[0].1).unwrap())
        });
        for (name, token) in &s.tokens {
            g.bench_function(*name, |b| {
                b.iter(|| s.rt.block_on(s.verifier.verify(token)).unwrap())
            });
        }
        g.finish();
    }
    c.final_summary();

    // Back-to-back throughput on one core, and the ratio the target is stated in.
    let window = Duration::from_secs(3);
    let raw = per_second(window, || {
        s.raw_key.verify_sig(&s.raw_msg, &s.raw_sig).unwrap()
    });
    let rs = &s.tokens[0].1;
    let ours = per_second(window, || {
        s.rt.block_on(s.verifier.verify(rs)).unwrap();
    });
    println!("raw RS256 verify (aws-lc-rs, parsed key): {raw:>9.0} /s on one core");
    println!("tansu Verifier RS256 (whole token):       {ours:>9.0} /s on one core");
    println!(
        "ratio verifier/raw: {:.1}% (target >= 80%)",
        100.0 * ours / raw
    );
}
