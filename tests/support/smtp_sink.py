"""A real SMTP server on loopback for the e-mail tests (aiosmtpd).

Usage: smtp_sink.py PORT DIR [DELAY_SECONDS]
With DELAY_SECONDS, each message is answered only after that long (a slow server).
Each accepted message is written to DIR as NNN.eml (the raw message as received) with the
envelope recipients in NNN.rcpt; the .eml appears only once complete (written, then renamed).
Prints "READY" when listening, then serves until killed.
"""
import asyncio
import itertools
import os
import signal
import sys
import time

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, directory, delay):
        self.directory = directory
        self.delay = delay
        self.counter = itertools.count()

    async def handle_DATA(self, server, session, envelope):
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        stem = os.path.join(self.directory, f"{time.time_ns()}-{next(self.counter)}")
        with open(stem + ".rcpt", "w") as f:
            f.write("\n".join(envelope.rcpt_tos))
        with open(stem + ".tmp", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.rename(stem + ".tmp", stem + ".eml")
        return "250 Message accepted for delivery"


def main():
    port, directory = int(sys.argv[1]), sys.argv[2]
    delay = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    os.makedirs(directory, exist_ok=True)
    controller = Controller(Sink(directory, delay), hostname="127.0.0.1", port=port)
    controller.start()
    print("READY", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    controller.stop()


if __name__ == "__main__":
    main()
