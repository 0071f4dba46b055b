//! AWS WAF log records for the VPC's public web ACL.

use rand::Rng;
use rand::rngs::SmallRng;
use serde_json::{Value, json};

use crate::topology::{ACCOUNT, REGION};

pub const WEB_ACL: &str = "prod-web-acl";

pub fn web_acl_arn() -> String {
    format!(
        "arn:aws:wafv2:{REGION}:{ACCOUNT}:regional/webacl/{WEB_ACL}/a1b2c3d4-5678-90ab-cdef-EXAMPLE11111"
    )
}

/// A browser family: user agent and its TLS fingerprints.
pub struct Client {
    pub user_agent: &'static str,
    pub ja3: &'static str,
    pub ja4: &'static str,
}

pub const BROWSERS: &[Client] = &[
    Client {
        user_agent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
        ja3: "cd08e31494f9531f560d64c695473da9",
        ja4: "t13d1516h2_8daaf6152771_02713d6af862",
    },
    Client {
        user_agent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
        ja3: "773906b0efdefa24a7f2b8eb6985bf37",
        ja4: "t13d2014h2_a09f3c656075_14788d8d241b",
    },
    Client {
        user_agent: "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
        ja3: "579ccef312d18482fc42e2b822ca2430",
        ja4: "t13d1715h2_5b57614c22b0_3d5424432f57",
    },
];

pub const GOOGLEBOT: Client = Client {
    user_agent: "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    ja3: "b32309a26951912be7dba376398abc3b",
    ja4: "t13d1516h2_8daaf6152771_e5627efa2ab1",
};

pub const SCANNER_AGENTS: &[&str] = &["curl/8.5.0", "python-requests/2.31.0", "Go-http-client/1.1"];

const PAGES: &[&str] = &[
    "/",
    "/products",
    "/cart",
    "/about",
    "/static/app.js",
    "/static/site.css",
];
const PROBES: &[&str] = &[
    "/wp-admin/",
    "/.env",
    "/.git/config",
    "/phpmyadmin/",
    "/cgi-bin/luci",
];

/// What a request looks like from WAF's side.
pub enum Kind {
    Browse,
    Crawler,
    CredentialStuffing,
    Probe,
    /// A scraping script walking product ids in order (the single-client incident).
    Scraper {
        id: u32,
    },
    /// One node of a distributed crawl: a browser user agent without browser headers,
    /// all nodes sharing one TLS fingerprint (the distributed-crawl incident).
    StealthCrawler,
}

/// The scraping script's client.
pub const SCRAPER: Client = Client {
    user_agent: "python-requests/2.31.0",
    ja3: "8d9f7747675e24454cd9b7ed35c58707",
    ja4: "t13d1812h1_85036bcba153_b26ce05bbdd6",
};

/// The distributed crawler's client: Chrome's user agent, its own TLS stack.
pub const STEALTH: Client = Client {
    user_agent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    ja3: "a0e9f5d64349fb13191bc781f81f42e1",
    ja4: "t13d1517h2_8daaf6152771_b1ff8ab2d16f",
};

fn headers(pairs: &[(&str, String)]) -> Value {
    Value::Array(
        pairs
            .iter()
            .map(|(n, v)| json!({"name": n, "value": v}))
            .collect(),
    )
}

/// One WAF log record (compact JSON).
pub fn request(rng: &mut SmallRng, kind: Kind, client_ip: &str, ts_ms: u64) -> String {
    let host = "shop.example.com".to_string();
    let request_id = format!("1-{:08x}-{:024x}", ts_ms / 1000, rng.random::<u128>() >> 32);
    let (method, uri, args, hdrs, action, rule, rule_type, labels, groups, rate, ja3, ja4) =
        match kind {
            Kind::Browse => {
                let b = &BROWSERS[rng.random_range(0..BROWSERS.len())];
                let (uri, args) = match rng.random_range(0..10) {
                    0..=1 => (
                        "/search".to_string(),
                        format!("q=item{}", rng.random_range(0..500)),
                    ),
                    2..=4 => (
                        format!("/products/{}", rng.random_range(1000..1400)),
                        String::new(),
                    ),
                    _ => (
                        PAGES[rng.random_range(0..PAGES.len())].to_string(),
                        String::new(),
                    ),
                };
                let mut h = vec![
                    ("Host", host.clone()),
                    ("User-Agent", b.user_agent.to_string()),
                    ("Accept", "text/html,application/xhtml+xml,*/*;q=0.8".into()),
                    ("Accept-Language", "en-US,en;q=0.9".into()),
                    ("Accept-Encoding", "gzip, deflate, br".into()),
                ];
                if rng.random_bool(0.6) {
                    h.push(("Referer", format!("https://{host}/")));
                }
                (
                    "GET",
                    uri,
                    args,
                    h,
                    "ALLOW",
                    "Default_Action",
                    "REGULAR",
                    vec!["awswaf:managed:token:accepted"],
                    json!([]),
                    json!([]),
                    b.ja3,
                    b.ja4,
                )
            }
            Kind::Crawler => (
                "GET",
                format!("/products/{}", rng.random_range(1000..1400)),
                String::new(),
                vec![
                    ("Host", host.clone()),
                    ("User-Agent", GOOGLEBOT.user_agent.to_string()),
                    ("Accept", "*/*".into()),
                    ("From", "googlebot(at)googlebot.com".into()),
                ],
                "ALLOW",
                "Default_Action",
                "REGULAR",
                vec![
                    "awswaf:managed:aws:bot-control:bot:category:search_engine",
                    "awswaf:managed:aws:bot-control:bot:name:googlebot",
                    "awswaf:managed:aws:bot-control:bot:verified",
                ],
                json!([]),
                json!([]),
                GOOGLEBOT.ja3,
                GOOGLEBOT.ja4,
            ),
            Kind::CredentialStuffing => (
                "POST",
                "/login".into(),
                String::new(),
                vec![
                    ("Host", host.clone()),
                    ("User-Agent", BROWSERS[0].user_agent.to_string()),
                    ("Content-Type", "application/x-www-form-urlencoded".into()),
                ],
                "BLOCK",
                "login-rate-limit",
                "RATE_BASED",
                vec![],
                json!([]),
                json!([{
                    "rateBasedRuleId": "a1b2c3d4-rate-login",
                    "rateBasedRuleName": "login-rate-limit",
                    "limitKey": "IP",
                    "maxRateAllowed": 100,
                    "evaluationWindowSec": "300",
                    "customValues": []
                }]),
                "e7d705a3286e19ea42f587b344ee6865",
                "t13d190900_9dc949149365_97f8aa674fd9",
            ),
            Kind::Scraper { id } => (
                "GET",
                format!("/products/{id}"),
                String::new(),
                vec![
                    ("Host", host.clone()),
                    ("User-Agent", SCRAPER.user_agent.to_string()),
                    ("Accept", "*/*".into()),
                    ("Accept-Encoding", "gzip, deflate".into()),
                ],
                "ALLOW",
                "Default_Action",
                "REGULAR",
                vec![],
                json!([]),
                json!([]),
                SCRAPER.ja3,
                SCRAPER.ja4,
            ),
            Kind::StealthCrawler => {
                let (uri, args) = if rng.random_bool(0.2) {
                    (
                        "/search".to_string(),
                        format!("q=item{}", rng.random_range(0..5000)),
                    )
                } else {
                    (
                        format!("/products/{}", rng.random_range(1000..9000)),
                        String::new(),
                    )
                };
                (
                    "GET",
                    uri,
                    args,
                    vec![
                        ("Host", host.clone()),
                        ("User-Agent", STEALTH.user_agent.to_string()),
                        ("Accept", "text/html,*/*".into()),
                    ],
                    "ALLOW",
                    "Default_Action",
                    "REGULAR",
                    vec![],
                    json!([]),
                    json!([]),
                    STEALTH.ja3,
                    STEALTH.ja4,
                )
            }
            Kind::Probe => {
                let ua = SCANNER_AGENTS[rng.random_range(0..SCANNER_AGENTS.len())];
                (
                    "GET",
                    PROBES[rng.random_range(0..PROBES.len())].to_string(),
                    String::new(),
                    vec![("Host", host.clone()), ("User-Agent", ua.to_string())],
                    "BLOCK",
                    "AWS-AWSManagedRulesCommonRuleSet",
                    "MANAGED_RULE_GROUP",
                    vec!["awswaf:managed:aws:core-rule-set:NoUserAgent_Header"],
                    json!([{
                        "ruleGroupId": "AWS#AWSManagedRulesCommonRuleSet",
                        "terminatingRule": {"ruleId": "GenericLFI_URIPATH", "action": "BLOCK", "ruleMatchDetails": null},
                        "nonTerminatingMatchingRules": [],
                        "excludedRules": null,
                        "customerConfig": null
                    }]),
                    json!([]),
                    "3b5074b1b5d032e5620f69f9f700ff0e",
                    "t13d411100_6be44479b708_d41ae481755e",
                )
            }
        };
    let labels: Vec<Value> = labels.iter().map(|l| json!({"name": l})).collect();
    // Some browsing arrives through a proxy (X-Forwarded-For), matches a rule kept in
    // COUNT mode, or matches a managed rule excluded from blocking: what the WAF saved
    // queries count. Chosen from the request id, so no random draw changes.
    let pick = request_id
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
    let mut hdrs = hdrs;
    let mut groups = groups;
    let mut counted = json!([]);
    if matches!(kind, Kind::Browse) {
        if pick % 5 == 0 {
            hdrs.push(("X-Forwarded-For", format!("198.51.100.{}", pick % 40 + 1)));
        }
        if pick % 9 == 1 {
            counted =
                json!([{"ruleId": "count-odd-referer", "action": "COUNT", "ruleMatchDetails": []}]);
        }
        if pick % 11 == 2 {
            groups = json!([{
                "ruleGroupId": "AWS#AWSManagedRulesCommonRuleSet",
                "terminatingRule": null,
                "nonTerminatingMatchingRules": [],
                "excludedRules": [{"exclusionType": "EXCLUDED_AS_COUNT", "ruleId": if pick % 2 == 0 { "SizeRestrictions_BODY" } else { "CrossSiteScripting_BODY" }}],
                "customerConfig": null
            }]);
        }
    }
    let rec = json!({
        "timestamp": ts_ms,
        "formatVersion": 1,
        "webaclId": web_acl_arn(),
        "terminatingRuleId": rule,
        "terminatingRuleType": rule_type,
        "action": action,
        "terminatingRuleMatchDetails": [],
        "httpSourceName": "ALB",
        "httpSourceId": format!("{ACCOUNT}-app/prod-alb/0123456789abcdef"),
        "ruleGroupList": groups,
        "rateBasedRuleList": rate,
        "nonTerminatingMatchingRules": counted,
        "requestHeadersInserted": null,
        "responseCodeSent": null,
        "httpRequest": {
            "clientIp": client_ip,
            "country": if client_ip.starts_with("66.249.") { "US" } else { ["US", "DE", "GB", "FR", "JP", "BR"][rng.random_range(0..6)] },
            "headers": headers(&hdrs),
            "uri": uri,
            "args": args,
            "httpVersion": "HTTP/2.0",
            "httpMethod": method,
            "requestId": request_id,
            "scheme": "https",
            "host": host,
        },
        "labels": labels,
        "ja3Fingerprint": ja3,
        "ja4Fingerprint": ja4,
        "requestBodySize": if method == "POST" { 48 } else { 0 },
        "requestBodySizeInspectedByWAF": if method == "POST" { 48 } else { 0 },
    });
    rec.to_string()
}
