"""DICOMweb: STOW-RS to store (PS3.18 10.5), QIDO-RS to verify (PS3.18 10.6).

Sessions come from dicomweb-client (``session_utils``: auth, CA bundle) and QIDO-RS goes
through its ``DICOMwebClient.search_for_instances``.  STOW-RS posts the files' own bytes
in one ``multipart/related; type="application/dicom"`` body per batch (PS3.18 8.6.1.2)
through the same session, rather than through ``store_instances``: that method re-encodes
pydicom datasets (the server must receive the bytes on disk, byte for byte, including a
file it will refuse) and turns 202/409 answers into exceptions without Retry-After.

The answer decides per instance (PS3.18 10.5.3, Annex I; DICOM JSON or XML): Referenced
SOP Sequence (0008,1199) items are stored, with a Warning Reason (0008,1196) if any; Failed
SOP Sequence (0008,1198) items failed with their Failure Reason (0008,1197).  An instance
the answer does not name (even under 200 OK: a login page is no confirmation) is sent again
alone, then reported failed with the HTTP status.  A redirect is not followed.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from csv2sr.publish import status
from csv2sr.publish.auth import Credentials
from csv2sr.publish.model import DestinationError, Item, Outcome, Status, TransientError
from csv2sr.publish.retry import RetryPolicy, parse_retry_after

if TYPE_CHECKING:
    import requests

__all__ = ["DicomwebTarget", "QidoVerifier", "StowSender", "multipart_body"]

log = logging.getLogger(__name__)

RETRIED_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")
_CERT = re.compile(r"certificate verify failed: ([^(]+)")
# Referenced SOP Sequence items, Failed SOP Sequence items, by DICOM JSON tag (PS3.18 F.2)
_REFERENCED, _FAILED = "00081199", "00081198"
_INSTANCE, _WARNING, _FAILURE = "00081155", "00081196", "00081197"


@dataclass(frozen=True)
class DicomwebTarget:
    """A DICOMweb root (``…/dicom-web``), how to authenticate and what CA to trust."""

    url: str
    credentials: Credentials | None = None
    ca_bundle: Path | None = None
    timeout: float = 60.0

    def session(self) -> requests.Session:
        from dicomweb_client import session_utils  # noqa: PLC0415  (optional, heavy)

        session = (
            session_utils.create_session_from_auth(self.credentials.requests_auth())
            if self.credentials is not None else session_utils.create_session()
        )
        if self.ca_bundle is not None:
            session_utils.add_certs_to_session(session, ca_bundle=str(self.ca_bundle))
            session.mount("https://", _pinned_adapter(str(self.ca_bundle)))
        return session

    @property
    def request_timeout(self) -> tuple[float, float]:
        return (min(10.0, self.timeout), self.timeout)


def _pinned_adapter(ca_bundle: str) -> requests.adapters.HTTPAdapter:
    """An adapter that verifies with this CA bundle whatever the environment says:
    requests lets ``REQUESTS_CA_BUNDLE`` override ``session.verify`` (psf/requests#3829)."""
    from requests.adapters import HTTPAdapter  # noqa: PLC0415

    class Pinned(HTTPAdapter):
        def send(self, request: requests.PreparedRequest, *args: Any,
                 **kwargs: Any) -> requests.Response:
            kwargs["verify"] = ca_bundle
            return super().send(request, *args, **kwargs)

    return Pinned()


def multipart_body(parts: Sequence[bytes]) -> tuple[bytes, str]:
    """A ``multipart/related`` body of DICOM files and its Content-Type (PS3.18 8.6.1.2);
    the boundary is random and checked to occur in no part."""
    boundary = uuid.uuid4().hex
    while any(boundary.encode() in part for part in parts):
        boundary = uuid.uuid4().hex  # pragma: no cover  (2**-122 per part)
    dash = b"--" + boundary.encode()
    chunks: list[bytes] = []
    for part in parts:
        chunks += [dash, b"\r\nContent-Type: application/dicom\r\n\r\n", part, b"\r\n"]
    chunks += [dash, b"--\r\n"]
    content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
    return b"".join(chunks), content_type


def connection_problem(exc: Exception, timeout: float) -> str:
    """A short phrase for a requests exception (``connection refused``)."""
    import requests  # noqa: PLC0415

    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "could not connect in time"
    if isinstance(exc, requests.exceptions.ReadTimeout | requests.exceptions.Timeout):
        return f"no answer within {timeout:g} s"
    text = str(exc)
    found = _ERRNO.search(text)
    if found:
        return found.group(1).strip().lower()
    if "RemoteDisconnected" in text or "Connection aborted" in text:
        return "the server closed the connection"
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _tls_problem(exc: Exception) -> str:
    found = _CERT.search(str(exc))
    detail = found.group(1).strip() if found else str(exc).splitlines()[0][:200]
    return f"TLS: the server's certificate is not trusted ({detail}); give its CA with --ca-bundle"


def _auth_problem(code: int, credentials: Credentials | None) -> str:
    if credentials is None:
        return (f"HTTP {code}: the server wants credentials "
                "(--token-env, --token-file, --basic-env or --basic-file)")
    verb = "refused" if code == 401 else "does not allow storing with"
    return f"HTTP {code}: the server {verb} the {credentials}"


def raise_for_transport(
    action: Callable[[], requests.Response], target: DicomwebTarget
) -> requests.Response:
    """Run one request; map transport faults and retried statuses to TransientError, and
    the ones that end the run (auth, TLS, no such service) to DestinationError."""
    import requests  # noqa: PLC0415

    try:
        response = action()
    except requests.exceptions.SSLError as exc:
        raise DestinationError(target.url, _tls_problem(exc)) from None
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        raise TransientError(connection_problem(exc, target.timeout)) from None
    code = response.status_code
    if code in RETRIED_STATUSES:
        raise TransientError(
            f"HTTP {code} {response.reason}",
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
    if code in (401, 403):
        raise DestinationError(target.url, _auth_problem(code, target.credentials))
    return response


def _first(element: Any) -> Any:
    values = element.get("Value") if isinstance(element, dict) else None
    return values[0] if isinstance(values, list) and values else None


def _items(answer: dict[str, Any], tag: str) -> list[dict[str, Any]]:
    values = answer.get(tag, {}).get("Value") if isinstance(answer.get(tag), dict) else None
    return [v for v in values if isinstance(v, dict)] if isinstance(values, list) else []


def parse_answer(body: bytes) -> dict[str, Any] | None:
    """The Store Instances Response as DICOM JSON (PS3.18 F.2), from a JSON or a Native
    DICOM Model XML (PS3.19 A.1) body; None when it is neither."""
    text = body.lstrip()
    if text.startswith(b"<"):
        return _xml_answer(text)
    try:
        answer = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return answer if isinstance(answer, dict) else None


def _xml_answer(body: bytes) -> dict[str, Any] | None:
    from lxml import etree  # noqa: PLC0415

    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError:
        return None
    return _xml_attributes(root) if etree.QName(root).localname == "NativeDicomModel" else None


def _xml_attributes(parent: Any) -> dict[str, Any]:
    """``<DicomAttribute tag vr><Value>|<Item>…`` as DICOM JSON (the tags used here)."""
    out: dict[str, Any] = {}
    for attribute in parent:
        if not isinstance(attribute.tag, str) or not attribute.tag.endswith("DicomAttribute"):
            continue
        vr = attribute.get("vr", "")
        if vr == "SQ":
            items = [_xml_attributes(i) for i in attribute if str(i.tag).endswith("Item")]
            out[attribute.get("tag", "")] = {"vr": vr, "Value": items}
            continue
        values: list[Any] = [v.text or "" for v in attribute if str(v.tag).endswith("Value")]
        if vr in ("US", "UL", "SS", "SL"):
            values = [int(v) for v in values if v.strip().lstrip("-").isdigit()]
        out[attribute.get("tag", "")] = {"vr": vr, "Value": values}
    return out


def outcomes_from_answer(
    items: Sequence[Item], answer: dict[str, Any] | None, http: str
) -> tuple[list[Outcome], list[Item]]:
    """(outcomes of the instances the answer names, items it does not name)."""
    by_uid = {item.sop_instance_uid: item for item in items}
    done: dict[str, Outcome] = {}
    for entry in _items(answer or {}, _REFERENCED):
        item = by_uid.get(str(_first(entry.get(_INSTANCE))))
        if item is None:
            continue
        warning = _first(entry.get(_WARNING))
        code = f"{int(warning):04X}" if isinstance(warning, int) else "0000"
        reason = f"stored with Warning Reason {status.describe(int(warning))}" if warning else ""
        done[item.sop_instance_uid] = Outcome(item.key, Status.SENT, reason, code, item)
    for entry in _items(answer or {}, _FAILED):
        item = by_uid.get(str(_first(entry.get(_INSTANCE))))
        if item is None:
            continue
        failure = _first(entry.get(_FAILURE))
        if isinstance(failure, int) and failure == status.DUPLICATE:
            done[item.sop_instance_uid] = Outcome(
                item.key, Status.ALREADY, "the server already has it", f"{failure:04X}", item
            )
            continue
        reason = (f"refused by the server: {http}, Failure Reason {status.describe(failure)}"
                  if isinstance(failure, int) else f"refused by the server: {http}")
        code = f"{failure:04X}" if isinstance(failure, int) else http
        done[item.sop_instance_uid] = Outcome(item.key, Status.FAILED, reason, code, item)
    return list(done.values()), [i for i in items if i.sop_instance_uid not in done]


class StowSender:
    """Stores batches with STOW-RS over one session (one sender per worker thread)."""

    def __init__(self, target: DicomwebTarget, retry: RetryPolicy) -> None:
        self.target = target
        self.retry = retry
        self.session = target.session()
        self.url = target.url.rstrip("/") + "/studies"

    def close(self) -> None:
        self.session.close()

    def send(self, items: Sequence[Item]) -> list[Outcome]:
        """Store the items; every item gets an outcome (or an exception ends the run)."""
        parts: list[bytes] = []
        unreadable: list[Outcome] = []
        readable: list[Item] = []
        for item in items:
            try:
                parts.append(item.path.read_bytes())
                readable.append(item)
            except OSError as exc:  # removed or changed since the plan
                unreadable.append(Outcome(item.key, Status.FAILED,
                                          f"cannot read: {exc.strerror}", "", item))
        if unreadable:
            return unreadable + (self.send(readable) if readable else [])
        response = self._post(parts, len(items))
        http = f"HTTP {response.status_code} {response.reason}".strip()
        if response.status_code == 413 and len(items) > 1:  # Payload Too Large: halve
            half = len(items) // 2
            return self.send(items[:half]) + self.send(items[half:])
        if response.status_code in (404, 405):
            raise DestinationError(self.target.url, f"{http}: no STOW-RS service at {self.url}")
        if 300 <= response.status_code < 400:  # a POST is never followed (it would turn GET)
            where = response.headers.get("Location", "?")
            raise DestinationError(self.target.url, f"{http}: the server redirects to {where}; "
                                   "give that URL")
        answer = parse_answer(response.content)
        outcomes, unnamed = outcomes_from_answer(items, answer, http)
        if unnamed and len(items) > 1:
            log.info("%s: %d of %d instances not named in the answer; sending them alone",
                     http, len(unnamed), len(items))
            for item in unnamed:
                outcomes += self.send([item])
            return outcomes
        detail = _body_text(response) if answer is None else ""
        for item in unnamed:
            outcomes.append(Outcome(
                item.key, Status.FAILED,
                f"refused by the server: {http}" + (f": {detail}" if detail else
                                                     " (the answer does not name it)"),
                f"HTTP {response.status_code}", item,
            ))
        return outcomes

    def _post(self, parts: list[bytes], count: int) -> requests.Response:
        body, content_type = multipart_body(parts)
        headers = {"Content-Type": content_type, "Accept": "application/dicom+json"}

        def post() -> requests.Response:
            return self.session.post(
                self.url, data=body, headers=headers, timeout=self.target.request_timeout,
                allow_redirects=False,
            )

        return self.retry.call(
            lambda: raise_for_transport(post, self.target),
            what=f"STOW-RS of {count} instance(s) to {self.url}", source=self.target.url,
        )


def _body_text(response: requests.Response) -> str:
    text = response.text.strip() if response.content else ""
    return " ".join(text.split())[:300]


class QidoVerifier:
    """Finds instances one by one with QIDO-RS (``…/studies/{study}/instances?
    SOPInstanceUID=…``, or ``…/instances?…`` without a study)."""

    def __init__(self, target: DicomwebTarget, retry: RetryPolicy) -> None:
        from dicomweb_client.api import DICOMwebClient  # noqa: PLC0415

        self.target = target
        self.retry = retry
        self.session = target.session()
        self.client = DICOMwebClient(target.url, session=self.session,
                                     timeout=target.request_timeout)
        self.client.set_http_retry_params(retry=False)  # ours: bounded, with Retry-After

    def close(self) -> None:
        self.session.close()

    def find(self, item: Item) -> str | None:
        """None when the server has the instance; otherwise why it is missing."""
        found = self.retry.call(
            lambda: self._search(item), what=f"QIDO-RS of {item.sop_instance_uid}",
            source=self.target.url,
        )
        for entry in found:
            if _first(entry.get("00080018")) == item.sop_instance_uid:
                sop_class = _first(entry.get("00080016"))
                if sop_class not in (None, item.sop_class_uid):
                    return f"found by QIDO-RS with another SOP Class UID ({sop_class})"
                return None
        return "not found by QIDO-RS"

    def _search(self, item: Item) -> list[dict[str, Any]]:
        import requests  # noqa: PLC0415

        try:
            found: list[dict[str, Any]] = self.client.search_for_instances(
                study_instance_uid=item.study_instance_uid,
                search_filters={"SOPInstanceUID": item.sop_instance_uid},
                fields=["SOPClassUID"],
            )
        except requests.exceptions.HTTPError as exc:
            response = exc.response
            code = response.status_code if response is not None else 0
            if code == 404:
                return []
            if code in RETRIED_STATUSES:
                retry_after = response.headers.get("Retry-After") if response else None
                raise TransientError(f"HTTP {code}", parse_retry_after(retry_after)) from None
            if code in (401, 403):
                raise DestinationError(
                    self.target.url, _auth_problem(code, self.target.credentials)
                ) from None
            raise DestinationError(self.target.url, f"QIDO-RS: HTTP {code}") from None
        except requests.exceptions.SSLError as exc:
            raise DestinationError(self.target.url, _tls_problem(exc)) from None
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise TransientError(connection_problem(exc, self.target.timeout)) from None
        return found
