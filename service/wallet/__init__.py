"""A holder (wallet) for testers: keys and credentials in a local file, and the protocol
steps a phone wallet would perform. Not part of the server."""
