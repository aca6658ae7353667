"""One-click acknowledgement links: `<api_url>/ack/<token>`, where the token names an alert and the
on-call contact a notice went to, is signed with the tower's link key (HMAC-SHA1 through
itsdangerous) and expires after `TOWER_ACK_LINK_TTL_S`. Whoever holds the link acknowledges as that
contact, so it is as secret as the notice that carries it.

The key is `TOWER_ACK_LINK_KEY`, or else `$TOWER_DATA_DIR/ack-link.key`, made on first use (mode
600); the engine signs and `tower api` checks, so both must see the same key. Replacing the key
voids every link sent.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from tower.config import Settings

_SALT = "tower-ack-link"


class LinkError(ValueError):
    """A link that cannot be used; the message says why, for the page a person sees."""


def link_key(settings: Settings) -> str:
    if settings.ack_link_key is not None:
        return settings.ack_link_key.get_secret_value()
    path = settings.data_dir / "ack-link.key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # O_EXCL: the engine and the API may start together; the first to write it wins
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    except FileExistsError:
        pass
    return _read_when_written(path)


def _read_when_written(path: Path) -> str:
    for _ in range(100):
        key = path.read_text().strip()
        if key:
            return key
    raise LinkError(f"{path} is empty; delete it and restart (a new key voids the links sent)")


class AckLinks:
    def __init__(self, key: str, api_url: str, ttl_s: float) -> None:
        self._serializer = URLSafeTimedSerializer(key, salt=_SALT)
        self.api_url, self.ttl_s = api_url.rstrip("/"), ttl_s

    @classmethod
    def from_settings(cls, settings: Settings) -> AckLinks:
        return cls(link_key(settings), settings.api_url, settings.ack_link_ttl_s)

    def url(self, alert_id: str, contact: str) -> str:
        return f"{self.api_url}/ack/{self._serializer.dumps([alert_id, contact])}"

    def read(self, token: str) -> tuple[str, str]:
        """(alert id, contact) of a valid token; LinkError if it is forged, damaged or expired."""
        try:
            alert_id, contact = self._serializer.loads(token, max_age=self.ttl_s)
        except SignatureExpired:
            raise LinkError("this link has expired; acknowledge in the dashboard or with 'tower alerts ack'") from None
        except (BadSignature, ValueError, TypeError):
            raise LinkError("this link is not valid (damaged, or signed with another key)") from None
        return str(alert_id), str(contact)
