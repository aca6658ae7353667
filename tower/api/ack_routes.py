"""/ack/{token}: the one-click acknowledgement link in notices (alerts/links.py). No bearer token: the
signed, expiring link is the credential, and it acknowledges as the contact it was sent to.

GET answers a small page that acknowledges by posting its form at once (JavaScript), or with a
button without it: link scanners and chat unfurlers that fetch every URL in a message (mail
security gateways, Slack, Teams) must not acknowledge anything. POST acknowledges through the alert
book's `act`, like every person's action (via "link").
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Path
from fastapi.responses import HTMLResponse

from alerts.links import AckLinks, LinkError
from tower.api.backend import Backend
from tower.timeutil import now_ms, rfc3339

Token = Path(max_length=512, description="the signed token from the link")
PAGES = {400: {"description": "a forged, damaged or expired link (an HTML page saying so)"},
         404: {"description": "the alert is no longer in the alert book"}}  # fmt: skip


def routes(backend: Backend, links: AckLinks, dashboard_url: str) -> APIRouter:
    router = APIRouter(prefix="/ack", tags=["alerts"])

    @router.get("/{token}", summary="The one-click acknowledgement page (acknowledges by posting itself)",
                response_class=HTMLResponse, responses=PAGES)  # fmt: skip
    def ack_page(token: str = Token) -> HTMLResponse:
        try:
            alert_id, contact = links.read(token)
        except LinkError as problem:
            return _page("Link not usable", str(problem), status=400)
        with backend.alert_book() as book:
            alert = book.get(alert_id)
        if alert is None:
            return _page("No such alert", f"alert {alert_id} is not in the alert book", status=404)
        if alert["status"] not in ("pending", "firing"):
            return _outcome(alert, dashboard_url)
        form = (f'<form id="ack" method="post"><button type="submit">Acknowledge as {escape(contact)}</button></form>'
                '<script>document.getElementById("ack").submit()</script>')  # fmt: skip
        return _page(f"Acknowledging {alert_id}", f"{_summary(alert)}<p>Acknowledging as {escape(contact)}…</p>"
                     f"{form}", raw=True)  # fmt: skip

    @router.post("/{token}", summary="Acknowledge as the contact the link was sent to", response_class=HTMLResponse,
                 responses=PAGES)  # fmt: skip
    def ack(token: str = Token) -> HTMLResponse:
        try:
            alert_id, contact = links.read(token)
        except LinkError as problem:
            return _page("Link not usable", str(problem), status=400)
        with backend.alert_book() as book:
            try:
                alert = book.act(alert_id, "acknowledge", contact, "one-click link", now_ms(), via="link")
            except ValueError:  # acknowledged meanwhile, resolved, or gone: say where it stands
                alert = book.get(alert_id)
        if alert is None:
            return _page("No such alert", f"alert {alert_id} is not in the alert book", status=404)
        return _outcome(alert, dashboard_url)

    return router


def _summary(alert: dict) -> str:
    return (f"<p><b>[{escape(alert['severity'].upper())}] {escape(alert['rule'])}: {escape(alert['entity'])}</b></p>"
            f"<p>{escape(alert['detail'])}</p>")  # fmt: skip


def _outcome(alert: dict, dashboard_url: str) -> HTMLResponse:
    if alert["status"] == "acknowledged":
        said = f"Acknowledged by {alert['acked_by']} at {rfc3339(alert['acked_ms'])}."
    else:
        said = f"This alert is {alert['status']}; there is nothing to acknowledge."
    link = f"{dashboard_url.rstrip('/')}/alerts?alert={alert['id']}"
    return _page(said, f'{_summary(alert)}<p id="outcome">{escape(said)}</p><p><a href="{escape(link)}">Open it in '
                 "the dashboard</a></p>", raw=True)  # fmt: skip


def _page(title: str, body: str, status: int = 200, raw: bool = False) -> HTMLResponse:
    content = body if raw else f'<p id="outcome">{escape(body)}</p>'
    html = (f'<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">'
            f'<meta name="robots" content="noindex"><title>{escape(title)}</title></head>'
            f'<body style="font-family: sans-serif; max-width: 40em; margin: 2em auto">{content}'
            "</body></html>")  # fmt: skip
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})
