//! Clients: create a confidential client (its secret shown once), rotation only after the
//! confirmation, an invalid form answered with the page (422), and sorting both ways.

use reqwest::StatusCode;

use crate::common::*;

#[tokio::test]
async fn create_a_client_and_rotate_its_secret() {
    let (mut b, base, csrf) = platform_admin().await;

    // Create a confidential client: its secret is shown once; rotate it.
    let r = b
        .post(
            &format!("{base}clients"),
            &[
                ("csrf", &csrf),
                ("name", "Nightly export"),
                ("client_type", "confidential"),
                ("grant_types", "client_credentials"),
                ("scopes", "db.read"),
                ("redirect_uris", ""),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("client-secret"), "{}", r.body);
    let r = b.get(&format!("{base}clients")).await;
    assert!(r.body.contains("Nightly export"));
    let r = b
        .post(
            &format!("{base}clients/tansu-dashboard/secret"),
            &[("csrf", &csrf)],
        )
        .await;
    // Without the confirmation the rotation does not happen.
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    // An invalid client form is answered with the page and a message, not an error.
    let r = b
        .post(&format!("{base}clients"), &[("csrf", &csrf), ("name", "")])
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Sorted on the server, either way; an unknown sort is refused.
    let r = b.get(&format!("{base}clients?sort=secret")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "/clients?sort=secret");
    let clients = b
        .get(&format!("{base}clients?sort=client_id&order=desc"))
        .await;
    assert_eq!(clients.status, StatusCode::OK);
    assert!(clients.body.contains("Client id ▼"));
}
