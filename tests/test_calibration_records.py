"""Colour calibrations kept on disk between runs: read back the same, made again when any input or
the code changes, a damaged record ignored, a bounded number kept."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest

from xraybag.engine.xray import calibration as C
from xraybag.materials import default_library
from xraybag.scenes.models import Scanner


@pytest.fixture
def records(tmp_path, monkeypatch):
    folder = tmp_path / "calibration"
    monkeypatch.setenv(C.CALIBRATION_DIR_ENV, str(folder))
    C._CAL_CACHE.clear()  # this process's cache would answer before the disk
    yield folder
    C._CAL_CACHE.clear()


def scanner(kvp: float = 140.0, noise: bool = True) -> Scanner:
    return Scanner(name="top", type="line_scan", spectrum={"kvp": kvp}, noise=noise)


def counted(monkeypatch) -> list:
    """Calls of the calibration itself (not read from a record)."""
    calls = []
    real = C._calibrate

    def calibrate(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(C, "_calibrate", calibrate)
    return calls


def same(a: C.ColourCalibration, b: C.ColourCalibration) -> bool:
    for f in fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            if x.dtype != y.dtype or x.shape != y.shape or x.tobytes() != y.tobytes():
                return False
        elif type(x) is not type(y) or x != y:
            return False
    return True


def test_a_calibration_is_read_back_bit_for_bit_without_being_made_again(records, monkeypatch):
    library = default_library()
    calls = counted(monkeypatch)
    made = C.calibrate_colour(scanner(), library)
    assert len(calls) == 1 and len(list(records.glob("colour-*.npz"))) == 1

    C._CAL_CACHE.clear()  # as a new process
    read = C.calibrate_colour(scanner(), library)
    assert len(calls) == 1  # from the record
    assert read is not made and same(read, made)
    assert not read.lut_zeff.flags.writeable and not read.rgb_table.flags.writeable
    assert read.scatter_sigma_px > 0 and read.denoise_px == 1.0  # the scalars came back too

    # a record read back colours as the calibration made in this process does
    C._CAL_CACHE.clear()
    monkeypatch.setenv(C.CALIBRATION_DIR_ENV, "")
    assert same(C.calibrate_colour(scanner(), library), made)
    assert len(calls) == 2


def test_another_input_or_code_makes_another_record(records, monkeypatch):
    library = default_library()
    calls = counted(monkeypatch)
    a = C.calibrate_colour(scanner(140.0), library)
    b = C.calibrate_colour(scanner(120.0), library)  # another spectrum: other weights
    c = C.calibrate_colour(scanner(140.0, noise=False), library)  # no scatter, no denoising
    assert len(calls) == 3 and len(list(records.glob("colour-*.npz"))) == 3
    assert not np.array_equal(a.ladder_r, b.ladder_r)
    assert c.scatter_fraction == 0 and c.denoise_px == 0 and a.scatter_fraction > 0

    C._CAL_CACHE.clear()
    monkeypatch.setattr(C, "_code_identity", lambda: b"another version of the code")
    C.calibrate_colour(scanner(140.0), library)
    assert len(calls) == 4 and len(list(records.glob("colour-*.npz"))) == 4


def test_a_damaged_record_is_made_again_and_replaced(records, monkeypatch):
    library = default_library()
    calls = counted(monkeypatch)
    made = C.calibrate_colour(scanner(), library)
    (record,) = records.glob("colour-*.npz")
    record.write_bytes(record.read_bytes()[:5000])  # cut short, as by a full disk
    C._CAL_CACHE.clear()
    again = C.calibrate_colour(scanner(), library)
    assert len(calls) == 2 and same(again, made)
    C._CAL_CACHE.clear()
    assert same(C.calibrate_colour(scanner(), library), made) and len(calls) == 2  # replaced whole


def test_no_records_when_the_folder_is_empty_and_a_bounded_number_otherwise(tmp_path, records,
                                                                            monkeypatch):
    library = default_library()
    monkeypatch.setenv(C.CALIBRATION_DIR_ENV, "")
    C.calibrate_colour(scanner(), library)
    assert not records.exists()

    monkeypatch.setenv(C.CALIBRATION_DIR_ENV, str(records))
    monkeypatch.setattr(C, "_KEEP_RECORDS", 2)
    for kvp in (100.0, 110.0, 120.0):
        C.calibrate_colour(scanner(kvp), library)
    assert len(list(records.glob("colour-*.npz"))) == 2


def test_without_a_key_for_the_code_nothing_is_kept(records, monkeypatch):
    def unreadable():
        raise OSError("no source file")

    monkeypatch.setattr(C, "_code_identity", unreadable)
    assert C.calibrate_colour(scanner(), default_library()).lut_zeff is not None
    assert not records.exists()
