"""What the CNN looks at: feature maps and Grad-CAM (the paper's Figure 7)."""
from .gradcam import explain_maps

__all__ = ["explain_maps"]
