"""History benchmark: does a month's run stay as fast and as small with a year behind it?

Run through scripts/bench-history.sh. Months 2025-10 to 2026-09 are each generated
(`payout-generate --month`, LINES lines, BENCH_HISTORY_PARTNERS partners, default 2,000: a
close renders a statement per partner), run and closed on one SQLite store; 2026-10 is then
generated and run. Printed: the first and the thirteenth month's `payout run` time and peak RSS
(from /usr/bin/time), their ratio (goal <= 1.3) and the RSS growth per line of history (goal
<= 4 bytes), with whether each goal is met.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench-data"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"
MONTHS = [f"{2025 + (9 + i) // 12}-{(9 + i) % 12 + 1:02}" for i in range(13)]


def timed(command):
    """Runs a command under /usr/bin/time; returns (seconds, peak RSS in bytes)."""
    stats = DATA / ".time-history"
    subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", str(stats)] + command, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds, kilobytes = stats.read_text().split()
    return float(seconds), int(kilobytes) * 1024


def main():
    lines = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    partners = os.environ.get("BENCH_HISTORY_PARTNERS", "2000")
    work = DATA / f"history-{lines}"
    if work.exists():
        shutil.rmtree(work)
    data = work / "data"
    payout = [str(TARGET / "payout"), "--data", str(data), "--reports", str(work / "reports"),
              "--database-url", f"sqlite://{work / 'payout.db'}"]
    runs = []
    for number, month in enumerate(MONTHS, start=1):
        subprocess.run([str(TARGET / "payout-generate"), "--out", str(data), "--lines", str(lines),
                        "--partners", partners, "--month", month], check=True, stdout=subprocess.DEVNULL)
        seconds, rss = timed(payout + ["run", "--period", month])
        runs.append((month, seconds, rss))
        print(f"month {number:>2} {month}: run {seconds:6.2f} s, peak {rss / 2**20:6.0f} MB", flush=True)
        quiet = {"check": True, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        if number == 1:
            # The first file's late lines (2%, of the month before) are closed first: a period
            # closes only after every earlier one with revenue, and from a draft made since.
            subprocess.run(payout + ["close", "--period", "2025-09"], **quiet)
            subprocess.run(payout + ["run", "--period", month], **quiet)
        if number < len(MONTHS):
            subprocess.run(payout + ["close", "--period", month], **quiet)
    (_, first_s, first_rss), (_, last_s, last_rss) = runs[0], runs[-1]
    history = lines * (len(MONTHS) - 1)
    ratio = last_s / first_s
    per_line = (last_rss - first_rss) / history
    print(f"history: {len(MONTHS) - 1} closed months of {lines} lines ({history} lines), "
          f"{partners} partners")
    print(f"13th month run / 1st month run: {last_s:.2f} s / {first_s:.2f} s = {ratio:.2f}")
    print(f"peak RSS growth per line of history: ({last_rss / 2**20:.0f} MB - {first_rss / 2**20:.0f} MB)"
          f" / {history} = {per_line:.2f} bytes")
    print(f"goal: 13th month run <= 1.3x the 1st: {'met' if ratio <= 1.3 else 'NOT met'}")
    print(f"goal: peak RSS growth <= 4 bytes per line of history: {'met' if per_line <= 4 else 'NOT met'}")


if __name__ == "__main__":
    main()
