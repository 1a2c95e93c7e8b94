//! Property tests of the revenue readers on input nobody wrote by hand: random CSV bytes and
//! random Parquet schemas and column types. Whatever comes in, reading never panics, a file is
//! either read or rejected whole with a reason, and every row read is accounted for exactly
//! once: rows = accepted + rejected + duplicates.

use std::path::Path;
use std::sync::OnceLock;

use polars::prelude::*;
use proptest::prelude::*;

use payout::ingest::MasterData;
use payout::ingest::{FileReader, RecordIndex, RevenueFile, RowChecker};

fn master() -> &'static MasterData {
    static MASTER: OnceLock<MasterData> = OnceLock::new();
    MASTER.get_or_init(|| {
        MasterData::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")).unwrap()
    })
}

/// Reads a file as `run` does. `Err`: rejected whole, with the reason (never empty).
fn read_file(path: &Path) -> Result<(), String> {
    let file = RevenueFile {
        source_file: format!("revenue/{}", path.file_name().unwrap().to_string_lossy()),
        path: path.to_owned(),
        sha256: String::new(),
        plain: None,
    };
    let mut checker = RowChecker::new(master(), None, RecordIndex::default());
    let mut reader = FileReader::open(&file).map_err(|e| e.to_string())?;
    let mut handed_out = 0u64;
    while let Some(step) = reader.next_batch(&mut checker).map_err(|e| e.to_string())? {
        handed_out += step.rejections.len() as u64;
        if let Some(batch) = step.lines {
            assert_eq!(batch.frame.height(), batch.meta.rows());
        }
    }
    let ingest = reader.finish();
    assert_eq!(handed_out + ingest.rejections.len() as u64, ingest.rejected);
    assert_eq!(
        ingest.rows,
        ingest.accepted + ingest.rejected + ingest.duplicates,
        "every row is accepted, rejected or a duplicate"
    );
    Ok(())
}

const HEADER: &str =
    "record_id,partner_id,customer_id,product_category,billing_month,amount,currency";

/// Bytes that CSV files are made of, good and bad, weighted towards structure.
fn csv_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        4 => prop::sample::select(b"abcR-0123456789.".to_vec()),
        2 => Just(b','),
        1 => Just(b'\n'),
        1 => prop::sample::select(b"\"\r\0\t ".to_vec()),
        1 => any::<u8>(),
    ]
}

/// A revenue row, sometimes valid, sometimes not.
fn csv_row() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"R-1,1000001,C-1,azure,2026-10,10.00,USD".to_vec()),
        Just(b"R-2,1000002,C-1,azure,2026-10,-3.5,EUR".to_vec()),
        Just(b"R-1,1000001,C-1,azure,2026-10,10.01,USD".to_vec()),
        prop::collection::vec(csv_byte(), 0..60),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_csv_bytes_are_read_or_rejected_and_every_row_is_accounted_for(
        with_header in any::<bool>(),
        rows in prop::collection::vec(csv_row(), 0..30),
        crlf in any::<bool>(),
    ) {
        let end: &[u8] = if crlf { b"\r\n" } else { b"\n" };
        let mut bytes = Vec::new();
        if with_header {
            bytes.extend_from_slice(HEADER.as_bytes());
            bytes.extend_from_slice(end);
        }
        for row in &rows {
            bytes.extend_from_slice(row);
            bytes.extend_from_slice(end);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("random.csv");
        std::fs::write(&path, &bytes).unwrap();
        if let Err(reason) = read_file(&path) {
            prop_assert!(!reason.is_empty());
        }
    }
}

/// Column types a Parquet writer may use for a revenue column.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Text,
    Int8,
    Int16,
    Int32,
    Int64,
    UInt8,
    UInt16,
    UInt32,
    UInt64,
    Float64,
    Boolean,
    Decimal { precision: usize, scale: usize },
    Null,
    Binary,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        3 => Just(Kind::Text),
        1 => Just(Kind::Int8),
        1 => Just(Kind::Int16),
        1 => Just(Kind::Int32),
        1 => Just(Kind::Int64),
        1 => Just(Kind::UInt8),
        1 => Just(Kind::UInt16),
        1 => Just(Kind::UInt32),
        1 => Just(Kind::UInt64),
        1 => Just(Kind::Float64),
        1 => Just(Kind::Boolean),
        1 => (1usize..=38, 0usize..=12).prop_map(|(precision, scale)| Kind::Decimal {
            precision,
            scale: scale.min(precision),
        }),
        1 => Just(Kind::Null),
        1 => Just(Kind::Binary),
    ]
}

/// A column of `kind` with `rows` values drawn from `seeds` (nulls included).
fn column(name: &str, kind: Kind, seeds: &[Option<i64>]) -> Column {
    let name: PlSmallStr = name.into();
    let ints = |f: &dyn Fn(i64) -> i64| seeds.iter().map(|s| s.map(f)).collect::<Vec<_>>();
    let series = match kind {
        Kind::Text => Series::new(
            name,
            seeds
                .iter()
                .map(|s| {
                    s.map(|v| match v.rem_euclid(6) {
                        0 => "1000001".to_owned(),
                        1 => "2026-10".to_owned(),
                        2 => "USD".to_owned(),
                        3 => "azure".to_owned(),
                        4 => format!("{}.{:02}", v / 100, v.rem_euclid(100)),
                        _ => format!("R-{v}"),
                    })
                })
                .collect::<Vec<_>>(),
        ),
        Kind::Int8 => Series::new(
            name,
            ints(&|v| v % 128)
                .iter()
                .map(|v| v.map(|v| v as i8))
                .collect::<Vec<_>>(),
        ),
        Kind::Int16 => Series::new(
            name,
            ints(&|v| v % 32768)
                .iter()
                .map(|v| v.map(|v| v as i16))
                .collect::<Vec<_>>(),
        ),
        Kind::Int32 => Series::new(
            name,
            ints(&|v| v)
                .iter()
                .map(|v| v.map(|v| v as i32))
                .collect::<Vec<_>>(),
        ),
        Kind::Int64 => Series::new(name, ints(&|v| v * 1_000_003)),
        Kind::UInt8 => Series::new(
            name,
            ints(&|v| v.rem_euclid(256))
                .iter()
                .map(|v| v.map(|v| v as u8))
                .collect::<Vec<_>>(),
        ),
        Kind::UInt16 => Series::new(
            name,
            ints(&|v| v.rem_euclid(65536))
                .iter()
                .map(|v| v.map(|v| v as u16))
                .collect::<Vec<_>>(),
        ),
        Kind::UInt32 => Series::new(
            name,
            ints(&|v| v.rem_euclid(1 << 31))
                .iter()
                .map(|v| v.map(|v| v as u32))
                .collect::<Vec<_>>(),
        ),
        Kind::UInt64 => Series::new(
            name,
            ints(&|v| v.abs())
                .iter()
                .map(|v| v.map(|v| v as u64 * 7))
                .collect::<Vec<_>>(),
        ),
        Kind::Float64 => Series::new(
            name,
            seeds
                .iter()
                .map(|s| s.map(|v| v as f64 / 100.0))
                .collect::<Vec<_>>(),
        ),
        Kind::Boolean => Series::new(
            name,
            seeds
                .iter()
                .map(|s| s.map(|v| v % 2 == 0))
                .collect::<Vec<_>>(),
        ),
        Kind::Decimal { precision, scale } => {
            let limit = 10i128.pow(precision.min(18) as u32);
            let values: Vec<Option<i128>> = seeds
                .iter()
                .map(|s| s.map(|v| (v as i128 * 1_000_003) % limit))
                .collect();
            Int128Chunked::from_iter_options(name, values.into_iter())
                .into_decimal_unchecked(precision, scale)
                .into_series()
        }
        Kind::Null => Series::full_null(name, seeds.len(), &DataType::Null),
        Kind::Binary => Series::new(
            name,
            seeds
                .iter()
                .map(|s| s.map(|v| format!("b{v}").into_bytes()))
                .collect::<Vec<_>>(),
        ),
    };
    series.into_column()
}

const COLUMNS: [&str; 7] = [
    "record_id",
    "partner_id",
    "customer_id",
    "product_category",
    "billing_month",
    "amount",
    "currency",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 150, ..ProptestConfig::default() })]

    #[test]
    fn random_parquet_schemas_and_types_are_read_or_rejected_and_every_row_is_accounted_for(
        kinds in prop::collection::vec(kind(), 7),
        seeds in prop::collection::vec(prop::option::weighted(0.9, -100_000i64..100_000), 0..40),
        missing in prop::option::of(0usize..7),
        extra in any::<bool>(),
    ) {
        let mut columns: Vec<Column> = COLUMNS
            .iter()
            .zip(&kinds)
            .enumerate()
            .filter(|(at, _)| Some(*at) != missing)
            .map(|(_, (name, kind))| column(name, *kind, &seeds))
            .collect();
        if extra {
            columns.push(column("region", Kind::Float64, &seeds));
        }
        let mut frame = DataFrame::new(seeds.len(), columns).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("random.parquet");
        ParquetWriter::new(std::fs::File::create(&path).unwrap())
            .finish(&mut frame)
            .unwrap();
        match read_file(&path) {
            Ok(()) => {}
            Err(reason) => {
                prop_assert!(!reason.is_empty());
                if missing.is_none()
                    && kinds.iter().all(|k| matches!(k, Kind::Text | Kind::Int32 | Kind::Int64))
                {
                    prop_assert!(false, "a readable file was rejected: {reason}");
                }
            }
        }
    }
}
