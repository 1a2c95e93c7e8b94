//! The line report of a period (`earnings_lines.parquet`): the columns taken from a stored
//! segment and the columns the computation adds, built line by line as `segment` computes.
//! Only lays out what it is given; it never computes or rounds an earning.

use polars::prelude::*;

use crate::domain::money::{EARNING_SCALE, write_scaled};

/// Columns of `earnings_lines.parquet` taken as they are from a stored segment.
pub(super) const LINE_SEGMENT_COLUMNS: [&str; 9] = [
    "record_id",
    "partner_id",
    "customer_id",
    "product_category",
    "billing_month",
    "amount",
    "currency",
    "source_file",
    "line",
];

/// Columns of `earnings_lines.parquet` the computation adds, as text.
const LINE_COMPUTED_COLUMNS: [&str; 6] = [
    "booking",
    "program_id",
    "rate",
    "payout_currency",
    "fx_rate",
    "earning",
];

/// Builders of the computed columns of one segment's line batch.
pub(super) struct ComputedColumns {
    text: [StringChunkedBuilder; 6],
    eligible: Vec<bool>,
    earning: String,
}

impl ComputedColumns {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            text: LINE_COMPUTED_COLUMNS.map(|n| StringChunkedBuilder::new(n.into(), capacity)),
            eligible: Vec::with_capacity(capacity),
            earning: String::with_capacity(48),
        }
    }

    pub(super) fn push(
        &mut self,
        values: [Option<&str>; 5],
        earning: Option<i128>,
        eligible: bool,
    ) {
        for (builder, value) in self.text.iter_mut().zip(values) {
            builder.append_option(value);
        }
        match earning {
            Some(value) => {
                self.earning.clear();
                write_scaled(&mut self.earning, value, EARNING_SCALE, 6);
                self.text[5].append_value(&self.earning);
            }
            None => self.text[5].append_null(),
        }
        self.eligible.push(eligible);
    }

    pub(super) fn finish(self) -> Vec<Column> {
        let mut columns: Vec<Column> = self
            .text
            .into_iter()
            .map(|b| b.finish().into_column())
            .collect();
        columns.push(BooleanChunked::from_slice("eligible".into(), &self.eligible).into_column());
        columns
    }
}

/// An empty line report, with the report's columns.
pub fn empty_lines() -> PolarsResult<DataFrame> {
    let mut columns: Vec<Column> = LINE_SEGMENT_COLUMNS
        .iter()
        .map(|name| match *name {
            "line" => Int64Chunked::from_vec((*name).into(), Vec::new()).into_column(),
            _ => StringChunked::full_null((*name).into(), 0).into_column(),
        })
        .collect();
    columns.extend(ComputedColumns::new(0).finish());
    DataFrame::new(0, columns)
}
