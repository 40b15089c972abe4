"""Tests of BPSec (RFC 9172) with the default security contexts of RFC 9173.

The RFC 9173 Appendix A examples are reproduced byte for byte in both directions: building each
bundle and applying the operation with the RFC's keys and IV gives the RFC's encoding, and the
RFC's encoding verifies or decrypts back to the original bundle.
"""

from __future__ import annotations

from typing import Any

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxima.bpv7 import (
    DTN_NONE,
    EID,
    BlockType,
    Bundle,
    BundleFlag,
    CanonicalBlock,
    CRCType,
    DtnEID,
    IpnEID,
    PrimaryBlock,
    Reason,
    age_block,
    decode_bundle,
    encode_block,
    encode_bundle,
    payload_block,
)
from proxima.bpv7.bpsec import (
    BCB_AES_GCM,
    BIB_HMAC_SHA2,
    PARAMETERS_PRESENT,
    AbstractSecurityBlock,
    AesVariant,
    ShaVariant,
    aad,
    add_bcb,
    add_bib,
    asb_of,
    check_security,
    decode_asb,
    decrypt_bcb,
    encode_asb,
    ippt,
    verify_bib,
)
from proxima.errors import LocalError, ProximaError, SecurityError

# ---------------------------------------------------------------------------------------------
# RFC 9173 Appendix A, copied from the RFC (line breaks as printed there).

PRIMARY_HEX = "88070000820282010282028202018202820201820018281a000f4240"
PAYLOAD_HEX = "526561647920746f2067656e657261746520612033322d62797465207061796c6f6164"
PAYLOAD_BLOCK_HEX = "85010100005823526561647920746f2067656e657261746520612033322d62797465207061796c6f6164"
ORIGINAL_HEX = (
    "9f88070000820282010282028202018202820201820018281a000f424085010100"
    "005823526561647920746f2067656e657261746520612033322d6279746520706179"
    "6c6f6164ff"
)

# A.1 Simple Integrity
A1_KEY = "1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b"
A1_IPPT = "005823526561647920746f2067656e657261746520612033322d62797465207061796c6f6164"
A1_SIGNATURE = (
    "3bdc69b3a34a2b5d3a8554368bd1e808"
    "f606219d2a10a846eae3886ae4ecc83c"
    "4ee550fdfb1cc636b904e2f1a73e303d"
    "cd4b6ccece003e95e8164dcc89a156e1"
)
A1_ASB = (
    "810101018202820201828201078203008181820158403bdc69b3a34a2b5d3a8554"
    "368bd1e808f606219d2a10a846eae3886ae4ecc83c4ee550fdfb1cc636b904e2f1a7"
    "3e303dcd4b6ccece003e95e8164dcc89a156e1"
)
A1_BIB = (
    "850b0200005856810101018202820201828201078203008181820158403bdc69b3"
    "a34a2b5d3a8554368bd1e808f606219d2a10a846eae3886ae4ecc83c4ee550fdfb1c"
    "c636b904e2f1a73e303dcd4b6ccece003e95e8164dcc89a156e1"
)
A1_FINAL = (
    "9f88070000820282010282028202018202820201820018281a000f4240850b0200"
    "005856810101018202820201828201078203008181820158403bdc69b3a34a2b5d3a"
    "8554368bd1e808f606219d2a10a846eae3886ae4ecc83c4ee550fdfb1cc636b904e2"
    "f1a73e303dcd4b6ccece003e95e8164dcc89a156e185010100005823526561647920"
    "746f2067656e657261746520612033322d62797465207061796c6f6164ff"
)

# A.2 Simple Confidentiality with Key Wrap
A2_CEK = "71776572747975696f70617364666768"
A2_KEK = "6162636465666768696a6b6c6d6e6f70"
A2_IV = "5477656c7665313231323132"
A2_WRAPPED_KEY = "69c411276fecddc4780df42c8a2af89296fabf34d7fae700"
A2_AAD = "00"
A2_TAG = "efa4b5ac0108e3816c5606479801bc04"
A2_CIPHERTEXT = "3a09c1e63fe23a7f66a59c7303837241e070b02619fc59c5214a22f08cd70795e73e9a"
A2_ASB = (
    "8101020182028202018482014c5477656c76653132313231328202018203581869"
    "c411276fecddc4780df42c8a2af89296fabf34d7fae7008204008181820150efa4b5"
    "ac0108e3816c5606479801bc04"
)
A2_BCB = (
    "850c02010058508101020182028202018482014c5477656c766531323132313282"
    "02018203581869c411276fecddc4780df42c8a2af89296fabf34d7fae70082040081"
    "81820150efa4b5ac0108e3816c5606479801bc04"
)
A2_FINAL = (
    "9f88070000820282010282028202018202820201820018281a000f4240850c0201"
    "0058508101020182028202018482014c5477656c7665313231323132820201820358"
    "1869c411276fecddc4780df42c8a2af89296fabf34d7fae7008204008181820150ef"
    "a4b5ac0108e3816c5606479801bc04850101000058233a09c1e63fe23a7f66a59c73"
    "03837241e070b02619fc59c5214a22f08cd70795e73e9aff"
)

# A.3 Security Blocks from Multiple Sources
A3_AGE_BLOCK = "85070200004319012c"
A3_ORIGINAL = (
    "9f88070000820282010282028202018202820201820018281a000f424085070200"
    "004319012c85010100005823526561647920746f2067656e65726174652061203332"
    "2d62797465207061796c6f6164ff"
)
A3_BIB_KEY = "1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b"
A3_PRIMARY_IPPT = "00581c88070000820282010282028202018202820201820018281a000f4240"
A3_AGE_IPPT = "004319012c"
A3_PRIMARY_SIGNATURE = "cac6ce8e4c5dae57988b757e49a6dd1431dc04763541b2845098265bc817241b"
A3_AGE_SIGNATURE = "3ed614c0d97f49b3633627779aa18a338d212bf3c92b97759d9739cd50725596"
A3_BIB_ASB = (
    "8200020101820282030082820105820300828182015820cac6ce8e4c5dae57988b"
    "757e49a6dd1431dc04763541b2845098265bc817241b81820158203ed614c0d97f49"
    "b3633627779aa18a338d212bf3c92b97759d9739cd50725596"
)
A3_BIB = (
    "850b030000585c8200020101820282030082820105820300828182015820cac6ce"
    "8e4c5dae57988b757e49a6dd1431dc04763541b2845098265bc817241b8182015820"
    "3ed614c0d97f49b3633627779aa18a338d212bf3c92b97759d9739cd50725596"
)
A3_CEK = "71776572747975696f70617364666768"
A3_IV = "5477656c7665313231323132"
A3_BCB_ASB = (
    "8101020182028202018382014c5477656c76653132313231328202018204008181820150efa4b5ac0108e3816c5606479801bc04"
)
A3_BCB = (
    "850c04010058348101020182028202018382014c5477656c766531323132313282"
    "02018204008181820150efa4b5ac0108e3816c5606479801bc04"
)
A3_FINAL = (
    "9f88070000820282010282028202018202820201820018281a000f4240850b0300"
    "00585c8200020101820282030082820105820300828182015820cac6ce8e4c5dae57"
    "988b757e49a6dd1431dc04763541b2845098265bc817241b81820158203ed614c0d9"
    "7f49b3633627779aa18a338d212bf3c92b97759d9739cd50725596850c0401005834"
    "8101020182028202018382014c5477656c7665313231323132820201820400818182"
    "0150efa4b5ac0108e3816c5606479801bc0485070200004319012c85010100005823"
    "3a09c1e63fe23a7f66a59c7303837241e070b02619fc59c5214a22f08cd70795e73e"
    "9aff"
)

# A.4 Security Blocks with Full Scope
A4_BIB_KEY = "1a2b1a2b1a2b1a2b1a2b1a2b1a2b1a2b"
A4_IPPT = (
    "07880700008202820102820282020182"
    "02820201820018281a000f4240010100"
    "0b03005823526561647920746f206765"
    "6e657261746520612033322d62797465"
    "207061796c6f6164"
)
A4_SIGNATURE = (
    "f75fe4c37f76f046165855bd5ff72fbfd4e3a64b4695c40e2b787da005ae819f0a2e30a2e8b325527de8aefb52e73d71"
)
A4_BIB_ASB = (
    "81010101820282020182820106820307818182015830f75fe4c37f76f046165855"
    "bd5ff72fbfd4e3a64b4695c40e2b787da005ae819f0a2e30a2e8b325527de8aefb52"
    "e73d71"
)
A4_BIB = (
    "850b030000584681010101820282020182820106820307818182015830f75fe4c3"
    "7f76f046165855bd5ff72fbfd4e3a64b4695c40e2b787da005ae819f0a2e30a2e8b3"
    "25527de8aefb52e73d71"
)
A4_CEK = "71776572747975696f7061736466676871776572747975696f70617364666768"
A4_IV = "5477656c7665313231323132"
A4_PAYLOAD_AAD = "0788070000820282010282028202018202820201820018281a000f42400101000c0201"
A4_BIB_AAD = "0788070000820282010282028202018202820201820018281a000f42400b03000c0201"
A4_PAYLOAD_TAG = "d2c51cb2481792dae8b21d848cede99b"
A4_BIB_TAG = "220ffc45c8a901999ecc60991dd78b29"
A4_PAYLOAD_CIPHERTEXT = "90eab6457593379298a8724e16e61f837488e127212b59ac91f8a86287b7d07630a122"
A4_BIB_CIPHERTEXT = (
    "438ed6208eb1c1ffb94d952175167df0"
    "902902064a2983910c4fb2340790bf42"
    "0a7d1921d5bf7c4721e02ab87a93ab1e"
    "0b75cf62e4948727c8b5dae46ed2af05"
    "439b88029191"
)
A4_BCB_ASB = (
    "820301020182028202018382014c5477656c766531323132313282020382040782"
    "81820150220ffc45c8a901999ecc60991dd78b2981820150d2c51cb2481792dae8b2"
    "1d848cede99b"
)
A4_BCB = (
    "850c0201005849820301020182028202018382014c5477656c7665313231323132"
    "8202038204078281820150220ffc45c8a901999ecc60991dd78b2981820150d2c51c"
    "b2481792dae8b21d848cede99b"
)
A4_FINAL = (
    "9f88070000820282010282028202018202820201820018281a000f4240850b0300"
    "005846438ed6208eb1c1ffb94d952175167df0902902064a2983910c4fb2340790bf"
    "420a7d1921d5bf7c4721e02ab87a93ab1e0b75cf62e4948727c8b5dae46ed2af0543"
    "9b88029191850c0201005849820301020182028202018382014c5477656c76653132"
    "313231328202038204078281820150220ffc45c8a901999ecc60991dd78b29818201"
    "50d2c51cb2481792dae8b21d848cede99b8501010000582390eab6457593379298a8"
    "724e16e61f837488e127212b59ac91f8a86287b7d07630a122ff"
)

SOURCE = IpnEID(2, 1)
WAYPOINT = IpnEID(3, 0)
PRIMARY = PrimaryBlock(IpnEID(1, 2), IpnEID(2, 1), IpnEID(2, 1), 0, 40, 1_000_000, 0, CRCType.NONE)
PAYLOAD = payload_block(bytes.fromhex(PAYLOAD_HEX))
ORIGINAL = Bundle(PRIMARY, (PAYLOAD,))
A3_ORIGINAL_BUNDLE = Bundle(PRIMARY, (age_block(300, number=2), PAYLOAD))


def h(hex_text: str) -> bytes:
    return bytes.fromhex(hex_text)


def wire(bundle: Bundle) -> str:
    """The bundle's encoding in hex. ``check=False``: the RFC examples (except A.3) have
    creation time 0 and no bundle age block, which ``encode_bundle`` refuses."""
    return encode_bundle(bundle, check=False).hex()


def parse_rfc_bundle(hex_text: str) -> Bundle:
    """Decode an RFC 9173 example bundle with ``decode_bundle``.

    Examples A.1, A.2 and A.4 have creation time 0 and no bundle age block, which RFC 9171
    §4.3.1 forbids, so that one rule is waived; every other rule and the codec are the real ones.
    """
    bundle = decode_bundle(h(hex_text), require_age_block=False)
    assert encode_bundle(bundle, require_age_block=False).hex() == hex_text
    assert wire(bundle) == hex_text
    return bundle


def _reason(exc: pytest.ExceptionInfo[SecurityError]) -> int | None:
    return exc.value.reason


# ---------------------------------------------------------------------------------------------
# The starting bundles.


def test_original_bundles_match_the_rfc() -> None:
    from proxima.bpv7 import encode_primary

    assert encode_primary(PRIMARY).hex() == PRIMARY_HEX
    assert encode_block(PAYLOAD).hex() == PAYLOAD_BLOCK_HEX
    assert wire(ORIGINAL) == ORIGINAL_HEX
    assert encode_block(A3_ORIGINAL_BUNDLE.blocks[0]).hex() == A3_AGE_BLOCK
    assert encode_bundle(A3_ORIGINAL_BUNDLE).hex() == A3_ORIGINAL
    assert parse_rfc_bundle(A3_FINAL) == decode_bundle(h(A3_FINAL))


# ---------------------------------------------------------------------------------------------
# A.1 Simple Integrity.


def a1_bundle() -> Bundle:
    return add_bib(
        ORIGINAL,
        [1],
        h(A1_KEY),
        security_source=SOURCE,
        sha_variant=ShaVariant.HMAC_512_512,
        scope=0,
    )


def test_a1_ippt() -> None:
    bib = CanonicalBlock(BlockType.BIB, 2)
    assert ippt(ORIGINAL, 1, bib, 0).hex() == A1_IPPT


def test_a1_add_bib_reproduces_the_rfc() -> None:
    signed = a1_bundle()
    bib = signed.blocks[0]
    assert (bib.type, bib.number, bib.flags, bib.crc_type) == (11, 2, 0, 0)
    assert bib.data.hex() == A1_ASB
    assert encode_block(bib).hex() == A1_BIB
    assert wire(signed) == A1_FINAL


def test_a1_asb_fields() -> None:
    asb = decode_asb(h(A1_ASB))
    assert asb == AbstractSecurityBlock(
        targets=(1,),
        context_id=BIB_HMAC_SHA2,
        context_flags=PARAMETERS_PRESENT,
        source=SOURCE,
        parameters=((1, 7), (3, 0)),
        results=(((1, h(A1_SIGNATURE)),),),
    )
    assert encode_asb(asb).hex() == A1_ASB
    assert asb.parameter(1) == 7
    assert asb.parameter(2) is None


def test_a1_rfc_bundle_verifies() -> None:
    received = parse_rfc_bundle(A1_FINAL)
    assert verify_bib(received, h(A1_KEY)) == received
    assert verify_bib(received, h(A1_KEY), remove=True) == ORIGINAL


def test_a1_every_payload_byte_is_protected() -> None:
    received = parse_rfc_bundle(A1_FINAL)
    payload = received.payload
    for i in range(len(payload)):
        tampered = bytearray(payload)
        tampered[i] ^= 0x01
        bad = received.with_blocks((received.blocks[0], PAYLOAD._replace(data=bytes(tampered))))
        with pytest.raises(SecurityError) as exc:
            verify_bib(bad, h(A1_KEY))
        assert _reason(exc) == Reason.FAILED_SECURITY_OPERATION
        assert exc.value.block == 1


def test_a1_tampered_wire_bytes_fail() -> None:
    data = h(A1_FINAL)
    payload_start = len(data) - 1 - len(h(PAYLOAD_HEX))
    signature_start = data.index(h(A1_SIGNATURE))
    for pos in (payload_start, payload_start + 17, len(data) - 2, signature_start + 5):
        tampered = bytearray(data)
        tampered[pos] ^= 0x80
        with pytest.raises(SecurityError) as exc:
            verify_bib(parse_rfc_bundle(tampered.hex()), h(A1_KEY))
        assert _reason(exc) == Reason.FAILED_SECURITY_OPERATION


def test_a1_wrong_key_fails() -> None:
    with pytest.raises(SecurityError) as exc:
        verify_bib(parse_rfc_bundle(A1_FINAL), h(A1_KEY)[:-1] + b"\x00")
    assert _reason(exc) == Reason.FAILED_SECURITY_OPERATION


# ---------------------------------------------------------------------------------------------
# A.2 Simple Confidentiality with Key Wrap.


def a2_bundle() -> Bundle:
    return add_bcb(
        ORIGINAL,
        [1],
        h(A2_KEK),
        h(A2_IV),
        security_source=SOURCE,
        aes_variant=AesVariant.A128GCM,
        scope=0,
        wrapped_key_cek=h(A2_CEK),
    )


def test_a2_aad() -> None:
    bcb = CanonicalBlock(BlockType.BCB, 2, 1)
    assert aad(ORIGINAL, 1, bcb, 0).hex() == A2_AAD


def test_a2_add_bcb_reproduces_the_rfc() -> None:
    encrypted = a2_bundle()
    bcb = encrypted.blocks[0]
    assert (bcb.type, bcb.number, bcb.flags, bcb.crc_type) == (12, 2, 1, 0)
    assert bcb.data.hex() == A2_ASB
    assert encode_block(bcb).hex() == A2_BCB
    assert encrypted.payload.hex() == A2_CIPHERTEXT
    assert wire(encrypted) == A2_FINAL
    asb = asb_of(bcb)
    assert asb.parameters == ((1, h(A2_IV)), (2, 1), (3, h(A2_WRAPPED_KEY)), (4, 0))
    assert asb.results == (((1, h(A2_TAG)),),)


def test_a2_rfc_bundle_decrypts() -> None:
    assert decrypt_bcb(parse_rfc_bundle(A2_FINAL), h(A2_KEK)) == ORIGINAL


def test_a2_wrong_key_encryption_key_fails() -> None:
    with pytest.raises(SecurityError) as exc:
        decrypt_bcb(parse_rfc_bundle(A2_FINAL), h(A2_CEK))  # the CEK is not the KEK
    assert _reason(exc) == Reason.FAILED_SECURITY_OPERATION
    assert exc.value.block == 2


def test_a2_tampered_ciphertext_or_tag_fails() -> None:
    received = parse_rfc_bundle(A2_FINAL)
    for i in (0, 10, 34):
        ct = bytearray(received.payload)
        ct[i] ^= 0x04
        bad = received.with_blocks((received.blocks[0], received.blocks[1]._replace(data=bytes(ct))))
        with pytest.raises(SecurityError) as exc:
            decrypt_bcb(bad, h(A2_KEK))
        assert _reason(exc) == Reason.FAILED_SECURITY_OPERATION
        assert exc.value.block == 1
    bad_tag = received.blocks[0]._replace(data=received.blocks[0].data[:-1] + b"\x05")
    with pytest.raises(SecurityError):
        decrypt_bcb(received.with_blocks((bad_tag, received.blocks[1])), h(A2_KEK))


# ---------------------------------------------------------------------------------------------
# A.3 Security Blocks from Multiple Sources.


def a3_bundle() -> Bundle:
    # The source (ipn:2.1) encrypts the payload, then a waypoint (ipn:3.0) signs the primary
    # block and the bundle age block; the RFC shows the BIB first.
    encrypted = add_bcb(
        A3_ORIGINAL_BUNDLE,
        [1],
        h(A3_CEK),
        h(A3_IV),
        security_source=SOURCE,
        aes_variant=AesVariant.A128GCM,
        scope=0,
        block_number=4,
    )
    return add_bib(
        encrypted,
        [0, 2],
        h(A3_BIB_KEY),
        security_source=WAYPOINT,
        sha_variant=ShaVariant.HMAC_256_256,
        scope=0,
        block_number=3,
        index=0,
    )


def test_a3_ippt() -> None:
    bib = CanonicalBlock(BlockType.BIB, 3)
    assert ippt(A3_ORIGINAL_BUNDLE, 0, bib, 0).hex() == A3_PRIMARY_IPPT
    assert ippt(A3_ORIGINAL_BUNDLE, 2, bib, 0).hex() == A3_AGE_IPPT


def test_a3_reproduces_the_rfc() -> None:
    secured = a3_bundle()
    bib, bcb = secured.blocks[0], secured.blocks[1]
    assert bib.data.hex() == A3_BIB_ASB
    assert encode_block(bib).hex() == A3_BIB
    assert bcb.data.hex() == A3_BCB_ASB
    assert encode_block(bcb).hex() == A3_BCB
    assert encode_bundle(secured).hex() == A3_FINAL
    assert asb_of(bib).results == (
        ((1, h(A3_PRIMARY_SIGNATURE)),),
        ((1, h(A3_AGE_SIGNATURE)),),
    )


def test_a3_rfc_bundle_verifies_and_decrypts() -> None:
    received = decode_bundle(h(A3_FINAL))

    def keys(block: CanonicalBlock, asb: AbstractSecurityBlock) -> bytes | None:
        if block.type == BlockType.BIB and asb.source == WAYPOINT:
            return h(A3_BIB_KEY)
        if block.type == BlockType.BCB and asb.source == SOURCE:
            return h(A3_CEK)
        return None

    checked = verify_bib(received, keys, remove=True)
    assert decrypt_bcb(checked, keys) == A3_ORIGINAL_BUNDLE
    # In the other order too: the BIB does not cover the encrypted payload.
    assert verify_bib(decrypt_bcb(received, keys), keys, remove=True) == A3_ORIGINAL_BUNDLE


def test_a3_tampered_primary_or_age_fails() -> None:
    received = decode_bundle(h(A3_FINAL))
    older = received.with_blocks(
        b._replace(data=b"\x19\x01\x2d") if b.type == BlockType.BUNDLE_AGE else b for b in received.blocks
    )
    with pytest.raises(SecurityError) as exc:
        verify_bib(older, h(A3_BIB_KEY))
    assert exc.value.block == 2
    longer = Bundle(received.primary._replace(lifetime=2_000_000), received.blocks)
    with pytest.raises(SecurityError) as exc:
        verify_bib(longer, h(A3_BIB_KEY))
    assert exc.value.block == 0
    assert _reason(exc) == Reason.FAILED_SECURITY_OPERATION


# ---------------------------------------------------------------------------------------------
# A.4 Security Blocks with Full Scope.


def a4_signed() -> Bundle:
    return add_bib(
        ORIGINAL,
        [1],
        h(A4_BIB_KEY),
        security_source=SOURCE,
        sha_variant=6,
        scope=7,
        block_number=3,
    )


def a4_bundle() -> Bundle:
    return add_bcb(
        a4_signed(),
        [3, 1],
        h(A4_CEK),
        h(A4_IV),
        security_source=SOURCE,
        block_number=2,
    )


def test_a4_ippt_and_aad() -> None:
    signed = a4_signed()
    bib = signed.blocks[0]
    assert ippt(signed, 1, bib).hex() == A4_IPPT
    bcb = CanonicalBlock(BlockType.BCB, 2, 1)
    assert aad(signed, 1, bcb).hex() == A4_PAYLOAD_AAD
    assert aad(signed, 3, bcb).hex() == A4_BIB_AAD


def test_a4_reproduces_the_rfc() -> None:
    signed = a4_signed()
    assert signed.blocks[0].data.hex() == A4_BIB_ASB
    assert encode_block(signed.blocks[0]).hex() == A4_BIB
    secured = a4_bundle()
    bib, bcb, payload = secured.blocks
    assert bcb.data.hex() == A4_BCB_ASB
    assert encode_block(bcb).hex() == A4_BCB
    assert bib.data.hex() == A4_BIB_CIPHERTEXT
    assert payload.data.hex() == A4_PAYLOAD_CIPHERTEXT
    assert asb_of(bcb).results == (((1, h(A4_BIB_TAG)),), ((1, h(A4_PAYLOAD_TAG)),))
    assert wire(secured) == A4_FINAL


def test_a4_rfc_bundle_decrypts_and_verifies() -> None:
    received = parse_rfc_bundle(A4_FINAL)
    # The BIB is encrypted: it can neither be read nor verified yet.
    with pytest.raises(SecurityError) as exc:
        verify_bib(received, h(A4_BIB_KEY))
    assert _reason(exc) == Reason.MISSING_SECURITY_OPERATION
    assert verify_bib(received, h(A4_BIB_KEY), required=False) == received
    plain = decrypt_bcb(received, h(A4_CEK))
    assert plain == a4_signed()
    assert verify_bib(plain, h(A4_BIB_KEY), remove=True) == ORIGINAL


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda b: Bundle(b.primary._replace(lifetime=999_999), b.blocks), id="primary"),
        pytest.param(
            lambda b: b.with_blocks((b.blocks[0]._replace(flags=2), *b.blocks[1:])), id="bib-header"
        ),
        pytest.param(
            lambda b: b.with_blocks((b.blocks[0], b.blocks[1]._replace(flags=3), b.blocks[2])),
            id="bcb-header",
        ),
        pytest.param(
            lambda b: b.with_blocks((*b.blocks[:2], b.blocks[2]._replace(flags=4))),
            id="payload-header",
        ),
        pytest.param(
            lambda b: b.with_blocks(
                (*b.blocks[:2], b.blocks[2]._replace(data=b"\x00" + b.blocks[2].data[1:]))
            ),
            id="payload-ciphertext",
        ),
    ],
)
def test_a4_full_scope_binds_headers_and_primary(mutate: Any) -> None:
    received = parse_rfc_bundle(A4_FINAL)
    with pytest.raises(SecurityError) as exc:
        decrypt_bcb(mutate(received), h(A4_CEK))
    assert _reason(exc) == Reason.FAILED_SECURITY_OPERATION


def test_a4_scope_7_bib_binds_payload_header() -> None:
    plain = a4_signed()
    moved = plain.with_blocks((plain.blocks[0], plain.blocks[1]._replace(flags=1)))
    with pytest.raises(SecurityError):
        verify_bib(moved, h(A4_BIB_KEY))


def test_a4_wrong_key_fails_and_returns_nothing() -> None:
    with pytest.raises(SecurityError) as exc:
        decrypt_bcb(parse_rfc_bundle(A4_FINAL), bytes(32))
    assert _reason(exc) == Reason.FAILED_SECURITY_OPERATION
    with pytest.raises(SecurityError) as exc:
        decrypt_bcb(parse_rfc_bundle(A4_FINAL), h(A4_CEK)[:16])  # A256GCM needs 32 bytes
    assert _reason(exc) == Reason.FAILED_SECURITY_OPERATION


# ---------------------------------------------------------------------------------------------
# Other contexts behaviour: variants, key wrap, CRCs, key lookups.


@pytest.mark.parametrize("variant", list(ShaVariant))
@pytest.mark.parametrize("scope", range(8))
def test_bib_round_trip_all_variants_and_scopes(variant: int, scope: int) -> None:
    signed = add_bib(ORIGINAL, [0, 1], b"k" * 32, security_source=SOURCE, sha_variant=variant, scope=scope)
    mac = asb_of(signed.blocks[0]).results[1][0][1]
    assert isinstance(mac, bytes)
    assert len(mac) == {5: 32, 6: 48, 7: 64}[variant]
    assert verify_bib(signed, b"k" * 32, remove=True) == ORIGINAL


@pytest.mark.parametrize("variant", list(AesVariant))
def test_bcb_round_trip_with_and_without_key_wrap(variant: int) -> None:
    cek = bytes(range(16 if variant == AesVariant.A128GCM else 32))
    for kek_len in (16, 24, 32):
        kek = b"\x42" * kek_len
        enc = add_bcb(
            ORIGINAL,
            [1],
            kek,
            b"\x01" * 12,
            security_source=SOURCE,
            aes_variant=variant,
            wrapped_key_cek=cek,
        )
        assert enc.payload != PAYLOAD.data
        assert len(enc.payload) == len(PAYLOAD.data)
        assert decrypt_bcb(enc, kek) == ORIGINAL
    direct = add_bcb(ORIGINAL, [1], cek, b"\x02" * 16, security_source=SOURCE, aes_variant=variant)
    assert decrypt_bcb(direct, cek) == ORIGINAL


def test_bib_with_wrapped_key() -> None:
    kek, hmac_key = b"\x07" * 16, b"\x09" * 48
    signed = add_bib(ORIGINAL, [1], kek, security_source=SOURCE, wrapped_key_cek=hmac_key)
    wrapped = asb_of(signed.blocks[0]).parameter(2)
    assert isinstance(wrapped, bytes)
    assert len(wrapped) == 56
    assert verify_bib(signed, kek, remove=True) == ORIGINAL
    with pytest.raises(SecurityError) as exc:
        verify_bib(signed, hmac_key[:16])
    assert _reason(exc) == Reason.FAILED_SECURITY_OPERATION


def test_targets_lose_their_crc() -> None:
    primary = PRIMARY._replace(crc_type=CRCType.CRC32C, creation_time=1)
    bundle = Bundle(primary, (age_block(5, crc_type=CRCType.CRC16), payload_block(b"x", crc_type=2)))
    signed = add_bib(bundle, [0, 1], b"k" * 16, security_source=SOURCE, crc_type=CRCType.CRC32C)
    assert signed.primary.crc_type == 0
    assert signed.blocks[0].crc_type == CRCType.CRC32C  # the BIB's own CRC
    assert signed.block(3) == bundle.block(3)  # not a target: untouched
    assert signed.payload_block.crc_type == 0
    received = decode_bundle(encode_bundle(signed))
    assert verify_bib(received, b"k" * 16) == received
    # An extension block of a type the bundle layer does not interpret (the bundle layer
    # checks the content of a bundle age block, which would be ciphertext here).
    ext = CanonicalBlock(192, 4, 0, CRCType.CRC16, b"extension")
    bundle = bundle.with_blocks((ext, *bundle.blocks))
    enc = add_bcb(bundle, [4], b"c" * 32, b"i" * 12, security_source=SOURCE)
    assert enc.block(4) == ext._replace(crc_type=0, data=enc.block(4).data)  # type: ignore[union-attr]
    assert enc.primary.crc_type == CRCType.CRC32C
    assert enc.blocks[0].flags == 0  # no payload target: no replication needed
    plain = decrypt_bcb(decode_bundle(encode_bundle(enc)), b"c" * 32)
    assert plain.block(4) == ext._replace(crc_type=0)


def test_key_lookup_skips_and_required() -> None:
    signed = a1_bundle()
    with pytest.raises(SecurityError) as exc:
        verify_bib(signed, lambda _b, _a: None)
    assert _reason(exc) == Reason.MISSING_SECURITY_OPERATION
    assert verify_bib(signed, lambda _b, _a: None, required=False) == signed
    with pytest.raises(SecurityError) as exc:
        decrypt_bcb(signed, b"k" * 16)
    assert _reason(exc) == Reason.MISSING_SECURITY_OPERATION
    assert decrypt_bcb(ORIGINAL, b"k" * 16, required=False) == ORIGINAL
    with pytest.raises(LocalError):
        verify_bib(signed, b"")
    with pytest.raises(LocalError):
        verify_bib(signed, 42)  # type: ignore[arg-type]


def test_default_placement_and_numbering() -> None:
    bundle = Bundle(PRIMARY._replace(creation_time=9), (age_block(1, number=5), PAYLOAD))
    signed = add_bib(bundle, [1], b"k" * 16, security_source=SOURCE)
    assert [b.number for b in signed.blocks] == [6, 5, 1]
    enc = add_bcb(signed, [5], b"c" * 32, b"i" * 12, security_source=SOURCE)
    assert [(b.type, b.number) for b in enc.blocks] == [(11, 6), (12, 7), (7, 5), (1, 1)]


# ---------------------------------------------------------------------------------------------
# RFC 9172 rules: what a caller may not add.


def test_add_rejects_invalid_requests() -> None:
    signed = a1_bundle()
    encrypted = a2_bundle()
    k16, k32, iv = b"k" * 16, b"c" * 32, b"i" * 12
    frag = Bundle(
        PRIMARY._replace(flags=BundleFlag.IS_FRAGMENT, fragment_offset=0, total_adu_length=99),
        (PAYLOAD,),
    )
    cases: list[Any] = [
        lambda: add_bib(signed, [1], k16, security_source=SOURCE),  # payload already signed
        lambda: add_bib(signed, [2], k16, security_source=SOURCE),  # BIB targets a BIB
        lambda: add_bib(encrypted, [1], k16, security_source=SOURCE),  # target encrypted
        lambda: add_bib(encrypted, [2], k16, security_source=SOURCE),  # BIB targets a BCB
        lambda: add_bib(ORIGINAL, [], k16, security_source=SOURCE),
        lambda: add_bib(ORIGINAL, [1, 1], k16, security_source=SOURCE),
        lambda: add_bib(ORIGINAL, [9], k16, security_source=SOURCE),
        lambda: add_bib(ORIGINAL, [1], k16, security_source=SOURCE, sha_variant=4),
        lambda: add_bib(ORIGINAL, [1], k16, security_source=SOURCE, scope=8),
        lambda: add_bib(ORIGINAL, [1], k16, security_source=SOURCE, block_number=1),
        lambda: add_bib(ORIGINAL, [1], k16, security_source=SOURCE, index=1),
        lambda: add_bib(ORIGINAL, [1], k16, security_source=SOURCE, crc_type=3),
        lambda: add_bib(ORIGINAL, [1], b"", security_source=SOURCE),
        lambda: add_bib(ORIGINAL, [1], b"kek", security_source=SOURCE, wrapped_key_cek=k16),
        lambda: add_bib(ORIGINAL, [1], k16, security_source="ipn:2.1"),  # type: ignore[arg-type]
        lambda: add_bib(frag, [1], k16, security_source=SOURCE),
        lambda: add_bcb(ORIGINAL, [0], k32, iv, security_source=SOURCE),  # primary
        lambda: add_bcb(encrypted, [2], k32, iv, security_source=SOURCE),  # a BCB
        lambda: add_bcb(encrypted, [1], k32, iv, security_source=SOURCE),  # encrypted twice
        lambda: add_bcb(signed, [1], k32, iv, security_source=SOURCE),  # BIB left out
        lambda: add_bcb(signed, [2], k32, iv, security_source=SOURCE),  # BIB without target
        lambda: add_bcb(ORIGINAL, [1], k16, iv, security_source=SOURCE),  # key too short
        lambda: add_bcb(ORIGINAL, [1], k32, iv, security_source=SOURCE, aes_variant=2),
        lambda: add_bcb(ORIGINAL, [1], k32, b"1234567", security_source=SOURCE),
        lambda: add_bcb(ORIGINAL, [1], k32, b"x" * 17, security_source=SOURCE),
        lambda: add_bcb(ORIGINAL, [1], k32, iv, security_source=SOURCE, flags=0),
        lambda: add_bcb(ORIGINAL, [1], k32, iv, security_source=SOURCE, flags=0x11),
        lambda: add_bcb(frag, [1], k32, iv, security_source=SOURCE),
    ]
    for i, case in enumerate(cases):
        try:
            case()
        except LocalError:
            continue
        pytest.fail(f"case #{i} was accepted")


def test_bcb_must_take_a_partially_covered_bib_along_or_refuse() -> None:
    bundle = Bundle(PRIMARY._replace(creation_time=3), (age_block(7, number=2), PAYLOAD))
    signed = add_bib(bundle, [1, 2], b"k" * 16, security_source=SOURCE, block_number=3)
    with pytest.raises(LocalError, match="splitting"):
        add_bcb(signed, [1, 3], b"c" * 32, b"i" * 12, security_source=SOURCE)
    both = add_bcb(signed, [1, 2, 3], b"c" * 32, b"i" * 12, security_source=SOURCE)
    check_security(both)
    assert verify_bib(decrypt_bcb(both, b"c" * 32), b"k" * 16, remove=True) == bundle


# ---------------------------------------------------------------------------------------------
# RFC 9172 rules: what a receiver rejects.


def _asb(targets: tuple[int, ...], context: int = 1, params: Any = ((1, 6),)) -> bytes:
    return encode_asb(
        AbstractSecurityBlock(
            targets,
            context,
            1 if params is not None else 0,
            SOURCE,
            params,
            tuple(((1, b"\x00" * 16),) for _ in targets),
        )
    )


def _with(*blocks: CanonicalBlock) -> Bundle:
    return Bundle(PRIMARY, (*blocks, PAYLOAD))


@pytest.mark.parametrize(
    ("bundle", "reason"),
    [
        pytest.param(_with(CanonicalBlock(12, 2, 1, 0, _asb((0,), 2))), 16, id="bcb-primary"),
        pytest.param(_with(CanonicalBlock(12, 2, 1, 0, _asb((2,), 2))), 16, id="bcb-self"),
        pytest.param(
            _with(CanonicalBlock(11, 2, 0, 0, _asb((1,))), CanonicalBlock(11, 3, 0, 0, _asb((1,)))),
            16,
            id="two-bibs",
        ),
        pytest.param(
            _with(
                CanonicalBlock(12, 2, 1, 0, _asb((1,), 2)),
                CanonicalBlock(12, 3, 1, 0, _asb((1,), 2)),
            ),
            16,
            id="two-bcbs",
        ),
        pytest.param(
            _with(CanonicalBlock(11, 2, 0, 0, _asb((3,))), CanonicalBlock(12, 3, 1, 0, _asb((1,), 2))),
            16,
            id="bib-on-bcb",
        ),
        pytest.param(
            _with(CanonicalBlock(12, 2, 1, 0, _asb((1,), 2)), CanonicalBlock(11, 3, 0, 0, _asb((1,)))),
            16,
            id="bib-target-encrypted",
        ),
        pytest.param(_with(CanonicalBlock(12, 2, 0, 0, _asb((1,), 2))), 16, id="no-replicate"),
        pytest.param(_with(CanonicalBlock(12, 2, 0x11, 0, _asb((1,), 2))), 16, id="removable"),
        pytest.param(_with(CanonicalBlock(11, 2, 0, 0, _asb((7,)))), 15, id="missing-target"),
        pytest.param(_with(CanonicalBlock(11, 2, 0, 0, b"\x80")), 8, id="malformed"),
    ],
)
def test_check_security_rejects(bundle: Bundle, reason: int) -> None:
    with pytest.raises(SecurityError) as exc:
        check_security(bundle)
    assert _reason(exc) == reason
    with pytest.raises(SecurityError):
        verify_bib(bundle, b"k" * 16)
    with pytest.raises(SecurityError):
        decrypt_bcb(bundle, b"k" * 16)


@pytest.mark.parametrize(
    ("block", "reason"),
    [
        pytest.param(CanonicalBlock(11, 2, 0, 0, _asb((1,), 99)), 13, id="unknown-context"),
        pytest.param(CanonicalBlock(11, 2, 0, 0, _asb((1,), 2)), 14, id="bcb-context-in-bib"),
        pytest.param(CanonicalBlock(11, 2, 0, 0, _asb((1,), 1, ((1, 8),))), 13, id="sha-variant"),
        pytest.param(CanonicalBlock(11, 2, 0, 0, _asb((1,), 1, ((4, 0),))), 13, id="param-id"),
        pytest.param(CanonicalBlock(11, 2, 0, 0, _asb((1,), 1, ((1, 6), (1, 6)))), 8, id="param-twice"),
        pytest.param(CanonicalBlock(11, 2, 0, 0, _asb((1,), 1, ((1, b"6"),))), 8, id="param-type"),
        pytest.param(CanonicalBlock(11, 2, 0, 0, _asb((1,), 1, None)), 15, id="defaults-bad-mac"),
    ],
)
def test_verify_bib_rejects(block: CanonicalBlock, reason: int) -> None:
    with pytest.raises(SecurityError) as exc:
        verify_bib(_with(block), b"k" * 16)
    assert _reason(exc) == reason
    assert exc.value.block in (1, 2)


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        pytest.param(((2, 3),), 8, id="no-iv"),
        pytest.param(((1, b"short"),), 8, id="iv-length"),
        pytest.param(((1, b"i" * 12), (2, 2)), 13, id="aes-variant"),
        pytest.param(((1, b"i" * 12), (5, 0)), 13, id="param-id"),
        pytest.param(((1, b"i" * 12), (3, b"\x00" * 40)), 15, id="bad-wrapped-key"),
        pytest.param(((1, b"i" * 12),), 15, id="bad-tag"),
    ],
)
def test_decrypt_bcb_rejects(params: Any, reason: int) -> None:
    bcb = CanonicalBlock(12, 2, 1, 0, _asb((1,), 2, params))
    with pytest.raises(SecurityError) as exc:
        decrypt_bcb(_with(bcb), b"c" * 32)
    assert _reason(exc) == reason


# ---------------------------------------------------------------------------------------------
# The ASB codec: strictness and properties.


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("", "ends before the security targets"),
        ("80", "empty"),
        ("820101", "more than once"),
        ("9f01ff", "indefinite"),
        ("8118010101", "shortest"),
        ("8101a0", "maps"),
        ("8101c0", "tags"),
        ("8101f93c00", "float"),
        ("81010100820200", "not a valid endpoint ID"),
        ("8101010082018100", "not a valid endpoint ID"),
        ("810101008201626162", "not a valid endpoint ID"),
        ("81010101820100808180", "parameter list is empty"),
        ("81010100820100828080", "2 result sets for 1"),
        ("81010100820100818000", "1 bytes follow"),
        ("8101010082010081818101", "two-element array"),
        ("810101008201008181820161ff", "UTF-8"),
        ("81010100820100818182015a", "ends inside the head"),
        ("81010100820100818182014101", None),
    ],
)
def test_decode_asb_names_the_problem(data: str, message: str | None) -> None:
    if message is None:
        assert encode_asb(decode_asb(h(data))).hex() == data
        return
    with pytest.raises(SecurityError, match=message) as exc:
        decode_asb(h(data), block=5)
    assert _reason(exc) == Reason.BLOCK_UNINTELLIGIBLE
    assert exc.value.block == 5


RFC_ASBS = [A1_ASB, A2_ASB, A3_BIB_ASB, A3_BCB_ASB, A4_BIB_ASB, A4_BCB_ASB]


@pytest.mark.parametrize("asb_hex", RFC_ASBS)
def test_rfc_asbs_round_trip_and_reject_prefixes_and_trailing_bytes(asb_hex: str) -> None:
    data = h(asb_hex)
    assert encode_asb(decode_asb(data)) == data
    for end in range(len(data)):
        with pytest.raises(SecurityError):
            decode_asb(data[:end])
    for extra in (b"\x00", b"\xff", data):
        with pytest.raises(SecurityError, match="follow"):
            decode_asb(data + extra)


def test_decode_asb_wants_bytes() -> None:
    assert decode_asb(bytearray(h(A1_ASB))) == decode_asb(memoryview(h(A1_ASB)))
    with pytest.raises(LocalError):
        decode_asb(A1_ASB)  # type: ignore[arg-type]


def test_encode_asb_rejects_invalid_values() -> None:
    good: Any = decode_asb(h(A1_ASB))  # Any: the point is to pass values of the wrong type
    for bad in (
        good._replace(targets=()),
        good._replace(targets=(1, 1), results=((), ())),
        good._replace(targets=(-1,)),
        good._replace(context_id=1 << 64),
        good._replace(context_id=True),
        good._replace(context_flags=0),
        good._replace(parameters=()),
        good._replace(parameters=((1, 1.5),)),
        good._replace(parameters=((1, 1 << 64),)),
        good._replace(parameters=((-1, 0),)),
        good._replace(parameters=((1, "\ud800"),)),
        good._replace(results=()),
        good._replace(source="ipn:2.1"),
    ):
        with pytest.raises(LocalError):
            encode_asb(bad)


U64 = st.integers(min_value=0, max_value=(1 << 64) - 1)
VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(1 << 64), max_value=(1 << 64) - 1)
    | st.binary(max_size=40)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4).map(tuple),
    max_leaves=12,
)
PAIRS = st.lists(st.tuples(U64, VALUES), max_size=4).map(tuple)
EIDS: st.SearchStrategy[EID] = st.one_of(
    st.just(DTN_NONE),
    st.builds(IpnEID, U64, U64),
    st.from_regex(r"//[a-z0-9.-]{1,10}/[!-~]{0,10}", fullmatch=True).map(DtnEID),
)


@st.composite
def asbs(draw: st.DrawFn) -> AbstractSecurityBlock:
    targets = tuple(draw(st.lists(U64, min_size=1, max_size=5, unique=True)))
    params = draw(st.none() | PAIRS.filter(bool))
    flags = draw(st.integers(min_value=0, max_value=1 << 40)) * 2 + (params is not None)
    return AbstractSecurityBlock(
        targets,
        draw(st.integers(min_value=-(1 << 64), max_value=(1 << 64) - 1)),
        flags,
        draw(EIDS),
        params,
        tuple(draw(PAIRS) for _ in targets),
    )


@given(asbs())
def test_asb_round_trip(asb: AbstractSecurityBlock) -> None:
    data = encode_asb(asb)
    assert decode_asb(data) == asb
    assert encode_asb(decode_asb(data)) == data
    assert cbor2.loads(b"\x9f" + data + b"\xff")[0] == list(asb.targets)  # a valid CBOR sequence


@given(asbs())
def test_asb_every_prefix_is_rejected(asb: AbstractSecurityBlock) -> None:
    data = encode_asb(asb)
    for end in range(len(data)):
        with pytest.raises(SecurityError):
            decode_asb(data[:end])


@given(asbs(), st.binary(min_size=1, max_size=8))
def test_asb_trailing_bytes_are_rejected(asb: AbstractSecurityBlock, extra: bytes) -> None:
    with pytest.raises(SecurityError, match="follow"):
        decode_asb(encode_asb(asb) + extra)


def _decode_or_proxima_error(data: bytes) -> None:
    try:
        asb = decode_asb(data)
    except ProximaError:
        return
    assert encode_asb(asb) == data  # whatever is accepted is exactly the canonical encoding


@given(st.binary(max_size=200))
def test_asb_random_bytes(data: bytes) -> None:
    _decode_or_proxima_error(data)


@given(asbs(), st.data())
def test_asb_mutations(asb: AbstractSecurityBlock, data: st.DataObject) -> None:
    raw = bytearray(encode_asb(asb))
    pos = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    raw[pos] = data.draw(st.integers(min_value=0, max_value=255))
    _decode_or_proxima_error(bytes(raw))


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=120), st.sampled_from([11, 12]))
def test_random_security_block_data_only_raises_proxima_errors(data: bytes, kind: int) -> None:
    bundle = _with(CanonicalBlock(kind, 2, 1, 0, data))
    for op in (check_security, lambda b: verify_bib(b, b"k" * 16), lambda b: decrypt_bcb(b, b"k" * 32)):
        try:
            op(bundle)
        except ProximaError:
            pass


ODD_VALUES = st.one_of(
    st.integers(min_value=-3, max_value=9),
    st.binary(max_size=40),
    st.sampled_from([b"i" * 12, b"\x00" * 16, b"\x00" * 24, b"\x00" * 40]),
    st.none(),
    st.booleans(),
    st.text(max_size=3),
)


@st.composite
def odd_security_blocks(draw: st.DrawFn) -> CanonicalBlock:
    """Well-formed ASBs with arbitrary, mostly wrong, contents for the contexts."""
    targets = tuple(draw(st.lists(st.integers(0, 4), min_size=1, max_size=3, unique=True)))
    params = draw(st.none() | st.lists(st.tuples(st.integers(0, 5), ODD_VALUES), min_size=1, max_size=4))
    results = tuple(
        tuple(draw(st.lists(st.tuples(st.integers(0, 2), ODD_VALUES), max_size=2))) for _ in targets
    )
    asb = AbstractSecurityBlock(
        targets,
        draw(st.integers(-1, 3)),
        draw(st.integers(0, 3)) * 2 + (params is not None),
        draw(EIDS),
        None if params is None else tuple(params),
        results,
    )
    kind = draw(st.sampled_from([11, 12]))
    number = draw(st.integers(2, 4))
    return CanonicalBlock(kind, number, draw(st.integers(0, 0x17)), 0, encode_asb(asb))


@given(st.lists(odd_security_blocks(), min_size=1, max_size=3), st.sampled_from([16, 24, 32]))
def test_odd_security_blocks_only_raise_proxima_errors(blocks: list[CanonicalBlock], key_length: int) -> None:
    by_number = {b.number: b for b in blocks}  # block numbers must be unique
    bundle = Bundle(PRIMARY, (*by_number.values(), PAYLOAD))
    key = bytes(range(key_length))
    for op in (
        check_security,
        lambda b: verify_bib(b, key, remove=True),
        lambda b: decrypt_bcb(b, key),
        lambda b: verify_bib(b, key, required=False),
    ):
        try:
            op(bundle)
        except ProximaError:
            pass


# ---------------------------------------------------------------------------------------------
# Properties of the operations.

PAYLOADS = st.binary(max_size=300)


@given(
    PAYLOADS,
    st.sampled_from(list(ShaVariant)),
    st.integers(min_value=0, max_value=7),
    st.binary(min_size=1, max_size=70),
    st.data(),
)
def test_bib_sign_verify_tamper(
    payload: bytes, variant: int, scope: int, key: bytes, data: st.DataObject
) -> None:
    bundle = Bundle(PRIMARY._replace(creation_time=1), (payload_block(payload),))
    signed = add_bib(bundle, [1], key, security_source=SOURCE, sha_variant=variant, scope=scope)
    received = decode_bundle(encode_bundle(signed))
    assert verify_bib(received, key, remove=True) == bundle
    if payload:
        pos = data.draw(st.integers(min_value=0, max_value=len(payload) - 1))
        bad = bytearray(payload)
        bad[pos] ^= data.draw(st.integers(min_value=1, max_value=255))
        tampered = received.with_blocks((received.blocks[0], payload_block(bytes(bad))))
        with pytest.raises(SecurityError):
            verify_bib(tampered, key)
    with pytest.raises(SecurityError):
        verify_bib(received, key + b"!")


@given(
    PAYLOADS,
    st.sampled_from(list(AesVariant)),
    st.integers(min_value=0, max_value=7),
    st.binary(min_size=8, max_size=16),
    st.booleans(),
)
def test_bcb_encrypt_decrypt(payload: bytes, variant: int, scope: int, iv: bytes, wrap: bool) -> None:
    bundle = Bundle(PRIMARY._replace(creation_time=1), (payload_block(payload),))
    cek = bytes(range(7, 7 + (16 if variant == AesVariant.A128GCM else 32)))
    kek = b"\x33" * 24
    key, cek_arg = (kek, cek) if wrap else (cek, None)
    enc = add_bcb(
        bundle,
        [1],
        key,
        iv,
        security_source=SOURCE,
        aes_variant=variant,
        scope=scope,
        wrapped_key_cek=cek_arg,
    )
    assert len(enc.payload) == len(payload)
    received = decode_bundle(encode_bundle(enc))
    assert decrypt_bcb(received, key) == bundle
    with pytest.raises(SecurityError):
        decrypt_bcb(received, bytes(len(key)))


def test_security_block_ids_are_the_rfc_ones() -> None:
    assert (BIB_HMAC_SHA2, BCB_AES_GCM) == (1, 2)
    assert (BlockType.BIB, BlockType.BCB) == (11, 12)
