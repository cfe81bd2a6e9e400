//! Vault misbehaving: slow answers still succeed, a black-holed Vault gets the caller a 503
//! within the configured per-call timeout and the request's deadline (never a hang), a
//! revoked service token is a clear 503 without the token, and with several nodes listed a
//! dead or sealed first node costs a retry, not a failed request.

use hostnaming_testkit as common;

use std::time::{Duration, Instant};

use common::{Bao, Cut, Proxy, Service};

/// Asks for a name that must be refused as Vault being unavailable: the problem's detail,
/// and how long the answer took.
async fn unavailable(svc: &Service) -> (String, Duration) {
    let started = Instant::now();
    let r = svc.generate("web", "app", "prod").await;
    let took = started.elapsed();
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.header("retry-after"), Some("1"));
    (r.json["detail"].as_str().unwrap().to_string(), took)
}

#[tokio::test]
async fn a_black_holed_vault_gets_a_503_within_the_configured_timeout() {
    let bao = Bao::start().await;
    // Holds the very first request, and every one after it, forever.
    let hole = Proxy::start(&bao.addr, 1, Cut::Before).await;
    let svc = Service::start(
        &bao,
        &[("vault_addr", &hole.url), ("vault_timeout_ms", "300")],
    )
    .await;
    let (detail, took) = unavailable(&svc).await;
    assert!(detail.contains("no answer within 300ms"), "{detail}");
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    let health = svc.request("GET", "/healthz", "").await;
    assert_eq!(health.status, 503, "{}", health.text);
}

#[tokio::test]
async fn black_holed_nodes_hold_a_caller_for_the_request_deadline_not_a_timeout_each() {
    let bao = Bao::start().await;
    let mut holes = Vec::new();
    for _ in 0..3 {
        holes.push(Proxy::start(&bao.addr, 1, Cut::Before).await);
    }
    let nodes: Vec<&str> = holes.iter().map(|h| h.url.as_str()).collect();
    let svc = Service::start(
        &bao,
        &[
            ("vault_addr", &nodes.join(",")),
            ("vault_timeout_ms", "1000"),
            ("allocation_deadline_ms", "1500"),
        ],
    )
    .await;
    let (detail, took) = unavailable(&svc).await;
    // The first node gets its whole timeout; the deadline cuts the second short.
    assert!(detail.contains("no answer within 1s"), "{detail}");
    assert!(
        detail.contains("`allocation_deadline_ms`, 1.5s"),
        "{detail}"
    );
    // Three full timeouts would be 3 s.
    assert!(
        took < Duration::from_millis(2500),
        "answered after {took:?}"
    );
    assert!(
        took >= Duration::from_millis(1400),
        "answered after {took:?}"
    );
}

#[tokio::test]
async fn a_slow_vault_still_answers_when_each_call_fits_the_timeout() {
    let bao = Bao::start().await;
    let slow = Proxy::delaying(&bao.addr, Duration::from_millis(150)).await;
    let svc = Service::start(
        &bao,
        &[("vault_addr", &slow.url), ("vault_timeout_ms", "2000")],
    )
    .await;
    let started = Instant::now();
    assert_eq!(
        svc.generate("web", "app", "prod").await.hostname(),
        "web-app-prod-vm1"
    );
    // Three calls of at least 150 ms each: the delay really was in the path.
    assert!(started.elapsed() >= Duration::from_millis(450));
}

#[tokio::test]
async fn a_timeout_that_is_not_a_number_is_a_500_naming_the_variable() {
    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[("vault_timeout_ms", "soon")]).await;
    let r = svc.generate("web", "app", "prod").await;
    assert_eq!(r.status, 500, "{}", r.text);
    assert!(
        r.json["detail"]
            .as_str()
            .unwrap()
            .contains("vault_timeout_ms"),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn a_dead_first_node_costs_a_retry_not_a_failed_request() {
    let bao = Bao::start().await;
    // Nothing listens there: each request's first call is refused, then goes to `bao`.
    let dead = format!("http://127.0.0.1:{}", common::free_port());
    let svc = Service::start(&bao, &[("vault_addr", &format!("{dead},{}", bao.addr))]).await;
    let answers = futures_join(&svc, 16).await;
    let mut numbers: Vec<u64> = answers
        .iter()
        .map(|r| {
            assert_eq!(r.status, 200, "{}", r.text);
            r.json["number"].as_u64().unwrap()
        })
        .collect();
    numbers.sort();
    assert_eq!(numbers, (1..=16).collect::<Vec<_>>());
    let health = svc.request("GET", "/healthz", "").await;
    assert_eq!(health.status, 200, "{}", health.text);
}

#[tokio::test]
async fn a_sealed_first_node_is_passed_over_and_all_nodes_down_is_a_503_naming_each() {
    let bao = Bao::start().await;
    let sealed = Bao::start().await;
    let (status, _) = sealed.client().call("PUT", "sys/seal", None).await.unwrap();
    assert_eq!(status, 204);
    let svc = Service::start(
        &bao,
        &[("vault_addr", &format!("{},{}", sealed.addr, bao.addr))],
    )
    .await;
    assert_eq!(
        svc.generate("web", "app", "prod").await.hostname(),
        "web-app-prod-vm1"
    );
    assert_eq!(
        svc.generate("web", "app", "prod").await.hostname(),
        "web-app-prod-vm2"
    );

    // Both refuse: the answer is a 503 that names both nodes.
    let (a, b) = (common::free_port(), common::free_port());
    let svc = Service::start(
        &bao,
        &[(
            "vault_addr",
            &format!("http://127.0.0.1:{a},http://127.0.0.1:{b}"),
        )],
    )
    .await;
    let r = svc.generate("web", "app", "prod").await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.header("retry-after"), Some("1"));
    let detail = r.json["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("127.0.0.1:{a}")) && detail.contains(&format!("127.0.0.1:{b}")),
        "{detail}"
    );
}

#[tokio::test]
async fn a_revoked_service_token_is_a_503_that_says_so_without_the_token() {
    let bao = Bao::start().await;
    let svc = Service::start(&bao, &[]).await;
    assert_eq!(svc.generate("web", "app", "prod").await.status, 200);
    let (status, _) = bao
        .client()
        .call(
            "POST",
            "auth/token/revoke",
            Some(serde_json::json!({"token": bao.service_token})),
        )
        .await
        .unwrap();
    assert_eq!(status, 204);
    let before = bao.snapshot().await;
    let r = svc.generate("web", "app", "prod").await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.json["type"], "urn:hostnaming:problem:vault-denied");
    assert!(r.header("retry-after").is_some());
    assert!(!r.text.contains(&bao.service_token) && !r.text.contains(&bao.token));
    assert_eq!(bao.snapshot().await, before);
}

/// `n` allocations of one tuple at once.
async fn futures_join(svc: &Service, n: usize) -> Vec<common::Resp> {
    join_applications(svc, (0..n).map(|_| "web".to_string())).await
}

/// Asks for one name per application, all at once.
async fn join_applications(
    svc: &Service,
    applications: impl Iterator<Item = String>,
) -> Vec<common::Resp> {
    let url = svc.url.clone();
    let tasks: Vec<_> = applications
        .map(|app| {
            let url = url.clone();
            tokio::spawn(async move {
                let body =
                    serde_json::json!({"application": app, "role": "app", "environment": "prod"});
                common::request("POST", &format!("{url}/generate-name"), &body.to_string()).await
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_the_concurrency_limit_of_requests_run_at_once_and_the_rest_wait() {
    let bao = Bao::start().await;
    let slow = Proxy::delaying(&bao.addr, Duration::from_millis(50)).await;
    let svc = std::sync::Arc::new(
        Service::start_app(
            &common::workspace().join("spin.toml"),
            &bao,
            &[("vault_addr", &slow.url)],
            |app| app.limit_concurrency(2),
        )
        .await,
    );
    let (answers, most, _) = watching(&svc, futures_join(&svc, 8)).await;
    assert!(answers.iter().all(|r| r.status == 200));
    assert_eq!(
        most, 2,
        "8 requests at once ran {most} at a time under a limit of 2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_finds_no_turn_in_time_gets_a_503_instead_of_waiting_on() {
    let bao = Bao::start().await;
    let hole = Proxy::start(&bao.addr, 1, Cut::Before).await;
    let svc = std::sync::Arc::new(
        Service::start_app(
            &common::workspace().join("spin.toml"),
            &bao,
            &[("vault_addr", &hole.url), ("vault_timeout_ms", "3000")],
            |app| {
                app.limit_concurrency(1)
                    .queue_timeout(Duration::from_millis(300))
            },
        )
        .await,
    );
    // The first request takes the only turn and keeps it while Vault says nothing.
    let first = tokio::spawn({
        let svc = svc.clone();
        async move { svc.generate("web", "app", "prod").await }
    });
    let until = Instant::now() + Duration::from_secs(10);
    while svc.app.running() == 0 {
        assert!(Instant::now() < until, "the first request never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let started = Instant::now();
    let second = svc.generate("web", "app", "prod").await;
    let took = started.elapsed();
    assert_eq!(second.status, 503, "{}", second.text);
    assert_eq!(second.header("retry-after"), Some("1"));
    assert_eq!(second.json["type"], "urn:hostnaming:problem:overloaded");
    let detail = second.json["detail"].as_str().unwrap();
    assert!(detail.contains("no turn to run within 300ms"), "{detail}");
    // Not the 3 s the first request holds its turn for.
    assert!(took < Duration::from_secs(2), "answered after {took:?}");
    let first = first.await.unwrap();
    assert_eq!(first.status, 503, "{}", first.text);
    assert!(first.text.contains("no answer within 3s"), "{}", first.text);
}

/// Runs `load` while sampling the service: the most requests running at once and the
/// lowest concurrency limit seen.
async fn watching<T>(
    svc: &std::sync::Arc<Service>,
    load: impl std::future::Future<Output = T>,
) -> (T, usize, usize) {
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (svc, done) = (svc.clone(), done.clone());
        tokio::spawn(async move {
            let (mut most, mut least) = (0, usize::MAX);
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                most = most.max(svc.app.running());
                least = least.min(svc.app.concurrency_limit());
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            (most, least)
        })
    };
    let out = load.await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (most, least) = watcher.await.unwrap();
    (out, most, least)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_races_lower_the_concurrency_limit_and_clean_answers_raise_it_again() {
    let bao = Bao::start().await;
    // A delay on every Vault call makes requests overlap, so those on one tuple race. They
    // race only without gates: with them this host's instances take turns and lose none,
    // so the limit reacts to races with other hosts, which this stands in for.
    let slow = Proxy::delaying(&bao.addr, Duration::from_millis(20)).await;
    let svc = std::sync::Arc::new(
        Service::start_app(
            &common::workspace().join("spin.toml"),
            &bao,
            &[("vault_addr", &slow.url)],
            |app| app.adapt_concurrency_between(2, 8).without_gates(),
        )
        .await,
    );
    assert_eq!(svc.app.concurrency_limit(), 2, "starts at the floor");
    // Requests on distinct tuples never race: a run of clean answers as long as the limit
    // raises it by one (2 + 3 + 4 + 5 + 6 + 7 = 27 answers from 2 to 8).
    let quiet = |round: usize| {
        let svc = svc.clone();
        async move {
            for i in 0..30 {
                let r = svc
                    .generate(&format!("quiet{round}x{i}"), "app", "prod")
                    .await;
                assert_eq!(r.status, 200);
                assert_eq!(r.header("hostnaming-conflicts"), Some("0"));
            }
        }
    };
    quiet(1).await;
    assert_eq!(svc.app.concurrency_limit(), 8, "up to the ceiling");
    // The raise is real: eight requests on distinct tuples run together, not two.
    let spread = join_applications(&svc, (0..8).map(|i| format!("spread{i}")));
    let (spread, most, _) = watching(&svc, spread).await;
    assert!(spread.iter().all(|r| r.status == 200));
    assert!(most > 2, "at most {most} ran at once under a limit of 8");

    let (answers, _, least) = watching(&svc, futures_join(&svc, 16)).await;
    assert!(answers.iter().all(|r| r.status == 200), "{answers:?}");
    let lost: u32 = answers
        .iter()
        .map(|r| {
            r.header("hostnaming-conflicts")
                .unwrap()
                .parse::<u32>()
                .unwrap()
        })
        .sum();
    let mut numbers: Vec<u64> = answers
        .iter()
        .map(|r| r.json["number"].as_u64().unwrap())
        .collect();
    numbers.sort();
    assert_eq!(
        numbers,
        (1..=16).collect::<Vec<_>>(),
        "still gapless and unique"
    );
    assert!(lost > 0, "16 requests at once on one counter lost no race");
    assert!(
        (2..8).contains(&least),
        "the limit went no lower than {least} through {lost} lost races"
    );
    assert_eq!(svc.app.running(), 0, "every turn came back");
    quiet(2).await;
    assert_eq!(svc.app.concurrency_limit(), 8, "back at the ceiling");
}
