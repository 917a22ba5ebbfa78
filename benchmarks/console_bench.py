"""The web console's campaign report page at scale: 100,000 respondents × 20 answers (2 × 10^6 rows).

Usage: .venv/bin/python benchmarks/console_bench.py [--respondents 100000] [--items 20] [--data-dir DIR]
Builds (once; kept in --data-dir when given) a campaign with synthetic answers through
`ohbot responses import`, then requests the report page (`/console/campaigns/NAME?by=FIELD`) of the
real app in this process (starlette's TestClient: routing, session check, report, templates), logged
in as an admin, and prints wall and CPU time per request: the first request and the median / max of
the following ones. Target (issue #13): the report page for 100,000 respondents in ≤ 1 s, warm.
No index and no model are needed (the console does not answer questions).
"""
from __future__ import annotations

import argparse
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import write_responses  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.quiz.bank import load_bank  # noqa: E402
from bot.taxonomy import load_taxonomy  # noqa: E402

TARGET_S = 1.0
CAMPAIGN = "基准测评"
PASSWORD = "benchmark password"


def prepare(data: Path, respondents: int, items: int) -> None:
    """The campaign with `respondents` synthetic respondents (skipped when it exists already)."""
    marker = data / f"console-bench-{respondents}x{items}"
    if marker.exists():
        return
    settings = load_settings(str(data))
    bank = [i for i in load_bank(settings.knowledge_dir) if not getattr(i, "retired", False)]
    csv_path = data / "answers.csv"
    started = time.perf_counter()
    rows = write_responses(csv_path, bank, load_taxonomy(settings.knowledge_dir), respondents, items,
                           random.Random(13))
    cli = [sys.executable, "-m", "bot.cli", "--data-dir", str(data)]
    subprocess.run([*cli, "campaign", "create", CAMPAIGN, "--start", "2024-01-01", "--end", "2024-12-31"],
                   cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    subprocess.run([*cli, "responses", "import", str(csv_path), "--campaign", CAMPAIGN], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    csv_path.unlink()
    print(f"prepared {respondents:,} respondents ({rows:,} answers) in {time.perf_counter() - started:.0f} s",
          flush=True)
    marker.touch()


def after_change(client: object, data: Path, path: str) -> None:
    """Import one more respondent (a data change), then time the report page's first view (the
    previous figures, marked, when the new ones take longer than OHBOT_REPORT_WAIT) and the time
    until the page shows the new figures."""
    settings = load_settings(str(data))
    bank = [i for i in load_bank(settings.knowledge_dir) if not getattr(i, "retired", False)]
    csv_path = data / "one-more.csv"
    write_responses(csv_path, bank, load_taxonomy(settings.knowledge_dir), 1, 20, random.Random(time.time_ns()))
    text = csv_path.read_text(encoding="utf-8").replace("R000000", f"N{time.time_ns()}")
    csv_path.write_text(text, encoding="utf-8")
    subprocess.run([sys.executable, "-m", "bot.cli", "--data-dir", str(data), "responses", "import", str(csv_path),
                    "--campaign", CAMPAIGN], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    csv_path.unlink()
    started = time.perf_counter()
    response = client.get(path)  # type: ignore[attr-defined]
    first = time.perf_counter() - started
    stale = 'id="as-of-stale"' in response.text
    while 'id="as-of-stale"' in response.text:
        time.sleep(0.2)
        response = client.get(path)  # type: ignore[attr-defined]
    print(f"after one more respondent: first view {first:.2f} s "
          f"({'the previous figures, marked' if stale else 'the new figures'}); "
          f"new figures shown after {time.perf_counter() - started:.1f} s", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--respondents", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--data-dir", help="keep the prepared database here (default: a temporary folder)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if args.data_dir:
        return measure(Path(args.data_dir), args)
    with tempfile.TemporaryDirectory(prefix="ohbot-console-bench-") as tmp:  # removed afterwards
        return measure(Path(tmp), args)


def measure(data: Path, args: argparse.Namespace) -> int:
    """Prepare the campaign in `data` (once) and time the console's pages; the exit status."""
    data.mkdir(parents=True, exist_ok=True)
    prepare(data, args.respondents, args.items)

    from urllib.parse import quote

    from starlette.testclient import TestClient

    from bot.storage.staff import open_staff
    from bot.web.app import create_app

    settings = load_settings(str(data))
    store = open_staff(settings)
    if store.get("bench") is None:
        store.add("bench", "admin", PASSWORD)
    worst = 0.0
    with TestClient(create_app(settings, dialogue=SimpleNamespace())) as client:
        page = client.get("/console/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        client.post("/console/login", data={"csrf": token, "name": "bench", "password": PASSWORD})
        for label, path in [(f"report by {by}", f"/console/campaigns/{quote(CAMPAIGN)}?by={by}")
                            for by in ("industry", "region", "month")] + [("overview", "/console/")]:
            walls, cpus = [], []
            for _ in range(1 + args.repeat):
                wall, cpu = time.perf_counter(), time.process_time()
                response = client.get(path)
                walls.append(time.perf_counter() - wall)
                cpus.append(time.process_time() - cpu)
                assert response.status_code == 200, response.text[:500]
            warm, warm_cpu = walls[1:], cpus[1:]
            worst = max(worst, statistics.median(warm)) if label.startswith("report") else worst
            print(f"{label:<20} first {walls[0]:.2f} s · warm median {statistics.median(warm):.2f} s, "
                  f"max {max(warm):.2f} s (CPU median {statistics.median(warm_cpu):.2f} s) · "
                  f"{len(response.content) / 1024:.0f} KB", flush=True)
        after_change(client, data, f"/console/campaigns/{quote(CAMPAIGN)}?by=industry")
    verdict = "met" if worst <= TARGET_S else "NOT met"
    print(f"target: report page ≤ {TARGET_S:.0f} s warm for {args.respondents:,} respondents: {verdict} "
          f"(slowest warm median {worst:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
