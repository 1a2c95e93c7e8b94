"""A real SMTP server for the delivery tests (aiosmtpd, from Debian's python3-aiosmtpd).

It accepts mail on 127.0.0.1:PORT and stores each accepted message as a file in DIR. Like a
real server it can refuse: recipients whose local part starts with `tempfail` get
`451` the first TEMPFAIL_TIMES times, those starting with `permfail` get `550`.
Prints READY once listening; stops on SIGTERM.
"""
import argparse
import asyncio
import os
import signal
import threading
from collections import Counter

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, directory, tempfail_times):
        self.directory = directory
        self.tempfail_times = tempfail_times
        self.refusals = Counter()
        self.count = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0].lower()
        if local.startswith("permfail"):
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        if local.startswith("tempfail"):
            with self.lock:
                self.refusals[address] += 1
                refuse = self.refusals[address] <= self.tempfail_times
            if refuse:
                return "451 4.3.0 <%s>: try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            number = self.count
        name = "%06d-%d" % (number, os.getpid())
        temporary = os.path.join(self.directory, name + ".tmp")
        with open(temporary, "wb") as f:
            f.write(("X-Envelope-To: %s\r\n" % ",".join(envelope.rcpt_tos)).encode())
            f.write(envelope.original_content)
        os.rename(temporary, os.path.join(self.directory, name + ".eml"))
        return "250 2.0.0 Message accepted"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--tempfail-times", type=int, default=2)
    args = parser.parse_args()
    controller = Controller(Sink(args.dir, args.tempfail_times), hostname="127.0.0.1", port=args.port, data_size_limit=50_000_000)
    controller.start()
    print("READY", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
