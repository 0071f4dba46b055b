//! Column builders for the `waf` schema.

use std::sync::Arc;

use arrow::array::builder::{
    ArrayBuilder, Int32Builder, Int64Builder, ListBuilder, StringViewBuilder, StructBuilder,
    TimestampMillisecondBuilder,
};
use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, Fields};
use flowlens_model::waf;

use super::record::{HttpRequest, NameValue, RawWaf, Response, Str};
use crate::decode::ObjectContext;
use crate::util::const_str_view;

type StrList = ListBuilder<StringViewBuilder>;

fn struct_fields(dt: DataType) -> Fields {
    match dt {
        DataType::Struct(f) => f,
        other => unreachable!("not a struct type: {other}"),
    }
}

/// A struct builder whose children are made from the schema's own types.
fn struct_builder(dt: DataType) -> StructBuilder {
    let fields = struct_fields(dt);
    let builders: Vec<Box<dyn ArrayBuilder>> = fields
        .iter()
        .map(|f| -> Box<dyn ArrayBuilder> {
            match f.data_type() {
                DataType::Utf8View => Box::new(StringViewBuilder::new()),
                DataType::Int32 => Box::new(Int32Builder::new()),
                DataType::Int64 => Box::new(Int64Builder::new()),
                DataType::List(_) => Box::new(StrList::new(StringViewBuilder::new())),
                other => unreachable!("unsupported child type {other}"),
            }
        })
        .collect();
    StructBuilder::new(fields, builders)
}

fn list_of_struct(dt: DataType) -> ListBuilder<StructBuilder> {
    ListBuilder::new(struct_builder(dt))
}

fn s(b: &mut StructBuilder, i: usize) -> &mut StringViewBuilder {
    b.field_builder::<StringViewBuilder>(i)
        .expect("child type fixed by the schema")
}

fn i64b(b: &mut StructBuilder, i: usize) -> &mut Int64Builder {
    b.field_builder::<Int64Builder>(i)
        .expect("child type fixed by the schema")
}

fn i32b(b: &mut StructBuilder, i: usize) -> &mut Int32Builder {
    b.field_builder::<Int32Builder>(i)
        .expect("child type fixed by the schema")
}

fn strs(b: &mut StructBuilder, i: usize) -> &mut StrList {
    b.field_builder::<StrList>(i)
        .expect("child type fixed by the schema")
}

fn opt<'v>(v: &'v Str<'_>) -> Option<&'v str> {
    v.as_deref()
}

fn append_str_list<'x>(b: &mut StrList, items: Option<impl IntoIterator<Item = &'x str>>) {
    match items {
        Some(items) => {
            for v in items {
                b.values().append_value(v);
            }
            b.append(true);
        }
        None => b.append_null(),
    }
}

fn append_name_values(b: &mut ListBuilder<StructBuilder>, items: Option<&[NameValue<'_>]>) {
    match items {
        Some(items) => {
            let sb = b.values();
            for h in items {
                s(sb, 0).append_option(opt(&h.name));
                s(sb, 1).append_option(opt(&h.value));
                sb.append(true);
            }
            b.append(true);
        }
        None => b.append_null(),
    }
}

fn append_response(b: &mut StructBuilder, r: Option<&Response<'_>>) {
    match r {
        Some(r) => {
            i32b(b, 0).append_option(r.response_code.and_then(|v| i32::try_from(v).ok()));
            i64b(b, 1).append_option(r.solve_timestamp);
            s(b, 2).append_option(opt(&r.failure_reason));
            b.append(true);
        }
        None => {
            i32b(b, 0).append_null();
            i64b(b, 1).append_null();
            s(b, 2).append_null();
            b.append_null();
        }
    }
}

/// `arn:aws:wafv2:REGION:ACCOUNT:scope/webacl/NAME/ID` → (region, account, name).
pub(super) fn parse_webacl_arn(arn: &str) -> Option<(&str, &str, &str)> {
    let mut parts = arn.splitn(6, ':');
    if parts.next()? != "arn" {
        return None;
    }
    let _partition = parts.next()?;
    let _service = parts.next()?;
    let region = parts.next()?;
    let account = parts.next()?;
    let resource = parts.next()?;
    let mut r = resource.split('/');
    let _scope = r.next()?;
    if r.next()? != "webacl" {
        return None;
    }
    let name = r.next()?;
    Some((region, account, name))
}

/// First value of a header (case-insensitive name), or every value joined by `, `.
fn header<'h>(headers: &'h [NameValue<'_>], name: &str) -> impl Iterator<Item = &'h str> {
    headers.iter().filter_map(move |h| {
        h.name
            .as_deref()
            .filter(|n| n.eq_ignore_ascii_case(name))
            .and(h.value.as_deref())
    })
}

pub(super) struct WafColumns {
    rows: usize,
    timestamp: TimestampMillisecondBuilder,
    format_version: Int32Builder,
    webacl_id: StringViewBuilder,
    webacl_name: StringViewBuilder,
    terminating_rule_id: StringViewBuilder,
    terminating_rule_type: StringViewBuilder,
    action: StringViewBuilder,
    match_details: ListBuilder<StructBuilder>,
    http_source_name: StringViewBuilder,
    http_source_id: StringViewBuilder,
    rule_groups: ListBuilder<StructBuilder>,
    rate_rules: ListBuilder<StructBuilder>,
    non_terminating: ListBuilder<StructBuilder>,
    headers_inserted: ListBuilder<StructBuilder>,
    response_code_sent: Int32Builder,
    client_ip: StringViewBuilder,
    country: StringViewBuilder,
    uri: StringViewBuilder,
    args: StringViewBuilder,
    http_version: StringViewBuilder,
    http_method: StringViewBuilder,
    request_id: StringViewBuilder,
    fragment: StringViewBuilder,
    scheme: StringViewBuilder,
    host: StringViewBuilder,
    headers: ListBuilder<StructBuilder>,
    user_agent: StringViewBuilder,
    x_forwarded_for: StringViewBuilder,
    referer: StringViewBuilder,
    accept_language: StringViewBuilder,
    labels: StrList,
    captcha: StructBuilder,
    challenge: StructBuilder,
    ja3: StringViewBuilder,
    ja4: StringViewBuilder,
    oversize: StrList,
    body_size: Int64Builder,
    body_inspected: Int64Builder,
    client_asn: Int64Builder,
    tenant: StringViewBuilder,
    account_id: StringViewBuilder,
    region: StringViewBuilder,
}

impl WafColumns {
    pub(super) fn new(_ctx: &ObjectContext) -> Self {
        let sv = StringViewBuilder::new;
        WafColumns {
            rows: 0,
            timestamp: TimestampMillisecondBuilder::new().with_timezone("UTC"),
            format_version: Int32Builder::new(),
            webacl_id: sv(),
            webacl_name: sv(),
            terminating_rule_id: sv(),
            terminating_rule_type: sv(),
            action: sv(),
            match_details: list_of_struct(waf::match_detail_type()),
            http_source_name: sv(),
            http_source_id: sv(),
            rule_groups: list_of_struct(waf::rule_group_type()),
            rate_rules: list_of_struct(waf::rate_based_rule_type()),
            non_terminating: list_of_struct(waf::matching_rule_type()),
            headers_inserted: list_of_struct(waf::name_value_type()),
            response_code_sent: Int32Builder::new(),
            client_ip: sv(),
            country: sv(),
            uri: sv(),
            args: sv(),
            http_version: sv(),
            http_method: sv(),
            request_id: sv(),
            fragment: sv(),
            scheme: sv(),
            host: sv(),
            headers: list_of_struct(waf::name_value_type()),
            user_agent: sv(),
            x_forwarded_for: sv(),
            referer: sv(),
            accept_language: sv(),
            labels: StrList::new(sv()),
            captcha: struct_builder(waf::response_type()),
            challenge: struct_builder(waf::response_type()),
            ja3: sv(),
            ja4: sv(),
            oversize: StrList::new(sv()),
            body_size: Int64Builder::new(),
            body_inspected: Int64Builder::new(),
            client_asn: Int64Builder::new(),
            tenant: sv(),
            account_id: sv(),
            region: sv(),
        }
    }

    pub(super) fn rows(&self) -> usize {
        self.rows
    }

    pub(super) fn append(&mut self, r: &RawWaf<'_>, ctx: &ObjectContext) {
        self.rows += 1;
        self.timestamp.append_option(r.timestamp);
        self.format_version
            .append_option(r.format_version.and_then(|v| i32::try_from(v).ok()));
        self.webacl_id.append_option(opt(&r.webacl_id));
        let arn = r.webacl_id.as_deref().and_then(parse_webacl_arn);
        self.webacl_name.append_option(arn.map(|a| a.2));
        self.account_id
            .append_option(arn.map(|a| a.1).or(ctx.account_id.as_deref()));
        self.region
            .append_option(arn.map(|a| a.0).or(ctx.region.as_deref()));
        self.terminating_rule_id
            .append_option(opt(&r.terminating_rule_id));
        self.terminating_rule_type
            .append_option(opt(&r.terminating_rule_type));
        self.action.append_option(opt(&r.action));

        match &r.terminating_rule_match_details {
            Some(items) => {
                let sb = self.match_details.values();
                for m in items {
                    s(sb, 0).append_option(opt(&m.condition_type));
                    s(sb, 1).append_option(opt(&m.sensitivity_level));
                    s(sb, 2).append_option(opt(&m.location));
                    append_str_list(
                        strs(sb, 3),
                        m.matched_data
                            .as_ref()
                            .map(|v| v.iter().map(|c| c.as_ref())),
                    );
                    sb.append(true);
                }
                self.match_details.append(true);
            }
            None => self.match_details.append_null(),
        }

        self.http_source_name
            .append_option(opt(&r.http_source_name));
        self.http_source_id.append_option(opt(&r.http_source_id));

        match &r.rule_group_list {
            Some(items) => {
                let sb = self.rule_groups.values();
                for g in items {
                    let t = g.terminating_rule.as_ref();
                    s(sb, 0).append_option(opt(&g.rule_group_id));
                    s(sb, 1).append_option(t.and_then(|t| opt(&t.rule_id)));
                    s(sb, 2).append_option(t.and_then(|t| opt(&t.action)));
                    s(sb, 3).append_option(t.and_then(|t| opt(&t.overridden_action)));
                    append_str_list(
                        strs(sb, 4),
                        g.non_terminating_matching_rules
                            .as_ref()
                            .map(|v| v.iter().filter_map(|r| opt(&r.rule_id))),
                    );
                    append_str_list(
                        strs(sb, 5),
                        g.excluded_rules
                            .as_ref()
                            .map(|v| v.iter().filter_map(|r| opt(&r.rule_id))),
                    );
                    sb.append(true);
                }
                self.rule_groups.append(true);
            }
            None => self.rule_groups.append_null(),
        }

        match &r.rate_based_rule_list {
            Some(items) => {
                let sb = self.rate_rules.values();
                for rr in items {
                    s(sb, 0).append_option(opt(&rr.rate_based_rule_id));
                    s(sb, 1).append_option(opt(&rr.rate_based_rule_name));
                    s(sb, 2).append_option(opt(&rr.limit_key));
                    s(sb, 3).append_option(opt(&rr.limit_value));
                    i64b(sb, 4).append_option(rr.max_rate_allowed);
                    i64b(sb, 5).append_option(rr.evaluation_window_sec);
                    sb.append(true);
                }
                self.rate_rules.append(true);
            }
            None => self.rate_rules.append_null(),
        }

        match &r.non_terminating_matching_rules {
            Some(items) => {
                let sb = self.non_terminating.values();
                for m in items {
                    s(sb, 0).append_option(opt(&m.rule_id));
                    s(sb, 1).append_option(opt(&m.action));
                    s(sb, 2).append_option(opt(&m.overridden_action));
                    sb.append(true);
                }
                self.non_terminating.append(true);
            }
            None => self.non_terminating.append_null(),
        }

        append_name_values(
            &mut self.headers_inserted,
            r.request_headers_inserted.as_deref(),
        );
        self.response_code_sent
            .append_option(r.response_code_sent.and_then(|v| i32::try_from(v).ok()));

        let empty = HttpRequest::default();
        let req = r.http_request.as_ref().unwrap_or(&empty);
        self.client_ip.append_option(opt(&req.client_ip));
        self.country.append_option(opt(&req.country));
        self.uri.append_option(opt(&req.uri));
        self.args.append_option(opt(&req.args));
        self.http_version.append_option(opt(&req.http_version));
        self.http_method.append_option(opt(&req.http_method));
        self.request_id.append_option(opt(&req.request_id));
        self.fragment.append_option(opt(&req.fragment));
        self.scheme.append_option(opt(&req.scheme));
        let headers: &[NameValue<'_>] = req.headers.as_deref().unwrap_or(&[]);
        self.host
            .append_option(opt(&req.host).or_else(|| header(headers, "host").next()));
        append_name_values(&mut self.headers, req.headers.as_deref());
        self.user_agent
            .append_option(header(headers, "user-agent").next());
        let xff: Vec<&str> = header(headers, "x-forwarded-for").collect();
        if xff.is_empty() {
            self.x_forwarded_for.append_null();
        } else {
            self.x_forwarded_for.append_value(xff.join(", "));
        }
        self.referer
            .append_option(header(headers, "referer").next());
        self.accept_language
            .append_option(header(headers, "accept-language").next());

        append_str_list(
            &mut self.labels,
            r.labels
                .as_ref()
                .map(|v| v.iter().filter_map(|l| opt(&l.name))),
        );
        append_response(&mut self.captcha, r.captcha_response.as_ref());
        append_response(&mut self.challenge, r.challenge_response.as_ref());
        self.ja3.append_option(opt(&r.ja3_fingerprint));
        self.ja4.append_option(opt(&r.ja4_fingerprint));
        append_str_list(
            &mut self.oversize,
            r.oversize_fields
                .as_ref()
                .map(|v| v.iter().map(|c| c.as_ref())),
        );
        self.body_size.append_option(r.request_body_size);
        self.body_inspected
            .append_option(r.request_body_size_inspected_by_waf);
        self.client_asn.append_option(r.client_asn);
        self.tenant.append_option(opt(&r.cf_distribution_tenant_id));
    }

    pub(super) fn finish(
        &mut self,
        ctx: &ObjectContext,
    ) -> Result<RecordBatch, arrow::error::ArrowError> {
        let rows = std::mem::take(&mut self.rows);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.timestamp.finish()),
            Arc::new(self.format_version.finish()),
            Arc::new(self.webacl_id.finish()),
            Arc::new(self.webacl_name.finish()),
            Arc::new(self.terminating_rule_id.finish()),
            Arc::new(self.terminating_rule_type.finish()),
            Arc::new(self.action.finish()),
            Arc::new(self.match_details.finish()),
            Arc::new(self.http_source_name.finish()),
            Arc::new(self.http_source_id.finish()),
            Arc::new(self.rule_groups.finish()),
            Arc::new(self.rate_rules.finish()),
            Arc::new(self.non_terminating.finish()),
            Arc::new(self.headers_inserted.finish()),
            Arc::new(self.response_code_sent.finish()),
            Arc::new(self.client_ip.finish()),
            Arc::new(self.country.finish()),
            Arc::new(self.uri.finish()),
            Arc::new(self.args.finish()),
            Arc::new(self.http_version.finish()),
            Arc::new(self.http_method.finish()),
            Arc::new(self.request_id.finish()),
            Arc::new(self.fragment.finish()),
            Arc::new(self.scheme.finish()),
            Arc::new(self.host.finish()),
            Arc::new(self.headers.finish()),
            Arc::new(self.user_agent.finish()),
            Arc::new(self.x_forwarded_for.finish()),
            Arc::new(self.referer.finish()),
            Arc::new(self.accept_language.finish()),
            Arc::new(self.labels.finish()),
            Arc::new(self.captcha.finish()),
            Arc::new(self.challenge.finish()),
            Arc::new(self.ja3.finish()),
            Arc::new(self.ja4.finish()),
            Arc::new(self.oversize.finish()),
            Arc::new(self.body_size.finish()),
            Arc::new(self.body_inspected.finish()),
            Arc::new(self.client_asn.finish()),
            Arc::new(self.tenant.finish()),
            Arc::new(self.account_id.finish()),
            Arc::new(self.region.finish()),
            const_str_view(&ctx.object, rows),
        ];
        RecordBatch::try_new(waf::schema(), columns)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_webacl_arn;

    #[test]
    fn arns() {
        assert_eq!(
            parse_webacl_arn(
                "arn:aws:wafv2:us-east-1:123456789012:global/webacl/hello-world/5933d6d9"
            ),
            Some(("us-east-1", "123456789012", "hello-world"))
        );
        assert_eq!(parse_webacl_arn("not an arn"), None);
        assert_eq!(
            parse_webacl_arn("arn:aws:wafv2:r:a:regional/ipset/x/y"),
            None
        );
    }
}
