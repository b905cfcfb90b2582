//! Signed out, every page redirects to sign-in and every form is refused; signed in, every
//! page renders (the overview with its activity charts) and every form still refuses a
//! missing or wrong CSRF token; sign-out is RP-initiated at identity and kills the session.

use reqwest::StatusCode;

use crate::common::*;

#[tokio::test]
async fn sign_in_every_page_csrf_and_sign_out() {
    let f = stack();
    let base = f.base.clone();
    let mut b = Browser::new(&f.certificate_pem);

    // Signed out: every page redirects to sign-in, every form is refused.
    for (path, _) in PAGES {
        let r = b.get(&format!("{base}{path}")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "/{path}");
        assert!(
            r.location.starts_with(&format!("{base}login?return_to=")),
            "/{path} → {}",
            r.location
        );
    }
    for action in FORMS {
        let r = b
            .post(
                &format!("{base}{action}"),
                &[("csrf", "x"), ("confirm", "yes")],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "POST /{action} signed out");
    }

    // Sign in (returning to the page asked for).
    let landed = sign_in(&mut b, &base, "keys").await;
    assert!(landed.body.contains("Rotate now"), "{}", landed.body);
    let session_cookie = b.jar.get("tansu_dashboard_session").cloned().unwrap();

    // Every page renders for the platform admin.
    let mut csrf = String::new();
    for (path, text) in PAGES {
        let r = b.get(&format!("{base}{path}")).await;
        assert_eq!(r.status, StatusCode::OK, "/{path}: {}", r.body);
        assert!(r.body.contains(text), "/{path} lacks {text:?}: {}", r.body);
        assert!(r.body.contains(ADMIN), "/{path}");
        // No page is a placeholder.
        assert!(!r.body.contains("Coming with"), "/{path}");
        csrf = hidden(&r.body, "csrf");
    }
    let overview = b.get(&base).await;
    assert!(overview.body.contains("identity"), "{}", overview.body);
    // Activity charts of the last 24 h (inline SVG, no script): the sign-in just made and
    // the dashboard's token are counted.
    for series in ["sign_ins", "failures", "tokens"] {
        assert!(
            overview.body.contains(&format!("id=\"chart-{series}\"")),
            "{series}: {}",
            overview.body
        );
    }
    assert_eq!(overview.body.matches("<rect").count(), 3 * 24);
    assert!(!overview.body.contains("<script"));
    assert!(!overview.body.contains(r#"id="total-sign_ins">0<"#));
    assert!(!overview.body.contains(r#"id="total-tokens">0<"#));

    // Every form refuses a missing or wrong CSRF token, signed in.
    for action in FORMS {
        let r = b
            .post(&format!("{base}{action}"), &[("confirm", "yes")])
            .await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "POST /{action} without csrf"
        );
        let r = b
            .post(
                &format!("{base}{action}"),
                &[("csrf", "wrong"), ("confirm", "yes")],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "POST /{action} wrong csrf");
    }

    // Sign out: RP-initiated logout at identity, back to the dashboard's signed-out page.
    let r = b.post(&format!("{base}logout"), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(
        r.location.contains("/identity/connect/endsession?"),
        "{}",
        r.location
    );
    assert!(r.location.contains("id_token_hint="));
    let r = b.get(&r.location).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(
        r.location.starts_with(&format!("{base}signed-out")),
        "{}",
        r.location
    );
    let r = b.get(&r.location).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = b.get(&base).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "signed out again");
    // The old session id is dead.
    let mut other = Browser::new(&f.certificate_pem);
    other
        .jar
        .insert("tansu_dashboard_session".into(), session_cookie);
    let r = other.get(&base).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
}
