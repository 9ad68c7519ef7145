"""Redis adapters. Every Redis error leaves this package as :class:`StoreUnavailable`, so
callers fail closed without knowing Redis; ``core`` never imports redis."""
