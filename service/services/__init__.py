"""Application services: issuing, verifying, OpenID4VCI, OpenID4VP, remote status.

They raise the typed errors of :mod:`service.errors` and never build HTTP."""
