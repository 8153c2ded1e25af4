"""An offline stand-in for a Jira site or a ServiceNow instance, built from an export.

``bridge plan`` runs the real connector's discovery and planning code, so the preview is the
plan a live sync would make. That code asks the site a few questions before it plans (who
bridge is, the field list, a select's options, the choice lists); this module answers exactly
those from what the admin has on disk, through a ``requests`` transport adapter mounted on
the connector's own session. It never opens a socket.

Every other request is refused with :class:`OfflineRequestError`, which is not a
``requests`` or connector error: no retry loop or "treat 404 as unknown" branch of the
connector can swallow it, so a preview can never silently plan from an answer the real site
would not have given.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from bridge.errors import BridgeError

__all__ = [
    "JiraAnswers",
    "OfflineAdapter",
    "OfflineRequestError",
    "ServiceNowAnswers",
    "mount_offline",
]

#: The account the offline site says bridge is.
OFFLINE_ACCOUNT = "bridge-offline-preview"


class OfflineRequestError(BridgeError):
    """The connector asked the offline site something it cannot answer from the export."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Any


Route = Callable[[str, str, Mapping[str, list[str]]], Answer | None]


@dataclass
class OfflineAdapter(BaseAdapter):
    """Answers a connector's requests from ``answer``; refuses the rest (see the module doc).

    ``seen`` lists every request answered (``METHOD /path``), for the command's notes and
    for tests that check what discovery asked.
    """

    answer: Route
    system: str
    seen: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **_: Any
    ) -> requests.Response:
        method = (request.method or "GET").upper()
        parts = urlsplit(request.url or "")
        query = parse_qs(parts.query, keep_blank_values=True)
        found = self.answer(method, parts.path, query) if method == "GET" else None
        if found is None:
            raise OfflineRequestError(
                f"the offline {self.system} site cannot answer {method} {parts.path}: a preview "
                "answers only what discovery asks (who bridge is, the fields, choice lists), "
                "never items or writes; this connector asked for more, so no plan is shown "
                "rather than one that may differ from a live sync's"
            )
        with self._lock:
            self.seen.append(f"{method} {parts.path}")
        response = requests.Response()
        response.status_code = found.status
        response._content = json.dumps(found.body).encode()
        response.headers = CaseInsensitiveDict({"Content-Type": "application/json"})
        response.url = request.url or ""
        response.request = request
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        """Nothing to release: no connection was ever opened."""


def mount_offline(session: requests.Session, adapter: OfflineAdapter) -> None:
    """Route every URL of ``session`` to ``adapter`` and drop its credentials: the preview
    never authenticates (an OAuth token fetch would be a request of its own)."""
    session.auth = None
    session.headers.pop("Authorization", None)
    session.adapters.clear()
    session.mount("https://", adapter)
    session.mount("http://", adapter)


# -- Jira -------------------------------------------------------------------------------------

_JIRA_API = re.compile(r"/rest/api/(?:2|3|latest)(?P<rest>/.*)$")


@dataclass(frozen=True, slots=True)
class JiraAnswers:
    """What the offline Jira site knows: its field list (``GET /field``'s answer), the
    time zone of bridge's account and which Jira it is."""

    fields: Sequence[Mapping[str, Any]]
    time_zone: str = "UTC"
    deployment: str = "cloud"

    def __call__(self, method: str, path: str, query: Mapping[str, list[str]]) -> Answer | None:
        match = _JIRA_API.search(path)
        if match is None:
            return None
        rest = match.group("rest").rstrip("/")
        if rest == "/myself":
            return Answer(
                200,
                {
                    "accountId": OFFLINE_ACCOUNT,
                    "name": OFFLINE_ACCOUNT,
                    "key": OFFLINE_ACCOUNT,
                    "displayName": "bridge (offline preview)",
                    "timeZone": self.time_zone,
                    "active": True,
                },
            )
        if rest == "/field":
            return Answer(200, [dict(f) for f in self.fields])
        if rest == "/serverInfo":
            kind = "Cloud" if self.deployment == "cloud" else "Server"
            return Answer(200, {"deploymentType": kind, "version": "offline"})
        if re.fullmatch(r"/field/[^/]+/context", rest):
            # As for an account without "Administer Jira": the connector then looks for the
            # options on an issue's edit screen, which the search below says there is none of.
            return Answer(403, {"errorMessages": ["offline preview: options are not known"]})
        if rest in ("/search/jql", "/search") and query.get("fields") == ["key"]:
            # The one search discovery makes: an issue whose edit screen lists a select's options.
            return Answer(200, {"issues": [], "isLast": True, "startAt": 0, "total": 0})
        return None


# -- ServiceNow -------------------------------------------------------------------------------

_SN_TABLE = re.compile(r"/api/now/(?:v\d+/)?table/(?P<table>[A-Za-z0-9_]+)$")


@dataclass(frozen=True, slots=True)
class ServiceNowAnswers:
    """What the offline instance knows: its ``sys_choice`` rows (the choice lists of the
    columns bridge writes; none means every column is free text)."""

    choices: Sequence[Mapping[str, Any]] = ()

    def __call__(self, method: str, path: str, query: Mapping[str, list[str]]) -> Answer | None:
        match = _SN_TABLE.search(path)
        if match is None or match.group("table") != "sys_choice":
            return None
        text = (query.get("sysparm_query") or [""])[0]
        wanted = _in_list(text, "element")
        tables = _in_list(text, "name")
        rows = [
            {k: row.get(k, "") for k in ("element", "value", "label", "name", "sequence")}
            for row in self.choices
            if (wanted is None or str(row.get("element")) in wanted)
            and (tables is None or not row.get("name") or str(row.get("name")) in tables)
            and str(row.get("inactive", "false")).lower() != "true"
        ]
        return Answer(200, {"result": rows})


def _in_list(query: str, column: str) -> set[str] | None:
    found = re.search(rf"(?:^|\^){column}IN([^^]*)", query)
    return set(found.group(1).split(",")) if found else None
