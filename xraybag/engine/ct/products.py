"""CT products beside the ``.npy`` volumes: PNG previews and DICOM series."""

from __future__ import annotations

import io

import numpy as np

PREVIEW_QUANTITIES = ("mu", "mu_high", "mu_low", "zeff", "rho_e", "labels")


def _png(img: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def _grey(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
    x = (np.asarray(a, dtype=np.float64) - lo) / max(hi - lo, 1e-12)
    return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def orthogonal_slices(vol: np.ndarray) -> list[np.ndarray]:
    """The central axial (z), coronal (y) and sagittal (x) slices of a [z, y, x] volume."""
    nz, ny, nx = vol.shape
    return [vol[nz // 2], vol[:, ny // 2, :], vol[:, :, nx // 2]]


def montage(slices: list[np.ndarray], gap: int = 4) -> np.ndarray:
    h = max(s.shape[0] for s in slices)
    w = sum(s.shape[1] for s in slices) + gap * (len(slices) - 1)
    out = np.zeros((h, w) + slices[0].shape[2:], dtype=slices[0].dtype)
    x = 0
    for s in slices:
        out[: s.shape[0], x : x + s.shape[1]] = s
        x += s.shape[1] + gap
    return out


def _label_colours(labels: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(12345)
    lut = rng.integers(60, 256, size=(int(labels.max()) + 1, 3), dtype=np.uint8)
    lut[0] = 0
    return lut[labels]


def previews(volumes: dict[str, np.ndarray], labels: np.ndarray) -> dict[str, bytes]:
    """``preview_<quantity>.png``: axial, coronal and sagittal central slices side by side
    (attenuation windowed on its 1st-99.9th percentile, Zeff on 0-30, labels in random colours)."""
    out: dict[str, bytes] = {}
    for q in PREVIEW_QUANTITIES:
        if q == "labels":
            sl = [_label_colours(s) for s in orthogonal_slices(labels)]
            out["preview_labels.png"] = _png(montage(sl))
            continue
        if q not in volumes:
            continue
        v = volumes[q]
        if q == "zeff":
            lo, hi = 0.0, 30.0
        else:
            sample = v[:: max(1, v.shape[0] // 16)]
            lo, hi = (float(x) for x in np.percentile(sample, [1.0, 99.9]))
        out[f"preview_{q}.png"] = _png(montage([_grey(s, lo, hi) for s in orthogonal_slices(v)]))
    return out


# ----------------------------------------------------------------------------- DICOM

#: scale of the stored integers: value = stored * slope + intercept
_DICOM_SCALE = {"zeff": 0.01, "rho_e": 0.001, "labels": 1.0}


def dicom_series(volumes: dict[str, np.ndarray], geometry: dict) -> dict[str, bytes]:
    """One DICOM CT image series per volume (``dicom/<quantity>/<slice>.dcm``, one file per axial
    slice), stored as 16-bit integers with RescaleSlope / RescaleIntercept. Attenuation volumes
    in 1/mm are written in Hounsfield units (``geometry['hu_reference']`` = mu of water per
    quantity) when that reference is present, else scaled by 1e5."""
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    grid = geometry["grid"]
    dx, dy, dz = grid["voxel_mm_xyz"]
    ox, oy, oz = grid["origin_mm_xyz"]
    study = generate_uid()
    frame = generate_uid()
    files: dict[str, bytes] = {}
    hu_ref = geometry.get("hu_reference", {})
    for number, (q, vol) in enumerate(sorted(volumes.items()), start=1):
        series = generate_uid()
        if q in _DICOM_SCALE:
            slope, intercept, data = _DICOM_SCALE[q], 0.0, np.asarray(vol, dtype=np.float64)
        elif q in hu_ref:
            mw = float(hu_ref[q])
            data = 1000.0 * (np.asarray(vol, dtype=np.float64) - mw) / mw
            slope, intercept = 1.0, 0.0
        else:
            slope, intercept, data = 1e-5, 0.0, np.asarray(vol, dtype=np.float64)
        stored = np.clip(np.rint((data - intercept) / slope), -32768, 32767).astype(np.int16)
        for k in range(stored.shape[0]):
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = CTImageStorage
            meta.MediaStorageSOPInstanceUID = generate_uid()
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
            ds.SOPClassUID = CTImageStorage
            ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
            ds.Modality = "CT"
            ds.Manufacturer = "xraybag (simulated)"
            ds.PatientName = "BAG"
            ds.PatientID = "bag"
            ds.StudyInstanceUID = study
            ds.SeriesInstanceUID = series
            ds.FrameOfReferenceUID = frame
            ds.SeriesNumber = number
            ds.SeriesDescription = q
            ds.InstanceNumber = k + 1
            ds.ImageType = ["DERIVED", "SECONDARY"]
            ds.ImagePositionPatient = [float(ox), float(oy), float(oz + k * dz)]
            ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
            ds.PixelSpacing = [float(dy), float(dx)]
            ds.SliceThickness = float(dz)
            ds.SamplesPerPixel = 1
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.Rows, ds.Columns = int(stored.shape[1]), int(stored.shape[2])
            ds.BitsAllocated = 16
            ds.BitsStored = 16
            ds.HighBit = 15
            ds.PixelRepresentation = 1
            ds.RescaleSlope = f"{slope:g}"
            ds.RescaleIntercept = f"{intercept:g}"
            ds.PixelData = stored[k].tobytes()
            buf = io.BytesIO()
            pydicom.dcmwrite(buf, ds, enforce_file_format=True)
            files[f"dicom/{q}/{k:04d}.dcm"] = buf.getvalue()
    return files
