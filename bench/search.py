"""Search within a feed, benchmarked: a 50,000-brief feed, queries' p50/p99 against a naive scan.

    .venv/bin/python bench/search.py                 # 50,000 briefs, 40 runs of each query
    .venv/bin/python bench/search.py --briefs 5000   # smaller, quicker

Loopback only, every step bounded: starts its own ``redis-server`` (no persistence) and one
``livefeed serve`` on free ports in a temporary directory, makes a feed, writes ``--briefs``
briefs as import JSONL (headline and about 400 characters of body each, drawn from an
English, Ukrainian and Arabic vocabulary, with a few rare words) and imports them with
``livefeed import``. Then, through ``GET /api/feeds/{feed}/search`` on one keep-alive
connection:

- the first query of a new index file (built from the briefs hash, answered 503 meanwhile:
  the time until it answers 200, the 503s, the server's CPU);
- after all the queries, the first query of a restarted server with the file kept (it catches
  up from the file's position instead of rebuilding);
- each query kind (common word, rare word, prefix, two words, Ukrainian, Arabic) ``--runs``
  times, p50 and p99 of the whole request, and the server's CPU time per query (user and
  system, from /proc: what the query costs whatever else the machine is doing);
- the same after each publish (the index catches up one event before answering).

The peer, measured in the same run on the same Redis: a naive scan, what search costs without
an index: every brief of the hash read (HSCAN) and folded (``model.search.fold``, the same
rule), its words checked; ``--peer-runs`` times per query kind. Prints a table; asserts
nothing. Only processes started here are stopped, by their PIDs.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from livefeed.model.search import fold, parse_query, words  # noqa: E402
from livefeed.model.text import plain_text  # noqa: E402
from livefeed.storage.keys import Keys  # noqa: E402
from livefeed.storage.redis_server import find_redis_server, free_port  # noqa: E402

TOKEN = "bench-search-token-0123456789"
PREFIX = "bench-search"
COMMON = ("city", "power", "school", "bridge", "shelling", "train", "report", "region",
          "mayor", "water", "road", "drone", "night", "morning", "hospital", "border")  # fmt: skip
UKRAINIAN = ("Київ", "Харків", "обстріл", "тривога", "енергетика", "потяг", "мер", "вулиця")
ARABIC = ("القاهرة", "مُحَمَّد", "الحكومة", "انفجار", "مدينة", "الرئيس")
RARE = ("zaporizhzhia-dam", "quokka", "Übergangsregierung")
QUERIES = {
    "common word": "power",
    "two words": "bridge train",
    "prefix": "hosp",
    "rare word": "quokka",
    "Ukrainian": "КИЇВ",
    "Arabic": "محمد",
}


def write_briefs(path: Path, count: int, seed: int = 17) -> None:
    """``count`` briefs as import JSONL, oldest first, a minute apart, ending an hour ago."""
    rng = random.Random(seed)
    vocabulary = [*COMMON * 4, *UKRAINIAN * 2, *ARABIC, "the", "of", "and", "in", "near"]
    start = datetime.now(UTC) - timedelta(minutes=count + 60)
    with open(path, "wb") as out:
        for i in range(count):
            head = " ".join(rng.choices(vocabulary, k=6))
            body = " ".join(rng.choices(vocabulary, k=60))
            if i % 997 == 0:
                body += " " + RARE[i % len(RARE)]
            at = start + timedelta(minutes=i)
            line = {
                "published_at": at.isoformat(timespec="milliseconds")[:-6] + "Z",
                "headline": f"{i}: {head}",
                "body": f"<p>{body}</p>",
                "tags": ["bench"],
            }
            out.write(orjson.dumps(line) + b"\n")


def cpu_ms(pid: int) -> float:
    """CPU time (user and system) the process has used so far, in ms."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def naive_scan(client: redis.Redis, slug: str, q: str) -> int:
    """Hits the way a search without an index finds them: every brief read and folded."""
    query = parse_query(q)
    whole, prefix = set(query.words[:-1]), query.words[-1]
    hits = 0
    for _, raw in client.hscan_iter(Keys(PREFIX).states(slug), count=1000):
        brief = orjson.loads(raw)
        text = " ".join((brief["headline"], plain_text(brief["body"]), *brief["tags"]))
        found = set(words(fold(text)))
        if whole <= found and any(word.startswith(prefix) for word in found):
            hits += 1
    return hits


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--briefs", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--peer-runs", type=int, default=3)
    args = parser.parse_args()
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        try:
            return run(args, Path(tmp), procs)
        finally:
            for proc in reversed(procs):
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(15)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()


def start(
    env: dict[str, str], port: int, url: str, tmp: Path, base: str
) -> subprocess.Popen[bytes]:
    """``livefeed serve`` on ``port``, once it answers /healthz."""
    with open(tmp / "livefeed.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "livefeed", "serve", "--port", str(port), "--redis-url", url],
            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("livefeed did not start; see " + str(tmp / "livefeed.log"))
        time.sleep(0.2)


def ready(http: httpx.Client, slug: str) -> tuple[float, int]:
    """Ms until a search answers 200 (retrying a 503 while the index is built), and the 503s."""
    at = time.perf_counter()
    for refused in range(3000):
        response = http.get(f"/api/feeds/{slug}/search", params={"q": "power", "limit": 20})
        if response.status_code != 503:
            response.raise_for_status()
            return (time.perf_counter() - at) * 1000, refused
        time.sleep(0.2)
    raise SystemExit("the search index was never ready")


def run(args: argparse.Namespace, tmp: Path, procs: list[subprocess.Popen[bytes]]) -> int:
    redis_port, port = free_port(), free_port()
    procs.append(subprocess.Popen(
        [find_redis_server(), "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp)],
        stdout=subprocess.DEVNULL,
    ))  # fmt: skip
    url = f"redis://127.0.0.1:{redis_port}/0"
    env = {**os.environ, "LIVEFEED_EDITOR_TOKEN": TOKEN, "LIVEFEED_KEY_PREFIX": PREFIX,
           "LIVEFEED_EDITOR_RATE": "0", "LIVEFEED_ADDRESS_WRITE_RATE": "0",
           "LIVEFEED_EMBED_PROVIDERS": "", "LIVEFEED_MEDIA_DIR": str(tmp / "media"),
           "LIVEFEED_SEARCH_DIR": str(tmp / "search")}  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    procs.append(start(env, port, url, tmp, base))
    headers = {"Authorization": f"Bearer {TOKEN}"}
    slug = "bench-search"
    with httpx.Client(base_url=base, timeout=120) as http:
        feed = {"slug": slug, "title": "Search bench", "timezone": "UTC"}
        made = http.post("/api/feeds", json=feed, headers=headers)
        made.raise_for_status()
        archive = tmp / "briefs.jsonl"
        write_briefs(archive, args.briefs)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "livefeed", "import", slug, str(archive),
                        "--redis-url", url], env=env, cwd=ROOT, check=True, timeout=600,
                       capture_output=True)  # fmt: skip
        print(f"imported {args.briefs} briefs in {time.perf_counter() - started:.1f} s")
        load = os.getloadavg()[0]
        print(f"load average {load:.1f} on {os.cpu_count()} cores (other work on the machine)")

        def timed(q: str) -> float:
            at = time.perf_counter()
            response = http.get(f"/api/feeds/{slug}/search", params={"q": q, "limit": 20})
            response.raise_for_status()
            return (time.perf_counter() - at) * 1000

        used = cpu_ms(procs[1].pid)
        first, refused = ready(http, slug)
        built = cpu_ms(procs[1].pid) - used
        print(
            f"first query (index file built from the briefs hash): {first:.0f} ms until "
            f"answered, {refused} answers 503 meanwhile, {built:.0f} ms of server CPU"
        )
        rows = []
        client = redis.Redis(port=redis_port)
        try:
            server = procs[1].pid
            for kind, q in QUERIES.items():
                used = cpu_ms(server)
                times = [timed(q) for _ in range(args.runs)]
                cpu = (cpu_ms(server) - used) / args.runs
                live = []
                for n in range(min(args.runs, 20)):
                    http.post(f"/api/feeds/{slug}/briefs", headers=headers,
                              json={"headline": f"live {n} power"}).raise_for_status()  # fmt: skip
                    live.append(timed(q))
                peer, total = [], 0
                for _ in range(args.peer_runs):
                    at = time.perf_counter()
                    total = naive_scan(client, slug, q)
                    peer.append((time.perf_counter() - at) * 1000)
                rows.append((kind, q, total, times, cpu, live, peer))
        finally:
            client.close()
        procs[1].terminate()
        procs[1].wait(30)
        procs[1] = start(env, port, url, tmp, base)
        used = cpu_ms(procs[1].pid)
        first, refused = ready(http, slug)
        print(
            f"first query after a restart (file kept, caught up): {first:.0f} ms, "
            f"{refused} answers 503, {cpu_ms(procs[1].pid) - used:.0f} ms of server CPU"
        )
    print(f"\n{args.briefs} briefs; ms per query, p50 / p99 of {args.runs} runs through HTTP; "
          f"the naive scan in-process, p50 / max of {args.peer_runs}\n")  # fmt: skip
    print("| query | q | all hits | livefeed | server CPU | after a publish | naive scan |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for kind, q, total, times, cpu, live, peer in rows:
        print(f"| {kind} | {q} | {total} | {percentile(times, 0.5):.1f} / "
              f"{percentile(times, 0.99):.1f} | {cpu:.1f} | {percentile(live, 0.5):.1f} / "
              f"{percentile(live, 0.99):.1f} | {percentile(peer, 0.5):.0f} / "
              f"{max(peer):.0f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
