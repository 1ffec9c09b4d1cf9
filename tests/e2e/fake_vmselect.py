#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A stand-in for a cluster vmselect, for tests/e2e/verify-live.sh.

Usage: fake_vmselect.py PORT_FILE REQUEST_LOG [--dedup INTERVAL] [--lifetime S]

Listens on 127.0.0.1 (a free port, written to PORT_FILE once it accepts
connections), appends the path of every request to REQUEST_LOG, and answers:
- /select/ACCOUNT:PROJECT/prometheus/api/v1/export: 200 with no series (a
  cluster whose storage nodes lost everything),
- /metrics: the flag lines vmselect publishes (dedup.minScrapeInterval),
- anything else: 404.
It exits by itself after --lifetime seconds (default 120), so a test that
dies cannot leave it behind.
"""

import argparse
import http.server
import os
import re
import threading

EXPORT = re.compile(r"^/select/\d+:\d+/prometheus/api/v1/export$")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port_file")
    ap.add_argument("request_log")
    ap.add_argument("--dedup", default="0s")
    ap.add_argument("--lifetime", type=float, default=120)
    args = ap.parse_args()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            path = self.path.split("?", 1)[0]
            with open(args.request_log, "a") as log:
                log.write(path + "\n")
            if EXPORT.match(path):
                body = b""
            elif path == "/metrics":
                body = ('flag{name="dedup.minScrapeInterval", value="%s", is_set="true"} 1\n'
                        % args.dedup).encode()
            else:
                self.send_error(404, "unsupported path")
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *unused):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Timer(args.lifetime, server.shutdown).start()
    with open(args.port_file + ".tmp", "w") as f:
        f.write("%d\n" % server.server_address[1])
    os.rename(args.port_file + ".tmp", args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
