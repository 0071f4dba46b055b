//! Batch-local grouping for `GROUP BY` one string column: the shape of most analyst
//! queries over the archive (top talkers by `srcaddr`, bytes by `interface_id`, ...).
//!
//! DataFusion groups such a query by hashing every row's string into one table for the
//! whole query, which outgrows the cache when there are many distinct values. Yet the
//! parquet reader hands a dictionary-encoded column over as a `Utf8View` array whose
//! equal values share one 16-byte view, so the rows of one batch can be grouped by their
//! views alone: a small table, one multiply per row, no string read. [`LocalGroupRule`]
//! rewrites an eligible aggregation
//!
//! ```text
//! AggregateExec(Single | Partial)             AggregateExec(Final | PartialReduce)
//!   └─ input                          ─►        └─ LocalGroupExec: per batch, rows grouped
//!                                                   by view → partial states
//!                                                 └─ input
//! ```
//!
//! so the query-wide table sees one row per distinct value of each batch instead of one
//! per record. Equal views always hold equal strings (an inline view is the string; an
//! out-of-line one names the same bytes of the same buffer), so the grouping is exact;
//! equal strings with different views (a plain-encoded page) only make two partial rows
//! that the aggregation above merges. A batch that is mostly distinct values is handed on
//! row for row (each row its own partial state), and so are the next few.

use std::fmt;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, internal_err};
use datafusion::config::ConfigOptions;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{
    AggregateExec, AggregateMode, aggregate_expressions, evaluate_many,
};
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, InputOrderMode, Partitioning, PlanProperties,
    SendableRecordBatchStream,
};
use futures::StreamExt;

/// A batch whose rows are more than this share of distinct groups is handed on row
/// for row, and so are the [`PASS_BATCHES`] after it, before grouping is tried again.
const PASS_SHARE: f64 = 0.7;
const PASS_BATCHES: u32 = 16;

/// The physical optimizer rule: see the [module](self).
#[derive(Debug, Default)]
pub struct LocalGroupRule;

impl PhysicalOptimizerRule for LocalGroupRule {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let rewritten = match node.downcast_ref::<AggregateExec>() {
                Some(agg) => rewrite(agg)?,
                None => None,
            };
            Ok(match rewritten {
                Some(plan) => Transformed::yes(plan),
                None => Transformed::no(node),
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "flowlens_local_group"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `agg` as a merge over a [`LocalGroupExec`], if it is one this rewrite knows to keep
/// exact: one plain group key of type `Utf8View`, raw input in no useful order, and
/// aggregates without filters, `DISTINCT` or ordering that have group accumulators.
fn rewrite(agg: &AggregateExec) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let merge_mode = match agg.mode() {
        AggregateMode::Single => AggregateMode::Final,
        AggregateMode::Partial => AggregateMode::PartialReduce,
        _ => return Ok(None),
    };
    let group = agg.group_expr();
    let input_schema = agg.input_schema();
    let plain = !group.has_grouping_set()
        && group.expr().len() == 1
        && agg.limit_options().is_none()
        && agg.dynamic_expressions_produced().is_empty()
        && agg.filter_expr().iter().all(Option::is_none)
        && *agg.input_order_mode() == InputOrderMode::Linear
        && !agg.aggr_expr().is_empty()
        && agg.aggr_expr().iter().all(|a| {
            a.groups_accumulator_supported() && !a.is_distinct() && a.order_bys().is_empty()
        });
    if !plain || group.expr()[0].0.data_type(&input_schema)? != DataType::Utf8View {
        return Ok(None);
    }
    // The partial aggregation's own schema is what the merge above expects.
    let partial = AggregateExec::try_new(
        AggregateMode::Partial,
        group.clone(),
        agg.aggr_expr().to_vec(),
        agg.filter_expr().to_vec(),
        Arc::clone(agg.input()),
        Arc::clone(&input_schema),
    )?;
    let local = LocalGroupExec::new(
        Arc::clone(&group.expr()[0].0),
        partial.aggr_expr().to_vec(),
        Arc::clone(agg.input()),
        partial.schema(),
    );
    let merged = AggregateExec::try_new(
        merge_mode,
        group.as_final(),
        partial.aggr_expr().to_vec(),
        agg.filter_expr().to_vec(),
        Arc::new(local),
        input_schema,
    )?;
    if merged.schema().fields() != agg.schema().fields() {
        return Ok(None);
    }
    Ok(Some(Arc::new(merged)))
}

/// Groups each input batch by the views of its key and emits the partial states of
/// those groups (the schema of a `Partial` aggregation): see the [module](self).
#[derive(Debug, Clone)]
pub struct LocalGroupExec {
    key: Arc<dyn PhysicalExpr>,
    aggr: Vec<Arc<AggregateFunctionExpr>>,
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl LocalGroupExec {
    fn new(
        key: Arc<dyn PhysicalExpr>,
        aggr: Vec<Arc<AggregateFunctionExpr>>,
        input: Arc<dyn ExecutionPlan>,
        schema: SchemaRef,
    ) -> Self {
        let from = input.properties();
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema),
            Partitioning::UnknownPartitioning(from.partitioning.partition_count()),
            from.emission_type,
            from.boundedness,
        );
        Self {
            key,
            aggr,
            input,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }
}

impl DisplayAs for LocalGroupExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let aggr: Vec<&str> = self.aggr.iter().map(|a| a.name()).collect();
        write!(
            f,
            "LocalGroupExec: key={}, aggr=[{}]",
            self.key,
            aggr.join(", ")
        )
    }
}

impl ExecutionPlan for LocalGroupExec {
    fn name(&self) -> &str {
        "LocalGroupExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        let mut exprs = vec![Arc::clone(&self.key)];
        exprs.extend(self.aggr.iter().flat_map(|a| a.expressions()));
        for e in &exprs {
            if f(e)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return internal_err!("LocalGroupExec takes one child, not {}", children.len());
        }
        let input = children.swap_remove(0);
        Ok(Arc::new(match options.children_properties {
            ChildrenPropertiesMode::Keep => Self {
                input,
                ..Self::clone(&self)
            },
            ChildrenPropertiesMode::Recompute => Self::new(
                Arc::clone(&self.key),
                self.aggr.clone(),
                input,
                self.schema(),
            ),
        }))
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let accumulators = self
            .aggr
            .iter()
            .map(|a| a.create_groups_accumulator())
            .collect::<Result<Vec<_>>>()?;
        let mut state = LocalGroups {
            key: Arc::clone(&self.key),
            args: aggregate_expressions(&self.aggr, &AggregateMode::Partial, 0)?,
            accumulators,
            schema: self.schema(),
            table: ViewTable::default(),
            group_of_row: Vec::new(),
            pass: 0,
            can_pass: true,
        };
        let metrics = BaselineMetrics::new(&self.metrics, partition);
        let stream = input.map(move |batch| {
            let _timer = metrics.elapsed_compute().timer();
            let out = state.batch(&batch?);
            if let Ok(b) = &out {
                metrics.record_output(b.num_rows());
            }
            out
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema(),
            stream,
        )))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// One partition's grouping state.
struct LocalGroups {
    key: Arc<dyn PhysicalExpr>,
    args: Vec<Vec<Arc<dyn PhysicalExpr>>>,
    accumulators: Vec<Box<dyn GroupsAccumulator>>,
    schema: SchemaRef,
    table: ViewTable,
    group_of_row: Vec<usize>,
    /// Batches still to hand on row for row.
    pass: u32,
    /// Every accumulator turns rows into states (`convert_to_state`).
    can_pass: bool,
}

impl LocalGroups {
    fn batch(&mut self, batch: &RecordBatch) -> Result<RecordBatch> {
        let rows = batch.num_rows();
        let key = self.key.evaluate(batch)?.into_array(rows)?;
        let Some(views) = key.as_string_view_opt() else {
            return internal_err!("LocalGroupExec key is {}, not Utf8View", key.data_type());
        };
        let values = evaluate_many(&self.args, batch)?;
        if self.pass > 0 && self.can_pass {
            self.pass -= 1;
            match self.row_states(&key, &values) {
                Ok(columns) => return Ok(RecordBatch::try_new(Arc::clone(&self.schema), columns)?),
                // An accumulator that cannot: group every batch from now on.
                Err(_) => self.can_pass = false,
            }
        }
        let first_rows = self.table.group(views, &mut self.group_of_row);
        let groups = first_rows.len();
        if groups as f64 > PASS_SHARE * rows as f64 {
            self.pass = PASS_BATCHES;
        }
        let first_rows = UInt32Array::from(first_rows.to_vec());
        let mut columns = Vec::with_capacity(self.schema.fields().len());
        columns.push(take(&key, &first_rows, None)?);
        for (acc, values) in self.accumulators.iter_mut().zip(&values) {
            acc.update_batch(values, &self.group_of_row, None, groups)?;
            columns.extend(acc.state(EmitTo::All)?);
        }
        Ok(RecordBatch::try_new(Arc::clone(&self.schema), columns)?)
    }

    /// Each row as its own group: the key as it is, each aggregate's state of one row.
    fn row_states(&self, key: &ArrayRef, values: &[Vec<ArrayRef>]) -> Result<Vec<ArrayRef>> {
        let mut columns = vec![Arc::clone(key)];
        for (acc, values) in self.accumulators.iter().zip(values) {
            columns.extend(acc.convert_to_state(values, None)?);
        }
        Ok(columns)
    }
}

/// Open addressing from a 16-byte view to its group number, cleared per batch. A
/// batch has hundreds of groups, not thousands, so the table is sized by the groups it
/// has held (doubling when half full) and, with the groups' views kept densely in
/// group order, stays in the first-level cache.
struct ViewTable {
    /// Group number + 1 per slot; 0 is empty.
    slots: Vec<u32>,
    /// Each group's view and first row.
    views: Vec<u128>,
    first_rows: Vec<u32>,
}

impl Default for ViewTable {
    fn default() -> Self {
        Self {
            slots: vec![0; 256],
            views: Vec::new(),
            first_rows: Vec::new(),
        }
    }
}

impl ViewTable {
    /// Writes each row's group to `group_of_row`; returns the first row of each group
    /// (so their number). Null keys are one group.
    fn group(
        &mut self,
        array: &arrow::array::StringViewArray,
        group_of_row: &mut Vec<usize>,
    ) -> &[u32] {
        self.slots.fill(0);
        self.views.clear();
        self.first_rows.clear();
        group_of_row.clear();
        group_of_row.reserve(array.len());
        let views = array.views();
        match array.nulls().filter(|n| n.null_count() > 0) {
            None => {
                let groups = views
                    .iter()
                    .enumerate()
                    .map(|(row, &view)| self.find(view, row));
                group_of_row.extend(groups);
            }
            Some(nulls) => {
                let mut null_group = None;
                for (row, &view) in views.iter().enumerate() {
                    let g = if nulls.is_valid(row) {
                        self.find(view, row)
                    } else {
                        *null_group.get_or_insert_with(|| self.new_group(0, row))
                    };
                    group_of_row.push(g);
                }
            }
        }
        &self.first_rows
    }

    /// The group of `view`, a new one (first seen at `row`) if it has none. Kept small
    /// for the loop it is inlined into: a batch has far more rows than groups, so the
    /// new-group path is out of line.
    #[inline(always)]
    fn find(&mut self, view: u128, row: usize) -> usize {
        let mask = self.slots.len() - 1;
        let mut slot = hash(view) as usize & mask;
        loop {
            let s = self.slots[slot] as usize;
            if s == 0 {
                return self.insert(slot, view, row);
            }
            if self.views[s - 1] == view {
                return s - 1;
            }
            slot = (slot + 1) & mask;
        }
    }

    /// A new group for `view` in the empty `slot`.
    #[cold]
    #[inline(never)]
    fn insert(&mut self, slot: usize, view: u128, row: usize) -> usize {
        let g = self.new_group(view, row);
        self.slots[slot] = g as u32 + 1;
        if (g + 1) * 2 > self.slots.len() {
            self.grow();
        }
        g
    }

    fn new_group(&mut self, view: u128, row: usize) -> usize {
        self.views.push(view);
        self.first_rows.push(row as u32);
        self.first_rows.len() - 1
    }

    /// Doubles the table, re-placing the groups it holds (a null key's group has no
    /// slot).
    fn grow(&mut self) {
        let size = self.slots.len() * 2;
        let old = std::mem::replace(&mut self.slots, vec![0; size]);
        for s in old.into_iter().filter(|s| *s != 0) {
            let mut slot = hash(self.views[s as usize - 1]) as usize & (size - 1);
            while self.slots[slot] != 0 {
                slot = (slot + 1) & (size - 1);
            }
            self.slots[slot] = s;
        }
    }
}

/// Folded multiply of the view's halves (its length and prefix, then the rest of an
/// inline string or the buffer and offset of an out-of-line one).
#[inline]
fn hash(view: u128) -> u64 {
    let m = u128::from(view as u64 ^ 0x243f_6a88_85a3_08d3)
        * u128::from((view >> 64) as u64 ^ 0x1319_8a2e_0370_7344);
    (m as u64) ^ ((m >> 64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringViewArray, StringViewBuilder};
    use arrow::datatypes::{Field, Schema};
    use arrow::util::pretty::pretty_format_batches;
    use datafusion::datasource::MemTable;
    use datafusion::execution::context::{SessionConfig, SessionContext};
    use datafusion::execution::session_state::SessionStateBuilder;

    fn context(threads: usize, rule: bool) -> SessionContext {
        let config = SessionConfig::new()
            .with_target_partitions(threads)
            .with_batch_size(512);
        let mut state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features();
        if rule {
            state = state.with_physical_optimizer_rule(Arc::new(LocalGroupRule));
        }
        SessionContext::new_with_state(state.build())
    }

    /// Keys that exercise every case: inline and out-of-line strings, the same
    /// out-of-line string under different views (a plain page), nulls, and a run of
    /// batches that are all distinct values (handed on row for row).
    fn batches() -> (SchemaRef, Vec<RecordBatch>) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8View, true),
            Field::new("v", DataType::Int64, true),
        ]));
        let mut out = Vec::new();
        for b in 0..40u64 {
            let mut keys = StringViewBuilder::new();
            let mut values = Vec::new();
            for i in 0..300u64 {
                let n = b * 300 + i;
                if b % 10 < 3 {
                    // Mostly distinct: more groups than PASS_SHARE of the rows.
                    keys.append_value(format!("distinct-key-{n}"));
                } else if n % 17 == 0 {
                    keys.append_null();
                } else if n % 3 == 0 {
                    keys.append_value(format!("10.0.0.{}", n % 7));
                } else {
                    // Appended by value: equal strings under different views.
                    keys.append_value(format!("172.31.255.{}", n % 11));
                }
                values.push((n % 13 != 0).then_some((n * 7919 % 1000) as i64));
            }
            let keys: StringViewArray = keys.finish();
            let columns: Vec<ArrayRef> = vec![Arc::new(keys), Arc::new(Int64Array::from(values))];
            out.push(RecordBatch::try_new(Arc::clone(&schema), columns).unwrap());
        }
        (schema, out)
    }

    async fn run(threads: usize, rule: bool, sql: &str) -> (String, String) {
        let ctx = context(threads, rule);
        let (schema, batches) = batches();
        // One partition per thread: one thread plans a `Single` aggregation, more
        // plan `Partial` ones below a repartition.
        let per = batches.len().div_ceil(threads);
        let parts = batches.chunks(per).map(<[RecordBatch]>::to_vec).collect();
        let table = MemTable::try_new(schema, parts).unwrap();
        ctx.register_table("t", Arc::new(table)).unwrap();
        let df = ctx.sql(sql).await.unwrap();
        let plan = df.clone().create_physical_plan().await.unwrap();
        let shown = datafusion::physical_plan::displayable(plan.as_ref())
            .indent(true)
            .to_string();
        let rows = pretty_format_batches(&df.collect().await.unwrap())
            .unwrap()
            .to_string();
        (rows, shown)
    }

    #[test]
    fn grouping_by_views_gives_datafusions_own_answer() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let queries = [
            "SELECT k, sum(v), count(*), count(v), min(v), max(v), avg(v) FROM t GROUP BY k ORDER BY k",
            "SELECT k, count(*) AS n FROM t GROUP BY k ORDER BY n DESC, k LIMIT 5",
            "SELECT upper(k) AS u, sum(v) FROM t GROUP BY upper(k) ORDER BY u",
            "SELECT k, min(k), max(v) FROM t WHERE v > 100 GROUP BY k ORDER BY k",
            // DataFusion plans this as a grouping by (k, v) under a plain count by k.
            "SELECT k, count(DISTINCT v) FROM t GROUP BY k ORDER BY k",
        ];
        for threads in [1, 2] {
            for sql in queries {
                let (want, plain) = rt.block_on(run(threads, false, sql));
                let (got, rewritten) = rt.block_on(run(threads, true, sql));
                assert!(!plain.contains("LocalGroupExec"), "{plain}");
                assert!(
                    rewritten.contains("LocalGroupExec"),
                    "{threads} threads, {sql}:\n{rewritten}"
                );
                assert_eq!(got, want, "{threads} threads, {sql}:\n{rewritten}");
            }
        }
    }

    #[test]
    fn other_shapes_are_left_to_datafusion() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for sql in [
            // Two keys, a non-string key, two DISTINCT aggregates, a
            // filtered aggregate, no key.
            "SELECT k, v, count(*) FROM t GROUP BY k, v",
            "SELECT v, count(*) FROM t GROUP BY v",
            "SELECT k, count(DISTINCT v), count(DISTINCT v % 3) FROM t GROUP BY k",
            "SELECT k, count(*) FILTER (WHERE v > 3) FROM t GROUP BY k",
            "SELECT sum(v) FROM t",
        ] {
            let (want, _) = rt.block_on(run(1, false, sql));
            let (got, plan) = rt.block_on(run(1, true, sql));
            assert!(!plan.contains("LocalGroupExec"), "{sql}:\n{plan}");
            assert_eq!(got, want, "{sql}");
        }
    }

    #[test]
    fn the_view_table_groups_equal_views_and_nulls() {
        let keys = StringViewArray::from(vec![
            Some("a"),
            None,
            Some("an out-of-line string"),
            Some("a"),
            None,
            Some("b"),
        ]);
        let mut table = ViewTable::default();
        let mut groups = Vec::new();
        assert_eq!(table.group(&keys, &mut groups), [0, 1, 2, 5]);
        assert_eq!(groups, vec![0, 1, 2, 0, 1, 3]);
        // Cleared for the next batch.
        let keys = StringViewArray::from(vec!["b", "b"]);
        assert_eq!(table.group(&keys, &mut groups), [0]);
        assert_eq!(groups, vec![0, 0]);
        // Past the first table size: it grows and still finds every group.
        let many: Vec<String> = (0..5000).map(|i| format!("key {}", i % 1000)).collect();
        let keys = StringViewArray::from_iter_values(&many);
        assert_eq!(table.group(&keys, &mut groups).len(), 1000);
        assert!(groups.iter().enumerate().all(|(row, &g)| g == row % 1000));
    }
}
