"""Errors of the signed paperwork: one root, `PaperworkError`.

The subclasses live beside the code that raises them: `approvals.ApprovalRefused`
and its kinds (the approval and signing rules, V5), `keys.SignatureRefused`
(a key or signature that is not the signer's, V6), `signing.SigningError` (a
malformed key or signature), `render.ProtocolRenderError` (a protocol that cannot
be rendered) and `handover.NotReady` (a day not yet signed, R3).

Each class names its refusal for the web edge: `code` (machine-readable) and
`status_hint` (the HTTP status that fits), like h11's ``error_status_hint``.
"""

from __future__ import annotations


class PaperworkError(Exception):
    """Root of every error the protocols package raises on purpose."""

    #: The paperwork cannot be produced (e.g. the PDF font is missing): ours.
    code = "protocol_unavailable"
    status_hint = 500
