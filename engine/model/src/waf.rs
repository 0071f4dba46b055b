//! The canonical `waf` schema: AWS WAF log records, top-level fields in snake_case,
//! `httpRequest` flattened, headers as `name`/`value` structs plus convenience columns.

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

/// Column names, in schema order.
pub mod col {
    pub const TIMESTAMP: &str = "timestamp";
    pub const FORMAT_VERSION: &str = "format_version";
    pub const WEBACL_ID: &str = "webacl_id";
    /// The web ACL's name, parsed from its ARN.
    pub const WEBACL_NAME: &str = "webacl_name";
    pub const TERMINATING_RULE_ID: &str = "terminating_rule_id";
    pub const TERMINATING_RULE_TYPE: &str = "terminating_rule_type";
    pub const ACTION: &str = "action";
    pub const TERMINATING_RULE_MATCH_DETAILS: &str = "terminating_rule_match_details";
    pub const HTTP_SOURCE_NAME: &str = "http_source_name";
    pub const HTTP_SOURCE_ID: &str = "http_source_id";
    pub const RULE_GROUP_LIST: &str = "rule_group_list";
    pub const RATE_BASED_RULE_LIST: &str = "rate_based_rule_list";
    pub const NON_TERMINATING_MATCHING_RULES: &str = "non_terminating_matching_rules";
    pub const REQUEST_HEADERS_INSERTED: &str = "request_headers_inserted";
    pub const RESPONSE_CODE_SENT: &str = "response_code_sent";
    pub const CLIENT_IP: &str = "client_ip";
    pub const COUNTRY: &str = "country";
    pub const URI: &str = "uri";
    pub const ARGS: &str = "args";
    pub const HTTP_VERSION: &str = "http_version";
    pub const HTTP_METHOD: &str = "http_method";
    pub const REQUEST_ID: &str = "request_id";
    pub const FRAGMENT: &str = "fragment";
    pub const SCHEME: &str = "scheme";
    pub const HOST: &str = "host";
    pub const HEADERS: &str = "headers";
    pub const USER_AGENT: &str = "user_agent";
    pub const X_FORWARDED_FOR: &str = "x_forwarded_for";
    pub const REFERER: &str = "referer";
    pub const ACCEPT_LANGUAGE: &str = "accept_language";
    pub const LABELS: &str = "labels";
    pub const CAPTCHA_RESPONSE: &str = "captcha_response";
    pub const CHALLENGE_RESPONSE: &str = "challenge_response";
    pub const JA3_FINGERPRINT: &str = "ja3_fingerprint";
    pub const JA4_FINGERPRINT: &str = "ja4_fingerprint";
    pub const OVERSIZE_FIELDS: &str = "oversize_fields";
    pub const REQUEST_BODY_SIZE: &str = "request_body_size";
    pub const REQUEST_BODY_SIZE_INSPECTED_BY_WAF: &str = "request_body_size_inspected_by_waf";
    pub const CLIENT_ASN: &str = "client_asn";
    pub const CF_DISTRIBUTION_TENANT_ID: &str = "cf_distribution_tenant_id";
    /// From the web ACL ARN, else from the object key.
    pub const ACCOUNT_ID: &str = "account_id";
    /// From the web ACL ARN, else from the object key.
    pub const REGION: &str = "region";
    pub const SOURCE_OBJECT: &str = "source_object";
}

fn s(name: &str) -> Field {
    Field::new(name, DataType::Utf8View, true)
}

fn list_of(item: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", item, true)))
}

/// `struct<name, value>`, used for headers and inserted headers.
pub fn name_value_type() -> DataType {
    DataType::Struct(Fields::from(vec![s("name"), s("value")]))
}

/// `struct<response_code, solve_timestamp, failure_reason>` for CAPTCHA and challenge.
pub fn response_type() -> DataType {
    DataType::Struct(Fields::from(vec![
        Field::new("response_code", DataType::Int32, true),
        Field::new("solve_timestamp", DataType::Int64, true),
        s("failure_reason"),
    ]))
}

/// Element type of `terminating_rule_match_details`.
pub fn match_detail_type() -> DataType {
    DataType::Struct(Fields::from(vec![
        s("condition_type"),
        s("sensitivity_level"),
        s("location"),
        Field::new("matched_data", list_of(DataType::Utf8View), true),
    ]))
}

/// Element type of `rule_group_list`.
pub fn rule_group_type() -> DataType {
    DataType::Struct(Fields::from(vec![
        s("rule_group_id"),
        s("terminating_rule_id"),
        s("terminating_rule_action"),
        s("terminating_rule_overridden_action"),
        Field::new(
            "non_terminating_rule_ids",
            list_of(DataType::Utf8View),
            true,
        ),
        Field::new("excluded_rule_ids", list_of(DataType::Utf8View), true),
    ]))
}

/// Element type of `rate_based_rule_list`.
pub fn rate_based_rule_type() -> DataType {
    DataType::Struct(Fields::from(vec![
        s("rate_based_rule_id"),
        s("rate_based_rule_name"),
        s("limit_key"),
        s("limit_value"),
        Field::new("max_rate_allowed", DataType::Int64, true),
        Field::new("evaluation_window_sec", DataType::Int64, true),
    ]))
}

/// Element type of `non_terminating_matching_rules`.
pub fn matching_rule_type() -> DataType {
    DataType::Struct(Fields::from(vec![
        s("rule_id"),
        s("action"),
        s("overridden_action"),
    ]))
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    use col::*;
    Arc::new(Schema::new(vec![
        Field::new(
            TIMESTAMP,
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new(FORMAT_VERSION, DataType::Int32, true),
        s(WEBACL_ID),
        s(WEBACL_NAME),
        s(TERMINATING_RULE_ID),
        s(TERMINATING_RULE_TYPE),
        s(ACTION),
        Field::new(
            TERMINATING_RULE_MATCH_DETAILS,
            list_of(match_detail_type()),
            true,
        ),
        s(HTTP_SOURCE_NAME),
        s(HTTP_SOURCE_ID),
        Field::new(RULE_GROUP_LIST, list_of(rule_group_type()), true),
        Field::new(RATE_BASED_RULE_LIST, list_of(rate_based_rule_type()), true),
        Field::new(
            NON_TERMINATING_MATCHING_RULES,
            list_of(matching_rule_type()),
            true,
        ),
        Field::new(REQUEST_HEADERS_INSERTED, list_of(name_value_type()), true),
        Field::new(RESPONSE_CODE_SENT, DataType::Int32, true),
        s(CLIENT_IP),
        s(COUNTRY),
        s(URI),
        s(ARGS),
        s(HTTP_VERSION),
        s(HTTP_METHOD),
        s(REQUEST_ID),
        s(FRAGMENT),
        s(SCHEME),
        s(HOST),
        Field::new(HEADERS, list_of(name_value_type()), true),
        s(USER_AGENT),
        s(X_FORWARDED_FOR),
        s(REFERER),
        s(ACCEPT_LANGUAGE),
        Field::new(LABELS, list_of(DataType::Utf8View), true),
        Field::new(CAPTCHA_RESPONSE, response_type(), true),
        Field::new(CHALLENGE_RESPONSE, response_type(), true),
        s(JA3_FINGERPRINT),
        s(JA4_FINGERPRINT),
        Field::new(OVERSIZE_FIELDS, list_of(DataType::Utf8View), true),
        Field::new(REQUEST_BODY_SIZE, DataType::Int64, true),
        Field::new(REQUEST_BODY_SIZE_INSPECTED_BY_WAF, DataType::Int64, true),
        Field::new(CLIENT_ASN, DataType::Int64, true),
        s(CF_DISTRIBUTION_TENANT_ID),
        s(ACCOUNT_ID),
        s(REGION),
        Field::new(SOURCE_OBJECT, DataType::Utf8View, false),
    ]))
});

/// The canonical `waf` schema.
pub fn schema() -> SchemaRef {
    SCHEMA.clone()
}
