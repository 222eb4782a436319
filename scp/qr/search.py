"""C-FIND identifiers answered from HealthImaging's QIDO-RS searches.

The keys HealthImaging can filter go to the search ([SEARCH] pages "Searching for DICOM
studies/series/instances in HealthImaging": study keys StudyDate, AccessionNumber,
ModalitiesInStudy, ReferringPhysicianName, PatientName, PatientID, StudyInstanceUID, StudyID;
series keys Modality, SeriesInstanceUID; instance keys SOPClassUID, SOPInstanceUID); every key is
then matched by us (scp/qr/matching.py) on the returned attributes, so a search that filters less
strictly than PS3.4 (case, fuzzy) never adds a wrong match. PATIENT level is the study search
grouped by Patient ID and Name. A level below STUDY searches inside each matching study (and
series): the UIDs of the identifier, else those of a search one level up."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset

from scp.healthimaging.client import DicomWebClient
from scp.qr.matching import is_uid_list, is_universal, matches

LEVELS = ("PATIENT", "STUDY", "SERIES", "IMAGE")
# What each level's QIDO-RS search can filter ([SEARCH], per action).
QIDO_KEYS = {
    "STUDY": (
        "StudyDate",
        "AccessionNumber",
        "ModalitiesInStudy",
        "ReferringPhysicianName",
        "PatientName",
        "PatientID",
        "StudyInstanceUID",
        "StudyID",
    ),
    "SERIES": ("Modality", "SeriesInstanceUID"),
    "IMAGE": ("SOPClassUID", "SOPInstanceUID"),
}
QIDO_KEYS["PATIENT"] = ("PatientName", "PatientID")
UNIQUE_KEY = {
    "PATIENT": "PatientID",
    "STUDY": "StudyInstanceUID",
    "SERIES": "SeriesInstanceUID",
    "IMAGE": "SOPInstanceUID",
}
NOT_MATCHED = frozenset({"QueryRetrieveLevel", "SpecificCharacterSet"})


class IdentifierError(ValueError):
    """The identifier cannot be answered (no or unknown level): 0xA900."""


def level_of(identifier: Dataset, study_root: bool = False) -> str:
    """The identifier's level; the Study Root model has no PATIENT level (PS3.4 C.6.2)."""
    level = str(identifier.get("QueryRetrieveLevel", "")).strip().upper()
    allowed = LEVELS[1:] if study_root else LEVELS
    if level not in allowed:
        raise IdentifierError(f"Query/Retrieve Level {level!r} is not one of {', '.join(allowed)}")
    return level


def _vr(keyword: str) -> str:
    tag = tag_for_keyword(keyword)
    return dictionary_VR(tag) if tag is not None else "UN"


def key_text(identifier: Dataset, keyword: str) -> str:
    """A key's value as DICOM text (multi-valued keys joined with backslashes)."""
    value = identifier.get(keyword)
    if value is None or _vr(keyword) == "SQ":
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value)


def values_of(record: Dataset, keyword: str) -> list[str] | None:
    """An attribute's values as text, None when the search did not return it."""
    if keyword not in record:
        return None
    value = record[keyword].value
    if value is None or value == "":
        return [""]
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return [str(v) for v in value]
    return [str(value)]


def qido_query(identifier: Dataset, level: str) -> dict[str, str]:
    """The search parameters: each filterable key with one value (a UID list is matched by us)."""
    out = {}
    for keyword in QIDO_KEYS[level]:
        text = key_text(identifier, keyword).strip()
        if not is_universal(text) and not is_uid_list(text, _vr(keyword)):
            out[keyword] = text
    # The other requested keys, so that we can match them and fill them in (PS3.18 10.6.1.2.3
    # "includefield"; a server that ignores it leaves them unmatched and empty).
    extra = sorted(
        elem.keyword
        for elem in identifier
        if elem.keyword and elem.keyword not in NOT_MATCHED and elem.keyword not in out
    )
    if extra:
        out["includefield"] = ",".join(extra)
    return out


def record_matches(identifier: Dataset, record: Dataset) -> bool:
    """Every key of the identifier matches the record (C.2.2.2; sequences are return keys)."""
    for elem in identifier:
        keyword = elem.keyword
        if not keyword or keyword in NOT_MATCHED or elem.VR == "SQ":
            continue
        if not matches(key_text(identifier, keyword), elem.VR, values_of(record, keyword)):
            return False
    return True


class Search:
    """One C-FIND's (or C-MOVE's listing's) searches; `capped` once any search reached the
    10,000-record cap, `cancelled` (set by the caller) stops between records and pages."""

    def __init__(
        self,
        client: DicomWebClient,
        page_size: int,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> None:
        self.client, self.page_size, self.cancelled = client, page_size, cancelled
        self.capped = False

    def _qido(self, path: str, query: dict[str, str]) -> Iterator[Dataset]:
        pages = self.client.search(path, query, page_size=self.page_size)
        for doc in pages:
            if self.cancelled():
                return
            yield Dataset.from_json(doc)
        self.capped = self.capped or pages.capped

    def _parents(self, identifier: Dataset, level: str) -> Iterator[Dataset]:
        """The matching records of `level` that a lower level's search goes inside."""
        key = UNIQUE_KEY[level]
        uids = [u for u in key_text(identifier, key).split("\\") if u.strip()]
        if uids and not any("*" in u or "?" in u for u in uids):
            for uid in uids:
                parent = Dataset()
                setattr(parent, key, uid.strip())
                yield parent
            return
        yield from self.records(identifier, level)

    def records(self, identifier: Dataset, level: str) -> Iterator[Dataset]:
        """The search results of `level` matching every key of the identifier."""
        if level == "STUDY":
            found: Iterator[Dataset] = self._qido("/studies", qido_query(identifier, "STUDY"))
        elif level == "SERIES":
            found = (
                _with_parents(record, study)
                for study in self._parents(identifier, "STUDY")
                for record in self._qido(
                    f"/studies/{study.StudyInstanceUID}/series", qido_query(identifier, level)
                )
            )
        elif level == "IMAGE":
            found = (
                _with_parents(record, series)
                for series in self._parents(identifier, "SERIES")
                for record in self._qido(
                    f"/studies/{record_uid(series, identifier, 'StudyInstanceUID')}"
                    f"/series/{series.SeriesInstanceUID}/instances",
                    qido_query(identifier, level),
                )
            )
        else:
            found = self._patients(identifier)
        for record in found:
            if self.cancelled():
                return
            if record_matches(identifier, record):
                yield record

    def _patients(self, identifier: Dataset) -> Iterator[Dataset]:
        seen: set[tuple[str, str]] = set()
        for study in self._qido("/studies", qido_query(identifier, "PATIENT")):
            patient = (str(study.get("PatientID", "")), str(study.get("PatientName", "")))
            if patient not in seen:
                seen.add(patient)
                yield study


def _with_parents(record: Dataset, parent: Dataset) -> Dataset:
    """The record with its parents' UIDs where the search left them out."""
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID"):
        if keyword in parent and keyword not in record:
            setattr(record, keyword, parent[keyword].value)
    return record


def record_uid(record: Dataset, identifier: Dataset, keyword: str) -> str:
    """A parent's UID: the record's, else the identifier's single value."""
    return str(record.get(keyword) or key_text(identifier, keyword).strip())


def response_identifier(
    identifier: Dataset, record: Dataset, level: str, ae_title: str = ""
) -> Dataset:
    """The requested keys filled from the record (empty where the search returned nothing), the
    level, the unique keys of the levels above it, Retrieve AE Title (ours) when asked for, and
    UTF-8 (ISO_IR 192) as Specific Character Set when a value is not ASCII (DICOMweb JSON is
    Unicode)."""
    out = Dataset()
    for elem in identifier:
        keyword = elem.keyword
        if not keyword:
            continue
        if keyword in record:
            setattr(out, keyword, record[keyword].value)
        elif keyword == "QueryRetrieveLevel":
            out.QueryRetrieveLevel = level
        else:
            setattr(out, keyword, elem.value if keyword == "SpecificCharacterSet" else None)
    for above in LEVELS[1 : LEVELS.index(level) + 1]:
        key = UNIQUE_KEY[above]
        if key not in out and key in record:
            setattr(out, key, record[key].value)
    if "RetrieveAETitle" in identifier and ae_title:
        out.RetrieveAETitle = ae_title
    if any(not str(elem.value or "").isascii() for elem in out if elem.VR != "SQ"):
        out.SpecificCharacterSet = "ISO_IR 192"
    return out


def instances(search: Search, identifier: Dataset, study_root: bool = False) -> Iterator[Dataset]:
    """Every instance under a C-MOVE/C-GET identifier's unique keys (any level)."""
    level = level_of(identifier, study_root)
    query = Dataset()
    for keyword in ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        if keyword in identifier and key_text(identifier, keyword).strip():
            setattr(query, keyword, identifier[keyword].value)
    if level == "PATIENT" and "StudyInstanceUID" not in query:
        for study in search.records(query, "STUDY"):
            sub = Dataset()
            sub.StudyInstanceUID = study.StudyInstanceUID
            yield from search.records(sub, "IMAGE")
        return
    yield from search.records(query, "IMAGE")
