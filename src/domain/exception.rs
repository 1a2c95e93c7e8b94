//! An exception as `exceptions.csv` lists it (SPEC §5, §7.1-§7.3): a rejected row or file, a
//! partner missing with a balance. Data, shared by the store that keeps them and the reports
//! that write them.

/// Whose money a rejected row is, as the row gave it (issue 15): its `partner_id`,
/// `billing_month`, `amount` and `currency` fields as text, unchecked. Empty when not known: a
/// file rejected whole, a malformed row (its fields could not be told apart).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowFields {
    pub partner_id: String,
    pub billing_month: String,
    pub amount: String,
    pub currency: String,
}

impl RowFields {
    /// From the seven revenue fields in `REVENUE_COLUMNS` order.
    pub fn from_revenue_fields(fields: &[String; 7]) -> Self {
        Self {
            partner_id: fields[1].clone(),
            billing_month: fields[4].clone(),
            amount: fields[5].clone(),
            currency: fields[6].clone(),
        }
    }
}

/// One open exception, as `exceptions.csv` lists it (SPEC §7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExceptionRow {
    pub source_file: String,
    pub line: Option<u64>,
    pub record_id: String,
    pub reason: String,
    pub detail: String,
    pub raw: String,
    pub fields: RowFields,
}
