"""HTTPS page server for tests/e2e_tls.rs: serves a directory over TLS and
appends the query of every GET /report to a file (the page's playback reports).

Usage: server.py PORT CERT KEY ROOT REPORT_FILE
"""
import functools
import http.server
import ssl
import sys
import urllib.parse

port, cert, key, root, report = sys.argv[1:6]


class Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        if url.path == "/report":
            with open(report, "a") as f:
                f.write(url.query + "\n")
            self.send_response(204)
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, *args):
        pass


httpd = http.server.ThreadingHTTPServer(
    ("127.0.0.1", int(port)), functools.partial(Handler, directory=root)
)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
httpd.serve_forever()
