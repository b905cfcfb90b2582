//! The browser flows, server-rendered: the sign-in request ([`authorize`]), the password
//! ([`password`]) and the steps after it ([`steps`], [`step_forms`]: second factor, tenant
//! choice, enrolment), sign-in through a tenant's external providers ([`federation`],
//! [`federation_link`], [`federation_password`], [`federation_verify`], [`federation_account`]), [`consent`], RP-initiated [`logout`], the account pages
//! ([`account`], [`account_data`], [`account_sessions`], [`account_mfa`], [`account_passkeys`],
//! [`invitations`]), passkeys at sign-in ([`passkeys`]), links sent by mail
//! ([`recovery`]: forgotten passwords, address proofs) and [`registration`]. [`page`] is the one module for
//! the page shell, cookies and the CSRF double submit; [`sign_in`] holds what every step of a
//! sign-in shares (lockout, the tenant chosen, the session it ends with), [`device_cookie`] the
//! browser's device cookie a sign-in ends with.

pub mod account;
pub mod account_data;
pub mod account_form;
pub mod account_mfa;
pub mod account_passkeys;
pub mod account_sessions;
pub mod authorize;
pub mod consent;
pub mod device_cookie;
pub mod federation;
pub mod federation_account;
pub mod federation_link;
pub mod federation_password;
pub mod federation_verify;
/// A fuzz target's body (`fuzz/`); not an API.
#[doc(hidden)]
pub mod fuzzing;
pub mod invitations;
pub mod logout;
pub mod page;
pub mod passkeys;
pub mod password;
pub mod recovery;
pub mod registration;
pub mod sign_in;
pub mod step_forms;
pub mod steps;
