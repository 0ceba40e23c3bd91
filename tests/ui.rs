//! The web view's HTTP door (`/ui` on the HTTP port) on live clusters,
//! without a browser (tests/ui/ holds the browser test): the event stream
//! resumes on another node after the `Last-Event-ID` it was given, missing
//! nothing and repeating nothing; mutations need the CSRF header and this
//! origin; the service's privilege checks reach the page's callers; a TLS
//! node serves the view over TLS only and its probes in plain text; an
//! insecure node needs no token.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use vtask_client::Client;
use vtask_model::{CreateTask, MoRef};
use vtask_tests::{certs, hash_token, tls_args, Cluster, ClusterConfig};

/// One HTTP/1.0 exchange (the reply ends with the connection, unchunked):
/// the status, the head and the body.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut request = format!("{method} {path} HTTP/1.0\r\nHost: {host}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    // A TLS peer may close without close_notify; what arrived is the reply.
    let _ = stream.read_to_end(&mut reply).await;
    let reply = String::from_utf8_lossy(&reply).into_owned();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

async fn plain(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let stream = TcpStream::connect(addr).await.unwrap();
    exchange(stream, addr, method, path, headers, body).await
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// One Server-Sent Event.
#[derive(Debug, Default)]
struct Sse {
    id: Option<String>,
    event: Option<String>,
    data: String,
}

/// An open event stream: `GET path` on `addr`, read event by event.
struct Events {
    lines: tokio::io::Lines<BufReader<TcpStream>>,
}

impl Events {
    async fn open(addr: &str, path: &str, headers: &[(&str, &str)]) -> Events {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut request =
            format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: text/event-stream\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut lines = BufReader::new(stream).lines();
        let status = lines.next_line().await.unwrap().unwrap();
        assert!(status.contains(" 200 "), "GET {path}: {status}");
        while !lines.next_line().await.unwrap().unwrap().is_empty() {}
        Events { lines }
    }

    /// The next event with data (comments and `retry` skipped).
    async fn next(&mut self) -> Sse {
        let read = async {
            let mut event = Sse::default();
            loop {
                let line = self
                    .lines
                    .next_line()
                    .await
                    .unwrap()
                    .expect("the stream ended");
                if line.is_empty() {
                    if !event.data.is_empty() {
                        return event;
                    }
                    continue;
                }
                match line.split_once(':') {
                    Some(("id", v)) => event.id = Some(v.trim().to_string()),
                    Some(("event", v)) => event.event = Some(v.trim().to_string()),
                    Some(("data", v)) => event.data.push_str(v.trim_start()),
                    _ => {}
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("no event within 10 s")
    }

    /// The next change: (revision, kind, progress).
    async fn change(&mut self) -> (u64, String, Option<i64>) {
        let event = self.next().await;
        assert_eq!(event.event.as_deref(), Some("change"), "{event:?}");
        let body = json(&event.data);
        let revision = body["revision"].as_u64().unwrap();
        if let Some(id) = &event.id {
            assert_eq!(id, &revision.to_string(), "the event id is its revision");
        }
        (
            revision,
            body["kind"].as_str().unwrap().to_string(),
            body["info"]["progress"].as_i64(),
        )
    }
}

fn create(vm: &str) -> CreateTask {
    CreateTask {
        obj: MoRef::new("VirtualMachine", vm),
        task_type_id: "com.example.ui".into(),
        cancelable: true,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_resumes_on_another_node_after_its_last_event_id() {
    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let client = Client::new(cluster.endpoints().split(',').map(String::from).collect())
        .retry_for(Duration::from_secs(10));
    let task = client.create_task(create("vm-sse")).await.unwrap();
    let key = task.key.to_string();
    client
        .set_task_state(&key, vtask_model::State::Running, None, None)
        .await
        .unwrap();

    // Node 2 from the start: the task's history as changes, ids = revisions.
    let http = |id: u64| cluster.nodes[&id].http.clone();
    let mut first = Events::open(&http(2), &format!("/ui/api/watch?task={key}&from=1"), &[]).await;
    let (created, kind, _) = first.change().await;
    assert_eq!(kind, "created");
    let (started, kind, _) = first.change().await;
    assert_eq!((started, kind.as_str()), (created + 1, "updated"));
    client.update_progress(&key, 30).await.unwrap();
    let (at_30, _, progress) = first.change().await;
    assert_eq!(progress, Some(30));
    drop(first);

    // Changes while no stream is open; then a browser reconnects to node 3
    // with the last id it saw: it gets exactly the changes after it.
    client.update_progress(&key, 60).await.unwrap();
    client.update_progress(&key, 90).await.unwrap();
    let last = at_30.to_string();
    let mut resumed = Events::open(
        &http(3),
        &format!("/ui/api/watch?task={key}&from=1"),
        &[("Last-Event-ID", last.as_str())],
    )
    .await;
    assert_eq!(
        resumed.change().await,
        (at_30 + 1, "updated".into(), Some(60))
    );
    assert_eq!(
        resumed.change().await,
        (at_30 + 2, "updated".into(), Some(90))
    );

    // From 0: the current state first, then `synced` (an id to resume after).
    let mut current = Events::open(&http(1), "/ui/api/watch?from=0", &[]).await;
    let event = current.next().await;
    assert!(
        event.id.is_none(),
        "a current task is no place to resume: {event:?}"
    );
    assert_eq!(json(&event.data)["kind"], "current");
    let synced = current.next().await;
    assert_eq!(json(&synced.data)["kind"], "synced");
    assert_eq!(synced.id, Some((at_30 + 2).to_string()));

    // A filtered stream (entity) sees this task's next change, and ListTasks
    // pages through the same filter.
    let mut by_entity = Events::open(
        &http(2),
        &format!(
            "/ui/api/watch?entity=VirtualMachine:vm-sse&from={}",
            at_30 + 3
        ),
        &[],
    )
    .await;
    client.update_progress(&key, 95).await.unwrap();
    assert_eq!(by_entity.change().await.2, Some(95));
    let (status, _, body) = plain(
        &http(2),
        "GET",
        "/ui/api/tasks?entity=VirtualMachine:vm-sse&state=running&pageSize=1",
        &[],
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let page = json(&body);
    assert_eq!(page["tasks"][0]["key"], key.as_str());
    assert_eq!(page["nextPageToken"], "");

    // An insecure node needs no token: every privilege, as on gRPC.
    let (_, _, body) = plain(&http(1), "GET", "/ui/api/session", &[], "").await;
    let session = json(&body);
    assert_eq!(session["authRequired"], false);
    assert_eq!(session["authenticated"], true);
    assert_eq!(session["privileges"].as_array().unwrap().len(), 4);

    // A node that stops ends its open streams and exits cleanly (the browser
    // then reconnects elsewhere or later, after its last id).
    let mut open = Events::open(&http(3), &format!("/ui/api/watch?task={key}&from=1"), &[]).await;
    open.change().await;
    let mut cluster = cluster;
    assert!(
        cluster.stop(3),
        "node 3 did not stop cleanly with a stream open"
    );
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = open.lines.next_line().await {}
    });
    assert!(end.await.is_ok(), "the stream outlived its node");
}

/// An admin, a reporter (no Global.CancelTask) and an outsider (no System.View).
fn users(dir: &Path) -> PathBuf {
    let path = dir.join("users.toml");
    let mut text = String::from(
        "[roles]\nadmin = [\"Task.Create\", \"Task.Update\", \"Global.CancelTask\", \"System.View\"]\n\
         reporter = [\"Task.Update\", \"System.View\"]\nupdater = [\"Task.Update\"]\n",
    );
    for (name, role) in [
        ("admin", "admin"),
        ("reporter", "reporter"),
        ("outsider", "updater"),
    ] {
        text.push_str(&format!(
            "[[users]]\nname = \"{name}\"\ntoken_sha256 = \"{}\"\nroles = [\"{role}\"]\n",
            hash_token(&format!("tok-{name}"))
        ));
    }
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutations_need_this_origin_and_callers_get_the_services_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(ClusterConfig {
        extra_args: vec![
            "--auth-file".into(),
            users(dir.path()).display().to_string(),
            "--plaintext".into(),
        ],
        ..ClusterConfig::default()
    })
    .await
    .unwrap();
    let client = Client::new(cluster.endpoints().split(',').map(String::from).collect())
        .retry_for(Duration::from_secs(10))
        .token("tok-admin");
    let task = client.create_task(create("vm-csrf")).await.unwrap();
    let key = task.key.to_string();
    let addr = cluster.nodes[&2].http.clone();
    let cancel = format!("/ui/api/tasks/{key}/cancel");
    let bearer = |who: &str| format!("Bearer tok-{who}");
    let admin = bearer("admin");
    let csrf = ("x-vtask-csrf", "1");

    // Cross-site: no header; another Origin; a cross-site fetch. Nothing changes.
    for (label, headers) in [
        ("no header", vec![("authorization", admin.as_str())]),
        (
            "another origin",
            vec![
                ("authorization", admin.as_str()),
                csrf,
                ("Origin", "https://evil.example"),
            ],
        ),
        (
            "cross-site",
            vec![
                ("authorization", admin.as_str()),
                csrf,
                ("Sec-Fetch-Site", "cross-site"),
            ],
        ),
    ] {
        let (status, _, body) = plain(&addr, "POST", &cancel, &headers, "").await;
        assert_eq!(status, 403, "{label}: {body}");
        assert!(
            json(&body)["fault"].is_null(),
            "{label}: refused before the service"
        );
    }
    // The service's refusals, whichever door: not authenticated, no
    // System.View, no Global.CancelTask.
    let (status, _, body) = plain(&addr, "GET", "/ui/api/tasks", &[], "").await;
    assert_eq!(
        (status, json(&body)["fault"]["_typeName"].as_str()),
        (401, Some("NotAuthenticated"))
    );
    let outsider = bearer("outsider");
    for path in [
        "/ui/api/tasks".to_string(),
        format!("/ui/api/tasks/{key}"),
        format!("/ui/api/tasks/{key}/history"),
        format!("/ui/api/watch?task={key}"),
    ] {
        let (status, _, body) = plain(
            &addr,
            "GET",
            &path,
            &[("authorization", outsider.as_str())],
            "",
        )
        .await;
        assert_eq!(status, 403, "{path}: {body}");
        assert_eq!(json(&body)["fault"]["privilegeId"], "System.View", "{path}");
    }
    let reporter = bearer("reporter");
    let (status, _, body) = plain(
        &addr,
        "POST",
        &cancel,
        &[("authorization", reporter.as_str()), csrf],
        "",
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(json(&body)["fault"]["privilegeId"], "Global.CancelTask");
    let (_, _, body) = plain(
        &addr,
        "GET",
        "/ui/api/session",
        &[("authorization", reporter.as_str())],
        "",
    )
    .await;
    let session = json(&body);
    assert_eq!(session["user"], "reporter");
    assert_eq!(
        session["privileges"],
        serde_json::json!(["Task.Update", "System.View"])
    );

    // Login: an unknown token is refused; a known one becomes an HttpOnly,
    // SameSite=Strict cookie (not Secure: this node runs plain text), which
    // then authenticates; logout clears it.
    let (status, head, _) = plain(
        &addr,
        "POST",
        "/ui/api/session",
        &[csrf],
        r#"{"token":"nope"}"#,
    )
    .await;
    assert_eq!(status, 401);
    assert!(!head.to_ascii_lowercase().contains("set-cookie"));
    let (status, _, _) = plain(
        &addr,
        "POST",
        "/ui/api/session",
        &[],
        r#"{"token":"tok-admin"}"#,
    )
    .await;
    assert_eq!(status, 403, "a login needs the header too");
    let (status, head, _) = plain(
        &addr,
        "POST",
        "/ui/api/session",
        &[csrf],
        r#"{"token":"tok-admin"}"#,
    )
    .await;
    assert_eq!(status, 200);
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .expect("a session cookie")
        .to_string();
    assert_eq!(
        cookie,
        "vtask_token=tok-admin; Path=/ui; HttpOnly; SameSite=Strict"
    );
    let session_cookie = "vtask_token=tok-admin";

    // The admin's cancel through the cookie, with the header, from this origin.
    let origin = format!("http://{addr}");
    let (status, _, body) = plain(
        &addr,
        "POST",
        &cancel,
        &[
            ("cookie", session_cookie),
            csrf,
            ("Origin", origin.as_str()),
            ("Sec-Fetch-Site", "same-origin"),
        ],
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["info"]["cancelled"], true);
    let (status, _, body) = plain(
        &addr,
        "POST",
        &cancel,
        &[("cookie", session_cookie), csrf],
        "",
    )
    .await;
    assert_eq!(
        (status, json(&body)["fault"]["_typeName"].as_str()),
        (400, Some("InvalidState"))
    );
    let (_, head, _) = plain(
        &addr,
        "DELETE",
        "/ui/api/session",
        &[("cookie", session_cookie), csrf],
        "",
    )
    .await;
    assert!(
        head.contains("vtask_token=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0"),
        "{head}"
    );

    // The page itself: a strict Content-Security-Policy, no framing.
    let (status, head, body) = plain(&addr, "GET", "/ui", &[], "").await;
    assert_eq!(status, 200);
    assert!(
        head.contains("content-security-policy: default-src 'none'; script-src 'self'"),
        "{head}"
    );
    assert!(head.contains("x-frame-options: DENY"));
    assert!(body.contains("/ui/app.js"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_node_serves_the_view_over_tls_only_and_its_probes_in_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let certs = certs(&dir.path().join("certs"));
    let cluster = Cluster::start(ClusterConfig {
        extra_args: [
            vec![
                "--auth-file".into(),
                users(dir.path()).display().to_string(),
            ],
            tls_args(&certs),
        ]
        .concat(),
        ..ClusterConfig::default()
    })
    .await
    .unwrap();
    let addr = cluster.nodes[&1].http.clone();

    // Plain text: the probes as before; the page redirects to https on this
    // port; its API refuses, even with a token.
    let (status, _, body) = plain(&addr, "GET", "/health", &[], "").await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = plain(&addr, "GET", "/metrics", &[], "").await;
    assert_eq!(status, 200);
    assert!(body.contains("vtask_raft_term"));
    let (status, _, _) = plain(&addr, "GET", "/status", &[], "").await;
    assert_eq!(status, 200);
    let (status, head, _) = plain(&addr, "GET", "/ui", &[], "").await;
    assert_eq!(status, 308);
    assert!(
        head.contains(&format!("location: https://{addr}/ui")),
        "{head}"
    );
    let (status, _, body) = plain(
        &addr,
        "GET",
        "/ui/api/tasks",
        &[("authorization", "Bearer tok-admin")],
        "",
    )
    .await;
    assert_eq!(status, 403);
    assert!(body.contains("over TLS only"), "{body}");
    let out = std::process::Command::new(vtask_tests::vtaskd_bin())
        .args(["health", &addr])
        .output()
        .unwrap();
    assert!(out.status.success(), "vtaskd health on a TLS node: {out:?}");

    // TLS on the same port with the node's certificate (the cluster CA's).
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    let ca = std::fs::read(certs.join("ca.pem")).unwrap();
    for cert in rustls_pemfile::certs(&mut ca.as_slice()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tls = |path: &'static str, headers: Vec<(&'static str, &'static str)>| {
        let connector = connector.clone();
        let addr = addr.clone();
        async move {
            let tcp = TcpStream::connect(&addr).await.unwrap();
            let name = tokio_rustls::rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
            let stream = connector.connect(name, tcp).await.unwrap();
            exchange(stream, &addr, "GET", path, &headers, "").await
        }
    };
    let (status, _, body) = tls(
        "/ui/api/session",
        vec![("authorization", "Bearer tok-admin")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let session = json(&body);
    assert_eq!(
        (session["tls"].as_bool(), session["user"].as_str()),
        (Some(true), Some("admin"))
    );
    let (status, _, body) = tls("/ui", vec![]).await;
    assert_eq!(status, 200);
    assert!(body.contains("<title>vtask</title>"));
    let (status, _, body) = tls("/health", vec![]).await;
    assert_eq!(status, 200, "{body}");
}
