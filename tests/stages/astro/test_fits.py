"""FITS as a value: bit-exact write -> read, exact BSCALE/BZERO, canonical cards, digests."""

from __future__ import annotations

import io

import numpy as np
import pytest

import physflow as pf
from physflow.stages.astro import (
    FitsFormatError,
    FitsImage,
    from_fits_bytes,
    make_image,
    to_fits_bytes,
)
from physflow.stages.astro.fitsvalue import VOLATILE_CARDS
from physflow.stages.astro.wcs import tan_cards

fits = pytest.importorskip("astropy.io.fits")

CARDS = [
    ("BUNIT", "count", "physical unit"),
    ("OBJECT", "a field with a long name " * 4 + "!", ""),  # CONTINUE cards
    ("EXPTIME", 123.456789012345678, "[s]"),  # needs more than 20 characters
    ("GAIN", 1.7, ""),
    ("NCOMBINE", 7, ""),
    ("FLAT", True, ""),
    ("UNDEF", None, "undefined value"),
    ("HISTORY", "first", ""),
    ("HISTORY", "second", ""),
    *tan_cards(150.1, 2.2, 49.5, 29.5, 0.2, 12.0),
]


def raw_block(blob: bytes, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """The data array read straight from the file's bytes (no astropy): the header is a whole
    number of 2880-byte blocks ending with an END card, the data follows big-endian."""
    end = 0
    while blob[end : end + 3] != b"END" or end % 80:
        end += 80
    start = (end // 2880 + 1) * 2880
    count = int(np.prod(shape))
    return np.frombuffer(blob, dtype=">" + dtype, count=count, offset=start).reshape(shape)


def test_int16_scaled_round_trip_is_bit_exact_with_cards(tmp_path):
    rng = np.random.default_rng(1)
    stored = rng.integers(-32768, 32768, size=(60, 100)).astype(np.int16)
    image = make_image(stored, CARDS, bscale=0.037, bzero=1234.5)
    blob = to_fits_bytes(image)
    back = from_fits_bytes(blob)
    assert back.data.dtype == np.int16 and np.array_equal(back.data, stored)
    assert back.bscale == 0.037 and back.bzero == 1234.5
    assert back.cards == image.cards
    assert pf.digest(back) == pf.digest(image)
    # writing what was read gives the same file, byte for byte
    assert to_fits_bytes(back) == blob
    # the stored array in the file, read without astropy, is the one we wrote
    assert np.array_equal(raw_block(blob, "i2", stored.shape), stored)
    header = dict(back.header())
    assert header["EXPTIME"] == pytest.approx(123.456789012345678, rel=1e-14)
    assert header["OBJECT"] == "a field with a long name " * 4 + "!"
    assert [c[1] for c in back.cards if c[0] == "HISTORY"] == ["first", "second"]
    assert header["UNDEF"] is None and header["FLAT"] is True and header["NCOMBINE"] == 7


def test_float32_round_trip_is_bit_exact_including_nan_and_inf():
    rng = np.random.default_rng(2)
    data = rng.standard_normal((33, 47)).astype(np.float32) * 1e3
    data[0, 0], data[1, 1], data[2, 2] = np.nan, np.inf, -0.0
    image = make_image(data, CARDS)
    back = from_fits_bytes(to_fits_bytes(image))
    assert back.data.dtype == np.float32 and not back.scaled
    assert back.data.tobytes() == data.tobytes()  # bit for bit (NaN payload, -0.0)
    assert back.cards == image.cards and pf.digest(back) == pf.digest(image)


def test_bscale_bzero_are_applied_exactly_in_float64():
    stored = np.array([[-32768, -1, 0, 1, 32767]], dtype=np.int16)
    image = from_fits_bytes(to_fits_bytes(make_image(stored, bscale=0.1, bzero=-7.25)))
    expected = np.array([-7.25 + 0.1 * float(s) for s in stored.ravel()]).reshape(stored.shape)
    assert image.physical().dtype == np.float64
    assert np.array_equal(image.physical(), expected)  # python float arithmetic, same bits
    # unsigned 16-bit convention: every count 0..65535 comes back exactly
    counts = np.arange(0, 65536, dtype=np.float64).reshape(256, 256)
    stored = (counts - 32768).astype(np.int16)
    image = from_fits_bytes(to_fits_bytes(make_image(stored, bscale=1.0, bzero=32768.0)))
    assert np.array_equal(image.physical(), counts)
    # astropy's own reader (float32 for scaled int16) agrees to float32 rounding
    with fits.open(io.BytesIO(to_fits_bytes(make_image(stored, bscale=0.1, bzero=-7.25)))) as h:
        theirs = h[0].data
    ours = from_fits_bytes(to_fits_bytes(make_image(stored, bscale=0.1, bzero=-7.25)))
    np.testing.assert_allclose(theirs, ours.physical(), rtol=1e-6, atol=1e-3)


def test_file_is_valid_fits_for_astropy():
    image = make_image(np.arange(12, dtype=np.int16).reshape(3, 4), CARDS, 2.0, 10.0)
    with fits.open(io.BytesIO(to_fits_bytes(image, checksum=True)), checksum=True) as hdul:
        hdul.verify("exception")
        assert hdul[0].header["BUNIT"] == "count"
        assert hdul[0].header["CHECKSUM"] and hdul[0].header["DATASUM"]
        assert np.array_equal(hdul[0].data, 10.0 + 2.0 * np.arange(12).reshape(3, 4))


def test_digest_covers_data_and_included_cards_not_volatile_ones():
    data = np.arange(20, dtype=np.float32).reshape(4, 5)
    base = make_image(data, [("BUNIT", "count", ""), ("GAIN", 2.0, "")])
    d = pf.digest(base)
    changed_value = data.copy()
    changed_value[2, 3] += 1
    assert pf.digest(make_image(changed_value, base.cards)) != d
    assert pf.digest(make_image(data, [("BUNIT", "adu", ""), ("GAIN", 2.0, "")])) != d
    assert pf.digest(make_image(data, [("BUNIT", "count", ""), ("GAIN", 2.0, "e-/adu")])) != d
    # card order in the file does not matter: the value holds them sorted by keyword
    assert pf.digest(make_image(data, [("GAIN", 2.0, ""), ("BUNIT", "count", "")])) == d
    # volatile cards are not part of the value, in a file or when given
    volatile = [(k, "x", "") for k in VOLATILE_CARDS]
    assert pf.digest(make_image(data, [*base.cards, *volatile])) == d
    blob = to_fits_bytes(base, checksum=True)
    assert b"CHECKSUM" in blob and pf.digest(from_fits_bytes(blob)) == d
    with fits.open(io.BytesIO(to_fits_bytes(base))) as hdul:
        hdul[0].header["DATE"] = "2020-01-01T00:00:00"
        out = io.BytesIO()
        hdul.writeto(out)
    assert b"DATE" in out.getvalue() and pf.digest(from_fits_bytes(out.getvalue())) == d
    # scaling is part of the meaning
    stored = np.zeros((2, 2), np.int16)
    assert pf.digest(make_image(stored, bzero=1.0)) != pf.digest(make_image(stored, bzero=2.0))


def test_damaged_files_are_errors_naming_the_file():
    blob = to_fits_bytes(make_image(np.zeros((100, 100), np.float32)))
    with pytest.raises(FitsFormatError, match=r"img\.fits.*2880"):
        from_fits_bytes(blob[:-10], name="img.fits")
    with pytest.raises(FitsFormatError, match=r"img\.fits"):
        from_fits_bytes(blob[:-2880], name="img.fits")  # whole blocks, data cut short
    with pytest.raises(FitsFormatError, match="not a readable FITS"):
        from_fits_bytes(b"x" * 2880, name="img.fits")
    with pytest.raises(FitsFormatError, match="no HDU 3"):
        from_fits_bytes(blob, hdu=3, name="img.fits")
    with pytest.raises(TypeError, match="uint16"):
        FitsImage(data=np.zeros((2, 2), np.uint16))


def test_fits_image_round_trips_through_the_store(store):
    image = make_image(np.arange(10_000, dtype=np.int16).reshape(100, 100), CARDS, 0.5, 3.0)
    entry = store.put_value(image)
    assert entry.digest == pf.digest(image) and entry.objects  # the array is an object
    back = store.get_value(entry)
    assert isinstance(back, FitsImage) and back.cards == image.cards
    assert np.array_equal(back.data, image.data) and (back.bscale, back.bzero) == (0.5, 3.0)
