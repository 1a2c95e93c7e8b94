//! Writes a deterministic (seeded) synthetic input directory in the layout of SPEC §2, for
//! benchmarks: `cargo run --release --bin payout-generate -- --out bench-data/1m --lines 1000000`.
//! Partners of both types in six payout currencies (0, 2 and 3 minor units), a skewed spread of
//! lines per partner, about 20% of lines needing FX, 2% for the previous month, 3% credits,
//! amounts with 2 to 4 decimals, two effective-dated rate tables per program.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use polars::prelude::*;

use clap::Parser;
use payout::ingest::segment::REVENUE_COLUMNS as REVENUE_HEADER;
use rust_decimal::Decimal;

#[derive(Parser)]
struct Args {
    /// Output directory (created; existing files are overwritten).
    #[arg(long)]
    out: PathBuf,
    /// Revenue lines to write.
    #[arg(long, default_value_t = 1_000_000)]
    lines: u64,
    /// Partners to write.
    #[arg(long, default_value_t = 10_000)]
    partners: u64,
    /// Seed of the generator; the same seed writes the same files.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Revenue file format (the same lines either way).
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    format: Format,
    /// Billing month of the lines (2% are of the month before), `YYYY-MM`; it names the revenue
    /// file. Months other than the default prefix their record ids with the month, so that a
    /// folder filled month by month (the history benchmark) holds no repeated ids.
    #[arg(long, default_value = DEFAULT_MONTH)]
    month: String,
}

const DEFAULT_MONTH: &str = "2026-10";

/// The month before `month` (`YYYY-MM`).
fn month_before(month: &str) -> Option<String> {
    let (year, number) = month.split_once('-')?;
    let (year, number): (u32, u32) = (year.parse().ok()?, number.parse().ok()?);
    if !(1..=12).contains(&number) {
        return None;
    }
    Some(if number == 1 {
        format!("{}-12", year - 1)
    } else {
        format!("{year}-{:02}", number - 1)
    })
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Csv,
    Parquet,
}

/// Where revenue lines go: a CSV file written as it goes, or Parquet columns written at the end.
enum RevenueSink {
    Csv(BufWriter<File>),
    Parquet(PathBuf, Vec<StringChunkedBuilder>),
}

impl RevenueSink {
    fn create(out: &Path, format: Format, lines: usize, month: &str) -> std::io::Result<Self> {
        Ok(match format {
            Format::Csv => {
                let mut file = BufWriter::with_capacity(
                    1 << 20,
                    File::create(out.join(format!("revenue/{month}-revenue.csv")))?,
                );
                writeln!(file, "{}", REVENUE_HEADER.join(","))?;
                RevenueSink::Csv(file)
            }
            Format::Parquet => RevenueSink::Parquet(
                out.join(format!("revenue/{month}-revenue.parquet")),
                REVENUE_HEADER
                    .iter()
                    .map(|name| StringChunkedBuilder::new((*name).into(), lines))
                    .collect(),
            ),
        })
    }

    fn push(&mut self, fields: [&str; 7]) -> std::io::Result<()> {
        match self {
            RevenueSink::Csv(file) => writeln!(file, "{}", fields.join(",")),
            RevenueSink::Parquet(_, columns) => {
                for (column, value) in columns.iter_mut().zip(fields) {
                    column.append_value(value);
                }
                Ok(())
            }
        }
    }

    fn finish(self) -> std::io::Result<()> {
        match self {
            RevenueSink::Csv(mut file) => file.flush(),
            RevenueSink::Parquet(path, columns) => {
                let columns: Vec<Column> = columns
                    .into_iter()
                    .map(|c| c.finish().into_column())
                    .collect();
                let height = columns.first().map_or(0, |c| c.len());
                let mut frame = DataFrame::new(height, columns).map_err(std::io::Error::other)?;
                ParquetWriter::new(File::create(path)?)
                    .finish(&mut frame)
                    .map_err(std::io::Error::other)?;
                Ok(())
            }
        }
    }
}

/// SplitMix64: small, fast and deterministic; statistical quality is ample for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const CURRENCIES: [&str; 6] = ["USD", "EUR", "GBP", "JPY", "KRW", "KWD"];
const COUNTRIES: [&str; 6] = ["US", "DE", "GB", "JP", "KR", "KW"];
const CATEGORIES: [&str; 5] = ["azure", "m365", "dynamics", "security", "support"];
/// Units of each currency per USD, as decimal text (no float reaches the files).
const PER_USD: [&str; 6] = ["1", "0.9324", "0.7981", "151.25", "1385.5", "0.30715"];

fn partner_id(index: u64) -> String {
    format!("{}", 2_000_000 + index)
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let mut rng = Rng(args.seed);
    let previous = month_before(&args.month).ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "--month is not YYYY-MM")
    })?;
    let id_prefix = if args.month == DEFAULT_MONTH {
        "G".to_owned()
    } else {
        format!("G{}", args.month.replace('-', ""))
    };
    fs::create_dir_all(args.out.join("revenue"))?;

    fs::write(
        args.out.join("programs.toml"),
        r#"[[program]]
id = "csp-indirect"
name = "CSP Indirect Provider Incentive"
partner_type = "indirect_provider"
required_competencies = ["cloud-platform-gold"]
min_payout = { USD = "50.00", EUR = "50.00", GBP = "40.00", JPY = "5000", KRW = "60000", KWD = "15.000" }

[[program.rates]]
from = "2025-01"
azure = "0.05"
m365 = "0.08"
dynamics = "0.06"
security = "0.1"

[[program.rates]]
from = "2026-10"
azure = "0.06"
m365 = "0.075"
security = "0.1"

[[program]]
id = "csp-direct"
name = "CSP Direct Reseller Incentive"
partner_type = "direct"
required_competencies = []
min_payout = { USD = "100.00", EUR = "100.00", GBP = "80.00", JPY = "10000", KRW = "120000", KWD = "30.000" }

[[program.rates]]
from = "2025-01"
azure = "0.03"
m365 = "0.04"
security = "0.125"

[[program.rates]]
from = "2026-10"
azure = "0.035"
m365 = "0.04"
security = "0.125"
"#,
    )?;

    let mut currency_of = Vec::with_capacity(args.partners as usize);
    let mut partners = BufWriter::new(File::create(args.out.join("partners.csv"))?);
    let mut agreements = BufWriter::new(File::create(args.out.join("agreements.csv"))?);
    let mut competencies = BufWriter::new(File::create(args.out.join("competencies.csv"))?);
    let mut profiles = BufWriter::new(File::create(args.out.join("profiles.csv"))?);
    writeln!(
        partners,
        "partner_id,name,partner_type,country,payout_currency,admin_email,enrolled_on,legacy_portal"
    )?;
    writeln!(agreements, "partner_id,kind,status,valid_from,valid_to")?;
    writeln!(competencies, "partner_id,competency,valid_from,valid_to")?;
    writeln!(profiles, "partner_id,tax_profile,payment_profile")?;
    for index in 0..args.partners {
        let id = partner_id(index);
        let indirect = index % 3 == 0;
        let c = rng.below(6) as usize;
        currency_of.push(c);
        let name = match index % 50 {
            0 => format!("\"Partner \"\"{index}\"\", Ltd\""),
            1 => format!("=Partner {index}"),
            _ => format!("Partner {index}"),
        };
        let kind = if indirect {
            "indirect_provider"
        } else {
            "direct"
        };
        let enrolled = if rng.below(20) == 0 { "" } else { "2025-01-01" };
        writeln!(
            partners,
            "{id},{name},{kind},{},{},admin{index}@example.com,{enrolled},{}",
            COUNTRIES[c],
            CURRENCIES[c],
            index % 7 == 0
        )?;
        if rng.below(25) != 0 {
            writeln!(agreements, "{id},mpn,active,2020-01-01,")?;
        }
        writeln!(
            agreements,
            "{id},{},active,2024-01-01,",
            if indirect {
                "cloud_distributor"
            } else {
                "reseller"
            }
        )?;
        if indirect && rng.below(20) != 0 {
            writeln!(competencies, "{id},cloud-platform-gold,2024-01-01,")?;
        }
        let tax = if rng.below(30) == 0 {
            "incomplete"
        } else {
            "complete"
        };
        let payment = if rng.below(30) == 0 {
            "pending"
        } else {
            "validated"
        };
        writeln!(profiles, "{id},{tax},{payment}")?;
    }
    for mut file in [partners, agreements, competencies, profiles] {
        file.flush()?;
    }
    fs::write(
        args.out.join("users.csv"),
        "partner_id,email,name,role,active\n",
    )?;

    let mut fx = String::from("period,from_currency,to_currency,rate\n");
    for period in [previous.as_str(), args.month.as_str()] {
        for (from, from_per_usd) in CURRENCIES.iter().zip(PER_USD) {
            for (to, to_per_usd) in CURRENCIES.iter().zip(PER_USD) {
                if from != to {
                    // to per from = to_per_usd / from_per_usd, exact decimal, 10 places.
                    let from_value: Decimal = from_per_usd.parse().unwrap_or(Decimal::ONE);
                    let to_value: Decimal = to_per_usd.parse().unwrap_or(Decimal::ONE);
                    let rate = (to_value / from_value).round_dp(10).normalize();
                    fx.push_str(&format!("{period},{from},{to},{rate}\n"));
                }
            }
        }
    }
    fs::write(args.out.join("fx_rates.csv"), fx)?;

    let mut revenue =
        RevenueSink::create(&args.out, args.format, args.lines as usize, &args.month)?;
    for line in 0..args.lines {
        // Skewed: a few partners carry most lines.
        let partner = ((args.partners as f64) * rng.unit().powi(3)) as u64;
        let own = currency_of[partner as usize];
        let currency = if rng.below(5) == 0 {
            (own + 1 + rng.below(5) as usize) % 6
        } else {
            own
        };
        let month = if rng.below(50) == 0 {
            previous.as_str()
        } else {
            args.month.as_str()
        };
        let places = 2 + rng.below(3) as u32;
        let magnitude = match CURRENCIES[currency] {
            "JPY" | "KRW" => 1_000_000,
            _ => 10_000,
        };
        let units = rng.below(magnitude * 10u64.pow(places)) + 1;
        let sign = if rng.below(33) == 0 { "-" } else { "" };
        let scale = 10u64.pow(places);
        let amount = format!(
            "{sign}{}.{:0width$}",
            units / scale,
            units % scale,
            width = places as usize
        );
        let category = CATEGORIES[rng.below(5) as usize];
        let record_id = format!("{id_prefix}{line:010}");
        let customer_id = format!("C{:06}", rng.below(1_000_000));
        revenue.push([
            &record_id,
            &partner_id(partner),
            &customer_id,
            category,
            month,
            &amount,
            CURRENCIES[currency],
        ])?;
    }
    revenue.finish()?;
    println!(
        "wrote {} partners and {} revenue lines to {}",
        args.partners,
        args.lines,
        args.out.display()
    );
    Ok(())
}
