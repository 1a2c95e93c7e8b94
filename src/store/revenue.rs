//! Revenue in the store: ingested files (one transaction each, see `FileWriter`), their
//! Parquet segments and the `segment_months` index, the record-index blobs for duplicate
//! checks, rejections (open exceptions, retries, missing partners) and the segments a period's
//! computation reads. It stores what ingest decided; it never validates or computes revenue.

use std::collections::HashSet;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::insert::InsertInto;
use super::{Store, StoreError, StoreResult, parse_period_opt, retried_reasons_sql};
use crate::domain::exception::{ExceptionRow, RowFields};
use crate::domain::period::Period;
use crate::domain::reasons::RejectReason;
use crate::domain::revenue::{
    FileIngest, PendingRow, RecordKeyScheme, Rejection, RetryResolution, Segment,
};

/// The `source_file` of a `PARTNER_MISSING` exception: the file the partner is missing from.
pub const MISSING_PARTNER_SOURCE: &str = "partners.csv";

const SEGMENT_MONTHS: InsertInto = InsertInto {
    table: "segment_months",
    columns: &["segment_id", "billing_month", "late", "rows"],
    suffix: "",
};

const REJECTIONS: InsertInto = InsertInto {
    table: "rejections",
    columns: &[
        "source_file",
        "file_sha256",
        "line",
        "record_id",
        "reason",
        "detail",
        "raw",
        "fields",
        "status",
        "run_id",
    ],
    suffix: "",
};

/// A stored segment selected for a period's computation.
pub struct StoredSegment {
    pub id: i64,
    pub late_unbooked: bool,
}

impl Store {
    pub async fn ingested_file_hashes(&self) -> StoreResult<HashSet<String>> {
        let rows = sqlx::query("SELECT sha256 FROM revenue_files")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>(0)?))
            .collect()
    }

    /// How many lines have ever been ingested (the size of the record index).
    pub async fn ingested_lines(&self) -> StoreResult<u64> {
        let total: i64 =
            sqlx::query("SELECT CAST(COALESCE(SUM(rows), 0) AS BIGINT) FROM revenue_segments")
                .fetch_one(&self.pool)
                .await?
                .try_get(0)?;
        u64::try_from(total).map_err(|_| StoreError::Corrupt(format!("{total} ingested lines")))
    }

    /// The secret record keys are made with (`ingest::record_key`), as 64 hex digits: made
    /// once, by the first caller, and the same for every instance after. Never logged.
    pub async fn record_key_secret(&self) -> StoreResult<String> {
        let made = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        sqlx::query(
            "INSERT INTO record_key_secret (id, secret) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
        )
        .bind(made)
        .execute(&self.pool)
        .await?;
        let secret: String = sqlx::query("SELECT secret FROM record_key_secret WHERE id = 1")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        Ok(secret)
    }

    /// Hands the record keys of every ingested line whose keys were made under `scheme`, for
    /// duplicate checks, to `each`, a few segments' blobs at a time, so memory holds what
    /// `each` builds, not also the blobs. For `RecordKeyScheme::Xxh3` the blobs are the
    /// segments' Parquet instead, for their keys to be made again.
    pub async fn for_each_record_keys(
        &self,
        scheme: RecordKeyScheme,
        mut each: impl FnMut(&[Vec<u8>]),
    ) -> StoreResult<()> {
        let sql = match scheme {
            RecordKeyScheme::KeyedSha256 => {
                "SELECT id, record_keys FROM revenue_segments WHERE id > $1 AND key_scheme = $2 ORDER BY id LIMIT 8"
            }
            RecordKeyScheme::Xxh3 => {
                "SELECT id, data FROM revenue_segments WHERE id > $1 AND key_scheme = $2 ORDER BY id LIMIT 8"
            }
        };
        let mut after = 0i64;
        loop {
            let rows = sqlx::query(sql)
                .bind(after)
                .bind(scheme.code())
                .fetch_all(&self.pool)
                .await?;
            let Some(last) = rows.last() else {
                break;
            };
            after = last.try_get(0)?;
            let blobs = rows
                .iter()
                .map(|row| row.try_get::<Vec<u8>, _>(1))
                .collect::<Result<Vec<_>, _>>()?;
            each(&blobs);
        }
        Ok(())
    }

    /// Open rejections whose reason is retried (`RejectReason::is_retried`), in file order.
    pub async fn pending_retries(&self) -> StoreResult<Vec<PendingRow>> {
        let sql = format!(
            "SELECT id, source_file, line, fields, reason FROM rejections \
             WHERE status = 'open' AND reason IN ({}) ORDER BY source_file, line, id",
            retried_reasons_sql()
        );
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                let fields_json: Option<String> = row.try_get(3)?;
                let fields: Vec<String> =
                    serde_json::from_str(fields_json.as_deref().unwrap_or("[]"))
                        .map_err(|e| StoreError::Corrupt(format!("rejection fields: {e}")))?;
                let fields: [String; 7] = fields
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("rejection without seven fields".into()))?;
                let reason: String = row.try_get(4)?;
                Ok(PendingRow {
                    rejection_id: row.try_get(0)?,
                    source_file: row.try_get(1)?,
                    line: row.try_get::<Option<i64>, _>(2)?.unwrap_or(0) as u64,
                    fields,
                    reason: RejectReason::from_code(&reason)
                        .ok_or_else(|| StoreError::Corrupt(format!("reason {reason}")))?,
                })
            })
            .collect()
    }

    async fn insert_segments(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        origin: &str,
        segments: Vec<Segment>,
    ) -> StoreResult<()> {
        for segment in segments {
            let row = sqlx::query(
                "INSERT INTO revenue_segments (origin, rows, late_rows, data, record_keys, key_scheme) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(origin.to_owned())
            .bind(segment.rows as i64)
            .bind(segment.late_rows as i64)
            .bind(segment.parquet)
            .bind(segment.keys)
            .bind(RecordKeyScheme::KeyedSha256.code())
            .fetch_one(&mut **tx)
            .await?;
            let id: i64 = row.try_get(0)?;
            SEGMENT_MONTHS
                .execute(tx, &segment.months, |mut row, (month, late, rows)| {
                    row.push_bind(id)
                        .push_bind(month.to_string())
                        .push_bind(i64::from(*late))
                        .push_bind(*rows as i64);
                })
                .await?;
        }
        Ok(())
    }

    async fn insert_rejections(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        run_id: &str,
        file_sha256: &str,
        rejections: Vec<Rejection>,
    ) -> StoreResult<()> {
        REJECTIONS
            .execute(tx, rejections, |mut row, rejection| {
                let fields = rejection
                    .fields
                    .as_ref()
                    .map(|f| serde_json::to_string(f).unwrap_or_default());
                row.push_bind(rejection.source_file)
                    .push_bind(file_sha256.to_owned())
                    .push_bind(rejection.line.map(|l| l as i64))
                    .push_bind(rejection.record_id)
                    .push_bind(rejection.reason.code().to_owned())
                    .push_bind(rejection.detail)
                    .push_bind(rejection.raw)
                    .push_bind(fields)
                    .push_bind("open".to_owned())
                    .push_bind(run_id.to_owned());
            })
            .await?;
        Ok(())
    }

    /// Starts storing an ingested revenue file: its segments go in as ingest makes them and
    /// the whole file commits at once (`FileWriter::finish`). `None` if the file is already
    /// stored (by another instance meanwhile).
    pub async fn begin_file(
        &self,
        run_id: &str,
        source_file: &str,
        sha256: &str,
    ) -> StoreResult<Option<FileWriter>> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO revenue_files (sha256, source_file, run_id, ingested_at_ms, status, rows_total, rows_accepted, rows_rejected, rows_duplicate) \
             VALUES ($1, $2, $3, $4, 'ingested', 0, 0, 0, 0) ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(sha256.to_owned())
        .bind(source_file.to_owned())
        .bind(run_id.to_owned())
        .bind(self.now_ms())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        Ok(Some(FileWriter {
            tx,
            run_id: run_id.to_owned(),
            sha256: sha256.to_owned(),
        }))
    }

    /// Stores the retried rows' segments and resolutions in one transaction.
    pub async fn store_retry(
        &self,
        run_id: &str,
        segments: Vec<Segment>,
        resolutions: &[(i64, RetryResolution)],
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        Self::insert_segments(&mut tx, &format!("retry:{run_id}"), segments).await?;
        for (id, resolution) in resolutions {
            match resolution {
                RetryResolution::Resolved => {
                    sqlx::query("UPDATE rejections SET status = 'resolved', resolved_run_id = $1 WHERE id = $2")
                        .bind(run_id.to_owned())
                        .bind(*id)
                        .execute(&mut *tx)
                        .await?;
                }
                RetryResolution::StillRejected(reason, detail) => {
                    sqlx::query("UPDATE rejections SET reason = $1, detail = $2 WHERE id = $3 AND (reason <> $1 OR detail <> $2)")
                        .bind(reason.code().to_owned())
                        .bind(detail.clone())
                        .bind(*id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every rejection still open, in report order (SPEC §7.1).
    pub async fn open_exceptions(&self) -> StoreResult<Vec<ExceptionRow>> {
        let rows = sqlx::query(
            "SELECT source_file, line, record_id, reason, detail, raw, fields FROM rejections WHERE status = 'open' \
             ORDER BY source_file, line, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ExceptionRow {
                    source_file: row.try_get(0)?,
                    line: row.try_get::<Option<i64>, _>(1)?.map(|l| l as u64),
                    record_id: row.try_get(2)?,
                    reason: row.try_get(3)?,
                    detail: row.try_get(4)?,
                    raw: row.try_get(5)?,
                    fields: stored_row_fields(row.try_get(6)?)?,
                })
            })
            .collect()
    }

    /// Replaces the open `PARTNER_MISSING` rows by `missing` ((partner id, detail), in partner
    /// order), in one transaction, found by `run_id` in the partners.csv of `partners_sha256`.
    /// Nothing is written when they are the same, so an unchanged re-run leaves the store as
    /// it is; a partner that is back leaves the list. Returns whether anything changed.
    pub async fn sync_missing_partners(
        &self,
        run_id: &str,
        partners_sha256: &str,
        missing: &[(String, String)],
    ) -> StoreResult<bool> {
        let reason = RejectReason::PartnerMissing.code();
        let mut tx = self.pool.begin().await?;
        let open: Vec<String> = sqlx::query(
            "SELECT detail FROM rejections WHERE status = 'open' AND reason = $1 ORDER BY id",
        )
        .bind(reason.to_owned())
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;
        if open.iter().eq(missing.iter().map(|(_, detail)| detail)) {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "UPDATE rejections SET status = 'resolved', resolved_run_id = $1 WHERE status = 'open' AND reason = $2",
        )
        .bind(run_id.to_owned())
        .bind(reason.to_owned())
        .execute(&mut *tx)
        .await?;
        REJECTIONS
            .execute(&mut tx, missing, |mut row, (partner_id, detail)| {
                row.push_bind(MISSING_PARTNER_SOURCE.to_owned())
                    .push_bind(partners_sha256.to_owned())
                    .push_bind(None::<i64>)
                    .push_bind(String::new())
                    .push_bind(reason.to_owned())
                    .push_bind(detail.clone())
                    .push_bind(String::new())
                    // The partner, for `status` (record_id stays empty: no revenue row is meant).
                    .push_bind(Some(
                        serde_json::json!({ "partner_id": partner_id }).to_string(),
                    ))
                    .push_bind("open".to_owned())
                    .push_bind(run_id.to_owned());
            })
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The earliest open month before `period` that has revenue lines of its own.
    pub async fn earlier_open_revenue(
        &self,
        last_closed: Option<Period>,
        period: Period,
    ) -> StoreResult<Option<Period>> {
        let floor = last_closed.map_or_else(|| "0000-00".to_owned(), |p| p.to_string());
        let row = sqlx::query("SELECT MIN(billing_month) FROM segment_months WHERE late = 0 AND billing_month > $1 AND billing_month < $2")
            .bind(floor)
            .bind(period.to_string())
            .fetch_one(&self.pool)
            .await?;
        parse_period_opt(row.try_get::<Option<String>, _>(0)?)
    }

    /// Segments holding lines of `period` itself, or late lines not yet booked: their ids and
    /// whether their late lines are unbooked. The data is fetched one segment at a time.
    pub async fn segments_for(&self, period: Period) -> StoreResult<Vec<StoredSegment>> {
        let rows = sqlx::query(
            "SELECT id, booked_period FROM revenue_segments WHERE id IN \
             (SELECT segment_id FROM segment_months WHERE billing_month = $1 AND late = 0) \
             OR (late_rows > 0 AND booked_period IS NULL) ORDER BY id",
        )
        .bind(period.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row: &AnyRow| {
                Ok(StoredSegment {
                    id: row.try_get(0)?,
                    late_unbooked: row.try_get::<Option<String>, _>(1)?.is_none(),
                })
            })
            .collect()
    }

    /// The Parquet bytes of one segment.
    pub async fn segment_data(&self, id: i64) -> StoreResult<Vec<u8>> {
        let row = sqlx::query("SELECT data FROM revenue_segments WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get(0)?)
    }
}

/// A revenue file being stored, in one open transaction (see `Store::begin_file`). Dropped
/// without `finish`, it stores nothing.
pub struct FileWriter {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    run_id: String,
    sha256: String,
}

impl FileWriter {
    pub async fn add_segment(&mut self, segment: Segment) -> StoreResult<()> {
        Store::insert_segments(&mut self.tx, &self.sha256, vec![segment]).await
    }

    /// Stores a batch of the file's rejected rows (`ingest::read::REJECTION_BATCH` at a time).
    pub async fn add_rejections(&mut self, rejections: Vec<Rejection>) -> StoreResult<()> {
        Store::insert_rejections(&mut self.tx, &self.run_id, &self.sha256, rejections).await
    }

    /// Records the file's counts and rejected rows and commits the file.
    pub async fn finish(mut self, ingest: FileIngest) -> StoreResult<()> {
        sqlx::query(
            "UPDATE revenue_files SET rows_total = $1, rows_accepted = $2, rows_rejected = $3, rows_duplicate = $4 \
             WHERE sha256 = $5",
        )
        .bind(ingest.rows as i64)
        .bind(ingest.accepted as i64)
        .bind(ingest.rejected as i64)
        .bind(ingest.duplicates as i64)
        .bind(self.sha256.clone())
        .execute(&mut *self.tx)
        .await?;
        Store::insert_rejections(&mut self.tx, &self.run_id, &self.sha256, ingest.rejections)
            .await?;
        self.tx.commit().await?;
        Ok(())
    }

    /// Records the file as rejected whole (SPEC §7.2), with why, and commits: nothing else of
    /// it is kept. Call before any segment is added.
    pub async fn reject(mut self, source_file: &str, detail: String) -> StoreResult<()> {
        sqlx::query("UPDATE revenue_files SET status = 'rejected' WHERE sha256 = $1")
            .bind(self.sha256.clone())
            .execute(&mut *self.tx)
            .await?;
        let rejection = Rejection {
            source_file: source_file.to_owned(),
            line: None,
            record_id: String::new(),
            reason: RejectReason::FileRejected,
            detail,
            raw: String::new(),
            fields: None,
        };
        Store::insert_rejections(&mut self.tx, &self.run_id, &self.sha256, vec![rejection]).await?;
        self.tx.commit().await?;
        Ok(())
    }

    /// Stores nothing of the file.
    pub async fn abandon(self) -> StoreResult<()> {
        self.tx.rollback().await?;
        Ok(())
    }
}

/// A rejection's stored `fields`: the seven revenue fields (a JSON array), or the partner of a
/// `PARTNER_MISSING` row (a JSON object); none for a file or a malformed row.
fn stored_row_fields(json: Option<String>) -> StoreResult<RowFields> {
    let Some(json) = json else {
        return Ok(RowFields::default());
    };
    let value: serde_json::Value = serde_json::from_str(&json)
        .map_err(|e| StoreError::Corrupt(format!("rejection fields: {e}")))?;
    if let Some(partner_id) = value.get("partner_id").and_then(|p| p.as_str()) {
        return Ok(RowFields {
            partner_id: partner_id.to_owned(),
            ..RowFields::default()
        });
    }
    let fields: [String; 7] = serde_json::from_value(value)
        .map_err(|e| StoreError::Corrupt(format!("rejection fields: {e}")))?;
    Ok(RowFields::from_revenue_fields(&fields))
}
