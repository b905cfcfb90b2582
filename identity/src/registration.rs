//! Registration (issue #4): a new shop is a tenant with its own database and an owner.
//!
//! Routes:
//! - `GET/POST /register` — the server-rendered form (self-service; CSRF double submit like the
//!   login form). Reached from the login page with the same authorization request, after which
//!   the new owner is signed in and the authorization continues (code to the client's
//!   registered `redirect_uri`); or with `client_id` + `return_to`, where `return_to` must be
//!   one of that client's registered redirect or post-logout URIs. Nothing else redirects.
//! - `POST /registrations` — the self-service JSON API;
//! - `POST /admin/registrations` — the same for platform administrators (always available).
//!
//! Self-service is open when `registration_enabled` (default: dev mode).
//!
//! The flow: validate (email, shop name/slug, the password against the default tenant policy)
//! → refuse a taken email or slug early → Argon2id (bounded pool) → provision the database
//! ([`crate::provisioning`]) → one transaction with the tenant (UUIDv7), its vault (data key +
//! the database descriptor and any scoped credential, sealed), the owner, the `Owner`
//! membership and the tenant's first security events.
//!
//! Atomic from the user's view: before provisioning nothing is written; a failure after it
//! rolls the transaction back and deprovisions the database again (compensation). So a failed
//! attempt leaves no tenant, user, membership, secret or event, and a retry (new tenant id)
//! succeeds and ends with one tenant. Two concurrent registrations of the same email or slug:
//! one commits, the other hits the unique constraint, deprovisions and answers 409.
//!
//! What a refusal reveals: that the email already has an account or the shop address is
//! taken (the user must know to sign in or pick another); never which tenant or user.
// `Problem` is the handlers' error type.
#![allow(clippy::result_large_err)]

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use tansu_shared::Problem;
use zeroize::Zeroizing;

use crate::AppState;
use crate::admin_tenants::valid_email;
use crate::authorize::{self, AuthRequest, AuthorizeError, escape};
use crate::crypto;
use crate::events::{self, Meta};
use crate::http::{Action, Caller};
use crate::oauth::token::{MAX_BODY_BYTES, Params};
use crate::store::events::EventRow;
use crate::store::registration::RegistrationRows;
use crate::store::tenants::{MembershipRow, TenantRow};
use crate::store::users::{SessionRow, UserRow};
use crate::store::{new_id, now_ms};
use crate::tenants::{self, ROLE_OWNER, STATUS_ACTIVE, TenantPolicy};

/// The vault secret holding the database descriptor (JSON).
pub const DATABASE_SECRET: &str = "database";
/// The vault secret holding a scoped database credential, when provisioning returns one.
pub const DATABASE_CREDENTIAL_SECRET: &str = "database-credential";

pub fn router() -> crate::http::Routes<AppState> {
    crate::http::Routes::new()
        .route("/register", get(form_page).post(form_submit))
        .route("/registrations", post(self_service))
        .route("/admin/registrations", post(by_admin))
}

/// What a registration asks for.
pub struct RegistrationInput {
    pub email: String,
    pub password: Zeroizing<String>,
    pub shop_name: String,
    /// The shop's address; derived from the name when absent.
    pub slug: Option<String>,
    /// The owner's display name.
    pub name: String,
}

/// A completed registration.
#[derive(Debug)]
pub struct Registered {
    pub tenant: TenantRow,
    pub user: UserRow,
}

#[derive(Debug)]
pub enum RegistrationError {
    Invalid(Vec<String>),
    EmailTaken,
    SlugTaken,
    /// Provisioning is not configured or failed; nothing was kept.
    Unavailable(String),
    Internal(String),
}

impl RegistrationError {
    pub fn problem(&self) -> Problem {
        match self {
            RegistrationError::Invalid(problems) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                "Invalid registration",
            )
            .with_detail(problems.join("; "))
            .with_extension("errors", problems.clone()),
            RegistrationError::EmailTaken => Problem::new(
                StatusCode::CONFLICT,
                "email-taken",
                "Email already registered",
            )
            .with_detail("an account with this email exists; sign in instead"),
            RegistrationError::SlugTaken => {
                Problem::new(StatusCode::CONFLICT, "slug-taken", "Shop address taken")
                    .with_detail("choose another shop address (slug)")
            }
            RegistrationError::Unavailable(_) => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "registration-unavailable",
                "Registration unavailable",
            )
            .with_detail("the shop could not be set up right now; nothing was kept; retry later"),
            RegistrationError::Internal(cause) => Problem::internal(cause),
        }
    }

    /// The form's message.
    fn message(&self) -> String {
        match self {
            RegistrationError::Invalid(p) => p.join(". "),
            RegistrationError::EmailTaken => {
                "An account with this email already exists. Sign in instead.".into()
            }
            RegistrationError::SlugTaken => {
                "This shop address is taken. Choose another one.".into()
            }
            RegistrationError::Unavailable(_) | RegistrationError::Internal(_) => {
                "Your shop could not be set up right now (nothing was kept). Retry in a moment."
                    .into()
            }
        }
    }

    fn status(&self) -> StatusCode {
        self.problem().status()
    }
}

/// `a-z 0-9 -` from a shop name: "Müller & Söhne GmbH" → "m-ller-s-hne-gmbh".
pub fn slugify(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().to_lowercase().chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let mut out: String = out.chars().take(54).collect();
    while out.ends_with('-') {
        out.pop();
    }
    while out.len() < 3 && !out.is_empty() {
        out.push('0');
    }
    if out.is_empty() { "shop".into() } else { out }
}

fn validate(input: &RegistrationInput) -> Vec<String> {
    let mut v = Vec::new();
    if !valid_email(&input.email) {
        v.push("email: a valid address".to_owned());
    }
    if !tenants::valid_name(&input.shop_name) {
        v.push("shop_name: required, at most 200 characters".to_owned());
    }
    if let Some(slug) = &input.slug
        && !tenants::valid_slug(slug)
    {
        v.push("slug: 3 to 63 characters of a-z 0-9 -, not a UUID".to_owned());
    }
    if input.name.chars().count() > 200 || input.name.chars().any(char::is_control) {
        v.push("name: at most 200 characters".to_owned());
    }
    v.extend(tenants::password_problems(
        &input.password,
        &input.email,
        &input.name,
        &TenantPolicy::default(),
    ));
    v
}

fn internal(e: &dyn std::fmt::Display) -> RegistrationError {
    RegistrationError::Internal(e.to_string())
}

/// Picks the slug: the given one (must be free), or one derived from the shop name (with a
/// random suffix when the plain one is taken).
async fn choose_slug(
    state: &AppState,
    input: &RegistrationInput,
) -> Result<String, RegistrationError> {
    let taken = |slug: String| async move {
        state
            .store
            .tenant_by_ref(&slug)
            .await
            .map(|t| t.is_some())
            .map_err(|e| internal(&e))
    };
    if let Some(slug) = &input.slug {
        return if taken(slug.clone()).await? {
            Err(RegistrationError::SlugTaken)
        } else {
            Ok(slug.clone())
        };
    }
    let base = slugify(&input.shop_name);
    if tenants::valid_slug(&base) && !taken(base.clone()).await? {
        return Ok(base);
    }
    for _ in 0..5 {
        let suffix: String = crypto::random_bytes(3)
            .map_err(|e| internal(&e))?
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let candidate = format!("{base}-{suffix}");
        if tenants::valid_slug(&candidate) && !taken(candidate.clone()).await? {
            return Ok(candidate);
        }
    }
    Err(RegistrationError::SlugTaken)
}

/// The new tenant's first events, chained from seq 1.
fn first_events(
    meta: &Meta,
    tenant: &TenantRow,
    user: &UserRow,
    actor: &str,
    secrets: &[(String, i64, Vec<u8>)],
) -> Vec<EventRow> {
    let mut details = vec![
        (
            events::TENANT_CHANGE,
            json!({"action": "register", "slug": tenant.slug}),
        ),
        (
            events::USER_CHANGE,
            json!({"action": "register", "user": user.id}),
        ),
        (
            events::ROLE_CHANGE,
            json!({"user": user.id, "roles": [ROLE_OWNER]}),
        ),
    ];
    for (name, version, _) in secrets {
        details.push((
            events::SECRET_WRITE,
            json!({"name": name, "version": version}),
        ));
    }
    let mut out: Vec<EventRow> = Vec::with_capacity(details.len());
    let now = now_ms();
    for (seq, (kind, d)) in (1..).zip(details) {
        let mut row = EventRow {
            id: new_id(),
            tenant_id: tenant.id.clone(),
            seq,
            at: now,
            kind: kind.to_owned(),
            actor: actor.to_owned(),
            ip: meta.ip.clone(),
            user_agent: meta.user_agent.clone(),
            outcome: "success".into(),
            details: d.to_string(),
            trace_id: meta.trace_id.clone(),
            prev_hash: out.last().map(|e| e.hash.clone()).unwrap_or_default(),
            hash: String::new(),
        };
        row.hash = events::link_hash(&row);
        out.push(row);
    }
    out
}

/// Registers a shop: tenant, database, vault, owner, role, events — all or nothing.
/// `actor`: the platform admin doing it (`None`: the new owner, self-service).
pub async fn register(
    state: &AppState,
    mut input: RegistrationInput,
    meta: &Meta,
    actor: Option<String>,
) -> Result<Registered, RegistrationError> {
    input.email = input.email.trim().to_lowercase();
    input.shop_name = input.shop_name.trim().to_owned();
    input.name = input.name.trim().to_owned();
    input.slug = input
        .slug
        .take()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    let problems = validate(&input);
    if !problems.is_empty() {
        return Err(RegistrationError::Invalid(problems));
    }
    let Some(provisioner) = state.provisioner.clone() else {
        return Err(RegistrationError::Unavailable(
            "database_service_url is not configured".into(),
        ));
    };
    if state
        .store
        .user_by_email(&input.email)
        .await
        .map_err(|e| internal(&e))?
        .is_some()
    {
        return Err(RegistrationError::EmailTaken);
    }
    let slug = choose_slug(state, &input).await?;
    let password_hash = state
        .passwords
        .hash(&input.password)
        .await
        .map_err(|e| internal(&e))?;
    let now = now_ms();
    let policy = TenantPolicy::default();
    let tenant = TenantRow {
        id: new_id(),
        slug,
        name: input.shop_name.clone(),
        status: STATUS_ACTIVE.into(),
        policy: serde_json::to_string(&policy).map_err(|e| internal(&e))?,
        created_at: now,
        updated_at: now,
    };
    let user = UserRow {
        id: new_id(),
        email: input.email.clone(),
        name: input.name.clone(),
        password_hash,
        tenant_id: None,
        roles: Vec::new(),
        disabled: false,
        platform_admin: false,
        home_tenant_id: Some(tenant.id.clone()),
        created_at: now,
        updated_at: now,
    };

    // Provisioning first: until it succeeds nothing is written here.
    let provisioned = provisioner.provision(&tenant.id).await.map_err(|e| {
        tracing::warn!(tenant = %tenant.id, error = %e, "provisioning a new tenant's database failed");
        RegistrationError::Unavailable(e.to_string())
    })?;
    let result = async {
        let descriptor =
            Zeroizing::new(serde_json::to_vec(&provisioned.descriptor).map_err(|e| internal(&e))?);
        let mut secrets: Vec<(&str, &[u8])> = vec![(DATABASE_SECRET, descriptor.as_slice())];
        if let Some(c) = &provisioned.credential {
            secrets.push((DATABASE_CREDENTIAL_SECRET, c.as_bytes()));
        }
        let vault =
            crate::vault::seal_new_tenant(state, &tenant.id, &secrets).map_err(|e| internal(&e))?;
        let actor = actor.unwrap_or_else(|| format!("user:{}", user.id));
        let rows = RegistrationRows {
            events: first_events(meta, &tenant, &user, &actor, &vault.secrets),
            tenant: tenant.clone(),
            data_key: (vault.wrapped_key, vault.master_key_id),
            secrets: vault.secrets,
            user: user.clone(),
            membership: MembershipRow {
                user_id: user.id.clone(),
                tenant_id: tenant.id.clone(),
                roles: vec![ROLE_OWNER.into()],
                created_at: now,
            },
        };
        match state.store.insert_registration(&rows).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_unique_violation() => {
                // Someone took the email or the slug since the checks above.
                let email_taken =
                    matches!(state.store.user_by_email(&user.email).await, Ok(Some(_)));
                Err(if email_taken {
                    RegistrationError::EmailTaken
                } else {
                    RegistrationError::SlugTaken
                })
            }
            Err(e) => Err(internal(&e)),
        }
    }
    .await;
    if let Err(e) = result {
        // Compensation: the database goes again (database-svc keeps it soft-deleted until
        // its retention ends).
        if let Err(d) = provisioner.deprovision(&tenant.id).await {
            metrics::counter!("identity_registration_compensation_failures_total").increment(1);
            tracing::error!(tenant = %tenant.id, error = %d, "deprovisioning after a failed registration failed");
        }
        if let RegistrationError::Internal(cause) = &e {
            tracing::error!(tenant = %tenant.id, error = %cause, "registration failed; rolled back");
        }
        metrics::counter!("identity_registrations_total", "outcome" => "failure").increment(1);
        return Err(e);
    }
    metrics::counter!("identity_registrations_total", "outcome" => "success").increment(1);
    tracing::info!(tenant = %tenant.id, slug = %tenant.slug, user = %user.id, "shop registered");
    Ok(Registered { tenant, user })
}

// ---------------------------------------------------------------- JSON API

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistrationBody {
    email: String,
    password: String,
    shop_name: String,
    #[serde(default)]
    slug: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

impl From<RegistrationBody> for RegistrationInput {
    fn from(b: RegistrationBody) -> Self {
        Self {
            email: b.email,
            password: Zeroizing::new(b.password),
            shop_name: b.shop_name,
            slug: b.slug,
            name: b.name.unwrap_or_default(),
        }
    }
}

async fn json_registration(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    actor: Option<String>,
) -> Result<Response, Problem> {
    // JSON only: a cross-site form cannot send it without a CORS preflight.
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    if !json {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
        )
        .with_detail("send application/json"));
    }
    let b: RegistrationBody = crate::admin::json_body(body).await?;
    let done = register(state, b.into(), &Meta::from_headers(headers), actor)
        .await
        .map_err(|e| e.problem())?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "tenant_id": done.tenant.id,
            "slug": done.tenant.slug,
            "user_id": done.user.id,
        })),
    )
        .into_response())
}

/// `POST /registrations` (self-service, when open).
async fn self_service(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    if !state.config.registration_open() {
        return Err(Problem::not_found());
    }
    json_registration(&state, &headers, body, None).await
}

/// `POST /admin/registrations` (platform administrators).
async fn by_admin(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    caller.may(&Action::CreateTenant)?;
    json_registration(&state, &headers, body, Some(caller.event_actor())).await
}

// ---------------------------------------------------------------- HTML form

/// Where the browser goes after registering.
enum Continue {
    /// The authorization request it came with (from the login page).
    Authorization(Box<AuthRequest>),
    /// A registered redirect or post-logout URI of `client_id`.
    ReturnTo { client_id: String, url: String },
    /// A page here.
    Done,
}

impl Continue {
    fn hidden_fields(&self) -> String {
        let field = |name: &str, value: &str| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(name),
                escape(value)
            )
        };
        match self {
            Continue::Authorization(req) => field("request", &req.raw),
            Continue::ReturnTo { client_id, url } => {
                format!(
                    "{}{}",
                    field("client_id", client_id),
                    field("return_to", url)
                )
            }
            Continue::Done => String::new(),
        }
    }
}

fn refused(status: StatusCode, message: &'static str) -> Response {
    AuthorizeError::Page(status, message).into_response()
}

/// Reads where to continue from the page's query or the form: an authorization request
/// (`request` in the form; the whole query on `GET`), or `client_id` + `return_to`.
async fn continuation(
    state: &AppState,
    request: Option<&str>,
    client_id: Option<&str>,
    return_to: Option<&str>,
) -> Result<Continue, Response> {
    if let Some(raw) = request.filter(|r| !r.is_empty()) {
        return authorize::parse_request(state, raw)
            .await
            .map(|r| Continue::Authorization(Box::new(r)))
            .map_err(IntoResponse::into_response);
    }
    match (client_id, return_to) {
        (None, None) => Ok(Continue::Done),
        (Some(client_id), Some(url)) => {
            let client = state
                .store
                .client_by_client_id(client_id)
                .await
                .map_err(|_| {
                    refused(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Registration is unavailable right now; retry later.",
                    )
                })?;
            // Exact match with a URI the client registered: no open redirect.
            match client {
                Some(c)
                    if c.redirect_uris.iter().any(|u| u == url)
                        || c.post_logout_redirect_uris.iter().any(|u| u == url) =>
                {
                    Ok(Continue::ReturnTo {
                        client_id: client_id.to_owned(),
                        url: url.to_owned(),
                    })
                }
                _ => Err(refused(
                    StatusCode::BAD_REQUEST,
                    "The return address is not registered for this application.",
                )),
            }
        }
        _ => Err(refused(
            StatusCode::BAD_REQUEST,
            "return_to needs the client_id that registered it.",
        )),
    }
}

/// The values the form shows again after an error (never the password).
#[derive(Default)]
struct Typed {
    email: String,
    shop_name: String,
    slug: String,
    name: String,
}

fn form(
    state: &AppState,
    headers: &HeaderMap,
    next: &Continue,
    typed: &Typed,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let Some((csrf, cookie)) = authorize::csrf_token(state, headers) else {
        return refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "Registration is unavailable right now.",
        );
    };
    let error_html = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    let body = format!(
        "<h1>Create your shop</h1>{error_html}\
         <form method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">{next}\
         <label>Email <input type=\"email\" name=\"email\" autocomplete=\"username\" required value=\"{email}\"></label>\
         <label>Password <input type=\"password\" name=\"password\" autocomplete=\"new-password\" required minlength=\"12\"></label>\
         <label>Your name (optional) <input type=\"text\" name=\"name\" autocomplete=\"name\" value=\"{name}\"></label>\
         <label>Shop name <input type=\"text\" name=\"shop_name\" required value=\"{shop}\"></label>\
         <label>Shop address (optional; a-z, 0-9, -) <input type=\"text\" name=\"slug\" pattern=\"[a-z0-9-]{{3,63}}\" value=\"{slug}\"></label>\
         <button type=\"submit\">Create shop</button></form>",
        action = escape(&format!("{}register", state.config.issuer)),
        csrf = escape(&csrf),
        next = next.hidden_fields(),
        email = escape(&typed.email),
        name = escape(&typed.name),
        shop = escape(&typed.shop_name),
        slug = escape(&typed.slug),
    );
    let mut response = authorize::html(status, &authorize::page("Create your shop", &body));
    if let Some(c) = cookie {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

/// `GET /register[?<authorization request> | ?client_id=…&return_to=…]`
async fn form_page(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    if !state.config.registration_open() {
        return refused(StatusCode::NOT_FOUND, "Registration is not open.");
    }
    let raw = uri.query().unwrap_or("");
    let Ok(params) = Params::parse(raw.as_bytes()) else {
        return refused(StatusCode::BAD_REQUEST, "The request is malformed.");
    };
    let next = if params.get("response_type").is_some() {
        continuation(&state, Some(raw), None, None).await
    } else {
        continuation(
            &state,
            None,
            params.get("client_id"),
            params.get("return_to"),
        )
        .await
    };
    match next {
        Ok(next) => form(
            &state,
            &headers,
            &next,
            &Typed::default(),
            None,
            StatusCode::OK,
        ),
        Err(r) => r,
    }
}

/// `POST /register`: the form's submission.
async fn form_submit(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    if !state.config.registration_open() {
        return refused(StatusCode::NOT_FOUND, "Registration is not open.");
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return refused(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.");
    };
    let Ok(f) = Params::parse(&bytes) else {
        return refused(StatusCode::BAD_REQUEST, "The form is malformed.");
    };
    if !authorize::csrf_matches(&headers, &f) {
        return refused(
            StatusCode::FORBIDDEN,
            "The form expired or was not sent from this site. Go back and try again.",
        );
    }
    let next = match continuation(
        &state,
        f.get("request"),
        f.get("client_id"),
        f.get("return_to"),
    )
    .await
    {
        Ok(n) => n,
        Err(r) => return r,
    };
    let typed = Typed {
        email: f.get("email").unwrap_or("").chars().take(320).collect(),
        shop_name: f.get("shop_name").unwrap_or("").chars().take(200).collect(),
        slug: f.get("slug").unwrap_or("").chars().take(63).collect(),
        name: f.get("name").unwrap_or("").chars().take(200).collect(),
    };
    let input = RegistrationInput {
        email: f.get("email").unwrap_or("").to_owned(),
        password: Zeroizing::new(f.get("password").unwrap_or("").to_owned()),
        shop_name: f.get("shop_name").unwrap_or("").to_owned(),
        slug: f.get("slug").map(str::to_owned),
        name: f.get("name").unwrap_or("").to_owned(),
    };
    let meta = Meta::from_headers(&headers);
    let done = match register(&state, input, &meta, None).await {
        Ok(d) => d,
        Err(e) => {
            return form(
                &state,
                &headers,
                &next,
                &typed,
                Some(&e.message()),
                e.status(),
            );
        }
    };
    signed_in(&state, &headers, &meta, &next, &done).await
}

/// The new owner is signed in (a session for the new tenant), then continues.
async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
    meta: &Meta,
    next: &Continue,
    done: &Registered,
) -> Response {
    let session = match crypto::random_secret() {
        Ok(token) => {
            let now = now_ms();
            let lifetime = state.config.session_lifetime_secs;
            let row = SessionRow {
                id: new_id(),
                token_hash: crypto::sha256(token.as_bytes()),
                user_id: done.user.id.clone(),
                auth_time: now,
                amr: "pwd".into(),
                created_at: now,
                expires_at: now + i64::try_from(lifetime).unwrap_or(3600) * 1000,
                revoked_at: None,
                tenant_id: Some(done.tenant.id.clone()),
            };
            match state.store.insert_session(&row).await {
                Ok(()) => Some((row, token, lifetime)),
                Err(e) => {
                    tracing::error!(error = %e, "storing the new owner's session failed");
                    None
                }
            }
        }
        Err(_) => None,
    };
    let Some((session, token, lifetime)) = session else {
        // Registered, but not signed in: the user signs in normally.
        let body = format!(
            "<h1>Your shop is ready</h1><p><strong>{}</strong> was created. Sign in to continue.</p>",
            escape(&done.tenant.name)
        );
        return authorize::html(StatusCode::OK, &authorize::page("Shop created", &body));
    };
    events::record(
        state,
        meta,
        events::Event {
            tenant_id: Some(&done.tenant.id),
            kind: events::SIGN_IN,
            actor: format!("user:{}", done.user.id),
            outcome: "success",
            details: json!({"email": done.user.email, "via": "registration"}),
        },
    )
    .await;
    let mut response = match next {
        Continue::Authorization(req) => {
            authorize::continue_authorization(state, headers, req, &session, &done.user).await
        }
        Continue::ReturnTo { url, .. } => authorize::redirect(url),
        Continue::Done => {
            let dashboard = if state.config.dev_mode && !state.config.dev_dashboard_url.is_empty() {
                format!(
                    "<p><a href=\"{}\">Open the dashboard</a></p>",
                    escape(&state.config.dev_dashboard_url)
                )
            } else {
                String::new()
            };
            let body = format!(
                "<h1>Your shop is ready</h1><p><strong>{}</strong> (<code>{}</code>) was created and you are signed in.</p>{dashboard}",
                escape(&done.tenant.name),
                escape(&done.tenant.slug),
            );
            authorize::html(StatusCode::CREATED, &authorize::page("Shop created", &body))
        }
    };
    if let Some(c) =
        authorize::set_cookie(state, authorize::SESSION_COOKIE, &token, "Lax", lifetime)
    {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_from_names() {
        assert_eq!(slugify("Acme Shop"), "acme-shop");
        assert_eq!(slugify("  Müller & Söhne  "), "m-ller-s-hne");
        assert_eq!(slugify("A"), "a00");
        assert_eq!(slugify("!!!"), "shop");
        assert!(tenants::valid_slug(&slugify(&"x".repeat(300))));
    }
}
