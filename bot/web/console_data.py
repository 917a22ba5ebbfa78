"""The console's data pages (issue #13): a campaign's responses (CSV upload, exports) and the gaps
and feedback page with FAQ card drafts. Thin layers over the CLI's library functions:
`import_responses` (all or nothing, errors by line), `bot.awareness.exports.export`, `State.gaps`
(as `ohbot gaps`) and `bot.faq_drafts.save_draft`.

Uploads: at most UPLOAD_MAX_BYTES (the request's Content-Length is checked before anything is read,
see console.guarded, and the stored file again); a file that is not CSV text (no .csv name, or NUL
bytes, a ZIP/XLSX or PDF signature at its start) is refused before the import reads it. An analyst
limited to a region may import only rows of that region (checked line by line first; any other row
is an error and nothing is imported). Every import, refused or done, and every export is written to
the audit log.
"""
from __future__ import annotations

import csv
import logging
import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.background import BackgroundTask
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bot.config import UPLOAD_MAX_BYTES
from bot.storage.staff import Session, Staff
from bot.web.console import PREFIX, SECURITY_HEADERS, Console, Forbidden, _file_stem, _run, guarded

log = logging.getLogger("ohbot.console")

MAX_ERRORS_SHOWN = 200
EXPORT_MEDIA = {"csv": "text/csv; charset=utf-8",
                "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "sav": "application/octet-stream", "dta": "application/octet-stream"}
_BINARY_STARTS = (b"PK\x03\x04", b"%PDF", b"\xd0\xcf\x11\xe0", b"\x1f\x8b")  # zip/xlsx, pdf, old xls, gzip


def not_csv(name: str, head: bytes) -> str | None:
    """Why a file is not a CSV text file (None when it may be one)."""
    if not name.lower().endswith(".csv"):
        return f"“{name}”不是 .csv 文件：请上传 CSV（逗号分隔，UTF-8 或 GB18030）。"
    if head.startswith(_BINARY_STARTS) or b"\x00" in head:
        return f"“{name}”不是 CSV 文本文件（像是 Excel、PDF 或压缩文件）：请在 Excel 中“另存为 CSV”后上传。"
    return None


def region_errors(path: Path, region: str, limit: int = MAX_ERRORS_SHOWN) -> list[str]:
    """Lines of an import file whose region is not `region` (an analyst limited to it), by line."""
    from bot.awareness.responses import sniff_encoding

    errors: list[str] = []
    with path.open(encoding=sniff_encoding(path), newline="") as f:
        reader = csv.reader(f)
        header = [h.strip().lstrip("\ufeff") for h in next(reader, [])]
        if "region" not in header:
            return [f"line 1: no region column: your account imports only rows of region {region!r}"]
        column = header.index("region")
        for line, row in enumerate(reader, start=2):
            value = row[column].strip() if column < len(row) else ""
            if value != region:
                errors.append(f"line {line}: region {value!r}: your account imports only rows of region {region!r}")
                if len(errors) >= limit:
                    break
    return errors


def _campaign(console: Console, name: str, account: Staff) -> Any:
    """The campaign (CampaignError when unknown); an analyst of a region only that region's or open ones."""
    from bot.quiz import forms as quiz

    campaign = quiz.get_campaign(console.state, name)
    if account.region and campaign.region and campaign.region != account.region:
        raise Forbidden()
    return campaign


def campaign_routes(console: Console) -> list[BaseRoute]:
    """/console/campaigns/NAME/responses (GET: the page; POST: an upload) and …/responses.FORMAT (export)."""

    async def page(request: Request, session: Session, **extra: Any) -> Response:
        campaign = await _run(_campaign, console, request.path_params["name"], session.staff)
        return console.page(request, "console/responses.html", session, status_code=extra.pop("status_code", 200),
                            campaign=campaign, max_mb=UPLOAD_MAX_BYTES // 1024 // 1024, **extra)

    async def show(request: Request, session: Session) -> Response:
        if not (session.staff.can("import") or session.staff.can("export")):
            raise Forbidden()
        return await page(request, session)

    async def upload(request: Request, session: Session) -> Response:
        from bot.awareness.campaigns import import_responses

        name = request.path_params["name"]
        await _run(_campaign, console, name, session.staff)
        form = await request.form()
        file = form.get("file")
        layout = str(form.get("layout") or "long")
        layout = layout if layout in ("long", "wide") else "long"
        if not isinstance(file, UploadFile) or not file.filename:
            return await page(request, session, status_code=400, refused="请选择要上传的 CSV 文件。")
        filename = Path(file.filename).name[:200]
        if (file.size or 0) > UPLOAD_MAX_BYTES:
            return await page(request, session, status_code=413,
                              refused=f"文件超过 {UPLOAD_MAX_BYTES // 1024 // 1024} MB 上限，未导入。")
        head = await file.read(4096)
        reason = not_csv(filename, head)
        if reason:
            await _run(console.store.audit, session.staff, "import_refused", name, f"{filename}: not a CSV file")
            return await page(request, session, status_code=400, refused=reason)
        handle, temporary = tempfile.mkstemp(prefix="ohbot-upload-", suffix=".csv")
        path = Path(temporary)
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(head)
                while chunk := await file.read(1024 * 1024):
                    out.write(chunk)
            if path.stat().st_size > UPLOAD_MAX_BYTES:
                return await page(request, session, status_code=413,
                                  refused=f"文件超过 {UPLOAD_MAX_BYTES // 1024 // 1024} MB 上限，未导入。")
            errors: list[str] = []
            count = 0
            if session.staff.region:
                errors = await _run(region_errors, path, session.staff.region)
            if not errors:
                bank, _ = console.bank
                count, errors = await _run(import_responses, console.state, name, path, bank, console.taxonomy,
                                           layout=layout)
        finally:
            path.unlink(missing_ok=True)
        if errors:
            await _run(console.store.audit, session.staff, "import_refused", name,
                       f"{filename} ({layout}): {len(errors)} problem(s), nothing imported")
            return await page(request, session, status_code=400, filename=filename, errors=errors[:MAX_ERRORS_SHOWN],
                              more=max(0, len(errors) - MAX_ERRORS_SHOWN), total=len(errors))
        await _run(console.store.audit, session.staff, "import", name, f"{filename} ({layout}): {count} answers")
        return await page(request, session, filename=filename, imported=count)

    async def export(request: Request, session: Session) -> Response:
        from bot.awareness.campaigns import item_infos
        from bot.awareness.exports import export as write_export
        from bot.quiz.bank import load_bank

        name, fmt = request.path_params["name"], request.path_params["fmt"]
        level = request.query_params.get("level", "item")
        if fmt not in EXPORT_MEDIA or level not in ("item", "respondent"):
            return Response("not found", status_code=404)
        await _run(_campaign, console, name, session.staff)
        folder = tempfile.TemporaryDirectory(prefix="ohbot-export-")
        path = Path(folder.name) / f"{_file_stem(name)}-{level}.{fmt}"
        infos = item_infos(load_bank(console.settings.knowledge_dir)) if fmt in ("sav", "dta") else None
        taxonomy = console.taxonomy if fmt in ("sav", "dta") else None
        try:
            count = await _run(write_export, console.state, name, fmt, level, path, infos, taxonomy,
                               region=session.staff.region)
        except BaseException:
            folder.cleanup()
            raise
        await _run(console.store.audit, session.staff, "export", name, f"responses {fmt} level={level}: {count} rows"
                   + (f" region={session.staff.region}" if session.staff.region else ""))
        return FileResponse(path, media_type=EXPORT_MEDIA[fmt], filename=path.name,
                            background=BackgroundTask(folder.cleanup), headers=SECURITY_HEADERS)

    return [Route("/campaigns/{name:path}/responses", guarded(console, "view", show), methods=["GET"]),
            Route("/campaigns/{name:path}/responses", guarded(console, "import", upload), methods=["POST"]),
            Route("/campaigns/{name:path}/responses.{fmt}", guarded(console, "export", export), methods=["GET"])]


def routes(console: Console) -> list[BaseRoute]:
    """/console/gaps (refused questions and 👎 answers, most frequent first) and /console/faq (drafts)."""

    async def gaps(request: Request, session: Session) -> Response:
        rows = await _run(console.state.gaps, 200)
        return console.page(request, "console/gaps.html", session, rows=rows)

    async def draft_form(request: Request, session: Session) -> Response:
        question = request.query_params.get("q", "")[:200]
        return console.page(request, "console/faq.html", session, card={"question": question, "variants": "",
                                                                          "answer": "", "cite": "", "ref": "",
                                                                          "audience": "all"},
                            gap=request.query_params.get("gap", "")[:200])

    async def save(request: Request, session: Session) -> Response:
        from bot.errors import InputError
        from bot.faq_drafts import save_draft

        form = await request.form()
        card = {k: str(form.get(k) or "") for k in ("question", "variants", "answer", "cite", "ref", "audience")}
        gap = str(form.get("gap") or "")
        try:
            draft = await _run(save_draft, console.settings.knowledge_dir, card["question"],
                               card["variants"].splitlines(), card["answer"], card["cite"], card["ref"],
                               card["audience"] or "all", author=session.staff.name, gap=gap)
        except InputError as exc:
            return console.page(request, "console/faq.html", session, status_code=400, card=card, gap=gap,
                                error=str(exc))
        await _run(console.store.audit, session.staff, "faq_draft", draft.id, card["question"][:200])
        return RedirectResponse(f"{PREFIX}/gaps?saved={quote(draft.id)}", status_code=303)

    return [Route("/gaps", guarded(console, "gaps", gaps), methods=["GET"]),
            Route("/faq", guarded(console, "faq", draft_form), methods=["GET"]),
            Route("/faq", guarded(console, "faq", save), methods=["POST"])]
