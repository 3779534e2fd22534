"""Verdicts of slice verification: the ``lineapy_verifications`` table.

Each row records one verification of one artifact version: its status
(``verified``, ``differs``, ``failed``, ``nondeterministic``, ``timeout``,
``not run``), a one-line detail, how long it took, a digest of the slice it
ran (a verdict is about *that* code) and, after a repair, the statements that
had to be added.  Rows go with their artifact (``ON DELETE CASCADE``).

The table is registered with the store's declarative ``Base``
(:mod:`lineapy_ext.store.models` imports this module), so the
``create_all`` the metadata database runs when it opens creates it, in new
and in existing databases alike; it is an additive change that needs no
schema version bump.

:func:`replace_slice` is the one write to ``lineapy_artifacts`` this module
makes: a repair stores the slice that verifies as the artifact's slice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from lineapy_ext.store.models import Base

#: Every status a verdict can have, in the order the README explains them.
STATUSES = ("verified", "differs", "failed", "nondeterministic", "timeout", "not run")


class VerificationRow(Base):
    __tablename__ = "lineapy_verifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    artifact_id: Mapped[int] = mapped_column(ForeignKey("lineapy_artifacts.id", ondelete="CASCADE"), index=True)
    verified_at: Mapped[datetime] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")
    seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    slice_digest: Mapped[str] = mapped_column(String(64), default="")
    added_statements: Mapped[list] = mapped_column(JSON, default=list)


@dataclass(frozen=True)
class Verdict:
    """The outcome of verifying one slice.

    Attributes
    ----------
    status : str
        One of :data:`STATUSES`.
    detail : str
        One line: the first difference, the exception and slice line, why it
        was not run...; empty for ``verified``.
    seconds : float or None
        Wall-clock time of the verification (slice runs and comparison).
    verified_at : datetime or None
        When it was recorded (UTC); ``None`` until stored.
    added_statements : list of str
        Statements a repair added to the slice.
    line : int or None
        For ``failed``: the slice line that raised (not stored; a repair uses it).
    """

    status: str
    detail: str = ""
    seconds: float | None = None
    verified_at: datetime | None = None
    added_statements: list = field(default_factory=list)
    line: int | None = None

    def __str__(self) -> str:
        text = self.status
        if self.status == "verified" and self.seconds is not None:
            text += f" ({self.seconds:.2f} s)"
        return text + (f": {self.detail}" if self.detail else "")

    @property
    def ok(self) -> bool:
        """Whether the slice recomputed the saved value."""
        return self.status == "verified"

    def as_dict(self) -> dict:
        """The verdict as plain data (for ``Artifact.get_metadata()``)."""
        return {
            "status": self.status,
            "detail": self.detail,
            "seconds": self.seconds,
            "verified_at": self.verified_at.isoformat() if self.verified_at else None,
            "added_statements": list(self.added_statements),
        }


def slice_digest(code: str) -> str:
    """Digest of a slice's text: tells whether a verdict is about the current slice."""
    import xxhash

    return xxhash.xxh3_64_hexdigest(code.encode("utf-8"))


def record_verdict(db, artifact_id: int, verdict: Verdict, code: str) -> Verdict:
    """Store ``verdict`` for artifact row ``artifact_id`` (whose slice was ``code``).

    Parameters
    ----------
    db : lineapy_ext.store.metadata.MetadataDB
    artifact_id : int
    verdict : Verdict
    code : str
        The slice that was run.

    Returns
    -------
    Verdict
        ``verdict`` with ``verified_at`` set.
    """
    now = datetime.now(timezone.utc)
    with db.write() as conn:
        conn.execute(
            VerificationRow.__table__.insert().values(
                artifact_id=artifact_id,
                verified_at=now.replace(tzinfo=None),
                status=verdict.status,
                detail=verdict.detail,
                seconds=verdict.seconds,
                slice_digest=slice_digest(code),
                added_statements=list(verdict.added_statements),
            )
        )
    return Verdict(verdict.status, verdict.detail, verdict.seconds, now, list(verdict.added_statements))


def latest_verdicts(db, artifact_ids) -> dict[int, Verdict]:
    """Return the newest verdict of each of ``artifact_ids`` that has one."""
    from sqlalchemy import select

    ids = list(artifact_ids)
    if not ids:
        return {}
    t = VerificationRow.__table__
    query = select(t).where(t.c.artifact_id.in_(ids)).order_by(t.c.artifact_id, t.c.id)
    with db.read() as conn:
        rows = conn.execute(query).mappings().all()
    found: dict[int, Verdict] = {}
    for r in rows:  # ordered by id: the last one per artifact wins
        found[r["artifact_id"]] = Verdict(
            r["status"], r["detail"] or "", r["seconds"],
            r["verified_at"].replace(tzinfo=timezone.utc), list(r["added_statements"] or []),
        )
    return found


def replace_slice(db, artifact_id: int, code: str, cells: list, environment: dict | None = None) -> None:
    """Make ``code`` (split into ``cells``, ``(execution_count, code)`` pairs) the slice of row ``artifact_id``.

    ``environment``, when given, replaces the recorded one (see
    :func:`lineapy_ext.environment.extend`).
    """
    from lineapy_ext.store.models import ArtifactRow

    t = ArtifactRow.__table__
    values = {"slice_code": code, "slice_cells": [list(c) for c in cells]}
    if environment is not None:
        values["environment"] = environment
    with db.write() as conn:
        conn.execute(t.update().where(t.c.id == artifact_id).values(**values))
