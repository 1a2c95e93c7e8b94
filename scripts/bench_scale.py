"""Scale benchmark: the engine against one DuckDB SQL query on generated data.

Run through scripts/bench-scale.sh, which builds the engine and a virtual environment with
DuckDB. For each size and format it times, interleaved and repeated (median of REPEATS):
  (a) compute  `payout preview`: the engine's computation of payouts.csv from the revenue
               files (every row checked, no store, no line report)
  (b) full     `payout run` on a fresh store (ingest, store, every report, the line Parquet)
  (c) rerun    `payout run` again on the unchanged inputs
  (d) duckdb   the same payout computation as one DuckDB query writing payouts.csv
and checks that both engine payouts.csv files equal DuckDB's cell for cell. Peak RSS comes from
/usr/bin/time. Figures are printed with their ratio to DuckDB's time in the same run, and the
goals of the scale issue are checked on the largest CSV size.
"""
import csv
import os
import shutil
import statistics
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench-data"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
PERIOD = "2026-10"
AS_OF = "2026-10-31"
MINOR = {"JPY": 0, "KRW": 0, "USD": 2, "EUR": 2, "GBP": 2, "KWD": 3}


def timed(command, cwd=None):
    """Runs a command under /usr/bin/time; returns (seconds, peak RSS in MB)."""
    stats = DATA / ".time"
    subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", str(stats)] + command, cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds, kilobytes = stats.read_text().split()
    return float(seconds), int(kilobytes) / 1024


def query(data_dir):
    programs = tomllib.loads((data_dir / "programs.toml").read_text())["program"]
    rate_rows, program_rows, min_rows, required_rows = [], [], [], []
    for program in programs:
        program_rows.append(f"('{program['partner_type']}', '{program['id']}')")
        for currency, amount in program["min_payout"].items():
            min_rows.append(f"('{program['partner_type']}', '{currency}', CAST('{amount}' AS DECIMAL(38,3)))")
        for competency in program.get("required_competencies", []):
            required_rows.append(f"('{program['partner_type']}', '{competency}')")
        for table in program["rates"]:
            for category, rate in table.items():
                if category != "from":
                    rate_rows.append(f"('{program['partner_type']}', '{table['from']}', '{category}', CAST('{rate}' AS DECIMAL(38,10)))")
    required = ", ".join(required_rows) or "(NULL, NULL)"
    d = str(data_dir)
    money = lambda v: (f"CASE minor WHEN 0 THEN CAST({v} AS DECIMAL(38,0))::VARCHAR "
                       f"WHEN 2 THEN CAST({v} AS DECIMAL(38,2))::VARCHAR ELSE CAST({v} AS DECIMAL(38,3))::VARCHAR END")
    return f"""
WITH
rates(partner_type, from_month, category, rate) AS (VALUES {", ".join(rate_rows)}),
programs(partner_type, program_id) AS (VALUES {", ".join(program_rows)}),
mins(partner_type, currency, min_payout) AS (VALUES {", ".join(min_rows)}),
required(partner_type, competency) AS (VALUES {required}),
minors(currency, minor) AS (VALUES {", ".join(f"('{c}', {m})" for c, m in MINOR.items())}),
tables AS (SELECT DISTINCT partner_type, from_month FROM rates),
partners AS (
  SELECT p.*, g.program_id, m.minor FROM read_csv('{d}/partners.csv', all_varchar = true) p
  JOIN programs g USING (partner_type) JOIN minors m ON m.currency = p.payout_currency),
agreements AS (SELECT * FROM read_csv('{d}/agreements.csv', all_varchar = true)),
competencies AS (SELECT * FROM read_csv('{d}/competencies.csv', all_varchar = true)),
profiles AS (SELECT * FROM read_csv('{d}/profiles.csv', all_varchar = true)),
fx AS (SELECT period, from_currency, to_currency, CAST(rate AS DECIMAL(38,10)) AS rate FROM read_csv('{d}/fx_rates.csv', all_varchar = true)),
eligible AS (
  SELECT p.partner_id,
    EXISTS (SELECT 1 FROM agreements a WHERE a.partner_id = p.partner_id AND a.kind = 'mpn' AND a.status = 'active'
            AND a.valid_from <= '{AS_OF}' AND coalesce(a.valid_to, '9999-12-31') >= '{AS_OF}')
    AND EXISTS (SELECT 1 FROM agreements a WHERE a.partner_id = p.partner_id AND a.status = 'active'
            AND a.kind = CASE p.partner_type WHEN 'indirect_provider' THEN 'cloud_distributor' ELSE 'reseller' END
            AND a.valid_from <= '{AS_OF}' AND coalesce(a.valid_to, '9999-12-31') >= '{AS_OF}')
    AND (NOT EXISTS (SELECT 1 FROM required r WHERE r.partner_type = p.partner_type)
         OR EXISTS (SELECT 1 FROM competencies c JOIN required r ON r.competency = c.competency AND r.partner_type = p.partner_type
                    WHERE c.partner_id = p.partner_id AND c.valid_from <= '{AS_OF}' AND coalesce(c.valid_to, '9999-12-31') >= '{AS_OF}'))
    AS eligible
  FROM partners p),
lines AS (
  SELECT l.partner_id, l.product_category, l.billing_month, l.currency, CAST(l.amount AS DECIMAL(38,6)) AS amount
  FROM read_{'parquet' if any(data_dir.glob('revenue/*.parquet')) else 'csv'}('{d}/revenue/*.{'parquet' if any(data_dir.glob('revenue/*.parquet')) else 'csv'}'{'' if any(data_dir.glob('revenue/*.parquet')) else ', all_varchar = true'}) l
  WHERE l.billing_month = '{PERIOD}'),
earnings AS (
  SELECT l.partner_id,
    CASE WHEN e.eligible AND r.rate IS NOT NULL THEN
      CASE WHEN l.currency = p.payout_currency THEN l.amount * r.rate
           ELSE CAST(round_even(l.amount * r.rate * f.rate, 6) AS DECIMAL(38,16)) END END AS earning
  FROM lines l
  JOIN partners p USING (partner_id)
  JOIN eligible e USING (partner_id)
  LEFT JOIN rates r ON r.partner_type = p.partner_type AND r.category = l.product_category
       AND r.from_month = (SELECT max(t.from_month) FROM tables t WHERE t.partner_type = p.partner_type AND t.from_month <= l.billing_month)
  LEFT JOIN fx f ON f.period = l.billing_month AND f.from_currency = l.currency AND f.to_currency = p.payout_currency),
totals AS (SELECT partner_id, coalesce(sum(earning), 0) AS exact FROM earnings GROUP BY partner_id),
settled AS (
  SELECT p.*, t.exact,
    CASE p.minor WHEN 0 THEN CAST(round_even(t.exact, 0) AS DECIMAL(38,3)) WHEN 2 THEN CAST(round_even(t.exact, 2) AS DECIMAL(38,3))
      ELSE CAST(round_even(t.exact, 3) AS DECIMAL(38,3)) END AS earned,
    concat_ws(';',
      CASE WHEN p.enrolled_on IS NULL OR p.enrolled_on > '{AS_OF}' THEN 'NOT_ENROLLED' END,
      CASE WHEN coalesce(pr.payment_profile, 'missing') <> 'validated' THEN 'PAYMENT_PROFILE_INVALID' END,
      CASE WHEN coalesce(pr.tax_profile, 'missing') <> 'complete' THEN 'TAX_PROFILE_INCOMPLETE' END) AS hold_reasons,
    m.min_payout
  FROM totals t JOIN partners p USING (partner_id)
  LEFT JOIN profiles pr USING (partner_id)
  JOIN mins m ON m.partner_type = p.partner_type AND m.currency = p.payout_currency)
SELECT partner_id,
  CASE WHEN left(name, 1) IN ('=', '+', '-', '@', chr(9), chr(13)) THEN '''' || name ELSE name END AS partner_name,
  program_id, '{PERIOD}' AS period, payout_currency AS currency,
  {money('earned')} AS earned, {money('0')} AS adjustments, {money('0')} AS released, {money('0')} AS carried_in,
  {money("CASE WHEN hold_reasons = '' AND earned >= min_payout AND earned >= 0 THEN earned ELSE 0 END")} AS payable,
  {money("CASE WHEN hold_reasons = '' AND NOT (earned >= min_payout AND earned >= 0) THEN earned ELSE 0 END")} AS carried,
  {money("CASE WHEN hold_reasons <> '' THEN earned ELSE 0 END")} AS held,
  CASE WHEN hold_reasons <> '' THEN 'HELD' WHEN earned >= min_payout AND earned >= 0 THEN 'PAYABLE' ELSE 'BELOW_THRESHOLD' END AS status,
  hold_reasons
FROM settled ORDER BY partner_id
"""


def duckdb_run(data_dir, out):
    """Runs the DuckDB query in a child process (so its time and memory are measured alike)."""
    script = DATA / ".duck.py"
    script.write_text(
        "import duckdb, sys\n"
        "con = duckdb.connect(config={'threads': 2})\n"
        f"con.execute(\"COPY ({{}}) TO '{out}' (HEADER)\".format(open(sys.argv[1]).read()))\n")
    sql = DATA / ".query.sql"
    sql.write_text(query(data_dir))
    return timed([sys.executable, str(script), str(sql)])


def engine(data_dir, work, fresh):
    if fresh and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    return timed([str(TARGET / "payout"), "--data", str(data_dir), "--reports", str(work / "reports"),
                  "--database-url", f"sqlite://{work / 'payout.db'}", "run", "--period", PERIOD])


def preview(data_dir, out):
    if out.exists():
        shutil.rmtree(out)
    return timed([str(TARGET / "payout"), "--data", str(data_dir), "preview", "--period", PERIOD,
                  "--out", str(out)])


def same_cells(a, b):
    """The engine's payouts.csv (a) against DuckDB's (b), cell for cell on DuckDB's columns: the
    SPEC columns, which come first; the engine's review columns after them are not in the
    query."""
    rows_b = list(csv.reader(open(b, newline="")))
    width = len(rows_b[0]) if rows_b else 0
    rows_a = [row[:width] for row in csv.reader(open(a, newline=""))]
    if rows_a == rows_b:
        return True, len(rows_a) - 1
    for i, (x, y) in enumerate(zip(rows_a, rows_b)):
        if x != y:
            print(f"  first difference at row {i}: engine {x} duckdb {y}")
            break
    return False, len(rows_a) - 1


def main():
    sizes = [int(s) for s in sys.argv[1:]] or [1_000_000, 10_000_000]
    partners = int(os.environ.get("BENCH_PARTNERS", "100000"))
    results = []
    for lines in sizes:
        for fmt in ["csv", "parquet"]:
            data_dir = DATA / f"{lines}-{fmt}"
            if not (data_dir / "partners.csv").exists():
                subprocess.run([str(TARGET / "payout-generate"), "--out", str(data_dir), "--lines", str(lines),
                                "--partners", str(partners), "--format", fmt], check=True, stdout=subprocess.DEVNULL)
            work = DATA / f"work-{lines}-{fmt}"
            out = DATA / f"duckdb-{lines}-{fmt}.csv"
            compute, full, rerun, duck = [], [], [], []
            for _ in range(REPEATS):
                compute.append(preview(data_dir, DATA / f"preview-{lines}-{fmt}"))
                full.append(engine(data_dir, work, fresh=True))
                rerun.append(engine(data_dir, work, fresh=False))
                duck.append(duckdb_run(data_dir, out))
            equal_run, rows = same_cells(work / "reports" / PERIOD / "payouts.csv", out)
            equal_preview, _ = same_cells(DATA / f"preview-{lines}-{fmt}" / "payouts.csv", out)
            med = lambda runs: (statistics.median(r[0] for r in runs), max(r[1] for r in runs))
            results.append((lines, fmt, med(compute), med(full), med(rerun), med(duck),
                            equal_run and equal_preview, rows))
    print(f"{'lines':>10} {'format':<8} {'measure':<28} {'median s':>9} {'peak MB':>8} {'x DuckDB':>9}")
    for lines, fmt, compute, full, rerun, duck, equal, rows in results:
        for name, (seconds, mb) in [("(a) compute (preview)", compute), ("(b) payout run (full)", full),
                                    ("(c) payout run (unchanged)", rerun), ("(d) DuckDB query", duck)]:
            print(f"{lines:>10} {fmt:<8} {name:<28} {seconds:>9.2f} {mb:>8.0f} {seconds / duck[0]:>9.2f}")
        print(f"{lines:>10} {fmt:<8} unchanged re-run / full run: {rerun[0] / full[0]:.2f}")
        print(f"{lines:>10} {fmt:<8} payouts.csv (preview and run) {'equal' if equal else 'DIFFER FROM'} DuckDB's ({rows} rows)")
    goals(results)


def goals(results):
    """The scale issue's goals, on the largest size measured (CSV, and Parquet against CSV)."""
    largest = max(r[0] for r in results)
    by_format = {r[1]: r for r in results if r[0] == largest}
    if "csv" not in by_format:
        return
    _, _, compute, full, rerun, duck, equal, _ = by_format["csv"]
    checks = [
        (f"compute <= 0.8x DuckDB ({largest} CSV lines; {compute[0] / duck[0]:.2f})", compute[0] <= 0.8 * duck[0]),
        (f"full run <= 2x DuckDB ({full[0] / duck[0]:.2f})", full[0] <= 2 * duck[0]),
        ("full run peak RSS <= 1 GB", full[1] <= 1024),
        ("unchanged re-run <= 0.2x first run", rerun[0] <= 0.2 * full[0]),
        ("payouts.csv equal to DuckDB's", equal),
    ]
    if "parquet" in by_format:
        parquet = by_format["parquet"]
        checks.append((f"Parquet compute <= 1.05x CSV ({parquet[2][0] / compute[0]:.2f})",
                       parquet[2][0] <= 1.05 * compute[0]))
        checks.append((f"Parquet full run <= 1.05x CSV ({parquet[3][0] / full[0]:.2f})",
                       parquet[3][0] <= 1.05 * full[0]))
    for name, met in checks:
        print(f"goal: {name}: {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
