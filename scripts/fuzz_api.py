"""Schema-driven fuzzing of the local server with Schemathesis.

Starts `publinks-local` on a fresh data directory (embedded store, demo data
seeded) on a free loopback port, collects real ids from its API with the
administrator's bearer token, and runs `schemathesis run` against the served
OpenAPI document, every operation, with the checks: no 5xx, responses that
conform to the schema (body, content type, headers) and only documented
status codes. Real ids and share tokens are drawn often, so requests reach
the handlers' rules rather than stopping at a 404.

Usage: python scripts/fuzz_api.py SERVER_BINARY OUT_DIR
Exit status: Schemathesis's (0 when every check passed).
Bounds: FUZZ_MAX_EXAMPLES cases per operation and phase (default 50), and
FUZZ_TIMEOUT seconds for the whole run (default 300), past which it fails.
FUZZ_SEED changes the generated cases (the default keeps them reproducible);
FUZZ_CHECKS replaces the list of checks (e.g. `all`, to explore).
"""

import collections
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "response_schema_conformance",
        "content_type_conformance",
        "response_headers_conformance",
    ]
)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, path, token=None, body=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(base + path, data=data, headers=headers, method="POST" if data else "GET")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


def pending_uploads(base, token):
    """Two uploads left for the fuzzer to complete: one with its bytes sent, one without."""
    uploads = []
    for send in (True, False):
        ticket = call(base, "/api/uploads", token, {"name": "fuzz.txt", "content_type": "text/plain", "size": 5})
        if send:
            req = urllib.request.Request(ticket["url"], data=b"hello", headers=ticket["headers"], method="PUT")
            urllib.request.urlopen(req, timeout=30).close()
        uploads.append(ticket["upload_id"])
    return uploads


def collect_ids(base, token):
    """Every folder, file, collection, link and user id of the demo account."""
    ids = collections.defaultdict(list)
    pending = ["root"]
    while pending:
        folder = pending.pop()
        for sub in call(base, f"/api/folders/{folder}/folders?limit=200", token)["items"]:
            ids["folder"].append(sub["id"])
            pending.append(sub["id"])
        ids["file"] += [f["id"] for f in call(base, f"/api/folders/{folder}/files?limit=200", token)["items"]]
    ids["collection"] = [c["id"] for c in call(base, "/api/collections?limit=200", token)["items"]]
    ids["link"] = [link["id"] for link in call(base, "/api/links?limit=200", token)["items"]]
    ids["upload"] = pending_uploads(base, token)
    return ids


def archives(base, token, share, session, folder):
    """Two archive jobs, so that archive ids are real: the administrator's of a
    folder, and the visitor session's of everything its link shares."""
    mine = call(base, "/api/archives", token, {"folder_id": folder})["id"]
    req = urllib.request.Request(
        base + share + "/api/archives", data=b"{}", headers={"Authorization": f"Bearer {session}", "Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        theirs = json.load(resp)["id"]
    return [mine, theirs]


def toml_list(values):
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def write_config(path, info, ids, visitor_session, out):
    admin = next(u for u in info["users"] if u["role"] == "admin")
    others = [u["id"] for u in info["users"] if u["role"] != "admin"]
    shares = [link["url"].rsplit("/s/", 1)[1] for link in info["links"]]
    targets = ids["folder"] + ids["file"] + ids["collection"]
    dictionaries = {
        "shares": shares,
        "folders": ids["folder"] + ["root"],
        "files": ids["file"],
        "collections": ids["collection"],
        "links": ids["link"],
        # Not the administrator: a fuzzed role change or delete of the caller
        # would turn every later request into a 403 or 401.
        "users": others,
        "targets": targets,
        "uploads": ids["upload"],
        "archives": ids["archive"],
    }
    bindings = {
        "path.token": "shares",
        "path.folder_id": "folders",
        "path.file_id": "files",
        "path.collection_id": "collections",
        "path.link_id": "links",
        "path.user_id": "users",
        "path.target_id": "targets",
        "path.upload_id": "uploads",
        "path.archive_id": "archives",
        "query.link_id": "links",
        "query.target_id": "targets",
        "body.target.id": "targets",
        "body.parent_id": "folders",
        "body.folder_id": "folders",
        "body.collection_id": "collections",
        "body.file_id": "files",
    }
    lines = [
        "# Written by scripts/fuzz_api.py for one run; see there.",
        f"[cache]\ndirectory = {json.dumps(os.path.join(out, 'cache'))}",
        f'[auth.openapi.dashboardJwt]\nbearer = "{admin["token"]}"',
        f'[auth.openapi.visitorSession]\nbearer = "{visitor_session}"',
        "[dictionaries]",
    ]
    lines += [f"{name} = {{ values = {toml_list(values)} }}" for name, values in dictionaries.items() if values]
    lines.append("[parameters]")
    lines += [
        f'"{key}" = {{ dictionary = "{name}", probability = 0.8 }}'
        for key, name in bindings.items()
        if dictionaries[name]
    ]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def cases_per_operation(ndjson_path):
    """Counts the test cases Schemathesis generated, per operation, from its event log."""
    counts = collections.Counter()
    with open(ndjson_path) as f:
        for line in f:
            event = json.loads(line)
            finished = event.get("ScenarioFinished")
            if not finished:
                continue
            recorder = finished.get("recorder") or {}
            label = recorder.get("label") or finished.get("label")
            counts[label] += len(recorder.get("cases") or {})
    return counts


def main():
    server, out = sys.argv[1], os.path.abspath(sys.argv[2])
    venv_bin = os.path.dirname(sys.executable)
    max_examples = os.environ.get("FUZZ_MAX_EXAMPLES", "50")
    timeout = int(os.environ.get("FUZZ_TIMEOUT", "300"))
    os.makedirs(out, exist_ok=True)
    data_dir, info_path = os.path.join(out, "data"), os.path.join(out, "server.json")
    subprocess.run(["rm", "-rf", data_dir, info_path], check=True)
    port = free_port()
    log = open(os.path.join(out, "server.log"), "w")
    env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn"))
    proc = subprocess.Popen(
        [server, "--data-dir", data_dir, "--port", str(port), "--info-file", info_path],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        for _ in range(600):
            if os.path.exists(info_path) or proc.poll() is not None:
                break
            time.sleep(0.1)
        if not os.path.exists(info_path):
            sys.exit(f"the server did not start; see {out}/server.log")
        info = json.load(open(info_path))
        base = info["base_url"]
        admin = next(u for u in info["users"] if u["role"] == "admin")
        ids = collect_ids(base, admin["token"])
        protected = next(link["url"] for link in info["links"] if link.get("password"))
        session = call(base, protected[len(base) :] + "/api/session", body={"password": info["link_password"]})
        ids["archive"] = archives(base, admin["token"], protected[len(base) :], session["token"], ids["folder"][0])
        config = os.path.join(out, "schemathesis.toml")
        write_config(config, info, ids, session["token"], out)
        ndjson = os.path.join(out, "events.ndjson")
        command = [
            os.path.join(venv_bin, "schemathesis"),
            "--config-file",
            config,
            "run",
            f"{base}/api/openapi.json",
            "--checks",
            os.environ.get("FUZZ_CHECKS", CHECKS),
            "--max-examples",
            max_examples,
            "--seed",
            os.environ.get("FUZZ_SEED", "20260901"),
            # One worker: with two threads, CPython 3.11's parser (which Hypothesis
            # reaches through `inspect`) failed now and then with "AST constructor
            # recursion depth mismatch".
            "--workers",
            "1",
            "--request-timeout",
            "30",
            "--generation-database",
            os.path.join(out, "examples"),
            "--no-color",
            "--report",
            "junit,ndjson",
            "--report-dir",
            out,
            "--report-ndjson-path",
            ndjson,
            "--report-junit-path",
            os.path.join(out, "junit.xml"),
        ]
        print("$ " + " ".join(command[:1] + ["..."] + command[3:]), flush=True)
        started = time.monotonic()
        try:
            status = subprocess.run(command, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            print(f"schemathesis did not finish within {timeout} s", flush=True)
            status = 1
        elapsed = time.monotonic() - started
        if os.path.exists(ndjson):
            counts = cases_per_operation(ndjson)
            width = max(map(len, counts), default=0)
            print(f"\nGenerated test cases per operation ({sum(counts.values())} in all, {elapsed:.0f} s):")
            for label, n in sorted(counts.items(), key=lambda kv: kv[0].split(" ", 1)[::-1]):
                print(f"  {label:<{width}}  {n}")
        return status
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    sys.exit(main())
