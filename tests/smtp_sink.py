"""A real SMTP server for the delivery tests (aiosmtpd, from Debian's python3-aiosmtpd).

It accepts mail on 127.0.0.1:PORT and stores each accepted message as a file in DIR. Like a
real server it can refuse: recipients whose local part starts with `tempfail` get
`451` the first TEMPFAIL_TIMES times, those starting with `permfail` get `550`.
With --tls-cert/--tls-key it offers STARTTLS and refuses mail before it; with --auth-user
it requires AUTH (the password comes from the SINK_AUTH_PASSWORD variable), over TLS only.
Each stored message starts with X-Envelope-To, X-Session-TLS and X-Session-Auth lines.
Prints READY once listening; stops on SIGTERM.
"""
import argparse
import asyncio
import os
import signal
import threading
from collections import Counter

import ssl

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


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
            f.write(("X-Session-TLS: %s\r\n" % ("yes" if session.ssl else "no")).encode())
            f.write(("X-Session-Auth: %s\r\n" % ("yes" if session.authenticated else "no")).encode())
            f.write(envelope.original_content)
        os.rename(temporary, os.path.join(self.directory, name + ".eml"))
        return "250 2.0.0 Message accepted"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--tempfail-times", type=int, default=2)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--auth-user")
    args = parser.parse_args()
    options = {"data_size_limit": 50_000_000}
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        options.update(tls_context=context, require_starttls=True)
    if args.auth_user:
        password = os.environ["SINK_AUTH_PASSWORD"]

        def authenticator(server, session, envelope, mechanism, auth_data):
            login = getattr(auth_data, "login", b"") or b""
            secret = getattr(auth_data, "password", b"") or b""
            return AuthResult(success=login.decode() == args.auth_user and secret.decode() == password)

        options.update(authenticator=authenticator, auth_required=True, auth_require_tls=True)
    controller = Controller(Sink(args.dir, args.tempfail_times), hostname="127.0.0.1", port=args.port, **options)
    controller.start()
    print("READY", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
