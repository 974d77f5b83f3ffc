"""Shared pieces of the tests that run a defense day on a real server."""

from __future__ import annotations

import datetime
import io
import zoneinfo
from dataclasses import dataclass
from typing import Any

import aiohttp
from fpdf import FPDF

from orchestrator.documents import NEEDED_TO_DEFEND
from storage.roster import CommissionSpec, DaySpec, DocumentSpec, StudentSpec

TZ = "Europe/Moscow"
COMMISSION = CommissionSpec(
    chair="Соколов Андрей", members=("Кузнецова Елена", "Морозов Дмитрий", "Волкова Ольга"),
    secretary="Новикова Мария")


def day_spec(starts_at: float, students: int = 2) -> DaySpec:
    """A day starting at `starts_at` (to the minute) with consenting students whose
    thesis and presentation are on file (clause 7.3)."""
    moment = datetime.datetime.fromtimestamp(starts_at, zoneinfo.ZoneInfo(TZ))
    consent = moment - datetime.timedelta(days=10)
    return DaySpec(
        title="Защиты ВКР", date=moment.date(), start=moment.time().replace(second=0, microsecond=0),
        timezone=TZ, norm_control_required=False, commission=COMMISSION,
        students=tuple(
            StudentSpec(name=f"Студент {n}", thesis_title=f"Тема {n}", supervisor="Лебедев",
                        reviewer="Орлова", timezone=TZ, consent_at=consent,
                        documents=tuple(DocumentSpec(kind, consent) for kind in NEEDED_TO_DEFEND))
            for n in range(1, students + 1)),
    )


@dataclass
class ApiError(Exception):
    status: int
    body: dict[str, Any]


class Api:
    """The procedure API as one person calls it, with their invite token."""

    def __init__(self, base_url: str, day_id: int, token: str) -> None:
        self._base = f"{base_url}/api/days/{day_id}"
        self._headers = {"Authorization": f"Bearer {token}"}
        self._session = aiohttp.ClientSession()

    async def close(self) -> None:
        await self._session.close()

    async def state(self) -> dict[str, Any]:
        async with self._session.get(f"{self._base}/state", headers=self._headers) as r:
            body: dict[str, Any] = await r.json()
            if r.status != 200:
                raise ApiError(r.status, body)
            return body

    async def snapshot(self) -> dict[str, Any]:
        """The procedure's state as participants see it (what `wait_until` reads)."""
        snapshot: dict[str, Any] = (await self.state())["state"]
        return snapshot

    async def act(self, action: str, **body: Any) -> dict[str, Any]:
        async with self._session.post(f"{self._base}/actions/{action}", json=body,
                                      headers=self._headers) as r:
            answer: dict[str, Any] = await r.json()
            if r.status != 200:
                raise ApiError(r.status, answer)
            state: dict[str, Any] = answer["state"]
            return state

    async def upload(self, student: str, kind: str, pdf: bytes) -> dict[str, Any]:
        """PUT one of `student`'s documents, as this person."""
        async with self._session.put(f"{self._base}/students/{student}/files/{kind}", data=pdf,
                                     headers={**self._headers,
                                              "Content-Type": "application/pdf"}) as r:
            answer: dict[str, Any] = await r.json()
            if r.status != 201:
                raise ApiError(r.status, answer)
            return answer

    async def refused(self, action: str, **body: Any) -> ApiError:
        try:
            await self.act(action, **body)
        except ApiError as exc:
            return exc
        raise AssertionError(f"{action} {body} was accepted")


def small_pdf(text: str) -> bytes:
    """A real one-page PDF saying `text` (a scanned certificate stands in this way)."""
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=14)
    pdf.text(20, 30, text)
    out = io.BytesIO()
    pdf.output(out)
    return out.getvalue()
