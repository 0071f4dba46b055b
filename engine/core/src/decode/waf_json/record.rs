//! The WAF log record as JSON, borrowed from the input where possible.
//!
//! Every field is optional (AWS writes `null` for many, omits others); numbers are
//! accepted as JSON numbers or numeric strings; list-valued fields that are not lists
//! are treated as absent rather than failing the record.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, Visitor};

pub(super) type Str<'a> = Option<Cow<'a, str>>;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawWaf<'a> {
    #[serde(default, deserialize_with = "lenient_int")]
    pub timestamp: Option<i64>,
    #[serde(default, deserialize_with = "lenient_int")]
    pub format_version: Option<i64>,
    #[serde(borrow, default)]
    pub webacl_id: Str<'a>,
    #[serde(borrow, default)]
    pub terminating_rule_id: Str<'a>,
    #[serde(borrow, default)]
    pub terminating_rule_type: Str<'a>,
    #[serde(borrow, default)]
    pub action: Str<'a>,
    #[serde(borrow, default, deserialize_with = "lenient_list")]
    pub terminating_rule_match_details: Option<Vec<MatchDetail<'a>>>,
    #[serde(borrow, default)]
    pub http_source_name: Str<'a>,
    #[serde(borrow, default)]
    pub http_source_id: Str<'a>,
    #[serde(borrow, default, deserialize_with = "lenient_list")]
    pub rule_group_list: Option<Vec<RuleGroup<'a>>>,
    #[serde(borrow, default, deserialize_with = "lenient_list")]
    pub rate_based_rule_list: Option<Vec<RateBasedRule<'a>>>,
    #[serde(borrow, default, deserialize_with = "lenient_list")]
    pub non_terminating_matching_rules: Option<Vec<MatchingRule<'a>>>,
    #[serde(borrow, default, deserialize_with = "lenient_list")]
    pub request_headers_inserted: Option<Vec<NameValue<'a>>>,
    #[serde(default, deserialize_with = "lenient_int")]
    pub response_code_sent: Option<i64>,
    #[serde(borrow, default)]
    pub http_request: Option<HttpRequest<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient_list")]
    pub labels: Option<Vec<Label<'a>>>,
    #[serde(borrow, default)]
    pub captcha_response: Option<Response<'a>>,
    #[serde(borrow, default)]
    pub challenge_response: Option<Response<'a>>,
    #[serde(borrow, default)]
    pub ja3_fingerprint: Str<'a>,
    #[serde(borrow, default)]
    pub ja4_fingerprint: Str<'a>,
    #[serde(borrow, default, deserialize_with = "lenient_list")]
    pub oversize_fields: Option<Vec<Cow<'a, str>>>,
    #[serde(default, deserialize_with = "lenient_int")]
    pub request_body_size: Option<i64>,
    #[serde(
        default,
        rename = "requestBodySizeInspectedByWAF",
        deserialize_with = "lenient_int"
    )]
    pub request_body_size_inspected_by_waf: Option<i64>,
    #[serde(default, deserialize_with = "lenient_int")]
    pub client_asn: Option<i64>,
    #[serde(borrow, default)]
    pub cf_distribution_tenant_id: Str<'a>,
}

impl RawWaf<'_> {
    /// A WAF log record has at least a timestamp and an HTTP request.
    pub fn check(&self) -> Result<(), &'static str> {
        if self.timestamp.is_none() {
            return Err("timestamp");
        }
        if self.http_request.is_none() {
            return Err("httpRequest");
        }
        Ok(())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct HttpRequest<'a> {
    #[serde(borrow, default)]
    pub client_ip: Str<'a>,
    #[serde(borrow, default)]
    pub country: Str<'a>,
    #[serde(borrow, default, deserialize_with = "lenient_list")]
    pub headers: Option<Vec<NameValue<'a>>>,
    #[serde(borrow, default)]
    pub uri: Str<'a>,
    #[serde(borrow, default)]
    pub args: Str<'a>,
    #[serde(borrow, default)]
    pub http_version: Str<'a>,
    #[serde(borrow, default)]
    pub http_method: Str<'a>,
    #[serde(borrow, default)]
    pub request_id: Str<'a>,
    #[serde(borrow, default)]
    pub fragment: Str<'a>,
    #[serde(borrow, default)]
    pub scheme: Str<'a>,
    #[serde(borrow, default)]
    pub host: Str<'a>,
}

/// `{name, value}`; a header missing its value (as in one AWS example) has `None`.
#[derive(Debug, Deserialize)]
pub(super) struct NameValue<'a> {
    #[serde(borrow, default)]
    pub name: Str<'a>,
    #[serde(borrow, default)]
    pub value: Str<'a>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Label<'a> {
    #[serde(borrow, default)]
    pub name: Str<'a>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct MatchDetail<'a> {
    #[serde(borrow, default)]
    pub condition_type: Str<'a>,
    #[serde(borrow, default)]
    pub sensitivity_level: Str<'a>,
    #[serde(borrow, default)]
    pub location: Str<'a>,
    #[serde(borrow, default, deserialize_with = "lenient_list")]
    pub matched_data: Option<Vec<Cow<'a, str>>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RuleRef<'a> {
    #[serde(borrow, default)]
    pub rule_id: Str<'a>,
    #[serde(borrow, default)]
    pub action: Str<'a>,
    #[serde(borrow, default)]
    pub overridden_action: Str<'a>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RuleGroup<'a> {
    #[serde(borrow, default)]
    pub rule_group_id: Str<'a>,
    #[serde(borrow, default)]
    pub terminating_rule: Option<RuleRef<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient_list")]
    pub non_terminating_matching_rules: Option<Vec<RuleRef<'a>>>,
    #[serde(borrow, default, deserialize_with = "lenient_list")]
    pub excluded_rules: Option<Vec<RuleRef<'a>>>,
}

pub(super) type MatchingRule<'a> = RuleRef<'a>;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RateBasedRule<'a> {
    #[serde(borrow, default)]
    pub rate_based_rule_id: Str<'a>,
    #[serde(borrow, default)]
    pub rate_based_rule_name: Str<'a>,
    #[serde(borrow, default)]
    pub limit_key: Str<'a>,
    #[serde(borrow, default)]
    pub limit_value: Str<'a>,
    #[serde(default, deserialize_with = "lenient_int")]
    pub max_rate_allowed: Option<i64>,
    #[serde(default, deserialize_with = "lenient_int")]
    pub evaluation_window_sec: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Response<'a> {
    #[serde(default, deserialize_with = "lenient_int")]
    pub response_code: Option<i64>,
    #[serde(default, deserialize_with = "lenient_int")]
    pub solve_timestamp: Option<i64>,
    #[serde(borrow, default)]
    pub failure_reason: Str<'a>,
}

/// An integer given as a JSON number or a numeric string; `null`, `""` and `"-"` are
/// `None`. Anything else is an error (it fails the record, which is then reported).
fn lenient_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an integer or a numeric string")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            i64::try_from(v)
                .map(Some)
                .map_err(|_| E::custom("integer out of range"))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            if v.fract() == 0.0 && v.abs() < 9.0e18 {
                Ok(Some(v as i64))
            } else {
                Err(E::invalid_value(de::Unexpected::Float(v), &self))
            }
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            let v = v.trim();
            if v.is_empty() || v == "-" || v == "null" {
                return Ok(None);
            }
            v.parse()
                .map(Some)
                .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

/// A list, or `None` for `null` and for values of any other shape.
fn lenient_list<'de, D, T>(d: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Maybe<T> {
        List(Vec<T>),
        Other(IgnoredAny),
    }
    Ok(match Option::<Maybe<T>>::deserialize(d)? {
        Some(Maybe::List(v)) => Some(v),
        _ => None,
    })
}
