//! Running the host in production: the request log, request ids, Prometheus metrics,
//! liveness, graceful shutdown on SIGTERM, and the limits on slow and greedy clients.

use hostnaming_testkit as common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Bao, Proxy, Service};
use hostnaming_host::server::ConnectionLimits;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `hostnaming serve` of spin.toml against `vault` (a Bao or a proxy in front of one),
/// with metrics on a port of its own; its stderr lines are collected.
struct Served {
    child: Child,
    url: String,
    metrics: String,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Served {
    async fn start(vault: &str, token: &str, extra: &[&str]) -> Served {
        let listen = format!("127.0.0.1:{}", common::free_port());
        let metrics = format!("127.0.0.1:{}", common::free_port());
        let mut child = Command::new(env!("CARGO_BIN_EXE_hostnaming"))
            .args(["serve", "--listen", &listen, "--metrics-listen", &metrics])
            .args(extra)
            .arg("--manifest")
            .arg(common::workspace().join("spin.toml"))
            .env_remove("VAULT_ADDR")
            .env_remove("VAULT_TOKEN")
            .env_remove("HOSTNAMING_LOG_FORMAT")
            .env("SPIN_VARIABLE_VAULT_ADDR", vault)
            .env("SPIN_VARIABLE_VAULT_ALLOWED_HOST", vault)
            .env("SPIN_VARIABLE_VAULT_TOKEN", token)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (lines, sink) = (child.stderr.take().unwrap(), stderr.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(lines).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        common::wait_listening(&listen, Duration::from_secs(30))
            .await
            .unwrap();
        common::wait_listening(&metrics, Duration::from_secs(5))
            .await
            .unwrap();
        Served {
            child,
            url: format!("http://{listen}"),
            metrics: format!("http://{metrics}/metrics"),
            stderr,
        }
    }

    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    async fn scrape(&self) -> Scrape {
        let resp = common::request("GET", &self.metrics, "").await;
        assert_eq!(resp.status, 200);
        assert_eq!(
            resp.header("content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        Scrape::parse(&resp.text)
    }

    /// The JSON request lines logged so far.
    fn log(&self) -> Vec<Value> {
        let lines = self.stderr.lock().unwrap();
        lines
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.get("request_id").is_some())
            .collect()
    }

    /// Waits until `n` request lines are logged.
    async fn log_lines(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if log.len() >= n || Instant::now() > deadline {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scrape in the text exposition format: samples by series, and each family's type.
struct Scrape {
    samples: HashMap<String, f64>,
    types: HashMap<String, String>,
}

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let (mut samples, mut types) = (HashMap::new(), HashMap::new());
        let mut helped = HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                helped.insert(rest.split(' ').next().unwrap().to_string());
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(helped.contains(name), "TYPE before HELP for {name}");
                types.insert(name.to_string(), kind.to_string());
            } else if !line.is_empty() {
                assert!(!line.starts_with('#'), "{line}");
                let (series, value) = line.rsplit_once(' ').unwrap();
                let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
                let (name, labels) = match series.split_once('{') {
                    Some((name, labels)) => (name, labels.strip_suffix('}').unwrap()),
                    None => (series, ""),
                };
                let mut sorted = BTreeMap::new();
                for pair in labels.split(',').filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once('=').unwrap();
                    let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"'));
                    sorted.insert(k.to_string(), v.unwrap_or_else(|| panic!("{line}")));
                }
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .filter(|f| types.get(*f).is_some_and(|t| t == "histogram"))
                    .unwrap_or(name);
                assert!(types.contains_key(family), "no TYPE for {name}");
                let key = Self::key(
                    name,
                    &sorted
                        .iter()
                        .map(|(k, v)| (k.as_str(), *v))
                        .collect::<Vec<_>>(),
                );
                assert!(samples.insert(key, value).is_none(), "{line} twice");
            }
        }
        Scrape { samples, types }
    }

    fn key(name: &str, labels: &[(&str, &str)]) -> String {
        let mut labels = labels.to_vec();
        labels.sort();
        let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{name}{{{}}}", labels.join(","))
    }

    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let key = Self::key(name, labels);
        *self
            .samples
            .get(&key)
            .unwrap_or_else(|| panic!("no sample {key}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_is_logged_counted_and_answered_under_its_request_id() {
    let bao = Bao::start().await;
    let served = Served::start(&bao.addr, &bao.service_token, &[]).await;
    let generate = format!("{}/generate-name", served.url);
    let body = json!({"application": "web", "role": "app", "environment": "prod"}).to_string();

    let first = common::request_with(
        "POST",
        &generate,
        &body,
        &[
            ("x-request-id", "deploy-42.a_b"),
            ("user-agent", "ops-test/1.0"),
            ("authorization", "Bearer hn_never_logged_secret"),
            ("x-vault-token", "hvs.never-logged-either"),
        ],
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.header("x-request-id"), Some("deploy-42.a_b"));
    let second =
        common::request_with("POST", &generate, &body, &[("x-request-id", "no spaces")]).await;
    let generated_id = second.header("x-request-id").unwrap().to_string();
    assert!(uuid_v4(&generated_id), "{generated_id}");
    let release = format!("{}/names/{}", served.url, second.hostname());
    assert_eq!(common::request("DELETE", &release, "").await.status, 200);
    let live = common::request("GET", &format!("{}/livez", served.url), "").await;
    assert_eq!(
        (live.status, live.json.clone()),
        (200, json!({"status": "alive"}))
    );
    assert!(uuid_v4(live.header("x-request-id").unwrap()));
    let invalid = common::request("POST", &generate, r#"{"application":"Web"}"#).await;
    assert_eq!(invalid.status, 400);

    // One line each, in JSON, with no secret in any line.
    let log = served.log_lines(5).await;
    assert_eq!(log.len(), 5, "{log:#?}");
    let line = |id: &str| log.iter().find(|l| l["request_id"] == id).unwrap().clone();
    let l = line("deploy-42.a_b");
    let time = l["time"].as_str().unwrap();
    assert!(
        time.len() == 24 && time.ends_with('Z') && &time[10..11] == "T",
        "{time}"
    );
    assert_eq!(l["method"], "POST");
    assert_eq!(l["route"], "/generate-name");
    assert_eq!(l["path"], "/generate-name");
    assert_eq!(l["status"], 200);
    assert!(l["duration_ms"].as_f64().unwrap() > 0.0, "{l}");
    assert!(l["vault_calls"].as_u64().unwrap() >= 2, "{l}");
    assert_eq!(l["cas_races_lost"], 0);
    assert_eq!(l["hostname"], first.hostname());
    assert_eq!(l["user_agent"], "ops-test/1.0");
    assert_eq!(line(&generated_id)["hostname"], second.hostname());
    let released = log.iter().find(|l| l["method"] == "DELETE").unwrap();
    assert_eq!(released["route"], "/names/{hostname}");
    assert_eq!(released["status"], 200);
    let refused = log.iter().find(|l| l["status"] == 400).unwrap();
    assert!(refused["problem"]
        .as_str()
        .unwrap()
        .starts_with("urn:hostnaming:problem:"));
    assert!(refused.get("hostname").is_none());
    let everything = served.stderr.lock().unwrap().join("\n");
    assert!(!everything.contains("never-logged"), "{everything}");
    assert!(!everything.contains("never_logged"), "{everything}");

    let m = served.scrape().await;
    let requests = "hostnaming_http_requests_total";
    assert_eq!(m.types[requests], "counter");
    let generate_200 = [
        ("route", "/generate-name"),
        ("method", "POST"),
        ("status", "200"),
    ];
    assert_eq!(m.get(requests, &generate_200), 2.0);
    assert_eq!(
        m.get(
            requests,
            &[
                ("route", "/generate-name"),
                ("method", "POST"),
                ("status", "400")
            ]
        ),
        1.0
    );
    assert_eq!(
        m.get(
            requests,
            &[
                ("route", "/names/{hostname}"),
                ("method", "DELETE"),
                ("status", "200")
            ]
        ),
        1.0
    );
    assert_eq!(
        m.get(
            requests,
            &[("route", "/livez"), ("method", "GET"), ("status", "200")]
        ),
        1.0
    );
    assert_eq!(m.get("hostnaming_allocations_total", &[]), 2.0);
    assert_eq!(m.get("hostnaming_releases_total", &[]), 1.0);
    assert_eq!(m.get("hostnaming_cas_races_lost_total", &[]), 0.0);
    let calls: u64 = log.iter().filter_map(|l| l["vault_calls"].as_u64()).sum();
    assert_eq!(
        m.get("hostnaming_vault_calls_total", &[("outcome", "ok")]),
        calls as f64
    );
    assert_eq!(
        m.get("hostnaming_vault_calls_total", &[("outcome", "error")]),
        0.0
    );
    for (histogram, count) in [
        ("hostnaming_http_request_duration_seconds", 5.0),
        ("hostnaming_vault_call_duration_seconds", calls as f64),
    ] {
        assert_eq!(m.types[histogram], "histogram");
        assert_eq!(m.get(&format!("{histogram}_count"), &[]), count);
        assert_eq!(
            m.get(&format!("{histogram}_bucket"), &[("le", "+Inf")]),
            count
        );
        assert!(m.get(&format!("{histogram}_sum"), &[]) > 0.0);
    }
    assert_eq!(m.types["hostnaming_http_requests_in_flight"], "gauge");
    assert_eq!(m.get("hostnaming_http_requests_in_flight", &[]), 0.0);
    assert_eq!(m.get("hostnaming_instances_running", &[]), 0.0);
    assert!(m.get("hostnaming_instances_limit", &[]) >= 1.0);
    for name in m.types.keys() {
        assert!(name.starts_with("hostnaming_"), "{name}");
        if m.types[name] == "counter" {
            assert!(name.ends_with("_total"), "{name}");
        }
    }
}

fn uuid_v4(s: &str) -> bool {
    s.len() == 36 && s.as_bytes()[14] == b'4' && s.bytes().filter(|b| *b == b'-').count() == 4
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_every_request_in_flight_finish_then_exits_cleanly() {
    const N: usize = 32;
    let bao = Bao::start().await;
    // A slow Vault, so that the requests are still running when the signal comes.
    let proxy = Proxy::delaying(&bao.addr, Duration::from_millis(100)).await;
    let mut served = Served::start(
        &proxy.url,
        &bao.service_token,
        &["--queue-timeout-ms", "60000", "--log-format", "text"],
    )
    .await;
    let requests: Vec<_> = (0..N)
        .map(|i| {
            let url = format!("{}/generate-name", served.url);
            let body =
                json!({"application": format!("app{i}"), "role": "db", "environment": "prod"});
            tokio::spawn(async move {
                common::try_request_with("POST", &url, &body.to_string(), &[]).await
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while served
        .scrape()
        .await
        .get("hostnaming_http_requests_in_flight", &[])
        < N as f64
    {
        assert!(Instant::now() < deadline, "the requests never all arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    served.terminate();
    // New connections are refused from now on, while the accepted requests finish.
    let addr = served.url.trim_start_matches("http://").to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(&addr).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut names = HashSet::new();
    for r in requests {
        let r = r.await.unwrap().expect("answered despite the shutdown");
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(names.insert(r.hostname().to_string()));
    }
    let status = served.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let stderr = served.stderr.lock().unwrap().join("\n");
    assert_eq!(
        stderr.matches(" 200 POST /generate-name ").count(),
        N,
        "{stderr}"
    );

    // Vault holds exactly the names answered, and each counter is one past its name.
    let snapshot = bao.snapshot().await;
    let stored: HashSet<String> = snapshot
        .iter()
        .filter_map(|(k, _)| k.strip_prefix("names/").map(str::to_string))
        .collect();
    assert_eq!(stored, names);
    for i in 0..N {
        let counter = bao.counter(&format!("app{i}"), "db", "prod").await;
        assert_eq!(counter, Some(json!(2)), "app{i}");
    }
}

/// The host in-process with `limits`, against a Vault it never needs for `/livez`.
async fn limited(bao: &Bao, limits: ConnectionLimits) -> (Service, String) {
    let service = Service::start_app(
        &common::workspace().join("spin.toml"),
        bao,
        &[],
        move |app| app.connection_limits(limits),
    )
    .await;
    let addr = service.url.trim_start_matches("http://").to_string();
    (service, addr)
}

const LIVEZ: &[u8] = b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n";

/// Reads until `want` has arrived, or the connection ends.
async fn read_until(stream: &mut TcpStream, want: &str) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains(want) {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

/// Waits (at most `within`) for the server to close `stream`, ignoring what it sends.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_and_idle_connections_are_closed_after_the_header_timeout() {
    let bao = Bao::start().await;
    let timeout = Duration::from_secs(1);
    let limits = ConnectionLimits {
        header_read_timeout: timeout,
        ..ConnectionLimits::default()
    };
    let (service, addr) = limited(&bao, limits).await;
    let opened = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..200 {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHo").await.unwrap();
        slow.push(s);
    }
    // A keep-alive connection that asks once, then says nothing more.
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    idle.write_all(LIVEZ).await.unwrap();
    assert!(read_until(&mut idle, r#"{"status":"alive"}"#)
        .await
        .contains("200 OK"));
    let answered_at = Instant::now();
    // Others are served meanwhile.
    for _ in 0..3 {
        assert_eq!(service.generate("web", "app", "prod").await.status, 200);
        assert_eq!(service.request("GET", "/livez", "").await.status, 200);
    }
    for s in &mut slow {
        assert!(
            closed_within(s, Duration::from_secs(20)).await,
            "never closed"
        );
    }
    assert!(opened.elapsed() >= timeout, "closed before the timeout");
    assert!(closed_within(&mut idle, Duration::from_secs(20)).await);
    assert!(
        answered_at.elapsed() >= timeout,
        "idle closed before the timeout"
    );
    assert_eq!(service.request("GET", "/livez", "").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_over_the_limit_gets_431_and_one_under_it_is_served() {
    let bao = Bao::start().await;
    let limits = ConnectionLimits {
        max_header_bytes: 16 << 10,
        ..ConnectionLimits::default()
    };
    let (_service, addr) = limited(&bao, limits).await;
    let request = |size: usize| {
        format!(
            "GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
            "a".repeat(size)
        )
    };
    let mut ok = TcpStream::connect(&addr).await.unwrap();
    ok.write_all(request(12 << 10).as_bytes()).await.unwrap();
    assert!(read_until(&mut ok, "alive")
        .await
        .starts_with("HTTP/1.1 200"));

    let mut big = TcpStream::connect(&addr).await.unwrap();
    // The server may stop reading, and close, before all of it is written.
    let _ = big.write_all(request(64 << 10).as_bytes()).await;
    let answer = read_until(&mut big, "\r\n\r\n").await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer}"
    );
    assert!(closed_within(&mut big, Duration::from_secs(10)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_connection_cap_a_connection_waits_until_one_closes() {
    const CAP: usize = 3;
    let bao = Bao::start().await;
    let limits = ConnectionLimits {
        max_connections: CAP,
        ..ConnectionLimits::default()
    };
    let (service, addr) = limited(&bao, limits).await;
    let mut held = Vec::new();
    for _ in 0..CAP {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(LIVEZ).await.unwrap();
        assert!(read_until(&mut s, "alive").await.contains("200 OK"));
        held.push(s);
    }
    assert!(service
        .app
        .metrics_text()
        .contains(&format!("\nhostnaming_connections_open {CAP}\n")));
    // The kernel completes the handshake (the backlog), but nobody serves it.
    let mut waiting = TcpStream::connect(&addr).await.unwrap();
    waiting.write_all(LIVEZ).await.unwrap();
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(500), waiting.read(&mut buf)).await;
    assert!(early.is_err(), "served beyond the cap");
    // The admitted connections are still served.
    held[0].write_all(LIVEZ).await.unwrap();
    assert!(read_until(&mut held[0], "alive").await.contains("200 OK"));
    drop(held.pop());
    let answer = tokio::time::timeout(Duration::from_secs(10), read_until(&mut waiting, "alive"))
        .await
        .expect("served once a connection closed");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
