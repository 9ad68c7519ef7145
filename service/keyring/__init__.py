"""Key and certificate management: the issuer's signing keys on disk, their rotation and
revocation, the live ring a server reloads, and the trust list of other issuers."""
