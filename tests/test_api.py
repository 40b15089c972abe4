"""The public surface: exported names and the one error tree."""

from __future__ import annotations

import proxima.bpv7
import proxima.errors
from proxima.errors import (
    BundleError,
    CRCError,
    Incomplete,
    InvalidEndpointID,
    LocalError,
    ProtocolError,
    ProximaError,
    RemoteError,
    SecurityError,
)


def test_exported_members_exist() -> None:
    for module in (proxima.bpv7, proxima.errors):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"
        assert sorted(module.__all__) == sorted(set(module.__all__))


def test_error_tree_says_whose_fault() -> None:
    for cls in (Incomplete, ProtocolError, BundleError, CRCError, SecurityError):
        assert issubclass(cls, RemoteError)
        assert not issubclass(cls, LocalError)
    assert issubclass(InvalidEndpointID, LocalError)
    assert issubclass(InvalidEndpointID, ValueError)
    assert issubclass(LocalError, ProximaError) and issubclass(RemoteError, ProximaError)


def test_errors_carry_wire_reason_codes() -> None:
    err = CRCError("block 1 (type 1): CRC check failed", reason=8, block=1)
    assert (err.reason, err.block, str(err)) == (8, 1, "block 1 (type 1): CRC check failed")
    assert Incomplete("more", needed=3).needed == 3
    assert LocalError("x").reason is None
