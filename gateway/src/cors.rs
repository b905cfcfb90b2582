//! Cross-origin requests (the Fetch standard's CORS protocol), decided at the gateway per path.
//!
//! A browser app on another origin (`https://app.example`) calling the platform sends `Origin`;
//! for anything but a simple request it first asks with a preflight (`OPTIONS` with
//! `Access-Control-Request-Method`). The gateway answers every preflight itself and decides
//! every cross-origin answer's `Access-Control-*` headers; the services never do (their own
//! `Access-Control-*` headers are removed), except on paths whose rule hands the decision to the
//! service (`origins = "client"`).
//!
//! `Config::cors` is a list of rules, each for the paths under a `path_prefix` (compared like
//! the rate-limit paths: canonical, without `/t/{tenant}`, case ignored; the first rule that
//! matches applies). A rule's `origins` says who may call:
//!
//! - `any`: every origin, `Access-Control-Allow-Origin: *` — public documents (discovery,
//!   JWKS). Never with `credentials` (the config is refused).
//! - `tenant`: the origins the addressed tenant allows (its `allowed_origins` in identity's
//!   tenant directory). A preflight carries no token, so the tenant must be named by the host
//!   or `/t/{tenant}/`; a preflight that names none, or an origin the tenant does not allow, is
//!   refused (403). A cross-origin request the tenant does not allow is refused (403) before it
//!   reaches the service, so it has no effect either.
//! - `client`: the preflight is allowed for the rule's methods and headers, and the service
//!   decides on the request itself (identity's token endpoint allows a public client's own
//!   `allowed_origins` and refuses a request from any other origin).
//!
//! Answers that depend on `Origin` carry `Vary: Origin`; `Access-Control-Allow-Credentials`
//! only where the rule sets `credentials`. A path under no rule answers every preflight 403,
//! and its answers carry no `Access-Control-*` header (the browser keeps them from the page).
//! A request whose `Origin` is the gateway's own (`{scheme}://{host}`) is same-origin: no CORS.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use tansu_shared::problem::Problem;

use crate::surface;

/// Who may call the paths of a rule (see the module docs).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Origins {
    Any,
    #[default]
    Tenant,
    Client,
}

/// One rule of `Config::cors`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct CorsRule {
    /// The paths it covers (`/db`: `/db` and below).
    pub path_prefix: String,
    pub origins: Origins,
    /// Methods a preflight may ask for.
    pub methods: Vec<String>,
    /// Request headers a preflight may ask for (besides the CORS-safelisted ones).
    pub headers: Vec<String>,
    /// Response headers the page may read (besides the CORS-safelisted ones).
    pub expose_headers: Vec<String>,
    /// How long a browser may cache a preflight's answer.
    pub max_age_secs: u32,
    /// `Access-Control-Allow-Credentials: true` (cookies, TLS client certificates). Bearer
    /// tokens are not credentials in this sense; never with `origins = "any"`.
    pub credentials: bool,
}

/// The default rules: identity's public documents for everyone, its token and revocation
/// endpoints per client, the database and storage APIs per tenant.
pub fn default_rules() -> Vec<CorsRule> {
    let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let rule =
        |prefix: &str, origins, methods: &[&str], headers: &[&str], expose: &[&str]| CorsRule {
            path_prefix: prefix.into(),
            origins,
            methods: strings(methods),
            headers: strings(headers),
            expose_headers: strings(expose),
            max_age_secs: 600,
            credentials: false,
        };
    let api_expose = [
        "etag",
        "location",
        "x-request-id",
        "retry-after",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        "www-authenticate",
        "dpop-nonce",
    ];
    vec![
        rule(
            "/identity/.well-known",
            Origins::Any,
            &["GET", "HEAD"],
            &[],
            &[],
        ),
        rule(
            "/identity/connect/token",
            Origins::Client,
            &["POST"],
            &["content-type", "dpop"],
            &["x-request-id", "dpop-nonce"],
        ),
        rule(
            "/identity/connect/revocation",
            Origins::Client,
            &["POST"],
            &["content-type"],
            &["x-request-id"],
        ),
        rule(
            "/db",
            Origins::Tenant,
            &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
            &[
                "authorization",
                "content-type",
                "dpop",
                "if-match",
                "if-none-match",
            ],
            &api_expose,
        ),
        rule(
            "/storage",
            Origins::Tenant,
            &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
            &[
                "authorization",
                "content-type",
                "dpop",
                "if-match",
                "if-none-match",
                "range",
            ],
            &[
                api_expose.as_slice(),
                &["content-range", "content-length", "accept-ranges"],
            ]
            .concat(),
        ),
    ]
}

/// Everything wrong with the rules (empty: valid).
pub fn validate(rules: &[CorsRule]) -> Vec<String> {
    let mut problems = Vec::new();
    for r in rules {
        let name = &r.path_prefix;
        if !surface::is_valid_path_rule(name) {
            problems.push(format!("cors: path_prefix {name:?} must look like \"/db\""));
        }
        if r.origins == Origins::Any && r.credentials {
            problems.push(format!(
                "cors: {name}: credentials with origins = \"any\" would let every site act as the user"
            ));
        }
        if r.methods.is_empty() || r.methods.iter().any(|m| !is_token(m)) {
            problems.push(format!(
                "cors: {name}: methods must be method names (no \"*\")"
            ));
        }
        if (r.headers.iter().chain(&r.expose_headers))
            .any(|h| h == "*" || HeaderName::from_bytes(h.as_bytes()).is_err())
        {
            problems.push(format!(
                "cors: {name}: headers must be header names (no \"*\")"
            ));
        }
        if r.max_age_secs > 86_400 {
            problems.push(format!("cors: {name}: max_age_secs at most 86400"));
        }
    }
    problems
}

/// An HTTP token (RFC 9110 §5.6.2) that is not `*`.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'+-.^_`|~".contains(&c))
}

/// A rule ready to answer with.
#[derive(Debug)]
pub struct Rule {
    path_prefix: String,
    pub origins: Origins,
    methods: Vec<String>,
    headers: Vec<String>,
    allow_methods: HeaderValue,
    allow_headers: Option<HeaderValue>,
    expose_headers: Option<HeaderValue>,
    max_age: HeaderValue,
    credentials: bool,
}

/// The rules of a config, in order.
#[derive(Debug, Default)]
pub struct Cors(Vec<Rule>);

fn joined(items: &[String]) -> Option<HeaderValue> {
    (!items.is_empty())
        .then(|| HeaderValue::from_str(&items.join(", ")).ok())
        .flatten()
}

impl Cors {
    /// The rules of a validated config.
    pub fn new(rules: &[CorsRule]) -> Self {
        let lower = |v: &[String]| v.iter().map(|h| h.to_ascii_lowercase()).collect::<Vec<_>>();
        Self(
            rules
                .iter()
                .map(|r| Rule {
                    path_prefix: r.path_prefix.clone(),
                    origins: r.origins,
                    methods: r.methods.clone(),
                    headers: lower(&r.headers),
                    allow_methods: joined(&r.methods).unwrap_or(HeaderValue::from_static("GET")),
                    allow_headers: joined(&lower(&r.headers)),
                    expose_headers: joined(&lower(&r.expose_headers)),
                    max_age: HeaderValue::from(r.max_age_secs),
                    credentials: r.credentials,
                })
                .collect(),
        )
    }

    /// The rule for a canonical public path (without its tenant segments).
    pub fn rule_for(&self, public_path: &str) -> Option<&Rule> {
        self.0
            .iter()
            .find(|r| surface::is_under(public_path, &r.path_prefix))
    }
}

static REQUEST_METHOD: HeaderName = HeaderName::from_static("access-control-request-method");
static REQUEST_HEADERS: HeaderName = HeaderName::from_static("access-control-request-headers");
static VARY_VALUE: HeaderValue = HeaderValue::from_static("Origin");
static VARY_PREFLIGHT: HeaderValue = HeaderValue::from_static(
    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
);

/// What a request is, as far as CORS goes.
#[derive(Debug, Clone)]
pub enum Kind {
    /// No `Origin`, or the gateway's own.
    SameOrigin,
    /// A preflight from `origin` (`None`: an `Origin` that is no http(s) origin, like `null`).
    Preflight(Option<String>),
    /// A request from another origin.
    CrossOrigin(Option<String>),
}

/// Reads a request's `Origin` (and whether it is a preflight) against the gateway's own origin
/// (`proto://host`).
pub fn classify(
    method: &Method,
    headers: &HeaderMap,
    proto: &str,
    host: Option<&HeaderValue>,
) -> Kind {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Kind::SameOrigin;
    };
    let origin = origin.to_str().ok().unwrap_or_default();
    let own = host.and_then(|h| h.to_str().ok()).is_some_and(|h| {
        origin.len() == proto.len() + 3 + h.len()
            && origin
                .get(..proto.len() + 3)
                .is_some_and(|p| p.eq_ignore_ascii_case(&format!("{proto}://")))
            && origin
                .get(proto.len() + 3..)
                .is_some_and(|rest| rest.eq_ignore_ascii_case(h))
    });
    if own {
        return Kind::SameOrigin;
    }
    let origin = tansu_shared::origin::serialized(origin).filter(|o| o == origin);
    if method == Method::OPTIONS && headers.contains_key(&REQUEST_METHOD) {
        Kind::Preflight(origin)
    } else {
        Kind::CrossOrigin(origin)
    }
}

/// The refusal of a preflight or of a cross-origin request (403 problem+json, no
/// `Access-Control-*` header: the browser keeps the answer from the page).
pub fn refused(detail: &str) -> Problem {
    Problem::new(
        StatusCode::FORBIDDEN,
        "cors-refused",
        "Cross-origin request refused",
    )
    .with_detail(detail)
}

impl Rule {
    /// Whether `origin` may call under this rule (`tenant_origins`: the addressed tenant's
    /// allow-list, `None` when no tenant is known).
    pub fn allows(&self, origin: &str, tenant_origins: Option<&[String]>) -> bool {
        match self.origins {
            Origins::Any | Origins::Client => true,
            Origins::Tenant => tenant_origins.is_some_and(|o| o.iter().any(|a| a == origin)),
        }
    }

    /// The answer to an allowed origin's preflight: 204 with what it may send, or 403 when it
    /// asks for a method or header the rule does not allow.
    #[allow(clippy::result_large_err)]
    pub fn preflight(&self, origin: &str, headers: &HeaderMap) -> Result<HeaderMap, Problem> {
        let method = headers
            .get(&REQUEST_METHOD)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !self.methods.iter().any(|m| m == method) {
            return Err(refused(
                "the method is not allowed cross-origin on this path",
            ));
        }
        let asked = headers
            .get_all(&REQUEST_HEADERS)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty());
        for h in asked {
            if !self.headers.contains(&h) {
                return Err(refused(
                    "a request header is not allowed cross-origin on this path",
                ));
            }
        }
        let mut out = HeaderMap::new();
        self.allow_origin(&mut out, origin);
        out.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            self.allow_methods.clone(),
        );
        if let Some(h) = &self.allow_headers {
            out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, h.clone());
        }
        out.insert(header::ACCESS_CONTROL_MAX_AGE, self.max_age.clone());
        out.insert(header::VARY, VARY_PREFLIGHT.clone());
        Ok(out)
    }

    fn allow_origin(&self, out: &mut HeaderMap, origin: &str) {
        if self.origins == Origins::Any {
            out.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
            return;
        }
        if let Ok(v) = HeaderValue::from_str(origin) {
            out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        }
        if self.credentials {
            out.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }
}

/// What the answer to a request gets, decided while it was handled.
#[derive(Debug, Default)]
pub struct Outcome<'g> {
    /// The rule of the path, once known.
    pub rule: Option<&'g Rule>,
    /// The origin allowed to read the answer.
    pub allowed: Option<String>,
    /// The answer is the gateway's answer to a preflight: its headers are final.
    pub preflight: bool,
}

impl Outcome<'_> {
    /// Sets the answer's CORS headers: the service's own `Access-Control-*` headers are
    /// removed unless the rule hands the decision to it; an allowed origin gets the rule's.
    pub fn apply(&self, headers: &mut HeaderMap) {
        if self.preflight {
            return;
        }
        let by_service = self.rule.is_some_and(|r| r.origins == Origins::Client);
        if !by_service {
            for name in [
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                header::ACCESS_CONTROL_ALLOW_METHODS,
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                header::ACCESS_CONTROL_MAX_AGE,
            ] {
                headers.remove(name);
            }
        }
        let Some(rule) = self.rule else { return };
        if rule.origins == Origins::Tenant {
            headers.append(header::VARY, VARY_VALUE.clone());
        }
        if let (Some(origin), false) = (&self.allowed, by_service) {
            rule.allow_origin(headers, origin);
            if let Some(e) = &rule.expose_headers {
                headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, e.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn requests_are_classified_against_the_gateways_own_origin() {
        let host = HeaderValue::from_static("tansu.test:8443");
        let kind = |m: Method, h: &[(&str, &str)]| classify(&m, &headers(h), "https", Some(&host));
        assert!(matches!(kind(Method::GET, &[]), Kind::SameOrigin));
        assert!(matches!(
            kind(Method::POST, &[("origin", "https://tansu.test:8443")]),
            Kind::SameOrigin
        ));
        assert!(matches!(
            kind(Method::POST, &[("origin", "http://tansu.test:8443")]),
            Kind::CrossOrigin(Some(_))
        ));
        assert!(matches!(
            kind(
                Method::OPTIONS,
                &[
                    ("origin", "https://app.example"),
                    ("access-control-request-method", "PUT")
                ]
            ),
            Kind::Preflight(Some(o)) if o == "https://app.example"
        ));
        assert!(matches!(
            kind(Method::GET, &[("origin", "null")]),
            Kind::CrossOrigin(None)
        ));
        assert!(matches!(
            kind(Method::GET, &[("origin", "https://App.example")]),
            Kind::CrossOrigin(None)
        ));
    }

    #[test]
    fn preflights_and_answers() {
        let cors = Cors::new(&default_rules());
        let db = cors.rule_for("/db/api/collections").unwrap();
        assert_eq!(db.origins, Origins::Tenant);
        let allowed = ["https://app.example".to_owned()];
        assert!(db.allows("https://app.example", Some(&allowed)));
        assert!(!db.allows("https://evil.example", Some(&allowed)));
        assert!(!db.allows("https://app.example", None));
        let ok = db
            .preflight(
                "https://app.example",
                &headers(&[
                    ("access-control-request-method", "PUT"),
                    (
                        "access-control-request-headers",
                        "Authorization, content-type",
                    ),
                ]),
            )
            .unwrap();
        assert_eq!(ok["access-control-allow-origin"], "https://app.example");
        assert!(ok.get("access-control-allow-credentials").is_none());
        assert!(ok["vary"].to_str().unwrap().starts_with("Origin"));
        assert_eq!(ok["access-control-max-age"], "600");
        for bad in [
            &[("access-control-request-method", "TRACE")][..],
            &[
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "authorization, x-secret"),
            ][..],
        ] {
            assert_eq!(
                db.preflight("https://app.example", &headers(bad))
                    .unwrap_err()
                    .status,
                403
            );
        }
        let docs = cors.rule_for("/identity/.well-known/jwks").unwrap();
        let h = docs
            .preflight(
                "https://x.example",
                &headers(&[("access-control-request-method", "GET")]),
            )
            .unwrap();
        assert_eq!(h["access-control-allow-origin"], "*");
        assert!(cors.rule_for("/identity/admin/clients").is_none());

        // An answer: the service's own CORS headers go; the rule's come.
        let mut answer = headers(&[("access-control-allow-origin", "*"), ("etag", "\"1\"")]);
        Outcome {
            rule: Some(db),
            allowed: Some("https://app.example".into()),
            preflight: false,
        }
        .apply(&mut answer);
        assert_eq!(answer["access-control-allow-origin"], "https://app.example");
        assert!(
            answer["access-control-expose-headers"]
                .to_str()
                .unwrap()
                .contains("etag")
        );
        assert_eq!(answer["vary"], "Origin");
        let mut refused = headers(&[("access-control-allow-origin", "*")]);
        Outcome {
            rule: Some(db),
            ..Outcome::default()
        }
        .apply(&mut refused);
        assert!(refused.get("access-control-allow-origin").is_none());
        let mut by_service = headers(&[("access-control-allow-origin", "https://a.example")]);
        Outcome {
            rule: cors.rule_for("/identity/connect/token"),
            allowed: Some("https://a.example".into()),
            preflight: false,
        }
        .apply(&mut by_service);
        assert_eq!(
            by_service["access-control-allow-origin"],
            "https://a.example"
        );
    }

    #[test]
    fn wildcard_with_credentials_is_refused() {
        assert!(validate(&default_rules()).is_empty());
        let mut rules = default_rules();
        rules[0].credentials = true;
        rules[1].methods.push("*".into());
        rules[2].headers.push("*".into());
        let problems = validate(&rules).join("\n");
        assert!(problems.contains("credentials"), "{problems}");
        assert!(problems.contains("methods"), "{problems}");
        assert!(problems.contains("headers"), "{problems}");
    }
}
