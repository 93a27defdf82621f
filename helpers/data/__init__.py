"""Face data: one dataset abstraction over CelebA, image folders, LFW and synthetic faces.

Explained in notebooks/00_data.ipynb; every model notebook starts from `load_faces`.
"""
from .faces import FaceLoader, FaceSet, ensure_synthetic, get_dataloader, load_faces, pipeline_speed, to_range  # noqa: F401
from .sources import DataError  # noqa: F401
from .transforms import scale, to_unit  # noqa: F401
