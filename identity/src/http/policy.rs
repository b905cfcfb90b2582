//! The authorization policy: who may do what to which resource, decided in one place.
//!
//! Every admin and API handler of identity asks [`decide`] (through
//! [`crate::http::Caller::may`]) before it reads a body or touches the store; none re-derives a
//! rule. `docs/authorization.md` writes the same policy down as a table, and the matrix test
//! (`identity/tests/authorization.rs`) runs every route against every kind of actor to prove
//! the table and this module agree.
//!
//! The rules, and why:
//! - **Tenants do not see each other.** Anything of another tenant answers 404, exactly like a
//!   resource that does not exist, so a tenant cannot even learn what exists elsewhere.
//! - **Platform administrators are out of every tenant's reach.** A tenant cannot look one up,
//!   reset, disable or remove one (404, as for a stranger).
//! - **Roles are ordered** `Owner > Admin > member` (`User` and custom roles): a tenant admin
//!   acts only on members of at most their own rank, and only an Owner grants or takes away
//!   `Owner`. An Admin cannot reset, disable, demote or remove an Owner.
//! - **Global identities belong to whoever created them.** A user is one identity with
//!   memberships in several tenants; what is global about it (password, MFA, name, disabled)
//!   may be changed by a platform administrator or by the tenant that created it (its home
//!   tenant), never by a tenant that merely has it as a member.
//! - **Tenant administration needs both** the `admin.tenant` scope and the Owner or Admin role
//!   in the token's tenant; tenant clients (client credentials with a `tid`) reach only their
//!   tenant's vault, with the `secrets.*` scopes.
//! - **Platform operations** (clients, keys, master key, creating and renaming tenants,
//!   changing their status) are for platform administrators (`admin.full`); the tenant
//!   directory for platform clients with `tenants.read`; event ingest for platform clients with
//!   `events.write` (no user, no tenant: a tenant cannot forge another service's audit record).

use crate::scopes::{ADMIN_TENANT, EVENTS_WRITE, TENANTS_READ};
use crate::tenants::{ROLE_ADMIN, ROLE_OWNER};
use crate::vault::{SECRETS_READ, SECRETS_WRITE};

/// A member's rank in a tenant: who may act on whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rank {
    /// `User` or only custom roles.
    Member,
    Admin,
    Owner,
}

impl Rank {
    /// The highest rank the roles give.
    pub fn of(roles: &[String]) -> Rank {
        if roles.iter().any(|r| r == ROLE_OWNER) {
            Rank::Owner
        } else if roles.iter().any(|r| r == ROLE_ADMIN) {
            Rank::Admin
        } else {
            Rank::Member
        }
    }
}

/// Who is calling, as derived from a verified, active access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A platform administrator: a token with `admin.full` (issued only to platform admins'
    /// sessions and to platform clients allowed it); `service` for a client's own token.
    Platform { service: bool },
    /// A signed-in user acting in a tenant (a user token with `tid`).
    Member {
        tid: String,
        user_id: String,
        rank: Rank,
        /// The privileged scopes ([`crate::scopes::PRIVILEGED`]) the member's roles grant
        /// now, read with the membership: a role changed since the token was issued counts.
        privileged: Vec<&'static str>,
    },
    /// A tenant's client acting as itself (client credentials, `tid` set).
    TenantClient { tid: String },
    /// A platform client acting as itself (client credentials, no `tid`) without `admin.full`.
    PlatformClient,
    /// A user token without a tenant from a user who is not a platform administrator.
    PlatformUser,
    /// No credential.
    Anonymous,
}

impl Actor {
    /// The tenant the actor acts in, if any.
    pub fn tenant(&self) -> Option<&str> {
        match self {
            Actor::Member { tid, .. } | Actor::TenantClient { tid } => Some(tid),
            _ => None,
        }
    }
}

/// What a target user is, as far as the policy cares.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub user_id: &'a str,
    /// The target's rank in the tenant the action is about.
    pub rank: Rank,
    pub platform_admin: bool,
    pub home_tenant: Option<&'a str>,
}

/// What is asked. Tenant-scoped actions name the tenant (`tid`) they are about.
#[derive(Debug, Clone)]
pub enum Action<'a> {
    // Platform operations.
    ManageClients,
    ManageKeys,
    ManageMasterKey,
    CreateTenant,
    ListTenants,
    /// Slug, name or status of a tenant.
    ChangeTenantIdentity,
    ReadTenantDirectory,
    IngestEvents,
    /// Events, statistics or chain verification of the platform itself (no tenant).
    ReadPlatformRecords,
    // Tenant administration.
    ReadTenant(&'a str),
    UpdateTenantPolicy(&'a str),
    ReadMembers(&'a str),
    /// Add a member (or invite an account); `grants_owner` when the roles include `Owner`.
    AddMember {
        tid: &'a str,
        grants_owner: bool,
    },
    /// Read one member.
    ReadMember {
        tid: &'a str,
        target: Target<'a>,
    },
    /// Change what is global about the target: name, password, MFA (TOTP, recovery codes,
    /// passkeys), disabled.
    ChangeIdentity {
        tid: &'a str,
        target: Target<'a>,
    },
    RemoveMember {
        tid: &'a str,
        target: Target<'a>,
    },
    /// Change the target's roles; `owner_changes` when `Owner` is granted or taken away,
    /// `grants_above` the rank the new roles give.
    SetRoles {
        tid: &'a str,
        target: Target<'a>,
        new_rank: Rank,
    },
    ManageRoles(&'a str),
    ManageProviders(&'a str),
    /// Security events, statistics and chain verification of the tenant.
    ReadRecords(&'a str),
    ReadSecrets(&'a str),
    WriteSecrets(&'a str),
    /// Exchange a user's token of tenant `tid` for one for `audience` (RFC 8693), asked by the
    /// exchanging client; `permitted`: the tenant's `policy.token_exchange` names the client
    /// for the audience.
    ExchangeToken {
        tid: &'a str,
        permitted: bool,
    },
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No credential (401).
    Unauthenticated,
    /// Hidden: the resource is another tenant's, or a platform administrator (404, as for a
    /// resource that does not exist).
    NotFound,
    /// The token lacks a scope (403 `insufficient_scope`).
    Scope(&'static str),
    /// Known to the caller but not theirs to change (403), with the reason.
    Forbidden(&'static str),
}

/// The policy. `has_scope` answers for the caller's token.
pub fn decide(
    actor: &Actor,
    has_scope: &dyn Fn(&str) -> bool,
    action: &Action<'_>,
) -> Result<(), Denied> {
    use Action as A;
    match (actor, action) {
        (Actor::Anonymous, _) => return Err(Denied::Unauthenticated),
        // Audit records come from the platform's services only: no user, not even an
        // administrator, can write another service's record.
        (Actor::Platform { service: false }, A::IngestEvents) => {
            return Err(Denied::Scope(EVENTS_WRITE));
        }
        (Actor::Platform { service: true }, A::IngestEvents) => {
            return platform_client(&Actor::PlatformClient, has_scope, EVENTS_WRITE);
        }
        // Acting for a tenant's users is the tenant's own services' business only.
        (Actor::Platform { .. }, A::ExchangeToken { .. }) => return Err(Denied::NotFound),
        (Actor::Platform { .. }, _) => return Ok(()),
        _ => {}
    }
    match action {
        // The platform's records are hidden from tenants like another tenant's.
        A::ReadPlatformRecords if actor.tenant().is_some() => Err(Denied::NotFound),
        A::ManageClients
        | A::ManageKeys
        | A::ManageMasterKey
        | A::CreateTenant
        | A::ListTenants
        | A::ChangeTenantIdentity
        | A::ReadPlatformRecords => Err(Denied::Scope(crate::scopes::ADMIN_FULL)),
        A::ReadTenantDirectory => platform_client(actor, has_scope, TENANTS_READ),
        A::IngestEvents => platform_client(actor, has_scope, EVENTS_WRITE),
        A::ReadTenant(tid)
        | A::UpdateTenantPolicy(tid)
        | A::ReadMembers(tid)
        | A::ManageRoles(tid)
        | A::ManageProviders(tid)
        | A::ReadRecords(tid) => tenant_admin(actor, has_scope, tid).map(|_| ()),
        A::AddMember { tid, grants_owner } => {
            let rank = tenant_admin(actor, has_scope, tid)?;
            if *grants_owner && rank < Rank::Owner {
                return Err(Denied::Forbidden("only owners may grant the Owner role"));
            }
            Ok(())
        }
        A::ReadMember { tid, target } => {
            tenant_admin(actor, has_scope, tid)?;
            reachable(target)
        }
        A::ChangeIdentity { tid, target } => {
            let rank = tenant_admin(actor, has_scope, tid)?;
            reachable(target)?;
            outranks(rank, target.rank)?;
            if target.home_tenant != Some(*tid) {
                return Err(Denied::Forbidden(
                    "the account was not created by this tenant; only the account itself or a \
                     platform administrator may change its credentials",
                ));
            }
            Ok(())
        }
        A::RemoveMember { tid, target } => {
            let rank = tenant_admin(actor, has_scope, tid)?;
            reachable(target)?;
            outranks(rank, target.rank)
        }
        A::SetRoles {
            tid,
            target,
            new_rank,
        } => {
            let rank = tenant_admin(actor, has_scope, tid)?;
            reachable(target)?;
            outranks(rank, target.rank)?;
            if (*new_rank == Rank::Owner || target.rank == Rank::Owner) && rank < Rank::Owner {
                return Err(Denied::Forbidden("only owners may manage the Owner role"));
            }
            Ok(())
        }
        A::ExchangeToken { tid, permitted } => match actor {
            Actor::TenantClient { tid: own } if own == tid && *permitted => Ok(()),
            Actor::TenantClient { tid: own } if own == tid => Err(Denied::Forbidden(
                "the tenant's policy does not let this client exchange tokens for this audience",
            )),
            // Another tenant's user, or a platform client: as if there were no such token.
            _ => Err(Denied::NotFound),
        },
        A::ReadSecrets(tid) => vault(actor, has_scope, tid, SECRETS_READ),
        A::WriteSecrets(tid) => vault(actor, has_scope, tid, SECRETS_WRITE),
    }
}

/// A platform client holding `scope`.
fn platform_client(
    actor: &Actor,
    has_scope: &dyn Fn(&str) -> bool,
    scope: &'static str,
) -> Result<(), Denied> {
    match actor {
        Actor::PlatformClient if has_scope(scope) => Ok(()),
        _ => Err(Denied::Scope(scope)),
    }
}

/// An Owner or Admin of `tid` with `admin.tenant`: their rank. Another tenant's caller: 404.
fn tenant_admin(
    actor: &Actor,
    has_scope: &dyn Fn(&str) -> bool,
    tid: &str,
) -> Result<Rank, Denied> {
    match actor {
        Actor::Member { tid: own, .. } | Actor::TenantClient { tid: own } if own != tid => {
            Err(Denied::NotFound)
        }
        Actor::Member { rank, .. } if *rank >= Rank::Admin && has_scope(ADMIN_TENANT) => Ok(*rank),
        _ => Err(Denied::Scope(ADMIN_TENANT)),
    }
}

/// Platform administrators are hidden from tenants.
fn reachable(target: &Target<'_>) -> Result<(), Denied> {
    if target.platform_admin {
        Err(Denied::NotFound)
    } else {
        Ok(())
    }
}

/// A tenant admin acts only on members of at most their own rank.
fn outranks(actor: Rank, target: Rank) -> Result<(), Denied> {
    if actor >= target {
        Ok(())
    } else {
        Err(Denied::Forbidden(
            "an administrator cannot change a member who outranks them",
        ))
    }
}

/// The vault of `tid`: its members and clients holding `scope`. A member needs a role that
/// grants the scope now (Owner, Admin or a custom role naming it); the grant is narrowed at
/// issuance too, and checked again here so a token from before a change of the member's roles,
/// or of what a role names, cannot outlive it.
fn vault(
    actor: &Actor,
    has_scope: &dyn Fn(&str) -> bool,
    tid: &str,
    scope: &'static str,
) -> Result<(), Denied> {
    match actor {
        Actor::Member { tid: own, .. } | Actor::TenantClient { tid: own } if own != tid => {
            Err(Denied::NotFound)
        }
        Actor::TenantClient { .. } if has_scope(scope) => Ok(()),
        Actor::Member { privileged, .. } if has_scope(scope) && privileged.contains(&scope) => {
            Ok(())
        }
        Actor::Member { .. } if has_scope(scope) => Err(Denied::Forbidden(
            "the member's roles do not grant access to the vault",
        )),
        _ => Err(Denied::Scope(scope)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(tid: &str, rank: Rank) -> Actor {
        Actor::Member {
            tid: tid.into(),
            user_id: "u".into(),
            rank,
            privileged: if rank >= Rank::Admin {
                crate::scopes::PRIVILEGED.to_vec()
            } else {
                Vec::new()
            },
        }
    }

    fn target(rank: Rank, home: Option<&str>) -> Target<'_> {
        Target {
            user_id: "t",
            rank,
            platform_admin: false,
            home_tenant: home,
        }
    }

    const ALL: &dyn Fn(&str) -> bool = &|_| true;

    #[test]
    fn only_the_tenants_own_permitted_service_exchanges_its_users_tokens() {
        let own = Actor::TenantClient { tid: "a".into() };
        let exchange = |permitted| Action::ExchangeToken {
            tid: "a",
            permitted,
        };
        assert_eq!(decide(&own, ALL, &exchange(true)), Ok(()));
        assert!(matches!(
            decide(&own, ALL, &exchange(false)),
            Err(Denied::Forbidden(_))
        ));
        for other in [
            Actor::TenantClient { tid: "b".into() },
            Actor::PlatformClient,
            Actor::Platform { service: true },
            member("a", Rank::Owner),
        ] {
            assert_eq!(
                decide(&other, ALL, &exchange(true)),
                Err(Denied::NotFound),
                "{other:?}"
            );
        }
    }

    #[test]
    fn an_admin_cannot_touch_an_owner() {
        let admin = member("a", Rank::Admin);
        let owner = target(Rank::Owner, Some("a"));
        for action in [
            Action::ChangeIdentity {
                tid: "a",
                target: owner.clone(),
            },
            Action::RemoveMember {
                tid: "a",
                target: owner.clone(),
            },
            Action::SetRoles {
                tid: "a",
                target: owner.clone(),
                new_rank: Rank::Member,
            },
        ] {
            assert!(matches!(
                decide(&admin, ALL, &action),
                Err(Denied::Forbidden(_))
            ));
        }
        let owner_actor = member("a", Rank::Owner);
        assert!(
            decide(
                &owner_actor,
                ALL,
                &Action::ChangeIdentity {
                    tid: "a",
                    target: owner
                }
            )
            .is_ok()
        );
    }

    #[test]
    fn tenants_do_not_see_each_other_or_the_platform() {
        let admin = member("a", Rank::Owner);
        assert_eq!(
            decide(&admin, ALL, &Action::ReadMembers("b")),
            Err(Denied::NotFound)
        );
        let platform_admin = Target {
            platform_admin: true,
            ..target(Rank::Member, None)
        };
        assert_eq!(
            decide(
                &admin,
                ALL,
                &Action::ReadMember {
                    tid: "a",
                    target: platform_admin
                }
            ),
            Err(Denied::NotFound)
        );
    }

    #[test]
    fn only_the_home_tenant_changes_credentials() {
        let admin = member("a", Rank::Owner);
        let foreign = target(Rank::Member, Some("b"));
        assert!(matches!(
            decide(
                &admin,
                ALL,
                &Action::ChangeIdentity {
                    tid: "a",
                    target: foreign
                }
            ),
            Err(Denied::Forbidden(_))
        ));
    }

    #[test]
    fn a_plain_member_does_not_reach_the_vault() {
        let user = member("a", Rank::Member);
        assert!(decide(&user, ALL, &Action::ReadSecrets("a")).is_err());
        // A custom role grants what it names, and only that.
        let custom = |privileged: Vec<&'static str>| Actor::Member {
            tid: "a".into(),
            user_id: "u".into(),
            rank: Rank::Member,
            privileged,
        };
        let reader = custom(vec!["secrets.read"]);
        assert!(decide(&reader, ALL, &Action::ReadSecrets("a")).is_ok());
        assert!(decide(&reader, ALL, &Action::WriteSecrets("a")).is_err());
        assert_eq!(
            decide(&reader, ALL, &Action::ReadSecrets("b")),
            Err(Denied::NotFound)
        );
        // A custom role that no longer names the scope opens nothing.
        assert!(decide(&custom(Vec::new()), ALL, &Action::ReadSecrets("a")).is_err());
        let client = Actor::TenantClient { tid: "a".into() };
        assert!(decide(&client, ALL, &Action::WriteSecrets("a")).is_ok());
        assert_eq!(
            decide(&client, ALL, &Action::WriteSecrets("b")),
            Err(Denied::NotFound)
        );
    }

    #[test]
    fn ingest_is_for_platform_clients_only() {
        let client = Actor::TenantClient { tid: "a".into() };
        assert!(decide(&client, ALL, &Action::IngestEvents).is_err());
        assert!(decide(&Actor::PlatformClient, ALL, &Action::IngestEvents).is_ok());
        assert!(decide(&member("a", Rank::Owner), ALL, &Action::IngestEvents).is_err());
    }
}
