"""Statements and email throughput (issue 14): `payout close` and `payout send` at scale.

Run through scripts/bench-statements.sh, which builds the engine (or takes PAYOUT_BIN_DIR's
binaries), starts Postfix's smtp-sink on a free loopback port (BENCH_SMTP_PORT) and stops it at
the end. On PARTNERS generated partners (default 100,000; BENCH_LINES_PER_PARTNER lines each,
default 10) it:
  setup    generates the input, runs and closes 2026-09 (2% of the lines are of the month
           before), writes that close's emails as .eml files (so the outbox holds only
           2026-10's; they also give a statement email's size), runs 2026-10; timed apart
  close    `payout close --period 2026-10`: one HTML + PDF statement per payout row and its
           emails queued; wall time, CPU time, peak RSS (/usr/bin/time), statements/s
  send     `payout send --smtp-url smtp://127.0.0.1:PORT` with --connections 1, then 4, each
           on a fresh copy of the store as the close left it; messages/s, peak RSS; every
           queued message must be sent (failed 0, still queued 0)
  ceiling  smtp-source to the same smtp-sink with messages of a statement email's size (1 and
           4 sessions, one session per connection kept open, as `send` does); messages/s
and prints one table (measure, value, goal, met?) with each send figure over the ceiling of
the same session count. Exits 0 when goals are not met, non-zero when a command fails or a
message is not delivered.
"""
import email
import email.policy
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench-data"
TARGET = Path(os.environ.get("PAYOUT_BIN_DIR") or
              Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release")
PORT = os.environ["BENCH_SMTP_PORT"]
SMTP_SOURCE = os.environ.get("BENCH_SMTP_SOURCE", "smtp-source")
LINES_PER_PARTNER = int(os.environ.get("BENCH_LINES_PER_PARTNER", "10"))
PERIOD, BEFORE = "2026-10", "2026-09"
# The engine's settings come from flags only: no PAYOUT_* variable or payout.toml of the user's.
ENV = {k: v for k, v in os.environ.items() if not k.startswith("PAYOUT_")}


# The options every payout command gets, left out when a failing command is named.
SHARED = {"--data", "--reports", "--database-url"}


class Failed(Exception):
    pass


def timed(command, cwd):
    """Runs a command under /usr/bin/time; returns (wall s, CPU s, peak RSS MB, stdout)."""
    stats = DATA / ".time-statements"
    start = time.monotonic()
    done = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", str(stats)] + command, cwd=cwd,
                          env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - start
    if done.returncode != 0:
        shown = [Path(command[0]).name] + [a for i, a in enumerate(command[1:], 1) if not (
            a in SHARED or command[i - 1] in SHARED)]
        raise Failed(f"{' '.join(shown)} exited {done.returncode}: "
                     f"{(done.stderr.strip().splitlines() or ['(no output)'])[-1]}")
    user, system, kilobytes = stats.read_text().split()[-3:]
    return wall, float(user) + float(system), int(kilobytes) / 1024, done.stdout


def copy_store(source, target):
    for suffix in ["", "-wal", "-shm"]:
        dst = Path(str(target) + suffix)
        if dst.exists():
            dst.unlink()
        src = Path(str(source) + suffix)
        if src.exists():
            shutil.copyfile(src, dst)


def sent_summary(stdout):
    found = re.search(r"sent (\d+), failed (\d+), retried (\d+), still queued (\d+)", stdout)
    if not found:
        raise Failed(f"no summary line in send's output: {stdout.strip()[-200:]!r}")
    return tuple(int(n) for n in found.groups())


def message_size(mail_dir, statements_dir):
    """A 2026-10 statement email's size in bytes, from the 2026-09 .eml files (their headers,
    text and HTML parts, and the attachment's encoding ratio) and the 2026-10 PDFs filed at
    close: what is not the attachment, plus the mean 2026-10 PDF encoded the same way."""
    emls = sorted(mail_dir.glob("*.eml"))[:500]
    if not emls:
        raise Failed(f"no .eml file in {mail_dir}")
    overhead, ratio = [], []
    for path in emls:
        raw = path.read_bytes()
        message = email.message_from_bytes(raw, policy=email.policy.default)
        parts = [p for p in message.walk() if p.get_content_type() == "application/pdf"]
        if not parts:
            raise Failed(f"{path.name} has no PDF attachment")
        encoded = len(parts[0].get_payload(decode=False).encode())
        decoded = len(parts[0].get_payload(decode=True))
        overhead.append(len(raw) - encoded)
        ratio.append(encoded / decoded)
    pdfs = [p.stat().st_size for p in statements_dir.glob("*.pdf")]
    mean = lambda xs: sum(xs) / len(xs)
    return round(mean(overhead) + mean(ratio) * mean(pdfs)), mean(pdfs)


def smtp_source(sessions, count, size):
    """smtp-source to the sink: COUNT messages of SIZE payload bytes over SESSIONS sessions,
    each kept open for its next message (-d); returns (wall s, messages/s)."""
    start = time.monotonic()
    done = subprocess.run([SMTP_SOURCE, "-d", "-s", str(sessions), "-m", str(count), "-l", str(size),
                           "-f", "incentives@payout.example", "-t", "partner@example.com",
                           "-S", "benchmark", f"127.0.0.1:{PORT}"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - start
    if done.returncode != 0:
        raise Failed(f"smtp-source -s {sessions} exited {done.returncode}: {done.stderr.strip()[-200:]}")
    return wall, count / wall


def main():
    partners = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    lines = partners * LINES_PER_PARTNER
    work = DATA / f"statements-{partners}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    store = work / "payout.db"
    closed = work / "closed.db"
    payout = [str(TARGET / "payout"), "--data", str(work / "data"), "--reports", str(work / "reports"),
              "--database-url", f"sqlite://{store}"]
    print(f"{partners} partners, {lines} lines ({LINES_PER_PARTNER} per partner), SQLite store, "
          f"smtp-sink on 127.0.0.1:{PORT}", flush=True)

    def setup(name, command):
        wall, cpu, rss, stdout = timed(command, work)
        print(f"setup: {name:<34} {wall:7.1f} s, CPU {cpu:7.1f} s, peak {rss:5.0f} MB", flush=True)
        return stdout

    setup("payout-generate", [str(TARGET / "payout-generate"), "--out", str(work / "data"),
                              "--lines", str(lines), "--partners", str(partners)])
    setup(f"run --period {BEFORE}", payout + ["run", "--period", BEFORE])
    setup(f"close --period {BEFORE}", payout + ["close", "--period", BEFORE])
    before_mail = work / f"mail-{BEFORE}"
    before_sent = sent_summary(setup(f"send {BEFORE} to .eml files", payout + ["send", "--mail-dir", str(before_mail)]))
    if before_sent[1] or before_sent[3]:
        raise Failed(f"{BEFORE}'s emails not all written: sent {before_sent[0]}, failed {before_sent[1]}, "
                     f"still queued {before_sent[3]}")
    setup(f"run --period {PERIOD}", payout + ["run", "--period", PERIOD])

    wall, cpu, close_rss, stdout = timed(payout + ["close", "--period", PERIOD], work)
    found = re.search(r"(\d+) statement\(s\), (\d+) email\(s\) queued", stdout)
    if not found:
        raise Failed(f"no statement count in close's output: {stdout.strip()[-200:]!r}")
    statements, queued = int(found.group(1)), int(found.group(2))
    close = (wall, cpu, close_rss, statements / wall)
    print(f"close: {statements} statements, {queued} emails queued in {wall:.1f} s", flush=True)
    copy_store(store, closed)

    size, pdf = message_size(before_mail, work / "reports" / PERIOD / "statements")
    shutil.rmtree(before_mail)
    print(f"statement email: about {size} bytes (mean PDF {pdf:.0f} bytes)", flush=True)

    problems, sends = [], {}
    for connections in [1, 4]:
        copy_store(closed, store)
        wall, cpu, rss, stdout = timed(payout + ["send", "--smtp-url", f"smtp://127.0.0.1:{PORT}",
                                                 "--connections", str(connections)], work)
        sent, failed, retried, still = sent_summary(stdout)
        print(f"send, {connections} connection(s): sent {sent}, failed {failed}, retried {retried}, "
              f"still queued {still} in {wall:.1f} s", flush=True)
        if sent != queued or failed or still:
            problems.append(f"send --connections {connections}: sent {sent} of {queued}, failed {failed}, "
                            f"still queued {still}")
        sends[connections] = (wall, cpu, rss, sent / wall, retried)

    ceilings = {}
    for sessions in [1, 4]:
        ceilings[sessions] = smtp_source(sessions, queued, size)
        print(f"smtp-source, {sessions} session(s): {queued} messages in {ceilings[sessions][0]:.1f} s", flush=True)

    rows = [
        ("close: statements/s", f"{close[3]:,.0f}", ">= 2,000", close[3] >= 2000),
        ("close: wall s / CPU s", f"{close[0]:.1f} / {close[1]:.1f}", "", None),
        ("close: peak RSS MB", f"{close[2]:.0f}", "<= 1,024", close[2] <= 1024),
    ]
    for connections, goal in [(1, 1000), (4, 4000)]:
        wall, cpu, rss, rate, _ = sends[connections]
        ceiling = ceilings[connections][1]
        rows += [
            (f"send, {connections} conn: messages/s", f"{rate:,.0f}", f">= {goal:,}", rate >= goal),
            (f"send, {connections} conn: wall s / CPU s", f"{wall:.1f} / {cpu:.1f}", "", None),
            (f"send, {connections} conn: peak RSS MB", f"{rss:.0f}", "<= 1,024", rss <= 1024),
            (f"smtp-source, {connections} session: messages/s", f"{ceiling:,.0f}", "(ceiling)", None),
            (f"send / smtp-source, {connections}", f"{rate / ceiling:.2f}", "", None),
        ]
    rows.append(("send: 4 conn / 1 conn", f"{sends[4][3] / sends[1][3]:.2f}", "", None))
    width = max(len(r[0]) for r in rows)
    print()
    print(f"{'measure':<{width}} | {'value':>13} | {'goal':<9} | met?")
    for name, value, goal, met in rows:
        print(f"{name:<{width}} | {value:>13} | {goal:<9} | {'' if met is None else 'met' if met else 'NOT met'}")
    print()
    print(f"goals met: {sum(1 for r in rows if r[3])} of {sum(1 for r in rows if r[3] is not None)}; "
          f"not met: {', '.join(r[0] for r in rows if r[3] is False) or 'none'}")
    if problems:
        for problem in problems:
            print(f"FAILED: {problem}")
        sys.exit(1)


if __name__ == "__main__":
    try:
        main()
    except Failed as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
