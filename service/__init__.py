"""Thiqa: issue, verify and revoke digital identity credentials (SD-JWT VC)."""

__version__ = "0.1.0"
