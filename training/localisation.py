"""Moved to evaluation/localisation.py (torch-free, used by ``fsn eval``'s ``localisation`` figure); this name is
kept so that training code importing it keeps working. Import from ``fashionsearchnet.evaluation.localisation``."""
from fashionsearchnet.evaluation.localisation import (SYNTH_ATTRIBUTE_REGIONS, SYNTH_REGION_LABELS,  # noqa: F401
                                                     box_coverage, box_iou, cell_box_to_pixels, mask_box,
                                                     mean_box_coverage, mean_box_iou, truth_boxes)
