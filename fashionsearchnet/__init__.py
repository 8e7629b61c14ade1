"""FashionSearchNet Edge."""
import os as _os

# OpenCV reads its pixel limit once, when cv2 is imported: set it here, before any module of the package imports
# cv2, as a second guard behind data/imageheader.py (keep equal to data.preprocess.MAX_PIXELS; an operator's
# own value wins).
_os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", "50000000")

__version__ = "0.1.0"
