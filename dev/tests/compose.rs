//! The platform as separate containers: the repository's `docker-compose.yml`, unchanged, run
//! with podman-compose on rootful Podman (how containers run on CI machines:
//! ../shared/CONTAINERS.md), and used through the gateway container only.
//!
//! Runs when `TANSU_COMPOSE` names the compose command (`podman-compose`); skipped otherwise
//! (a failure under `TANSU_REQUIRE_ALL=1`). The Tansu images are built from the binaries this
//! `cargo test` already built (`TANSU_BINARIES=prebuilt`, `dist/` in a scratch project folder
//! holding copies of the compose file, the Dockerfile and `deploy/`), and every third-party
//! image the file names is a local stand-in built by `compose/standins.sh` from Debian packages
//! under the same name (`compose/standins.Dockerfile` says what each implements): nothing is
//! pulled.
//!
//! One test, in order: discovery, a client-credentials token, a document written and read, an
//! object uploaded and downloaded (and found in the S3 container), a sign-in through the login
//! form; then identity's container stops, tokens it issued still verify at database-svc, and it
//! starts again; then `down` leaves no container, network or volume of the project behind.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tansu_shared::testing::http::{SendOk, hidden_field, query_param, set_cookie};
use tansu_shared::testing::rp::RelyingParty;

const PROJECT: &str = "tansuci";
/// The public host: the gateway's container name, and a `*.localhost` name on the host (the
/// test's client resolves it to 127.0.0.1).
const HOST: &str = "tansu-ci.localhost";
const PORT: u16 = 18443;
const SERVICES: [&str; 5] = ["identity", "gateway", "database", "storage", "dashboard"];
const REDIRECT: &str = "http://127.0.0.1:9/callback";

/// The compose project in its scratch folder; `down` (volumes too) and removed when dropped.
struct Project {
    compose: String,
    dir: PathBuf,
}

impl Project {
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.current_dir(&self.dir)
            .env("TANSU_PUBLIC_HOST", HOST)
            .env("TANSU_HTTPS_PORT", PORT.to_string())
            .env("TANSU_BINARIES", "prebuilt")
            .env("TANSU_TAG", "ci")
            // Podman writes OCI images by default, which have no HEALTHCHECK.
            .env("BUILDAH_FORMAT", "docker");
        c
    }

    /// Runs `<compose> -p PROJECT -f docker-compose.yml <args>`; its output is the test's.
    fn compose(&self, args: &[&str]) -> bool {
        let mut words = self.compose.split_whitespace();
        let mut c = self.command(words.next().expect("a compose command"));
        c.args(words)
            .args(["-p", PROJECT, "-f", "docker-compose.yml"])
            .args(args);
        c.status().is_ok_and(|s| s.success())
    }

    fn secret(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join("deploy/secrets").join(name))
            .unwrap_or_else(|e| panic!("secret {name}: {e}"))
            .trim()
            .to_owned()
    }

    fn down(&self) {
        self.compose(&["down", "-v", "-t", "5"]);
        // podman-compose 1.0 leaves the network behind.
        let _ = podman(&["network", "rm", "-f", &format!("{PROJECT}_default")]);
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for service in SERVICES {
                let name = container(service);
                eprintln!("--- logs of {name}");
                let _ = Command::new("podman")
                    .args(["logs", "--tail", "40", &name])
                    .status();
            }
        }
        self.down();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn container(service: &str) -> String {
    if service == "gateway" {
        HOST.to_owned()
    } else {
        format!("{PROJECT}_{service}_1")
    }
}

/// `podman <args>`: its standard output, or the failure.
fn podman(args: &[&str]) -> Result<String, String> {
    let out = Command::new("podman")
        .args(args)
        .output()
        .map_err(|e| format!("podman: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "podman {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The project's leftovers of one kind (`["ps", "-a"]`, `["volume", "ls"]`, …), by label.
fn leftovers(list: &[&str], name: &str) -> String {
    let label = format!("label=io.podman.compose.project={PROJECT}");
    let format = format!("{{{{.{name}}}}}");
    let mut args = list.to_vec();
    args.extend(["--filter", &label, "--format", &format]);
    podman(&args).unwrap_or_else(|e| e).trim().to_owned()
}

/// Copies what a user's checkout gives compose into a scratch project folder, with the
/// binaries of this build in `dist/`.
fn scratch_project(compose: String) -> Project {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = std::env::temp_dir().join(format!("tansu-compose-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("dist")).unwrap();
    std::fs::create_dir_all(dir.join("deploy/postgres")).unwrap();
    std::fs::create_dir_all(dir.join("deploy/observability")).unwrap();
    for file in [
        "docker-compose.yml",
        "Dockerfile",
        ".dockerignore",
        "deploy/tansu.toml",
        "deploy/secrets.sh",
        "deploy/postgres/10-tansu.sql",
    ] {
        std::fs::copy(root.join(file), dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    // The binaries cargo built next to this test's executable (target/<profile>/).
    let bin_dir = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_owned();
    for service in SERVICES {
        let bin = format!("tansu-{service}");
        std::fs::copy(bin_dir.join(&bin), dir.join("dist").join(&bin)).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (build the service binaries first: cargo build --workspace --bins)",
                bin_dir.join(&bin).display()
            )
        });
    }
    Project { compose, dir }
}

/// A client of the published port, trusting the stack's certificate, resolving HOST locally.
fn client(cert_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .resolve(HOST, ([127, 0, 0, 1], PORT).into())
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Polls until `probe` succeeds, within `timeout`; the last failure names why not.
async fn eventually<F, Fut>(what: &str, timeout: Duration, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match probe().await {
            Ok(()) => return,
            Err(e) if Instant::now() >= deadline => panic!("{what}: not within {timeout:?}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// `Ok` when the request answers `want` (or another of `also`), else the status or the error.
async fn answers(req: reqwest::RequestBuilder, want: u16) -> Result<(), String> {
    answers_any(req, &[want]).await
}

async fn answers_any(req: reqwest::RequestBuilder, want: &[u16]) -> Result<(), String> {
    match req.send().await {
        Ok(r) if want.contains(&r.status().as_u16()) => Ok(()),
        Ok(r) => Err(format!(
            "{}: {}",
            r.status(),
            r.text().await.unwrap_or_default()
        )),
        Err(e) => Err(format!("{e:?}")),
    }
}

async fn token(http: &reqwest::Client, base: &str, id: &str, secret: &str, scope: &str) -> String {
    let resp = http
        .post(format!("{base}/identity/connect/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials"), ("scope", scope)])
        .send_ok()
        .await;
    assert_eq!(resp.status(), 200, "token for {id} ({scope})");
    let body: Value = resp.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// The object keys moto (the S3 stand-in) holds in storage-svc's bucket, asked inside the S3
/// container (its port is not published).
fn s3_object_count() -> usize {
    let script = "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:9000/tansu?list-type=2').read().decode())";
    let listing = podman(&[
        "exec",
        &container("s3"),
        "/opt/moto/bin/python3",
        "-c",
        script,
    ])
    .expect("listing the bucket in the S3 container");
    listing.matches("<Key>").count()
}

#[tokio::test]
async fn the_compose_stack_serves_the_platform_through_the_gateway_container() {
    let Some(compose) = std::env::var("TANSU_COMPOSE")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            tansu_shared::testing::skip_or_fail(
                "compose",
                "TANSU_COMPOSE (e.g. podman-compose) is not set",
            )
        })
    else {
        return;
    };
    let started = Instant::now();
    let standins = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compose/standins.sh");
    let status = Command::new("sh").arg(&standins).status().unwrap();
    assert!(status.success(), "building the stand-in images");
    let project = scratch_project(compose);
    project.down(); // what an interrupted earlier run left
    let status = project
        .command("sh")
        .args(["deploy/secrets.sh", HOST])
        .status()
        .unwrap();
    assert!(status.success(), "deploy/secrets.sh");
    // The five images (`up --build` would build only the services named). The runtime stage
    // installs CA certificates: its `RUN` uses the host's network.
    assert!(
        project.compose(&["--podman-build-args=--network host", "build"]),
        "compose build"
    );
    // podman-compose 1.0 ignores `profiles`: the services are named (their dependencies follow).
    assert!(
        project.compose(&["up", "-d", "gateway", "dashboard", "database", "storage"]),
        "compose up"
    );
    let up = started.elapsed();

    let http = client(&project.secret("tls_cert"));
    let base = format!("https://{HOST}:{PORT}");
    eventually(
        "every service ready behind the gateway",
        Duration::from_secs(240),
        || answers(http.get(format!("{base}/health")), 200),
    )
    .await;
    eprintln!(
        "compose: stack built and started in {up:.1?}, healthy after {:.1?}",
        started.elapsed()
    );

    // For BENCHMARKS.md: the images' sizes and each container's memory, idle after start.
    for args in [
        &[
            "images",
            "--filter",
            "reference=localhost/tansu-*:ci",
            "--format",
            "{{.Repository}} {{.Size}}",
        ][..],
        &[
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}} {{.MemUsage}}",
        ],
    ] {
        eprintln!(
            "compose: podman {}\n{}",
            args[0],
            podman(args).unwrap_or_else(|e| e)
        );
    }

    // Each image's HEALTHCHECK (its binary's `--probe`) passes once the service is up (Podman
    // runs health checks only with systemd; here they are run by hand), and `--help` works.
    for service in SERVICES {
        podman(&["healthcheck", "run", &container(service)])
            .unwrap_or_else(|e| panic!("health check of {service}: {e}"));
    }
    let help = podman(&["run", "--rm", "localhost/tansu-identity:ci", "--help"]).unwrap();
    assert!(help.contains("--print-config"), "{help}");

    // Discovery through the gateway: the issuer is the public URL.
    let issuer = format!("{base}/identity/");
    let meta = http
        .get(format!("{issuer}.well-known/openid-configuration"))
        .send_json()
        .await;
    assert_eq!(meta["issuer"], issuer.as_str());

    // A client-credentials token (the seeded admin client, its secret a compose secret), a
    // tenant, its database, and a tenant client.
    let admin = token(
        &http,
        &base,
        "tansu-dashboard",
        &project.secret("dev_client_secret"),
        "admin.full db.provision",
    )
    .await;
    let resp = http
        .post(format!("{base}/identity/admin/tenants"))
        .bearer_auth(&admin)
        .json(&json!({"slug": "shop", "name": "Shop"}))
        .send_ok()
        .await;
    assert_eq!(resp.status(), 201, "create tenant");
    let tenant = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // database-svc and storage-svc may have started before identity: their first fetch of the
    // issuer's keys failed, and the next waits for their refetch interval. Provisioning is
    // idempotent (201, then 200).
    eventually("database-svc provisions", Duration::from_secs(90), || {
        answers_any(
            http.put(format!("{base}/db/provision/{tenant}"))
                .bearer_auth(&admin),
            &[200, 201],
        )
    })
    .await;
    let app = http
        .post(format!("{base}/identity/admin/clients"))
        .bearer_auth(&admin)
        .json(&json!({
            "name": "shop app", "tenant_id": tenant, "grant_types": ["client_credentials"],
            "scopes": ["db.read", "db.write", "storage.read", "storage.write"],
        }))
        .send_json()
        .await;
    let scopes = "db.read db.write storage.read storage.write";
    let app_token = token(
        &http,
        &base,
        app["client_id"].as_str().unwrap(),
        app["client_secret"].as_str().unwrap(),
        scopes,
    )
    .await;

    // A document written and read through the gateway (database-svc on PostgreSQL).
    let resp = http
        .post(format!("{base}/db/api/collections"))
        .bearer_auth(&app_token)
        .json(&json!({"name": "orders"}))
        .send_ok()
        .await;
    assert_eq!(resp.status(), 201, "create collection");
    let doc = http
        .post(format!("{base}/db/api/collections/orders/documents"))
        .bearer_auth(&app_token)
        .json(&json!({"total": 42}))
        .send_json()
        .await;
    let doc_url = format!(
        "{base}/db/api/collections/orders/documents/{}",
        doc["id"].as_str().expect("a document id")
    );
    let read = http.get(&doc_url).bearer_auth(&app_token).send_json().await;
    assert_eq!(read["data"]["total"], 42, "{read}");

    // An object uploaded and downloaded (storage-svc on the S3 container).
    let before = s3_object_count();
    eventually(
        "storage-svc creates a bucket",
        Duration::from_secs(90),
        || {
            answers_any(
                http.put(format!("{base}/storage/api/buckets/files"))
                    .bearer_auth(&app_token),
                &[201, 409],
            )
        },
    )
    .await;
    let object = format!("{base}/storage/api/buckets/files/objects/hello.txt");
    let resp = http
        .put(&object)
        .bearer_auth(&app_token)
        .header("content-type", "text/plain")
        .body("hello from the compose stack")
        .send_ok()
        .await;
    assert_eq!(resp.status(), 201, "upload");
    let body = http.get(&object).bearer_auth(&app_token).send_text().await;
    assert_eq!(body, "hello from the compose stack");
    assert!(
        s3_object_count() > before,
        "the object landed in the S3 container"
    );

    // A sign-in through the login form: an independent relying party, the seeded admin.
    let resp = http
        .post(format!("{base}/identity/admin/clients"))
        .bearer_auth(&admin)
        .json(&json!({
            "client_id": "rp", "name": "Relying party", "first_party": true,
            "client_type": "public", "grant_types": ["authorization_code"],
            "redirect_uris": [REDIRECT], "scopes": ["openid", "profile", "email"],
        }))
        .send_ok()
        .await;
    assert_eq!(resp.status(), 201, "register the relying party");
    let rp = RelyingParty::discover(&http, &issuer, "rp", REDIRECT).await;
    let auth = rp.authorize(&issuer, &["email"]);
    let resp = http.get(auth.url.as_str()).send_ok().await;
    assert_eq!(resp.status(), 200, "the login page");
    let csrf_cookie = set_cookie(&resp, "tansu_csrf").expect("CSRF cookie");
    let html = resp.text().await.unwrap();
    let resp = http
        .post(format!("{base}/identity/login"))
        .header("cookie", csrf_cookie)
        .form(&[
            (
                "csrf",
                hidden_field(&html, "csrf").expect("csrf field").as_str(),
            ),
            (
                "request",
                hidden_field(&html, "request")
                    .expect("request field")
                    .as_str(),
            ),
            ("email", "admin@tansu.local"),
            ("password", project.secret("admin_password").as_str()),
        ])
        .send_ok()
        .await;
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(REDIRECT), "{location}");
    let code = query_param(&location, "code").expect("an authorization code");
    let signed_in = rp.finish(auth, code).await;
    assert_eq!(
        signed_in.userinfo.email().map(|e| e.as_str()),
        Some("admin@tansu.local")
    );

    // Identity stops: no new tokens, but the ones it issued still verify at database-svc
    // (keys cached), through the gateway (tenant cached).
    podman(&["stop", "-t", "5", &container("identity")]).unwrap();
    let resp = http
        .post(format!("{base}/identity/connect/token"))
        .basic_auth("tansu-dashboard", Some(project.secret("dev_client_secret")))
        .form(&[("grant_type", "client_credentials")])
        .send_ok()
        .await;
    assert!(
        resp.status().is_server_error(),
        "identity is down: {}",
        resp.status()
    );
    let read = http.get(&doc_url).bearer_auth(&app_token).send_ok().await;
    assert_eq!(
        read.status(),
        200,
        "a valid token verifies without identity"
    );
    podman(&["start", &container("identity")]).unwrap();
    eventually(
        "identity issues tokens again",
        Duration::from_secs(120),
        || {
            answers(
                http.post(format!("{base}/identity/connect/token"))
                    .basic_auth("tansu-dashboard", Some(project.secret("dev_client_secret")))
                    .form(&[
                        ("grant_type", "client_credentials"),
                        ("scope", "admin.full"),
                    ]),
                200,
            )
        },
    )
    .await;

    // Down: nothing of the project stays.
    project.down();
    for (list, name) in [
        (&["ps", "-a"][..], "Names"),
        (&["volume", "ls"], "Name"),
        (&["network", "ls"], "Name"),
    ] {
        assert_eq!(leftovers(list, name), "", "left behind: {list:?}");
    }
    eprintln!("compose: whole test {:.1?}", started.elapsed());
}
