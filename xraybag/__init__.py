"""xraybag: labelled X-ray security data from declarative scene files."""

__version__ = "0.1.0"
