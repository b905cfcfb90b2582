//! The admin dashboard through the TLS gateway, signed in through identity (code + PKCE,
//! confidential client), one test per page or flow on one shared stack ([`common::stack`]):
//! sign-in, every page, CSRF refusal on every form and sign-out; signing keys and the master
//! key; clients; tenants; users and roles; external providers (with a discovery test against
//! a local provider); identity settings; mail templates; secrets; the security events those actions produce;
//! and a tenant admin, who sees only their own tenant and gets 403/404 for everything else.
//!
//! The forms are driven at the HTTP level (reqwest with a small cookie jar). The same in a
//! real browser is `dashboard_chromium`; the route × actor matrix is `dashboard_matrix`.

mod common;

mod clients;
mod events;
mod keys;
mod mail;
mod providers;
mod secrets;
mod settings;
mod sign_in;
mod tenant_admin;
mod tenants;
mod users;
