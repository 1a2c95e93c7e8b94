//! Multi-row INSERTs for the store: sqlx's `QueryBuilder::push_values`, at most
//! `INSERT_BATCH_ROWS` rows a statement, inside the caller's transaction. Every value is bound,
//! never written into the SQL; table, columns and the trailing clause are the caller's constants.
//!
//! sqlx's `Any` driver writes `?` placeholders whatever the backend (sqlx issue #3000), which
//! PostgreSQL does not accept, so there the built statement is sent with them numbered
//! `$1, $2, …`, as every other statement of the store is written. SQLite gets the plain `?`s:
//! sqlx binds a numbered parameter by asking SQLite its name, a linear search of the
//! statement's names, which made every multi-row INSERT quadratic in its parameters (a tenth of
//! a close's CPU time at 200 rows × 21 columns); an unnamed `?` is bound by position.

use sqlx::any::{AnyArguments, AnyStatement};
use sqlx::error::BoxDynError;
use sqlx::query::Query;
use sqlx::query_builder::Separated;
use sqlx::{Any, Execute, Executor, QueryBuilder, Transaction};

use super::StoreResult;

/// Rows per multi-row INSERT: well under SQLite's 32,766 and PostgreSQL's 65,535 parameters.
const INSERT_BATCH_ROWS: usize = 200;

/// The shape of a multi-row INSERT: where the rows go and what follows their values.
pub(super) struct InsertInto<'a> {
    pub table: &'a str,
    pub columns: &'a [&'a str],
    /// A clause after the values (`ON CONFLICT … DO NOTHING`), or empty.
    pub suffix: &'a str,
}

/// One built statement of a multi-row INSERT: the builder holding its SQL and values.
type Statement = QueryBuilder<'static, Any>;

impl InsertInto<'_> {
    /// Inserts `rows`, `bind_row` binding one row's values in column order, in statements of at
    /// most `INSERT_BATCH_ROWS` rows; returns the number of rows inserted.
    ///
    /// The statements are built before the first one is sent, so that no row iterator or
    /// closure is held across an `.await` (the returned future stays `Send` for any caller).
    pub(super) fn execute<'t, T, F>(
        &self,
        tx: &'t mut Transaction<'_, Any>,
        rows: impl IntoIterator<Item = T>,
        bind_row: F,
    ) -> impl Future<Output = StoreResult<u64>> + Send + 't
    where
        F: FnMut(Separated<'_, 'static, Any, &'static str>, T),
    {
        let statements = self.statements(rows, bind_row);
        execute_all(tx, statements)
    }

    fn statements<T, F>(&self, rows: impl IntoIterator<Item = T>, mut bind_row: F) -> Vec<Statement>
    where
        F: FnMut(Separated<'_, 'static, Any, &'static str>, T),
    {
        let head = format!("INSERT INTO {} ({}) ", self.table, self.columns.join(", "));
        // Every `?` of the built statement must be a placeholder for numbering to be exact.
        assert!(
            !head.contains('?') && !self.suffix.contains('?'),
            "an INSERT's table, columns and suffix hold no `?`"
        );
        let mut statements = Vec::new();
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let mut builder = QueryBuilder::<Any>::new(&head);
            builder.push_values(rows.by_ref().take(INSERT_BATCH_ROWS), &mut bind_row);
            if !self.suffix.is_empty() {
                builder.push(' ').push(self.suffix);
            }
            statements.push(builder);
        }
        statements
    }
}

async fn execute_all(
    tx: &mut Transaction<'_, Any>,
    statements: Vec<Statement>,
) -> StoreResult<u64> {
    let positional = tx.backend_name() == <sqlx::Sqlite as sqlx::Database>::NAME;
    let mut inserted = 0;
    for mut builder in statements {
        let numbered = (!positional).then(|| numbered_placeholders(builder.sql()));
        let query = builder.build();
        inserted += match &numbered {
            None => (&mut **tx).execute(query).await?,
            Some(sql) => (&mut **tx).execute(Numbered { sql, query }).await?,
        }
        .rows_affected();
    }
    Ok(inserted)
}

/// A built query sent with its placeholders numbered: `sql` in place of the builder's text.
struct Numbered<'q> {
    sql: &'q str,
    query: Query<'q, Any, AnyArguments<'q>>,
}

impl<'q> Execute<'q, Any> for Numbered<'q> {
    fn sql(&self) -> &'q str {
        self.sql
    }

    fn statement(&self) -> Option<&AnyStatement<'q>> {
        None
    }

    fn take_arguments(&mut self) -> Result<Option<AnyArguments<'q>>, BoxDynError> {
        self.query.take_arguments()
    }

    fn persistent(&self) -> bool {
        Execute::persistent(&self.query)
    }
}

/// `sql` with its `?` placeholders numbered `$1, $2, …` in order.
fn numbered_placeholders(sql: &str) -> String {
    let mut numbered = String::with_capacity(sql.len() + sql.len() / 2);
    let mut next = 1usize;
    for c in sql.chars() {
        if c == '?' {
            numbered.push('$');
            numbered.push_str(&next.to_string());
            next += 1;
        } else {
            numbered.push(c);
        }
    }
    numbered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_order() {
        assert_eq!(
            numbered_placeholders(
                "INSERT INTO t (a, b) VALUES (?, ?), (?, ?) ON CONFLICT DO NOTHING"
            ),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) ON CONFLICT DO NOTHING"
        );
        assert_eq!(numbered_placeholders("SELECT 1"), "SELECT 1");
    }

    #[test]
    fn push_values_writes_one_tuple_per_row_with_question_marks() {
        let mut builder = QueryBuilder::<Any>::new("INSERT INTO t (a, b) ");
        builder.push_values([(1i64, "x"), (2, "y")], |mut row, (a, b)| {
            row.push_bind(a).push_bind(b);
        });
        assert_eq!(builder.sql(), "INSERT INTO t (a, b) VALUES (?, ?), (?, ?)");
    }
}
