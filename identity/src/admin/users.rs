//! `/admin/tenants/{tid}/users…`: a tenant's members (create or invite, list, read, update,
//! disable/enable, remove, reset password or MFA).
//!
//! Users are global identities with memberships. A tenant admin sees and changes a user only
//! through the membership in their tenant; what is global about the user (password, MFA, name,
//! disabled) only when their tenant created the account (its home tenant) or as a platform
//! admin. Adding an account that exists already invites it ([`super::invitations`]). Platform
//! administrators are out of every tenant's reach (404). A password or MFA reset ends the
//! user's sessions and refresh-token families in the same transaction.

use crate::AppState;
use crate::admin::audit;
use crate::admin::conflict;
use crate::admin::found;
use crate::admin::invalid;
use crate::admin::invitations::invite;
use crate::admin::member_roles::dedup;
use crate::admin::tenant_for;
use crate::admin::tenants::PageQuery;
use crate::admin::{json_body, store_failed};
use crate::clients::rfc3339;
use crate::events::{self, USER_CHANGE};
use crate::http::{Action, Caller, Rank, Target};
use crate::paging::next_cursor;
use crate::store::tenants::{MembershipRow, TenantRow};
use crate::store::users::UserRow;
use crate::store::{new_id, now_ms};
use crate::tenants::valid_email;
use crate::tenants::{self, ROLE_USER};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, post};
use serde::Deserialize;
use serde_json::json;
use tansu_shared::Problem;
use tansu_shared::admin_api::{AddedMember, Member, NewMember, Page, PasswordReset};

/// A user as a tenant's admin API shows it: the global identity and the roles in this tenant.
pub(crate) fn member_view(u: &UserRow, m: &MembershipRow) -> Member {
    Member {
        id: u.id.clone(),
        email: u.email.clone(),
        name: u.name.clone(),
        disabled: u.disabled,
        tenant_id: m.tenant_id.clone(),
        roles: m.roles.clone(),
        created_at: rfc3339(u.created_at),
        updated_at: rfc3339(u.updated_at),
    }
}

/// What the policy needs to know of a member.
pub(crate) fn target<'a>(u: &'a UserRow, m: &MembershipRow) -> Target<'a> {
    Target {
        user_id: &u.id,
        rank: Rank::of(&m.roles),
        platform_admin: u.platform_admin,
        home_tenant: u.home_tenant_id.as_deref(),
    }
}

/// The user `uid` through its membership in `tid` (404 when it has none, or when the policy
/// hides the user from the caller).
pub(crate) async fn member(
    state: &AppState,
    caller: &Caller,
    tid: &str,
    uid: &str,
) -> Result<(TenantRow, UserRow, MembershipRow), Problem> {
    let tenant = tenant_for(state, caller, &Action::ReadMembers(tid), tid).await?;
    let m = state
        .store
        .membership(uid, &tenant.id)
        .await
        .map_err(|e| store_failed(&e))?
        .ok_or_else(Problem::not_found)?;
    let u = state
        .store
        .user_by_id(uid)
        .await
        .map_err(|e| store_failed(&e))?
        .ok_or_else(Problem::not_found)?;
    caller.may(&Action::ReadMember {
        tid,
        target: target(&u, &m),
    })?;
    Ok((tenant, u, m))
}

/// [`member`], for an action on what is global about the user (name, password, MFA, disabled).
pub(crate) async fn member_identity(
    state: &AppState,
    caller: &Caller,
    tid: &str,
    uid: &str,
) -> Result<(TenantRow, UserRow, MembershipRow), Problem> {
    let (tenant, u, m) = member(state, caller, tid, uid).await?;
    caller.may(&Action::ChangeIdentity {
        tid,
        target: target(&u, &m),
    })?;
    Ok((tenant, u, m))
}

/// The roles must exist in the tenant (built-in or custom).
pub(crate) async fn check_roles(
    state: &AppState,
    tenant_id: &str,
    roles: &[String],
) -> Result<(), Problem> {
    for r in roles {
        if !crate::roles::exists(&state.store, tenant_id, r)
            .await
            .map_err(|e| store_failed(&e))?
        {
            return Err(invalid(vec![format!(
                "roles: unknown role {:?} (Owner, Admin, User or a custom role of the tenant)",
                r.chars().take(64).collect::<String>()
            )]));
        }
    }
    Ok(())
}

/// Creates a user in the tenant (the tenant is its home: it may later reset its
/// credentials), or, for an email that has an account already, invites it. A platform admin
/// adds an existing account at once; a tenant admin's invitation waits for the invitee to
/// accept it and answers 202 with the invitation only — nothing about the account.
pub(crate) async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(tid): Path<String>,
    body: Body,
) -> Result<Response, Problem> {
    let add = Action::AddMember {
        tid: &tid,
        grants_owner: false,
    };
    let tenant = tenant_for(&state, &caller, &add, &tid).await?;
    let new: NewMember = json_body(body).await?;
    let email = new.email.trim().to_lowercase();
    let name = new.name.trim().to_owned();
    let mut problems = Vec::new();
    if !valid_email(&email) {
        problems.push("email: a valid address".to_owned());
    }
    if name.chars().count() > 200 || name.chars().any(char::is_control) {
        problems.push("name: at most 200 characters".to_owned());
    }
    let policy = tenants::policy_of(&tenant);
    if let Some(p) = &new.password {
        problems.extend(tenants::password_problems(p, &email, &name, &policy));
    }
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    let roles = dedup(new.roles.unwrap_or_else(|| vec![ROLE_USER.to_owned()]));
    caller.may(&Action::AddMember {
        tid: &tenant.id,
        grants_owner: Rank::of(&roles) == Rank::Owner,
    })?;
    check_roles(&state, &tenant.id, &roles).await?;
    let now = now_ms();
    let existing = state
        .store
        .user_by_email(&email)
        .await
        .map_err(|e| store_failed(&e))?;
    let user = match existing {
        Some(_) if !caller.is_platform() => {
            return invite(&state, &caller, &tenant, email, roles).await;
        }
        Some(u) => u,
        None => {
            // Without a password the account cannot sign in until a reset sets one.
            let password = match &new.password {
                Some(p) => p.clone(),
                None => crate::crypto::random_secret().map_err(|e| store_failed(&e))?,
            };
            let user = UserRow {
                id: new_id(),
                email: email.clone(),
                name: name.clone(),
                password_hash: state
                    .passwords
                    .hash(&password)
                    .await
                    .map_err(|e| store_failed(&e))?,
                tenant_id: None,
                roles: Vec::new(),
                disabled: false,
                platform_admin: false,
                home_tenant_id: Some(tenant.id.clone()),
                created_at: now,
                updated_at: now,
            };
            match state.store.insert_user(&user).await {
                Ok(()) => user,
                // Created meanwhile by someone else: an existing account, invited.
                Err(e) if e.is_unique_violation() && !caller.is_platform() => {
                    return invite(&state, &caller, &tenant, email, roles).await;
                }
                Err(e) if e.is_unique_violation() => state
                    .store
                    .user_by_email(&email)
                    .await
                    .map_err(|e| store_failed(&e))?
                    .ok_or_else(|| conflict("the user changed concurrently; retry"))?,
                Err(e) => return Err(store_failed(&e)),
            }
        }
    };
    if state
        .store
        .membership(&user.id, &tenant.id)
        .await
        .map_err(|e| store_failed(&e))?
        .is_some()
    {
        return Err(conflict("the user is already a member of this tenant"));
    }
    let m = MembershipRow {
        user_id: user.id.clone(),
        tenant_id: tenant.id.clone(),
        roles,
        created_at: now,
    };
    state
        .store
        .upsert_membership(&m)
        .await
        .map_err(|e| store_failed(&e))?;
    tracing::info!(tenant = %tenant.id, user = %user.id, by = %caller.subject(), "member added");
    audit(
        &state,
        &caller,
        Some(&tenant.id),
        USER_CHANGE,
        json!({"action": "add", "user": user.id, "roles": m.roles}),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(AddedMember::Member(member_view(&user, &m))),
    )
        .into_response())
}

/// The sort keys of a tenant's user list (`created` = user id).
const USER_SORTS: &[(&str, &str)] = &[("created", ""), ("email", "u.email"), ("name", "u.name")];

pub(crate) async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    Path(tid): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<Member>>, Problem> {
    let tenant = tenant_for(&state, &caller, &Action::ReadMembers(&tid), &tid).await?;
    let (limit, sort) = (q.limit(), q.sort(USER_SORTS)?);
    let search = q
        .search
        .as_deref()
        .map(|s| s.chars().take(100).collect::<String>());
    let mut rows = state
        .store
        .tenant_members(&tenant.id, search.as_deref(), &sort, limit)
        .await
        .map_err(|e| store_failed(&e))?;
    let key = q.sort.clone().unwrap_or_default();
    let key_and_id = |(u, _): &(UserRow, MembershipRow)| {
        let k = match key.as_str() {
            "email" => u.email.clone(),
            "name" => u.name.clone(),
            _ => String::new(),
        };
        (k, u.id.clone())
    };
    // The cursor is the page's own, before platform administrators are hidden from tenants.
    let next = next_cursor(&rows, limit, &sort, key_and_id);
    if !caller.is_platform() {
        rows.retain(|(u, _)| !u.platform_admin);
    }
    Ok(Json(Page {
        items: rows.iter().map(|(u, m)| member_view(u, m)).collect(),
        next_after: next,
    }))
}

pub(crate) async fn get_user(
    State(state): State<AppState>,
    caller: Caller,
    Path((tid, uid)): Path<(String, String)>,
) -> Result<Json<Member>, Problem> {
    let (_, u, m) = member(&state, &caller, &tid, &uid).await?;
    Ok(Json(member_view(&u, &m)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserUpdate {
    name: Option<String>,
}

pub(crate) async fn update_user(
    State(state): State<AppState>,
    caller: Caller,
    Path((tid, uid)): Path<(String, String)>,
    body: Body,
) -> Result<Json<Member>, Problem> {
    let (_, mut u, m) = member_identity(&state, &caller, &tid, &uid).await?;
    let update: UserUpdate = json_body(body).await?;
    if let Some(name) = update.name {
        let name = name.trim().to_owned();
        if name.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(invalid(vec!["name: at most 200 characters".into()]));
        }
        u.name = name;
    }
    u.updated_at = now_ms();
    found(state.store.update_user_profile(&u).await)?;
    audit(
        &state,
        &caller,
        Some(&tid),
        USER_CHANGE,
        json!({"action": "update", "user": u.id}),
    )
    .await;
    Ok(Json(member_view(&u, &m)))
}

pub(crate) async fn set_disabled(
    state: &AppState,
    caller: &Caller,
    tid: &str,
    uid: &str,
    disabled: bool,
) -> Result<Json<Member>, Problem> {
    let (_, mut u, m) = member_identity(state, caller, tid, uid).await?;
    let now = now_ms();
    found(state.store.set_user_disabled(&u.id, disabled, now).await)?;
    u.disabled = disabled;
    u.updated_at = now;
    tracing::info!(tenant = %tid, user = %u.id, disabled, by = %caller.subject(), "user status changed");
    let action = if disabled { "disable" } else { "enable" };
    audit(
        state,
        caller,
        Some(tid),
        USER_CHANGE,
        json!({"action": action, "user": u.id}),
    )
    .await;
    Ok(Json(member_view(&u, &m)))
}

/// `POST …/disable` (`disabled`) or `…/enable`: a disabled user's sessions end and their
/// refresh token families are revoked.
pub(crate) fn set_user_disabled(disabled: bool) -> MethodRouter<AppState> {
    post(
        move |State(state): State<AppState>,
              caller: Caller,
              Path((tid, uid)): Path<(String, String)>| async move {
            set_disabled(&state, &caller, &tid, &uid, disabled).await
        },
    )
}

/// Removes the user from the tenant (the global identity stays).
pub(crate) async fn remove_user(
    State(state): State<AppState>,
    caller: Caller,
    Path((tid, uid)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    let (tenant, u, m) = member(&state, &caller, &tid, &uid).await?;
    caller.may(&Action::RemoveMember {
        tid: &tid,
        target: target(&u, &m),
    })?;
    state
        .store
        .delete_membership(&u.id, &tenant.id)
        .await
        .map_err(|e| store_failed(&e))?;
    tracing::info!(tenant = %tenant.id, user = %u.id, by = %caller.subject(), "member removed");
    audit(
        &state,
        &caller,
        Some(&tenant.id),
        USER_CHANGE,
        json!({"action": "remove", "user": u.id}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets the user's password; their sessions end and their refresh token families are revoked
/// in the same transaction.
pub(crate) async fn reset_password(
    State(state): State<AppState>,
    caller: Caller,
    Path((tid, uid)): Path<(String, String)>,
    body: Body,
) -> Result<StatusCode, Problem> {
    let (tenant, u, _) = member_identity(&state, &caller, &tid, &uid).await?;
    let reset: PasswordReset = json_body(body).await?;
    let problems = tenants::password_problems(
        &reset.password,
        &u.email,
        &u.name,
        &tenants::policy_of(&tenant),
    );
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    let hash = state
        .passwords
        .hash(&reset.password)
        .await
        .map_err(|e| store_failed(&e))?;
    found(state.store.set_password(&u.id, &hash, None, now_ms()).await)?;
    tracing::info!(tenant = %tenant.id, user = %u.id, by = %caller.subject(), "password reset");
    audit(
        &state,
        &caller,
        Some(&tenant.id),
        USER_CHANGE,
        json!({"action": "reset_password", "user": u.id}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes the user's TOTP secret and recovery codes: the user signs in with the password
/// alone (or enrols again when a tenant requires MFA). Their sessions end and their refresh
/// token families are revoked in the same transaction.
pub(crate) async fn reset_mfa(
    State(state): State<AppState>,
    caller: Caller,
    Path((tid, uid)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    let (tenant, u, _) = member_identity(&state, &caller, &tid, &uid).await?;
    let had = state
        .store
        .reset_mfa(&u.id, now_ms())
        .await
        .map_err(|e| store_failed(&e))?;
    tracing::info!(tenant = %tenant.id, user = %u.id, had, by = %caller.subject(), "MFA reset");
    audit(
        &state,
        &caller,
        Some(&tenant.id),
        events::MFA_RESET,
        json!({"user": u.id, "had_mfa": had}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
