//! The canonical `flows` schema: every VPC Flow Log field of versions 2–8 plus
//! `encryption_status`, named as Athena and Glue name them (`-` → `_`).
//!
//! Every decoder (default text, custom-order text, parquet) produces exactly this
//! schema, whatever the input version. Fields absent from a format are null; `-` is
//! null; unknown custom fields land in [`EXTRA`] as a `name → value` map.

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};

/// Column names, in schema order.
pub mod col {
    pub const VERSION: &str = "version";
    pub const ACCOUNT_ID: &str = "account_id";
    pub const INTERFACE_ID: &str = "interface_id";
    pub const SRCADDR: &str = "srcaddr";
    pub const DSTADDR: &str = "dstaddr";
    pub const SRCPORT: &str = "srcport";
    pub const DSTPORT: &str = "dstport";
    pub const PROTOCOL: &str = "protocol";
    pub const PACKETS: &str = "packets";
    pub const BYTES: &str = "bytes";
    pub const START: &str = "start";
    pub const END: &str = "end";
    pub const ACTION: &str = "action";
    pub const LOG_STATUS: &str = "log_status";
    pub const VPC_ID: &str = "vpc_id";
    pub const SUBNET_ID: &str = "subnet_id";
    pub const INSTANCE_ID: &str = "instance_id";
    pub const TCP_FLAGS: &str = "tcp_flags";
    pub const TYPE: &str = "type";
    pub const PKT_SRCADDR: &str = "pkt_srcaddr";
    pub const PKT_DSTADDR: &str = "pkt_dstaddr";
    pub const REGION: &str = "region";
    pub const AZ_ID: &str = "az_id";
    pub const SUBLOCATION_TYPE: &str = "sublocation_type";
    pub const SUBLOCATION_ID: &str = "sublocation_id";
    pub const PKT_SRC_AWS_SERVICE: &str = "pkt_src_aws_service";
    pub const PKT_DST_AWS_SERVICE: &str = "pkt_dst_aws_service";
    pub const FLOW_DIRECTION: &str = "flow_direction";
    pub const TRAFFIC_PATH: &str = "traffic_path";
    pub const ECS_CLUSTER_ARN: &str = "ecs_cluster_arn";
    pub const ECS_CLUSTER_NAME: &str = "ecs_cluster_name";
    pub const ECS_CONTAINER_INSTANCE_ARN: &str = "ecs_container_instance_arn";
    pub const ECS_CONTAINER_INSTANCE_ID: &str = "ecs_container_instance_id";
    pub const ECS_CONTAINER_ID: &str = "ecs_container_id";
    pub const ECS_SECOND_CONTAINER_ID: &str = "ecs_second_container_id";
    pub const ECS_SERVICE_NAME: &str = "ecs_service_name";
    pub const ECS_TASK_DEFINITION_ARN: &str = "ecs_task_definition_arn";
    pub const ECS_TASK_ARN: &str = "ecs_task_arn";
    pub const ECS_TASK_ID: &str = "ecs_task_id";
    pub const REJECT_REASON: &str = "reject_reason";
    pub const ENCRYPTION_STATUS: &str = "encryption_status";
    /// Custom-format fields flowlens does not know, kept as `name → value`.
    pub const EXTRA: &str = "extra";
    /// Provenance: `s3://bucket/key` or the local path the record came from.
    pub const SOURCE_OBJECT: &str = "source_object";
}

pub use col::EXTRA;

/// The storage type of one known flow-log field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Text (`Utf8View`).
    Str,
    /// A 32-bit integer (ports, protocol, flags, traffic path, version).
    I32,
    /// A 64-bit integer (packets, bytes, start, end).
    I64,
}

/// One VPC Flow Log field as AWS names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowField {
    /// The AWS name, as written in `${...}` format strings and header lines (`account-id`).
    pub aws_name: &'static str,
    /// The column name (`account_id`).
    pub column: &'static str,
    /// The flow-log version that introduced it (0 for `encryption-status`, which has none).
    pub version: u8,
    pub kind: FieldKind,
}

macro_rules! fields {
    ($( $aws:literal => $col:ident, $ver:literal, $kind:ident; )*) => {
        /// Every known field, in schema order (AWS's table order).
        pub const FLOW_FIELDS: &[FlowField] = &[
            $( FlowField { aws_name: $aws, column: col::$col, version: $ver, kind: FieldKind::$kind }, )*
        ];
    };
}

fields! {
    "version" => VERSION, 2, I32;
    "account-id" => ACCOUNT_ID, 2, Str;
    "interface-id" => INTERFACE_ID, 2, Str;
    "srcaddr" => SRCADDR, 2, Str;
    "dstaddr" => DSTADDR, 2, Str;
    "srcport" => SRCPORT, 2, I32;
    "dstport" => DSTPORT, 2, I32;
    "protocol" => PROTOCOL, 2, I32;
    "packets" => PACKETS, 2, I64;
    "bytes" => BYTES, 2, I64;
    "start" => START, 2, I64;
    "end" => END, 2, I64;
    "action" => ACTION, 2, Str;
    "log-status" => LOG_STATUS, 2, Str;
    "vpc-id" => VPC_ID, 3, Str;
    "subnet-id" => SUBNET_ID, 3, Str;
    "instance-id" => INSTANCE_ID, 3, Str;
    "tcp-flags" => TCP_FLAGS, 3, I32;
    "type" => TYPE, 3, Str;
    "pkt-srcaddr" => PKT_SRCADDR, 3, Str;
    "pkt-dstaddr" => PKT_DSTADDR, 3, Str;
    "region" => REGION, 4, Str;
    "az-id" => AZ_ID, 4, Str;
    "sublocation-type" => SUBLOCATION_TYPE, 4, Str;
    "sublocation-id" => SUBLOCATION_ID, 4, Str;
    "pkt-src-aws-service" => PKT_SRC_AWS_SERVICE, 5, Str;
    "pkt-dst-aws-service" => PKT_DST_AWS_SERVICE, 5, Str;
    "flow-direction" => FLOW_DIRECTION, 5, Str;
    "traffic-path" => TRAFFIC_PATH, 5, I32;
    "ecs-cluster-arn" => ECS_CLUSTER_ARN, 7, Str;
    "ecs-cluster-name" => ECS_CLUSTER_NAME, 7, Str;
    "ecs-container-instance-arn" => ECS_CONTAINER_INSTANCE_ARN, 7, Str;
    "ecs-container-instance-id" => ECS_CONTAINER_INSTANCE_ID, 7, Str;
    "ecs-container-id" => ECS_CONTAINER_ID, 7, Str;
    "ecs-second-container-id" => ECS_SECOND_CONTAINER_ID, 7, Str;
    "ecs-service-name" => ECS_SERVICE_NAME, 7, Str;
    "ecs-task-definition-arn" => ECS_TASK_DEFINITION_ARN, 7, Str;
    "ecs-task-arn" => ECS_TASK_ARN, 7, Str;
    "ecs-task-id" => ECS_TASK_ID, 7, Str;
    "reject-reason" => REJECT_REASON, 8, Str;
    "encryption-status" => ENCRYPTION_STATUS, 0, I32;
}

/// The default (v2) format, in order.
pub const DEFAULT_FORMAT: &[&str] = &[
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
];

/// Index into [`FLOW_FIELDS`] (and the schema) of a field given by its AWS name
/// (`account-id`) or its column name (`account_id`).
pub fn field_index(name: &str) -> Option<usize> {
    FLOW_FIELDS
        .iter()
        .position(|f| f.aws_name == name || f.column == name)
}

/// Schema index of the `extra` map column.
pub const EXTRA_INDEX: usize = FLOW_FIELDS.len();
/// Schema index of the `source_object` column.
pub const SOURCE_OBJECT_INDEX: usize = FLOW_FIELDS.len() + 1;

/// The key and value fields of the `extra` map (`Utf8`, as every engine reads maps).
pub fn extra_entries_field() -> Arc<Field> {
    Arc::new(Field::new(
        "entries",
        DataType::Struct(Fields::from(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Utf8, true),
        ])),
        false,
    ))
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields: Vec<Field> = FLOW_FIELDS
        .iter()
        .map(|f| {
            let dt = match f.kind {
                FieldKind::Str => DataType::Utf8View,
                FieldKind::I32 => DataType::Int32,
                FieldKind::I64 => DataType::Int64,
            };
            Field::new(f.column, dt, true)
        })
        .collect();
    fields.push(Field::new(
        col::EXTRA,
        DataType::Map(extra_entries_field(), false),
        true,
    ));
    fields.push(Field::new(col::SOURCE_OBJECT, DataType::Utf8View, false));
    Arc::new(Schema::new(fields))
});

/// The canonical `flows` schema.
pub fn schema() -> SchemaRef {
    SCHEMA.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_athena_convention() {
        for f in FLOW_FIELDS {
            assert_eq!(f.aws_name.replace('-', "_"), f.column);
        }
        assert_eq!(schema().fields().len(), FLOW_FIELDS.len() + 2);
        assert_eq!(schema().index_of(col::EXTRA).unwrap(), EXTRA_INDEX);
        assert_eq!(
            schema().index_of(col::SOURCE_OBJECT).unwrap(),
            SOURCE_OBJECT_INDEX
        );
    }

    #[test]
    fn types_match_the_issue() {
        let s = schema();
        for name in [
            col::SRCPORT,
            col::DSTPORT,
            col::PROTOCOL,
            col::TCP_FLAGS,
            col::TRAFFIC_PATH,
        ] {
            assert_eq!(
                s.field_with_name(name).unwrap().data_type(),
                &DataType::Int32
            );
        }
        for name in [col::PACKETS, col::BYTES, col::START, col::END] {
            assert_eq!(
                s.field_with_name(name).unwrap().data_type(),
                &DataType::Int64
            );
        }
        assert_eq!(
            s.field_with_name(col::SRCADDR).unwrap().data_type(),
            &DataType::Utf8View
        );
    }

    #[test]
    fn lookup_by_either_name() {
        assert_eq!(field_index("account-id"), Some(1));
        assert_eq!(field_index("account_id"), Some(1));
        assert_eq!(field_index("next-hop-az-id"), None);
    }
}
