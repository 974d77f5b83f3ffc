"""The documents a student files before the defense (rules B1, B2; clauses 6.6, 7.3)."""

from __future__ import annotations

import enum


class DocumentKind(enum.StrEnum):
    """A document on file for a student's defense."""

    THESIS = "thesis"
    PLAGIARISM_REPORT = "plagiarism_report"
    SUPERVISOR_REVIEW = "supervisor_review"
    REVIEWER_REVIEW = "reviewer_review"
    PRESENTATION_PDF = "presentation_pdf"
    NORM_CONTROL = "norm_control"
    #: The document that proves a valid reason for absence (clause 7.9).
    ABSENCE_PROOF = "absence_proof"


#: Required of every student (B1, B2). The norm-control sheet is required only
#: where the defense day says so (B1: "if any").
ALWAYS_REQUIRED = (
    DocumentKind.THESIS,
    DocumentKind.PLAGIARISM_REPORT,
    DocumentKind.SUPERVISOR_REVIEW,
    DocumentKind.REVIEWER_REVIEW,
    DocumentKind.PRESENTATION_PDF,
)


#: Without these a defense does not start, unless the chair waives them with a
#: reason (B2: the presentation is mandatory; the members must have the thesis).
NEEDED_TO_DEFEND = (DocumentKind.THESIS, DocumentKind.PRESENTATION_PDF)


def required_documents(norm_control_required: bool) -> tuple[DocumentKind, ...]:
    """The documents a student must file, in the order reports list them."""
    if norm_control_required:
        return (*ALWAYS_REQUIRED, DocumentKind.NORM_CONTROL)
    return ALWAYS_REQUIRED
