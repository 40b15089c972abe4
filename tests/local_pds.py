"""The local AT Protocol PDS of the tests: :mod:`proxima.devservers.pds` (the demo uses it too)."""

from proxima.devservers.pds import LocalPDS, Record, local_pds

__all__ = ["LocalPDS", "Record", "local_pds"]
