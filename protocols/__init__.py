"""The signed paperwork of a defense day: protocol drafts rebuilt from the journal,
members' approvals and the chair's signature, their keys, the rendered HTML and PDF,
the appeal evidence pack and the hand-over package."""
