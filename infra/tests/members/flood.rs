//! Finding 2 of the data-flow review, through the local gateway as API Gateway would see
//! it: requests from an address off a key's allowlist (the TCP peer, `127.0.0.3`) never
//! spend the budget of the allowed caller (`127.0.0.2`), however many arrive at once.

use std::net::{IpAddr, SocketAddr};

use serde_json::{json, Value};
use shared::members::role::Role;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{logs, Plane};

/// One `GET` from `source` (a loopback address of our choosing): the status and headers.
async fn get_from(
    port: u16,
    source: IpAddr,
    path: &str,
    key: &str,
) -> (u16, Vec<(String, String)>) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(source, 0)).unwrap();
    let mut stream = socket
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {key}\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("an HTTP answer, got {text:?}"));
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn a_flood_from_off_the_allowlist_never_costs_the_allowed_caller_a_request() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let allowed: IpAddr = "127.0.0.2".parse().unwrap();
    let elsewhere: IpAddr = "127.0.0.3".parse().unwrap();
    let made = plane.post(
        "/v1/org/api-keys",
        &admin.token,
        json!({"label": "fenced", "scopes": ["customers:read"],
               "ip_allowlist": ["127.0.0.2"], "rate_limit": {"requests_per_second": 6}}),
    );
    assert_eq!(made.status, 201, "{}", made.body);
    let made: Value = made.json();
    let key = made["key"].as_str().unwrap().to_owned();
    let key_id = made["id"].as_str().unwrap().to_owned();
    let port = plane.port;
    // Three seconds in a row: 48 requests at once from elsewhere, and with them the allowed
    // caller's 4 (within its 6 whatever second each lands in).
    for round in 0..3 {
        let (flood, owner) = plane.runtime.block_on(async {
            // Each round starts a second of its own (the refusal budget is per second).
            let into = chrono::Utc::now().timestamp_subsec_millis();
            tokio::time::sleep(std::time::Duration::from_millis(u64::from(1_010 - into))).await;
            let spawn = |n: usize, source: IpAddr| -> Vec<_> {
                (0..n)
                    .map(|_| {
                        let key = key.clone();
                        tokio::spawn(
                            async move { get_from(port, source, "/v1/customers", &key).await },
                        )
                    })
                    .collect()
            };
            let flood = spawn(48, elsewhere);
            let owner = spawn(4, allowed);
            let mut got = (Vec::new(), Vec::new());
            for task in flood {
                got.0.push(task.await.unwrap());
            }
            for task in owner {
                got.1.push(task.await.unwrap());
            }
            got
        });
        let owner_statuses: Vec<u16> = owner.iter().map(|(s, _)| *s).collect();
        assert_eq!(
            owner_statuses, [200; 4],
            "round {round}: the allowed caller's requests"
        );
        for (_, headers) in &owner {
            assert_eq!(header(headers, "ratelimit-limit"), Some("6"));
        }
        // The flood: refused, at most 6 a second with 403 and the rest 429, every answer
        // with the refused source's own RateLimit-* headers.
        let forbidden = flood.iter().filter(|(s, _)| *s == 403).count();
        let limited = flood.iter().filter(|(s, _)| *s == 429).count();
        assert_eq!(forbidden + limited, 48, "round {round}: {flood:?}");
        assert!(
            (6..=12).contains(&forbidden),
            "round {round}: {forbidden} 403s"
        );
        for (status, headers) in &flood {
            assert_eq!(header(headers, "ratelimit-limit"), Some("6"), "{status}");
            assert!(header(headers, "ratelimit-remaining").is_some(), "{status}");
            if *status == 429 {
                assert_eq!(header(headers, "ratelimit-remaining"), Some("0"));
                assert!(header(headers, "retry-after").is_some());
            }
        }
    }
    // The key's request log keeps one refusal per source and second, not 144: the lines
    // the log writer would store (every answer still has its line for operators).
    let kept: Vec<shared::request_log::record::RequestRecord> = logs()
        .text()
        .lines()
        .filter_map(|line| shared::request_log::record::RequestRecord::from_log_line(line, None))
        .filter(|record| record.key_id == key_id && record.status != 200)
        .collect();
    let lines = logs()
        .text()
        .lines()
        .filter(|line| line.contains(&key_id) && line.contains("\"repeated_refusal\":true"))
        .count();
    assert!(
        (3..=6).contains(&kept.len()),
        "one kept refusal per second of flood: {}",
        kept.len()
    );
    assert_eq!(kept.len() + lines, 144, "every refusal has its line");
    assert!(kept
        .iter()
        .all(|r| r.source_ip.as_deref() == Some("127.0.0.3")));
}
